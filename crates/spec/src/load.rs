//! Pass 1 of resolution (see `crate::resolve` for the others): reading a sweep file with its
//! configuration layers, and mapping every error to a location.
//!
//! Takes the file's path or text and [`LoadOptions`] (environment, `--set` arguments, base
//! directory); gives a [`Sweep`]: the layered [`SweepFile`] plus where each value comes from. Its
//! last step runs the checks that need nothing outside the file (pass 3's static part), so a loaded
//! sweep is one whose values are all valid on their own.
//!
//! Layers, lowest first (figment merges them; tables merge key by key, arrays and scalars replace):
//! 1. built-in defaults ([`Defaults`]) for `[train]`, `[eval]`, `[judge]`, `[store]`, `[executor]`;
//! 2. the sweep file;
//! 3. the environment: `EMORG_<A>__<B>__<C>=value` sets `a.b.c` (segments split on a double
//!    underscore and lower-cased: `EMORG_STORE__URL`, `EMORG_TRAIN__LEARNING_RATE`,
//!    `EMORG_EXECUTOR__PARALLEL`). Variables without a double underscore (`EMORG_LOG`,
//!    `EMORG_MODELS`, `EMORG_WORKER`, ...) are not configuration and are ignored here;
//! 4. `--set a.b.c=value` arguments, in order.
//!
//! Then `[eval] preset` (from any layer) fills the `[eval]` fields that only the built-in defaults
//! set (`crate::presets::eval_preset`).
//!
//! Values of layers 3 and 4 are parsed as a TOML value (`4`, `2e-3`, `true`, `["a", "b"]`,
//! `"quoted"`), and taken as a plain string when they do not parse (`file:///tmp/x`).
//!
//! Relative paths in the file (`[datasets.X].path`, `[eval].questions`) are relative to
//! [`LoadOptions::base_dir`], the current directory by default: run `emorg` from the repository root.

use std::ops::Range;
use std::path::{Path, PathBuf};

use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use toml::de::{DeTable, DeValue};

use crate::error::{Diagnostic, Location, SpecError};
use crate::schema::{Defaults, SweepFile};
use crate::suggest::did_you_mean;

/// Where the layers above the file come from.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Environment as (name, value) pairs; only `EMORG_*` names with a `__` are used. Pass
    /// `std::env::vars().collect()` for the process environment (see [`LoadOptions::from_process`]).
    pub env: Vec<(String, String)>,
    /// `--set key.path=value` arguments, applied in order after the environment.
    pub sets: Vec<String>,
    /// Base for relative paths; `None` = the current directory.
    pub base_dir: Option<PathBuf>,
}

impl LoadOptions {
    /// The process environment plus these `--set` arguments; paths relative to the current dir.
    pub fn from_process(sets: Vec<String>) -> Self {
        LoadOptions {
            env: std::env::vars().collect(),
            sets,
            base_dir: None,
        }
    }
}

/// A loaded, layered and statically checked sweep file.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The file as given (used in messages).
    pub path: PathBuf,
    /// Base for relative paths.
    pub base_dir: PathBuf,
    /// The layered result.
    pub file: SweepFile,
    /// `--replicate` salts (0: the original work). Not part of the file: a run's option.
    pub replicate: Replicate,
    loc: Locator,
}

/// Replicate salts of the three identities: `unit` retrains (and so resamples and rejudges),
/// `sample` resamples the same weights, `judge` rejudges the same answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replicate {
    pub unit: u32,
    pub sample: u32,
    pub judge: u32,
}

/// Maps key paths to where their values come from.
#[derive(Debug, Clone)]
struct Locator {
    path: PathBuf,
    text: String,
    figment: Figment,
}

const FILE: &str = "file";
const DEFAULTS: &str = "defaults";
const ENV_PREFIX: &str = "env:";
const SET_PREFIX: &str = "set:";

/// One layer: a dictionary and a name that tells where its values come from.
struct Layer {
    name: String,
    dict: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// Parses a `--set`/environment value: a TOML value when it parses as one, else the raw string.
pub fn parse_value(raw: &str) -> toml::Value {
    if let Ok(mut table) = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        && table.len() == 1
        && let Some(v) = table.remove("v")
    {
        return v;
    }
    toml::Value::String(raw.to_string())
}

/// Splits `key.path=value` into the key and the parsed value.
pub fn parse_set(arg: &str) -> Result<(String, toml::Value), String> {
    let (key, raw) = arg
        .split_once('=')
        .ok_or_else(|| format!("--set {arg}: expected KEY.PATH=VALUE"))?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(format!("--set {arg}: bad key path `{key}`"));
    }
    Ok((key.to_string(), parse_value(raw.trim())))
}

/// The configuration entries of an environment: `(variable, dotted key, value)`.
pub fn env_overrides(env: &[(String, String)]) -> Vec<(String, String, toml::Value)> {
    let mut out: Vec<_> = env
        .iter()
        .filter_map(|(name, value)| {
            let rest = name.strip_prefix("EMORG_")?;
            if !rest.contains("__") {
                return None;
            }
            let key = rest
                .split("__")
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
                .join(".");
            Some((name.clone(), key, parse_value(value)))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn to_dict(key: &str, value: &toml::Value) -> Result<Dict, String> {
    let value = Value::serialize(value).map_err(|e| e.to_string())?;
    match figment::util::nest(key, value) {
        Value::Dict(_, dict) => Ok(dict),
        _ => Err(format!("bad key path `{key}`")),
    }
}

/// 1-based (line, column) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
    (line, col)
}

/// The span of a key path in the parsed file: the key's span when `want_key`, else its value's.
/// Falls back to the deepest prefix that exists.
fn find_span(table: &DeTable<'_>, path: &[String], want_key: bool) -> Option<Range<usize>> {
    let mut current: Option<&DeValue<'_>> = None;
    let mut table = Some(table);
    let mut found: Option<Range<usize>> = None;
    for (i, seg) in path.iter().enumerate() {
        let last = i + 1 == path.len();
        let next = if let Some(t) = table {
            t.iter()
                .find(|(k, _)| k.get_ref().as_ref() == seg.as_str())
                .map(|(k, v)| (k.span(), v))
        } else if let Some(DeValue::Array(array)) = current {
            seg.parse::<usize>()
                .ok()
                .and_then(|idx| array.get(idx))
                .map(|v| (v.span(), v))
        } else {
            None
        };
        let Some((key_span, value)) = next else { break };
        found = Some(if last && !want_key {
            value.span()
        } else {
            key_span
        });
        current = Some(value.get_ref());
        table = match value.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => None,
        };
    }
    found
}

impl Sweep {
    /// Reads and checks a sweep file.
    pub fn load(path: impl AsRef<Path>, opts: &LoadOptions) -> Result<Sweep, SpecError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Diagnostic {
            location: Location::file(path),
            key: None,
            message: format!("cannot read the sweep file: {e}"),
        })?;
        Sweep::from_text(path, text, opts)
    }

    /// Checks a sweep given as text; `path` names it in messages.
    ///
    /// No message quotes a secret: the secrets check reports values that hold one without their
    /// text, and every other message (a type error quoting a `--set` value, ...) goes through
    /// [`crate::secrets::redact`].
    pub fn from_text(
        path: impl Into<PathBuf>,
        text: String,
        opts: &LoadOptions,
    ) -> Result<Sweep, SpecError> {
        Sweep::from_text_unredacted(path.into(), text, opts).map_err(|mut e| {
            for d in &mut e.diagnostics {
                d.message = crate::secrets::redact(&d.message);
                if let Location::Set(arg) = &mut d.location {
                    *arg = crate::secrets::redact(arg);
                }
            }
            e
        })
    }

    fn from_text_unredacted(
        path: PathBuf,
        text: String,
        opts: &LoadOptions,
    ) -> Result<Sweep, SpecError> {
        let base_dir = match &opts.base_dir {
            Some(dir) => dir.clone(),
            None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        };

        // Syntax first, with line and column.
        if let Err(e) = DeTable::parse(&text) {
            let (line, col) = e.span().map(|s| line_col(&text, s.start)).unzip();
            return Err(Diagnostic {
                location: Location::File { path, line, col },
                key: None,
                message: format!("invalid TOML: {}", e.message().trim_end()),
            }
            .into());
        }
        let table: toml::Table = toml::from_str(&text).map_err(|e| Diagnostic {
            location: Location::file(&path),
            key: None,
            message: format!("invalid TOML: {}", e.message().trim_end()),
        })?;

        let file_dict = match Value::serialize(&table) {
            Ok(Value::Dict(_, dict)) => dict,
            _ => {
                return Err(Diagnostic {
                    location: Location::file(&path),
                    key: None,
                    message: "the file is not a TOML table".into(),
                }
                .into());
            }
        };
        let defaults = match Value::serialize(Defaults::default()) {
            Ok(Value::Dict(_, dict)) => dict,
            _ => unreachable!("the defaults are a table"),
        };

        let mut figment = Figment::new()
            .merge(Layer {
                name: DEFAULTS.into(),
                dict: defaults,
            })
            .merge(Layer {
                name: FILE.into(),
                dict: file_dict,
            });
        for (var, key, value) in env_overrides(&opts.env) {
            let dict = to_dict(&key, &value).map_err(|message| Diagnostic {
                location: Location::Env(var.clone()),
                key: Some(key.clone()),
                message,
            })?;
            figment = figment.merge(Layer {
                name: format!("{ENV_PREFIX}{var}"),
                dict,
            });
        }
        for arg in &opts.sets {
            let (key, value) = parse_set(arg).map_err(|message| Diagnostic {
                location: Location::Set(arg.clone()),
                key: None,
                message,
            })?;
            let dict = to_dict(&key, &value).map_err(|message| Diagnostic {
                location: Location::Set(key.clone()),
                key: Some(key.clone()),
                message,
            })?;
            figment = figment.merge(Layer {
                name: format!("{SET_PREFIX}{key}"),
                dict,
            });
        }

        let loc = Locator {
            path: path.clone(),
            text,
            figment,
        };
        let mut file = match loc.figment.extract::<SweepFile>() {
            Ok(file) => file,
            Err(err) => {
                let diagnostics = err.into_iter().map(|e| loc.figment_diagnostic(e)).collect();
                return Err(SpecError { diagnostics });
            }
        };
        if let Some(name) = file.eval.preset.clone() {
            let Some(preset) = crate::presets::eval_preset(&name) else {
                return Err(Diagnostic {
                    location: loc.locate("eval.preset"),
                    key: Some("eval.preset".into()),
                    message: format!(
                        "unknown evaluation preset `{name}` in `eval.preset`, expected one of {}{}",
                        crate::presets::EVAL_PRESET_NAMES.join(", "),
                        did_you_mean(&name, crate::presets::EVAL_PRESET_NAMES.iter())
                    ),
                }
                .into());
            };
            // The preset fills what no layer above the built-in defaults set.
            let unset = |field: &str| {
                loc.figment
                    .find_metadata(&format!("eval.{field}"))
                    .is_none_or(|m| m.name == DEFAULTS)
            };
            preset.fill(&mut file.eval, unset);
        }
        let sweep = Sweep {
            path,
            base_dir,
            file,
            replicate: Replicate::default(),
            loc,
        };
        let problems = crate::resolve::check_static(&sweep);
        if !problems.is_empty() {
            return Err(SpecError {
                diagnostics: problems,
            });
        }
        Ok(sweep)
    }

    /// The file's text.
    pub fn text(&self) -> &str {
        &self.loc.text
    }

    /// A path relative to [`Sweep::base_dir`] (absolute paths stay as they are).
    pub fn resolve_path(&self, p: &str) -> PathBuf {
        self.base_dir.join(p)
    }

    /// Where the value at a dotted key path comes from (the file and line, an environment variable,
    /// a `--set` argument or a default). For a key that is absent, the nearest enclosing table.
    pub fn locate(&self, key: &str) -> Location {
        self.loc.locate(key)
    }

    /// A diagnostic about the value at `key`.
    pub fn diag(&self, key: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            location: self.locate(key),
            key: Some(key.to_string()),
            message: message.into(),
        }
    }
}

impl Locator {
    fn location_of_metadata(
        &self,
        metadata: Option<&Metadata>,
        path: &[String],
        want_key: bool,
    ) -> Location {
        match metadata.map(|m| m.name.as_ref()) {
            Some(DEFAULTS) => Location::Default,
            Some(name) if name.starts_with(ENV_PREFIX) => {
                Location::Env(name[ENV_PREFIX.len()..].to_string())
            }
            Some(name) if name.starts_with(SET_PREFIX) => {
                Location::Set(name[SET_PREFIX.len()..].to_string())
            }
            _ => self.file_location(path, want_key),
        }
    }

    /// The location in the file of a key path (the deepest part of it that is in the file).
    fn file_location(&self, path: &[String], want_key: bool) -> Location {
        let span = DeTable::parse(&self.text)
            .ok()
            .and_then(|t| find_span(t.get_ref(), path, want_key));
        match span {
            Some(span) => {
                let (line, _) = line_col(&self.text, span.start);
                Location::File {
                    path: self.path.clone(),
                    line: Some(line),
                    col: None,
                }
            }
            None => Location::file(&self.path),
        }
    }

    fn locate(&self, key: &str) -> Location {
        let segs: Vec<String> = key.split('.').map(str::to_string).collect();
        for n in (1..=segs.len()).rev() {
            let prefix = segs[..n].join(".");
            if let Some(m) = self.figment.find_metadata(&prefix) {
                // The whole path for the file: figment does not index arrays, the file's parse
                // tree does (`slurm.setup.1` is the line of that entry).
                return self.location_of_metadata(Some(m), &segs, false);
            }
        }
        self.file_location(&segs, false)
    }

    fn figment_diagnostic(&self, e: figment::Error) -> Diagnostic {
        use figment::error::Kind;
        let path = e.path.clone();
        let dotted = |extra: Option<&str>| {
            let mut p = path.clone();
            p.extend(extra.map(str::to_string));
            p.join(".")
        };
        match &e.kind {
            Kind::UnknownField(field, expected) => {
                let mut full = path.clone();
                if path.last().map(String::as_str) != Some(field.as_str()) {
                    full.push(field.clone());
                }
                let key = full.join(".");
                Diagnostic {
                    location: self.location_of_metadata(e.metadata.as_ref(), &full, true),
                    message: format!(
                        "unknown key `{key}`{}",
                        did_you_mean(field, expected.iter())
                    ),
                    key: Some(key),
                }
            }
            Kind::MissingField(field) => {
                let key = dotted(Some(field));
                Diagnostic {
                    location: self.location_of_metadata(e.metadata.as_ref(), &path, true),
                    message: format!("missing key `{key}`"),
                    key: Some(key),
                }
            }
            Kind::UnknownVariant(value, expected) => {
                let key = dotted(None);
                let one_of = expected
                    .iter()
                    .map(|v| format!("`{v}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                Diagnostic {
                    location: self.location_of_metadata(e.metadata.as_ref(), &path, false),
                    message: format!(
                        "bad value for `{key}`: `{value}` is not one of {one_of}{}",
                        did_you_mean(value, expected.iter())
                    ),
                    key: Some(key),
                }
            }
            Kind::InvalidType(actual, expected) => {
                let key = dotted(None);
                Diagnostic {
                    location: self.location_of_metadata(e.metadata.as_ref(), &path, false),
                    message: format!("bad value for `{key}`: found {actual}, expected {expected}"),
                    key: Some(key),
                }
            }
            Kind::InvalidValue(actual, expected) => {
                let key = dotted(None);
                Diagnostic {
                    location: self.location_of_metadata(e.metadata.as_ref(), &path, false),
                    message: format!("bad value for `{key}`: found {actual}, expected {expected}"),
                    key: Some(key),
                }
            }
            other => {
                let key = dotted(None);
                Diagnostic {
                    location: self.location_of_metadata(e.metadata.as_ref(), &path, false),
                    message: format!("bad value for `{key}`: {other}"),
                    key: Some(key),
                }
            }
        }
    }
}
