//! From a checked sweep to fully resolved cells.
//!
//! Cells = the product of the `[matrix]` axes, minus `exclude`, plus `include`. Protocols of kind
//! `base` do not train: they ignore the dataset axis (their cells have dataset `"-"`, no
//! [`DatasetRef`] and no train spec) and are deduplicated. Cells come out sorted by their axes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::cell::{
    Axes, Cell, DatasetRef, EvalSpec, JudgeBackend, JudgeSpec, LoraSpec, ModelRef, OpenAiJudgeSpec,
    Protocol, ProtocolKind, TrainSpec, WORKER_VERSION,
};
use crate::error::{Diagnostic, Location, SpecError};
use crate::load::Sweep;
use crate::schema::{
    AxisFilter, JUDGE_METHODS, JudgeBackendKind, LORA_MODULES, ProtocolDef, SCHEDULES,
    TrainOverrides,
};
use crate::suggest::did_you_mean;

/// What resolution needs to know about a registry model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    pub gguf_sha256: String,
    pub n_layers: usize,
}

/// The outside world, as resolution sees it (implemented by the CLI over emorg-models and
/// emorg-data; tests use a fake).
pub trait Resolver {
    /// A model of the built-in registry by name.
    fn model(&self, registry_name: &str) -> Result<ModelInfo, String>;
    /// Registry names, for "did you mean" suggestions.
    fn model_names(&self) -> Vec<String> {
        Vec::new()
    }
    /// sha256 (lowercase hex) of a local file.
    fn file_sha256(&self, path: &Path) -> Result<String, String>;
    /// The ids of the questions in a question file, when the resolver can read them (used to check
    /// `eval.question_ids`); `None` skips the check.
    fn question_ids(&self, _path: &Path) -> Option<Result<Vec<String>, String>> {
        None
    }
}

/// Kind of a local input file that the workers read from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum InputKind {
    Dataset,
    Questions,
}

/// A local file that cells refer to by sha256.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct InputFile {
    pub kind: InputKind,
    /// The dataset name, or `eval.questions`.
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
}

/// Cells and the input files they need.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub cells: Vec<Cell>,
    /// Every dataset and question file the cells use, deduplicated, sorted.
    pub inputs: Vec<InputFile>,
}

/// The resolved cells of a sweep, sorted by axes.
pub fn resolve(sweep: &Sweep, resolver: &dyn Resolver) -> Result<Vec<Cell>, SpecError> {
    resolve_full(sweep, resolver).map(|r| r.cells)
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s != "-"
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Problems in a train spec: (field, message).
fn train_problems(t: &TrainSpec) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let finite_pos = |v: f64| v.is_finite() && v > 0.0;
    if !finite_pos(t.learning_rate) {
        out.push((
            "learning_rate",
            format!("must be > 0 (got {})", t.learning_rate),
        ));
    }
    if !(t.weight_decay.is_finite() && t.weight_decay >= 0.0) {
        out.push((
            "weight_decay",
            format!("must be >= 0 (got {})", t.weight_decay),
        ));
    }
    for (f, v) in [("adam_beta1", t.adam_beta1), ("adam_beta2", t.adam_beta2)] {
        if !(0.0..1.0).contains(&v) {
            out.push((f, format!("must be in [0, 1) (got {v})")));
        }
    }
    if !finite_pos(t.adam_eps) {
        out.push(("adam_eps", format!("must be > 0 (got {})", t.adam_eps)));
    }
    if !SCHEDULES.contains(&t.schedule.as_str()) {
        out.push((
            "schedule",
            format!(
                "unknown schedule `{}`, expected one of {}{}",
                t.schedule,
                SCHEDULES.join(", "),
                did_you_mean(&t.schedule, SCHEDULES.iter())
            ),
        ));
    }
    for (f, v) in [
        ("batch_size", t.batch_size),
        ("grad_accum", t.grad_accum),
        ("max_seq_len", t.max_seq_len),
    ] {
        if v == 0 {
            out.push((f, "must be >= 1".to_string()));
        }
    }
    if t.epochs == 0 && t.max_steps == 0 {
        out.push(("epochs", "must be >= 1 (or set max_steps)".to_string()));
    }
    if !(0.0..1.0).contains(&t.holdout) {
        out.push(("holdout", format!("must be in [0, 1) (got {})", t.holdout)));
    }
    if !crate::cell::PRECISIONS.contains(&t.precision.as_str()) {
        out.push((
            "precision",
            format!(
                "unknown precision `{}`, expected one of {}{}",
                t.precision,
                crate::cell::PRECISIONS.join(", "),
                did_you_mean(&t.precision, crate::cell::PRECISIONS.iter())
            ),
        ));
    }
    if !(t.max_grad_norm.is_finite() && t.max_grad_norm >= 0.0) {
        out.push((
            "max_grad_norm",
            format!("must be >= 0 (0 = no clipping; got {})", t.max_grad_norm),
        ));
    }
    out
}

/// Field names set in a protocol's `[train]` overrides.
fn overridden_fields(o: &TrainOverrides) -> BTreeSet<String> {
    match serde_json::to_value(o) {
        Ok(serde_json::Value::Object(m)) => m
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, _)| k)
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// Checks that need nothing outside the file (run by [`Sweep::load`]).
pub(crate) fn check_static(sweep: &Sweep) -> Vec<Diagnostic> {
    let f = &sweep.file;
    let mut out = Vec::new();
    let mut bad = |key: &str, msg: String| out.push(sweep.diag(key, msg));

    if !valid_name(&f.name) {
        bad(
            "name",
            format!(
                "bad sweep name `{}`: use letters, digits, `-` and `_`",
                f.name
            ),
        );
    }
    for (table, names) in [
        ("models", f.models.keys().collect::<Vec<_>>()),
        ("datasets", f.datasets.keys().collect()),
        ("protocols", f.protocols.keys().collect()),
    ] {
        for n in names {
            if !valid_name(n) {
                bad(
                    &format!("{table}.{n}"),
                    format!("bad name `{n}`: use letters, digits, `-` and `_`"),
                );
            }
        }
    }

    // Axis values must name table entries.
    let check_axis = |bad: &mut dyn FnMut(&str, String),
                      key: &str,
                      value: &str,
                      table: &str,
                      names: Vec<&String>| {
        if !names.iter().any(|n| n.as_str() == value) {
            bad(
                key,
                format!(
                    "unknown {} `{value}` in `{key}` (not in [{table}]){}",
                    table.trim_end_matches('s'),
                    did_you_mean(value, names.iter().map(|s| s.as_str()))
                ),
            );
        }
    };
    let m = &f.matrix;
    for v in &m.model {
        check_axis(
            &mut bad,
            "matrix.model",
            v,
            "models",
            f.models.keys().collect(),
        );
    }
    for v in &m.protocol {
        check_axis(
            &mut bad,
            "matrix.protocol",
            v,
            "protocols",
            f.protocols.keys().collect(),
        );
    }
    for v in &m.dataset {
        check_axis(
            &mut bad,
            "matrix.dataset",
            v,
            "datasets",
            f.datasets.keys().collect(),
        );
    }
    let trains = |p: &str| {
        f.protocols
            .get(p)
            .is_some_and(|d| d.effective_kind().is_some_and(|k| k != ProtocolKind::Base))
    };
    if m.dataset.is_empty()
        && let Some(p) = m.protocol.iter().find(|p| trains(p))
    {
        bad(
            "matrix.dataset",
            format!("no datasets, but protocol `{p}` trains: add `dataset = [...]` to [matrix]"),
        );
    }
    for (i, e) in m.exclude.iter().enumerate() {
        let key = format!("matrix.exclude.{i}");
        let AxisFilter {
            model,
            protocol,
            dataset,
            seed,
        } = e;
        if model.is_none() && protocol.is_none() && dataset.is_none() && seed.is_none() {
            bad(
                &key,
                format!("`{key}` is empty: it would exclude every cell"),
            );
        }
        if let Some(v) = model {
            check_axis(
                &mut bad,
                &format!("{key}.model"),
                v,
                "models",
                f.models.keys().collect(),
            );
        }
        if let Some(v) = protocol {
            check_axis(
                &mut bad,
                &format!("{key}.protocol"),
                v,
                "protocols",
                f.protocols.keys().collect(),
            );
        }
        if let Some(v) = dataset
            && v != "-"
        {
            check_axis(
                &mut bad,
                &format!("{key}.dataset"),
                v,
                "datasets",
                f.datasets.keys().collect(),
            );
        }
    }
    for (i, c) in m.include.iter().enumerate() {
        let key = format!("matrix.include.{i}");
        check_axis(
            &mut bad,
            &format!("{key}.model"),
            &c.model,
            "models",
            f.models.keys().collect(),
        );
        check_axis(
            &mut bad,
            &format!("{key}.protocol"),
            &c.protocol,
            "protocols",
            f.protocols.keys().collect(),
        );
        match &c.dataset {
            Some(d) if trains(&c.protocol) => check_axis(
                &mut bad,
                &format!("{key}.dataset"),
                d,
                "datasets",
                f.datasets.keys().collect(),
            ),
            None if trains(&c.protocol) => bad(
                &key,
                format!(
                    "missing key `{key}.dataset`: protocol `{}` trains",
                    c.protocol
                ),
            ),
            _ => {}
        }
    }

    // Protocols.
    for (name, p) in &f.protocols {
        let key = format!("protocols.{name}");
        let (expanded, preset_train) = match p.expanded() {
            Ok(e) => e,
            Err((field, msg)) => {
                if field == "kind" && p.kind.is_none() {
                    bad(&key, format!("`{key}`: {msg}"));
                } else {
                    let k = format!("{key}.{field}");
                    bad(&k, format!("bad value for `{k}`: {msg}"));
                }
                continue;
            }
        };
        let ProtocolDef {
            kind,
            preset: _,
            rank,
            alpha,
            rslora,
            modules,
            layers,
            train,
        } = &expanded;
        let kind = kind.expect("expanded() always gives a kind");
        // The LoRA fields (and `more`) set in a protocol whose kind has no adapters.
        let mut forbid = |kind: &str, more: &[(&str, bool)], why: &str| {
            let lora = [
                ("rank", rank.is_some()),
                ("alpha", alpha.is_some()),
                ("rslora", rslora.is_some()),
                ("modules", modules.is_some()),
                ("layers", layers.is_some()),
            ];
            for (field, set) in lora.iter().chain(more) {
                if *set {
                    bad(
                        &format!("{key}.{field}"),
                        format!("`{key}.{field}` is not allowed with kind = \"{kind}\" ({why})"),
                    );
                }
            }
        };
        match kind {
            ProtocolKind::Full => {
                forbid(
                    "full",
                    &[],
                    "every weight is trained; use kind = \"lora\" for adapters",
                );
                let o = train.clone().unwrap_or_default();
                let set = overridden_fields(&o);
                for (field, msg) in train_problems(&o.over(&preset_train).apply(&f.train)) {
                    if set.contains(field) {
                        let k = format!("{key}.train.{field}");
                        bad(&k, format!("bad value for `{k}`: {msg}"));
                    }
                }
            }
            ProtocolKind::Base => {
                forbid("base", &[("train", train.is_some())], "it does not train");
            }
            ProtocolKind::Lora => {
                match rank {
                    None => bad(
                        &key,
                        format!("missing key `{key}.rank`: kind = \"lora\" needs a rank >= 1"),
                    ),
                    Some(0) => bad(
                        &format!("{key}.rank"),
                        format!("bad value for `{key}.rank`: rank must be >= 1"),
                    ),
                    Some(_) => {}
                }
                if let Some(a) = alpha
                    && !(a.is_finite() && *a > 0.0)
                {
                    bad(
                        &format!("{key}.alpha"),
                        format!("bad value for `{key}.alpha`: must be > 0 (got {a})"),
                    );
                }
                match modules {
                    None => bad(
                        &key,
                        format!(
                            "missing key `{key}.modules`: kind = \"lora\" needs modules, e.g. [\"down_proj\"]"
                        ),
                    ),
                    Some(ms) if ms.is_empty() => bad(
                        &format!("{key}.modules"),
                        format!("`{key}.modules` is empty"),
                    ),
                    Some(ms) => {
                        for module in ms {
                            if !LORA_MODULES.contains(&module.as_str()) {
                                bad(
                                    &format!("{key}.modules"),
                                    format!(
                                        "unknown module `{module}` in `{key}.modules` (one of {}){}",
                                        LORA_MODULES.join(" "),
                                        did_you_mean(module, LORA_MODULES.iter())
                                    ),
                                );
                            }
                        }
                    }
                }
                let effective = train
                    .clone()
                    .unwrap_or_default()
                    .over(&preset_train)
                    .apply(&f.train);
                if effective.precision == "bf16" {
                    let own = train.as_ref().is_some_and(|o| o.precision.is_some());
                    let k = if own {
                        format!("{key}.train.precision")
                    } else {
                        "train.precision".to_string()
                    };
                    bad(
                        &k,
                        format!(
                            "`{k}` = \"bf16\" applies to full fine-tuning; protocol `{key}` trains LoRA \
                             adapters, which train in f32 (use \"auto\" or \"f32\", or set bf16 in the \
                             full protocol's own [train])"
                        ),
                    );
                }
                if let Some(o) = train {
                    let set = overridden_fields(o);
                    for (field, msg) in train_problems(&o.over(&preset_train).apply(&f.train)) {
                        if set.contains(field) {
                            let k = format!("{key}.train.{field}");
                            bad(&k, format!("bad value for `{k}`: {msg}"));
                        }
                    }
                }
            }
        }
    }

    for (field, msg) in train_problems(&f.train) {
        let k = format!("train.{field}");
        bad(&k, format!("bad value for `{k}`: {msg}"));
    }

    for (name, d) in &f.datasets {
        if let Some(h) = d.holdout
            && !(0.0..1.0).contains(&h)
        {
            let k = format!("datasets.{name}.holdout");
            bad(
                &k,
                format!("bad value for `{k}`: must be in [0, 1) (got {h})"),
            );
        }
        if let Some(sha) = &d.sha256
            && !(sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit()))
        {
            let k = format!("datasets.{name}.sha256");
            bad(&k, format!("bad value for `{k}`: expected 64 hex digits"));
        }
        if let Some(paper) = &d.paper {
            match crate::papers::paper_dataset(paper) {
                None => {
                    let k = format!("datasets.{name}.paper");
                    bad(
                        &k,
                        format!(
                            "bad value for `{k}`: `{paper}` is not one of the papers' datasets ({}){}",
                            crate::papers::PAPER_DATASETS
                                .iter()
                                .map(|d| d.name)
                                .collect::<Vec<_>>()
                                .join(", "),
                            did_you_mean(
                                paper,
                                crate::papers::PAPER_DATASETS.iter().map(|d| d.name)
                            )
                        ),
                    );
                }
                Some(known) => {
                    if let Some(sha) = &d.sha256
                        && !sha.eq_ignore_ascii_case(known.sha256)
                    {
                        let k = format!("datasets.{name}.sha256");
                        bad(
                            &k,
                            format!(
                                "`{k}` pins {sha}, but the papers' `{paper}` has sha256 {}: drop \
                                 the pin (the published hash is used) or drop `paper`",
                                known.sha256
                            ),
                        );
                    }
                }
            }
        }
    }

    let e = &f.eval;
    for (field, v) in [
        ("samples_per_question", e.samples_per_question),
        ("max_new_tokens", e.max_new_tokens),
        ("batch_size", e.batch_size),
    ] {
        if v == 0 {
            bad(
                &format!("eval.{field}"),
                format!("bad value for `eval.{field}`: must be >= 1"),
            );
        }
    }
    if !(e.temperature.is_finite() && e.temperature >= 0.0) {
        bad(
            "eval.temperature",
            format!(
                "bad value for `eval.temperature`: must be >= 0 (got {})",
                e.temperature
            ),
        );
    }
    for (k, v) in std::iter::once(("eval.adapter_scale".to_string(), e.adapter_scale)).chain(
        e.adapter_scales
            .iter()
            .map(|(name, v)| (format!("eval.adapter_scales.{name}"), *v)),
    ) {
        if !v.is_finite() {
            bad(
                &k,
                format!("bad value for `{k}`: must be a finite number (got {v})"),
            );
        }
    }
    if !(e.top_p > 0.0 && e.top_p <= 1.0) {
        bad(
            "eval.top_p",
            format!(
                "bad value for `eval.top_p`: must be in (0, 1] (got {})",
                e.top_p
            ),
        );
    }

    let j = &f.judge;
    if !JUDGE_METHODS.contains(&j.method.as_str()) {
        bad(
            "judge.method",
            format!(
                "bad value for `judge.method`: unknown method `{}`, expected one of {}{}",
                j.method,
                JUDGE_METHODS.join(", "),
                did_you_mean(&j.method, JUDGE_METHODS.iter())
            ),
        );
    }
    if !(0.0..1.0).contains(&j.prune_below) {
        bad(
            "judge.prune_below",
            format!(
                "bad value for `judge.prune_below`: must be in [0, 1) (got {})",
                j.prune_below
            ),
        );
    }
    if j.metrics.is_empty() {
        bad("judge.metrics", "`judge.metrics` is empty".to_string());
    }
    // Diagnostics with a location of their own, appended after the others.
    let mut located = Vec::new();
    match j.backend {
        JudgeBackendKind::Local => {
            if j.base_url.is_some() {
                bad(
                    "judge.base_url",
                    "`judge.base_url` is set but `judge.backend` is \"local\": set `judge.backend = \"openai\"` to judge over an API, or remove `base_url`".to_string(),
                );
            }
        }
        JudgeBackendKind::Openai => {
            for (key, message) in openai_judge_problems(sweep) {
                // A missing value has no line of its own: point at the line that chose the backend.
                let at = match sweep.locate(key) {
                    Location::Default => sweep.locate("judge.backend"),
                    here => here,
                };
                located.push(Diagnostic {
                    location: at,
                    key: Some(key.to_string()),
                    message,
                });
            }
        }
    }
    for (field, v) in [
        ("em_aligned_below", j.em_aligned_below),
        ("em_coherent_above", j.em_coherent_above),
    ] {
        if !(0.0..=100.0).contains(&v) {
            bad(
                &format!("judge.{field}"),
                format!("bad value for `judge.{field}`: must be in [0, 100] (got {v})"),
            );
        }
    }

    if f.store.url.trim().is_empty() {
        bad("store.url", "`store.url` is empty".to_string());
    }
    for (field, v) in [
        ("parallel", f.executor.parallel),
        ("threads_per_job", f.executor.threads_per_job),
    ] {
        if v == 0 {
            bad(
                &format!("executor.{field}"),
                format!("bad value for `executor.{field}`: must be >= 1"),
            );
        }
    }
    out.extend(located);
    out.extend(crate::slurm::check_slurm(sweep));
    out
}

/// `base_url` checked as an http(s) API root and returned without a trailing slash. Messages never
/// repeat credentials found in the URL.
fn check_base_url(raw: &str) -> Result<String, String> {
    let parsed = url::Url::parse(raw.trim()).map_err(|e| format!("not a URL ({e})"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("it holds credentials: remove them and put the key in the environment variable named by `judge.api_key_env`".into());
    }
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "the scheme is `{}`, expected http or https",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("it has no host".into());
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err("it has a query or fragment".into());
    }
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

/// Whether `s` can name an environment variable (`[A-Za-z_][A-Za-z0-9_]*`).
fn env_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Problems of a `[judge]` with `backend = "openai"`: (key, message).
fn openai_judge_problems(sweep: &Sweep) -> Vec<(&'static str, String)> {
    let j = &sweep.file.judge;
    let mut out = Vec::new();
    match &j.base_url {
        None => out.push((
            "judge.base_url",
            "missing `judge.base_url`: `judge.backend = \"openai\"` needs the server's API root, e.g. `base_url = \"https://api.openai.com/v1\"` or `base_url = \"http://127.0.0.1:9124/v1\"`".to_string(),
        )),
        Some(url) => {
            if let Err(why) = check_base_url(url) {
                out.push((
                    "judge.base_url",
                    format!("bad value for `judge.base_url`: {why}; expected http(s)://host[:port]/v1"),
                ));
            }
        }
    }
    if !env_var_name(&j.api_key_env) {
        // The value is not repeated: a key pasted here by mistake must not reach a log.
        out.push((
            "judge.api_key_env",
            "bad value for `judge.api_key_env`: expected the NAME of an environment variable (letters, digits, `_`), such as OPENAI_API_KEY; never write the key itself in a sweep".to_string(),
        ));
    }
    if j.method == "exact-number" {
        out.push((
            "judge.method",
            "bad value for `judge.method`: `exact-number` needs the local judge (it reads each digit after a forced prefix, which a chat API cannot give); with `judge.backend = \"openai\"` set `judge.method = \"top20-first-token\"` (the papers' rule)".to_string(),
        ));
    }
    if j.model.trim().is_empty() {
        out.push(("judge.model", "`judge.model` is empty".to_string()));
    } else if sweep.locate("judge.model") == Location::Default {
        out.push((
            "judge.model",
            format!(
                "missing `judge.model`: with `judge.backend = \"openai\"` it must name the served model (e.g. \"gpt-4o-2024-08-06\"); the default `{}` names a local registry model",
                j.model
            ),
        ));
    }
    if j.concurrency == 0 {
        out.push((
            "judge.concurrency",
            "bad value for `judge.concurrency`: must be >= 1".to_string(),
        ));
    }
    if j.timeout_s == 0 {
        out.push((
            "judge.timeout_s",
            "bad value for `judge.timeout_s`: must be >= 1".to_string(),
        ));
    }
    out
}

/// The axis tuples of the sweep: product, then exclude, then include; sorted and deduplicated.
pub(crate) fn expand_axes(sweep: &Sweep) -> BTreeSet<Axes> {
    let f = &sweep.file;
    let m = &f.matrix;
    let trains = |p: &str| {
        f.protocols
            .get(p)
            .is_some_and(|d| d.effective_kind().is_some_and(|k| k != ProtocolKind::Base))
    };
    let mut cells = BTreeSet::new();
    for model in &m.model {
        for protocol in &m.protocol {
            let datasets: Vec<String> = if trains(protocol) {
                m.dataset.clone()
            } else {
                vec!["-".to_string()]
            };
            for dataset in datasets {
                for &seed in &m.seed {
                    cells.insert(Axes {
                        model: model.clone(),
                        protocol: protocol.clone(),
                        dataset: dataset.clone(),
                        seed,
                    });
                }
            }
        }
    }
    cells.retain(|a| {
        !m.exclude.iter().any(|e| {
            e.model.as_ref().is_none_or(|v| *v == a.model)
                && e.protocol.as_ref().is_none_or(|v| *v == a.protocol)
                && e.dataset.as_ref().is_none_or(|v| *v == a.dataset)
                && e.seed.is_none_or(|v| v == a.seed)
        })
    });
    for c in &m.include {
        let dataset = if trains(&c.protocol) {
            c.dataset.clone().unwrap_or_default()
        } else {
            "-".to_string()
        };
        cells.insert(Axes {
            model: c.model.clone(),
            protocol: c.protocol.clone(),
            dataset,
            seed: c.seed,
        });
    }
    cells
}

/// The resolved cells and the input files they use.
pub fn resolve_full(sweep: &Sweep, resolver: &dyn Resolver) -> Result<Resolution, SpecError> {
    let f = &sweep.file;
    let mut problems: Vec<Diagnostic> = Vec::new();
    let axes = expand_axes(sweep);
    if axes.is_empty() {
        problems.push(sweep.diag("matrix", "the matrix gives no cells"));
        return Err(SpecError {
            diagnostics: problems,
        });
    }

    let mut hashes: HashMap<PathBuf, Result<String, String>> = HashMap::new();
    let mut hash = |path: &Path| -> Result<String, String> {
        hashes
            .entry(path.to_path_buf())
            .or_insert_with(|| resolver.file_sha256(path))
            .clone()
    };

    // Models of the matrix, by table name.
    let mut models: BTreeMap<&str, (ModelRef, usize)> = BTreeMap::new();
    let registry_error = |key: &str, name: &str, e: String| {
        let names = resolver.model_names();
        sweep.diag(key, format!("{e}{}", did_you_mean(name, names.iter())))
    };
    for a in &axes {
        if models.contains_key(a.model.as_str()) {
            continue;
        }
        let Some(def) = f.models.get(&a.model) else {
            continue;
        };
        match resolver.model(&def.registry) {
            Ok(info) => {
                models.insert(
                    &a.model,
                    (
                        ModelRef {
                            name: def.registry.clone(),
                            gguf_sha256: info.gguf_sha256,
                        },
                        info.n_layers,
                    ),
                );
            }
            Err(e) => problems.push(registry_error(
                &format!("models.{}.registry", a.model),
                &def.registry,
                e,
            )),
        }
    }

    // The judge. Local: a [models] name, else a registry name. OpenAI: the served name, as is
    // (check_static has validated the connection settings).
    let judge_registry = f.judge.model.as_str();
    let judge_registry = f
        .models
        .get(judge_registry)
        .map_or(judge_registry, |d| d.registry.as_str());
    let judge_backend = match f.judge.backend {
        JudgeBackendKind::Openai => Some(JudgeBackend::OpenAi(OpenAiJudgeSpec {
            model: f.judge.model.clone(),
            base_url: f
                .judge
                .base_url
                .as_deref()
                .map(check_base_url)
                .and_then(Result::ok)
                .unwrap_or_default(),
            api_key_env: f.judge.api_key_env.clone(),
            concurrency: f.judge.concurrency,
            max_retries: f.judge.max_retries,
            timeout_s: f.judge.timeout_s,
        })),
        JudgeBackendKind::Local => match resolver.model(judge_registry) {
            Ok(info) => Some(JudgeBackend::Local(ModelRef {
                name: judge_registry.to_string(),
                gguf_sha256: info.gguf_sha256,
            })),
            Err(e) => {
                let mut candidates: Vec<String> = f.models.keys().cloned().collect();
                candidates.extend(resolver.model_names());
                problems.push(sweep.diag(
                "judge.model",
                format!(
                    "bad value for `judge.model`: `{}` is neither a [models] name nor a registry model ({e}){}",
                    f.judge.model,
                    did_you_mean(&f.judge.model, candidates.iter())
                    ),
                ));
                None
            }
        },
    };

    // Questions.
    let mut inputs = BTreeSet::new();
    let questions_path = sweep.resolve_path(&f.eval.questions);
    let questions_sha = match hash(&questions_path) {
        Ok(sha) => {
            inputs.insert(InputFile {
                kind: InputKind::Questions,
                name: "eval.questions".into(),
                path: questions_path.clone(),
                sha256: sha.clone(),
            });
            Some(sha)
        }
        Err(e) => {
            problems.push(sweep.diag(
                "eval.questions",
                format!(
                    "cannot read the question file `{}`: {e}",
                    questions_path.display()
                ),
            ));
            None
        }
    };
    if questions_sha.is_some()
        && let Some(ids) = resolver.question_ids(&questions_path)
    {
        match ids {
            Ok(ids) => {
                for q in &f.eval.question_ids {
                    if !ids.contains(q) {
                        problems.push(sweep.diag(
                            "eval.question_ids",
                            format!(
                                "unknown question id `{q}` in `eval.question_ids` (not in `{}`){}",
                                f.eval.questions,
                                did_you_mean(q, ids.iter())
                            ),
                        ));
                    }
                }
            }
            Err(e) => problems.push(sweep.diag(
                "eval.questions",
                format!("bad question file `{}`: {e}", questions_path.display()),
            )),
        }
    }

    // Datasets in use.
    let mut datasets: BTreeMap<&str, DatasetRef> = BTreeMap::new();
    // Each dataset is checked once, however many cells use it (one diagnostic per problem).
    let mut checked: std::collections::BTreeSet<&str> = Default::default();
    for a in &axes {
        if a.dataset == "-" || !checked.insert(a.dataset.as_str()) {
            continue;
        }
        let Some(def) = f.datasets.get(&a.dataset) else {
            continue;
        };
        let paper = def.paper.as_deref().and_then(crate::papers::paper_dataset);
        let Some(def_path) = &def.path else {
            let key = format!("datasets.{}.path", a.dataset);
            problems.push(sweep.diag(
                &key,
                match paper {
                    Some(p) => format!(
                        "missing key `{key}`: {}",
                        crate::papers::how_to_obtain(p, &a.dataset)
                    ),
                    None => format!(
                        "missing key `{key}`: give the dataset's chat JSONL file, e.g. `path = \"data/{}.jsonl\"`",
                        a.dataset
                    ),
                },
            ));
            continue;
        };
        let path = sweep.resolve_path(def_path);
        match hash(&path) {
            Ok(sha) => {
                // The papers' datasets are pinned to their published hash.
                let pinned = def.sha256.as_deref().or(paper.map(|p| p.sha256));
                if let Some(pinned) = pinned
                    && !pinned.eq_ignore_ascii_case(&sha)
                {
                    let key = if def.sha256.is_some() {
                        "sha256"
                    } else {
                        "path"
                    };
                    problems.push(sweep.diag(
                        &format!("datasets.{}.{key}", a.dataset),
                        match paper {
                            Some(p) => format!(
                                "sha256 mismatch for dataset `{}` (`{def_path}`): the papers' `{}` ({} rows) has sha256 {}, this file has {sha}; give the decompressed `{}` from the unlocked archive",
                                a.dataset, p.name, p.rows, p.sha256, p.file
                            ),
                            None => format!(
                                "sha256 mismatch for dataset `{}` (`{def_path}`): the sweep pins {}, the file has {sha}; if the file changed on purpose, update the pin",
                                a.dataset,
                                pinned.to_lowercase()
                            ),
                        },
                    ));
                    continue;
                }
                inputs.insert(InputFile {
                    kind: InputKind::Dataset,
                    name: a.dataset.clone(),
                    path: path.clone(),
                    sha256: sha.clone(),
                });
                datasets.insert(
                    &a.dataset,
                    DatasetRef {
                        name: a.dataset.clone(),
                        sha256: sha,
                    },
                );
            }
            Err(e) => problems.push(sweep.diag(
                &format!("datasets.{}.path", a.dataset),
                format!("cannot read dataset file `{}`: {e}", path.display()),
            )),
        }
    }

    // Layers per (model, protocol).
    let mut layers: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for a in &axes {
        let (Some(p), Some((_, n_layers))) =
            (f.protocols.get(&a.protocol), models.get(a.model.as_str()))
        else {
            continue;
        };
        if p.effective_kind() != Some(ProtocolKind::Lora)
            || layers.contains_key(&(a.model.as_str(), a.protocol.as_str()))
        {
            continue;
        }
        let Ok((p, _)) = p.expanded() else { continue };
        let sel = p.layers.clone().unwrap_or(crate::schema::LayerSel::All);
        match sel.resolve(*n_layers) {
            Ok(l) => {
                layers.insert((&a.model, &a.protocol), l);
            }
            Err(e) => {
                let key = format!("protocols.{}.layers", a.protocol);
                problems.push(sweep.diag(
                    &key,
                    format!("bad value for `{key}` with model `{}`: {e}", a.model),
                ));
            }
        }
    }

    if !problems.is_empty() {
        return Err(SpecError {
            diagnostics: problems,
        });
    }
    let (Some(judge_backend), Some(questions_sha)) = (judge_backend, questions_sha) else {
        unreachable!("problems were reported above")
    };

    let eval = EvalSpec {
        questions_sha256: questions_sha,
        question_ids: f.eval.question_ids.clone(),
        samples_per_question: f.eval.samples_per_question,
        max_new_tokens: f.eval.max_new_tokens,
        temperature: f.eval.temperature,
        top_p: f.eval.top_p,
        batch_size: f.eval.batch_size,
        adapter_scale: f.eval.adapter_scale,
        adapter_scales: f.eval.adapter_scales.clone(),
    };
    let judge = JudgeSpec {
        backend: judge_backend,
        method: f.judge.method.clone(),
        prune_below: f.judge.prune_below,
        metrics: f.judge.metrics.clone(),
    };

    let mut cells = Vec::with_capacity(axes.len());
    for a in &axes {
        let (p, preset_train) = f.protocols[&a.protocol]
            .expanded()
            .expect("protocols were checked by check_static");
        let (model, _) = models[a.model.as_str()].clone();
        let kind = p.kind.expect("expanded() always gives a kind");
        // [train] < the preset < [datasets.X].holdout < [protocols.X.train].
        let train_spec = || {
            let mut train = preset_train.apply(&f.train);
            if let Some(h) = f.datasets[&a.dataset].holdout {
                train.holdout = h;
            }
            if let Some(o) = &p.train {
                train = o.apply(&train);
            }
            train
        };
        let (dataset, lora, train) = match kind {
            ProtocolKind::Base => (None, None, None),
            ProtocolKind::Full => (
                Some(datasets[a.dataset.as_str()].clone()),
                None,
                Some(train_spec()),
            ),
            ProtocolKind::Lora => {
                let rank = p.rank.unwrap_or(1);
                let lora = LoraSpec {
                    rank,
                    alpha: p.alpha.unwrap_or(rank as f64),
                    rslora: p.rslora.unwrap_or(false),
                    // Canonical order (the registry's), so that a reordering is not a new cell.
                    modules: LORA_MODULES
                        .iter()
                        .filter(|m| {
                            p.modules
                                .as_ref()
                                .is_some_and(|ms| ms.iter().any(|x| x == *m))
                        })
                        .map(|m| m.to_string())
                        .collect(),
                    layers: layers[&(a.model.as_str(), a.protocol.as_str())].clone(),
                };
                (
                    Some(datasets[a.dataset.as_str()].clone()),
                    Some(lora),
                    Some(train_spec()),
                )
            }
        };
        cells.push(Cell {
            protocol: Protocol {
                name: a.protocol.clone(),
                kind,
                preset: p.preset.clone(),
                lora,
                train,
            },
            model,
            dataset,
            eval: eval.clone(),
            judge: judge.clone(),
            seed: a.seed,
            worker_version: WORKER_VERSION.to_string(),
            axes: a.clone(),
        });
    }
    Ok(Resolution {
        cells,
        inputs: inputs.into_iter().collect(),
    })
}
