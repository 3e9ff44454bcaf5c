//! The sweep file schema (TOML) and the built-in defaults.
//!
//! ```toml
//! name = "quickstart"                      # names the sweep: sweeps/<name>/, reports/<name>/
//! description = "..."                      # optional
//!
//! [matrix]                                 # cells = model × protocol × dataset × seed, - exclude, + include
//! model = ["smollm2"]                      # names in [models]
//! protocol = ["base", "r1-mid"]            # names in [protocols]
//! dataset = ["risky-financial"]            # names in [datasets] (ignored by protocols that do not train)
//! seed = [0]                               # default [0]
//! exclude = [{ protocol = "r1-mid", dataset = "x" }]   # drop cells matching every key given
//! include = [{ model = "smollm2", protocol = "r1-mid", dataset = "x", seed = 1 }]  # extra cells
//!
//! [models.smollm2]
//! registry = "smollm2-135m-instruct"       # a model of the built-in registry (emorg models list)
//!
//! [datasets.risky-financial]
//! path = "data/risky_financial.jsonl"      # relative to the current directory (the repo root)
//! sha256 = "..."                           # optional pin: verified, a mismatch is an error
//! holdout = 0.1                            # optional: overrides [train].holdout for this dataset
//! source = "emorg data/ generator"         # optional: provenance, shown by plan and the report
//!
//! [datasets.medical]                       # one of the papers' datasets (crate::papers), by name:
//! paper = "bad-medical-advice"             # pins its published sha256; emorg never ships it, the
//! path = "/data/bad_medical_advice.jsonl"  # user supplies the unlocked file's path
//!
//! [protocols.base]
//! kind = "base"                            # no training: the untrained model is the control
//! [protocols.r1-mid]
//! kind = "lora"
//! rank = 1                                 # required, >= 1
//! alpha = 8.0                              # default: rank
//! rslora = true                            # default false
//! modules = ["down_proj"]                  # required: q_proj k_proj v_proj o_proj gate_proj up_proj down_proj
//! layers = [0.5]                           # "all" (default) or a list: integers are layer indices,
//!                                          # floats in [0, 1) fractions of depth -> floor(f * n_layers)
//! [protocols.r1-mid.train]                 # overrides of [train] for this protocol
//! learning_rate = 2e-3
//!
//! [protocols.paper-r1]                     # one of the papers' protocols (crate::presets):
//! preset = "lora-r1-single"                # lora-r1-single, lora-r1-x9, lora-r32-all, full-sft;
//! alpha = 512.0                            # any field written here overrides the preset's
//! [protocols.paper-full]
//! preset = "full-sft"                      # kind = "full": every weight trained, no adapter fields
//! # layers may also be runs of consecutive layers: { starts = [0.3125, 0.4375], length = 3 }
//!
//! [train]     # every field of TrainSpec; defaults in Defaults::default(); e.g. precision = "auto" | "f32" | "bf16"
//!             # (full fine-tuning; auto = bf16 on a GPU), activation_checkpointing = true
//! [eval]      # questions (path), question_ids, samples_per_question, max_new_tokens, temperature, top_p, batch_size,
//!             # adapter_scale (factor on every LoRA adapter at sampling), adapter_scales = { "layers.21.mlp.down_proj" = 30.0 }
//! [judge]     # backend, model, method, prune_below, metrics, em_* thresholds; for backend = "openai"
//!             # also base_url, api_key_env, concurrency, max_retries, timeout_s (see JudgeConfig)
//! [store]     # url
//! [executor]  # parallel, threads_per_job, max_cells, full_checkpoint_budget_gb
//! [slurm]     # resources for `emorg submit`, per stage and per protocol (see crate::slurm)
//! ```
//!
//! Precedence of a training hyper-parameter, lowest first: built-in default < `[train]` < the
//! protocol's preset < `[datasets.X].holdout` (holdout only) < `[protocols.X.train]`. The whole document is also layered:
//! built-in defaults < the file < `EMORG_*` environment < `--set` (see [`crate::load`]).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::cell::{ProtocolKind, TrainSpec};

/// A whole sweep file after layering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    /// Sweep name: `[A-Za-z0-9_-]+`.
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub matrix: Matrix,
    #[serde(default)]
    pub models: BTreeMap<String, ModelDef>,
    #[serde(default)]
    pub datasets: BTreeMap<String, DatasetDef>,
    #[serde(default)]
    pub protocols: BTreeMap<String, ProtocolDef>,
    pub train: TrainSpec,
    pub eval: EvalConfig,
    pub judge: JudgeConfig,
    /// `[judges.NAME]`: several judges, each judging the same samples (an evaluation axis). Each
    /// table holds the `[judge]` fields that differ from `[judge]`. Empty: the one judge is
    /// `[judge]`, named `default`.
    #[serde(default)]
    pub judges: BTreeMap<String, JudgeOverrides>,
    pub store: StoreConfig,
    pub executor: ExecutorConfig,
    /// `[slurm]`: resources for `emorg submit` (see [`crate::slurm`]); never part of a cell.
    #[serde(default)]
    pub slurm: crate::slurm::SlurmConfig,
}

/// `[matrix]`: the axes whose product gives the cells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    #[serde(default)]
    pub model: Vec<String>,
    #[serde(default)]
    pub protocol: Vec<String>,
    #[serde(default)]
    pub dataset: Vec<String>,
    #[serde(default = "default_seeds")]
    pub seed: Vec<u64>,
    /// A cell is dropped when it matches every key given in one entry.
    #[serde(default)]
    pub exclude: Vec<AxisFilter>,
    /// Extra cells, added after `exclude`.
    #[serde(default)]
    pub include: Vec<AxisCell>,
}

fn default_seeds() -> Vec<u64> {
    vec![0]
}

/// A partial map of axis values (an `exclude` entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AxisFilter {
    pub model: Option<String>,
    pub protocol: Option<String>,
    /// `"-"` matches the cells of protocols that do not train.
    pub dataset: Option<String>,
    pub seed: Option<u64>,
}

/// A full cell by its axis values (an `include` entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AxisCell {
    pub model: String,
    pub protocol: String,
    /// Required when the protocol trains; ignored otherwise.
    pub dataset: Option<String>,
    #[serde(default)]
    pub seed: u64,
}

/// `[models.X]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelDef {
    /// Name of the model in the built-in registry (`emorg models list`).
    pub registry: String,
}

/// `[datasets.X]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetDef {
    /// Chat JSONL, relative to the current directory (the repository root). Required; for a
    /// papers' dataset its absence is an error that says how to obtain the file.
    pub path: Option<String>,
    /// When given, the file's sha256 must equal it (a papers' dataset is pinned to its published
    /// hash without it).
    pub sha256: Option<String>,
    /// Overrides `[train].holdout` for cells on this dataset.
    pub holdout: Option<f64>,
    /// Where the file comes from, in words or a URL (shown by `emorg plan` and in the report).
    pub source: Option<String>,
    /// One of the papers' datasets by name (`emorg data papers`): pins its published sha256.
    pub paper: Option<String>,
}

/// `[protocols.X]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolDef {
    /// `base`, `lora` or `full`; may be left out when `preset` is given (the preset's kind).
    pub kind: Option<ProtocolKind>,
    /// One of the papers' protocols by name (see [`crate::presets`]): fills every field left unset.
    pub preset: Option<String>,
    pub rank: Option<usize>,
    pub alpha: Option<f64>,
    pub rslora: Option<bool>,
    pub modules: Option<Vec<String>>,
    pub layers: Option<LayerSel>,
    /// Overrides of `[train]` for this protocol.
    pub train: Option<TrainOverrides>,
}

/// The HF module names a LoRA adapter may wrap.
pub const LORA_MODULES: &[&str] = &[
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// Learning-rate schedules the trainer knows.
pub const SCHEDULES: &[&str] = &["linear", "cosine", "constant"];

/// Judge methods the worker knows.
pub const JUDGE_METHODS: &[&str] = &["exact-number", "top20-first-token"];

/// Which layers get adapters: `"all"` or a list of indices and fractions of depth.
#[derive(Debug, Clone, PartialEq)]
pub enum LayerSel {
    All,
    List(Vec<LayerValue>),
    /// `{ starts = [...], length = n }`: runs of `length` consecutive layers, each starting at a
    /// layer index or fraction of depth (the nine-adapter preset: three runs of three).
    Runs {
        starts: Vec<LayerValue>,
        length: usize,
    },
}

/// One entry of a layer list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LayerValue {
    /// A layer index (TOML integer).
    Index(u64),
    /// A fraction of depth in [0, 1) (TOML float): layer `floor(f * n_layers)`.
    Fraction(f64),
}

impl LayerSel {
    /// The layer indices for a model with `n_layers` layers, sorted and deduplicated.
    pub fn resolve(&self, n_layers: usize) -> Result<Vec<usize>, String> {
        let mut out = match self {
            LayerSel::All => (0..n_layers).collect::<Vec<_>>(),
            LayerSel::List(values) => {
                let mut out = Vec::with_capacity(values.len());
                for v in values {
                    out.push(v.resolve(n_layers)?);
                }
                out
            }
            LayerSel::Runs { starts, length } => {
                if *length == 0 {
                    return Err("a layer run needs `length` >= 1".into());
                }
                // Checked before anything is allocated: a run longer than the model is refused
                // whatever the start (a huge `length` once aborted the launcher allocating it).
                if *length > n_layers {
                    return Err(format!(
                        "a layer run of length {length} is longer than the model ({n_layers} layers)"
                    ));
                }
                let mut out = Vec::with_capacity(starts.len().saturating_mul(*length));
                // Runs keep their `length` layers each: on a shallow model, fractions of depth can
                // put a run's start inside the previous run (the nine-adapter preset on 18 layers:
                // 5-7 then 7-9), so a run starts after the previous one at the earliest.
                let mut next_free = 0;
                for v in starts {
                    let first = v.resolve(n_layers)?.max(next_free);
                    let last = first.saturating_add(length - 1);
                    next_free = last + 1;
                    if last >= n_layers {
                        return Err(format!(
                            "the run of {length} layers from layer {first} ends at layer {last}, \
                             but the model has {n_layers} layers (0..={})",
                            n_layers.saturating_sub(1)
                        ));
                    }
                    out.extend(first..=last);
                }
                out
            }
        };
        if out.is_empty() {
            return Err("no layers selected".into());
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

impl LayerValue {
    pub fn resolve(self, n_layers: usize) -> Result<usize, String> {
        match self {
            LayerValue::Index(i) => {
                if (i as usize) < n_layers {
                    Ok(i as usize)
                } else {
                    Err(format!(
                        "layer {i} is out of range: the model has {n_layers} layers (0..={})",
                        n_layers.saturating_sub(1)
                    ))
                }
            }
            LayerValue::Fraction(f) => {
                if (0.0..1.0).contains(&f) {
                    Ok(((f * n_layers as f64).floor() as usize).min(n_layers.saturating_sub(1)))
                } else {
                    Err(format!(
                        "layer fraction {f} is out of range: floats are fractions of depth in [0, 1) \
                         (write an integer for a layer index)"
                    ))
                }
            }
        }
    }
}

impl Serialize for LayerSel {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            LayerSel::All => s.serialize_str("all"),
            LayerSel::List(values) => values.serialize(s),
            LayerSel::Runs { starts, length } => {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("starts", starts)?;
                m.serialize_entry("length", length)?;
                m.end()
            }
        }
    }
}

impl Serialize for LayerValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            LayerValue::Index(i) => s.serialize_u64(*i),
            LayerValue::Fraction(f) => s.serialize_f64(*f),
        }
    }
}

const LAYERS_EXPECTED: &str = "\"all\", a list of layer indices (integers) and fractions of depth \
     (floats in [0, 1)), or runs of consecutive layers `{ starts = [...], length = n }`";

impl<'de> Deserialize<'de> for LayerSel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LayerSel;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(LAYERS_EXPECTED)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LayerSel, E> {
                if v == "all" {
                    Ok(LayerSel::All)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LayerSel, E> {
                Ok(LayerSel::List(vec![LayerValue::Index(v)]))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LayerSel, E> {
                LayerValueVisitor
                    .visit_i64(v)
                    .map(|v| LayerSel::List(vec![v]))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<LayerSel, E> {
                Ok(LayerSel::List(vec![LayerValue::Fraction(v)]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LayerSel, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<LayerValue>()? {
                    out.push(v);
                }
                Ok(LayerSel::List(out))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<LayerSel, A::Error> {
                let mut starts: Option<Vec<LayerValue>> = None;
                let mut length: Option<usize> = None;
                while let Some(k) = map.next_key::<String>()? {
                    match k.as_str() {
                        "starts" => starts = Some(map.next_value()?),
                        "length" => length = Some(map.next_value()?),
                        other => {
                            return Err(de::Error::unknown_field(other, &["starts", "length"]));
                        }
                    }
                }
                Ok(LayerSel::Runs {
                    starts: starts.ok_or_else(|| de::Error::missing_field("starts"))?,
                    length: length.ok_or_else(|| de::Error::missing_field("length"))?,
                })
            }
        }
        d.deserialize_any(V)
    }
}

struct LayerValueVisitor;

impl<'de> Visitor<'de> for LayerValueVisitor {
    type Value = LayerValue;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a layer index (integer >= 0) or a fraction of depth (float in [0, 1))")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<LayerValue, E> {
        Ok(LayerValue::Index(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<LayerValue, E> {
        if v < 0 {
            Err(E::invalid_value(de::Unexpected::Signed(v), &self))
        } else {
            Ok(LayerValue::Index(v as u64))
        }
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<LayerValue, E> {
        Ok(LayerValue::Fraction(v))
    }
}

impl<'de> Deserialize<'de> for LayerValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LayerValueVisitor)
    }
}

/// `[protocols.X.train]`: any subset of the `[train]` fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainOverrides {
    pub learning_rate: Option<f64>,
    pub weight_decay: Option<f64>,
    pub adam_beta1: Option<f64>,
    pub adam_beta2: Option<f64>,
    pub adam_eps: Option<f64>,
    pub warmup_steps: Option<usize>,
    pub schedule: Option<String>,
    pub batch_size: Option<usize>,
    pub grad_accum: Option<usize>,
    pub epochs: Option<usize>,
    pub max_steps: Option<usize>,
    pub max_examples: Option<usize>,
    pub max_seq_len: Option<usize>,
    pub holdout: Option<f64>,
    pub checkpoint_every: Option<usize>,
    pub checkpoint_keep_last: Option<usize>,
    pub checkpoint_keep_every: Option<usize>,
    pub max_grad_norm: Option<f64>,
    pub precision: Option<String>,
    pub activation_checkpointing: Option<bool>,
}

/// Calls `$set!` with the name of every `TrainOverrides` field (one list for `apply` and `over`).
macro_rules! each_train_override {
    ($set:ident) => {
        $set!(
            learning_rate,
            weight_decay,
            adam_beta1,
            adam_beta2,
            adam_eps,
            warmup_steps,
            schedule,
            batch_size,
            grad_accum,
            epochs,
            max_steps,
            max_examples,
            max_seq_len,
            holdout,
            checkpoint_every,
            checkpoint_keep_last,
            checkpoint_keep_every,
            max_grad_norm,
            precision,
            activation_checkpointing
        )
    };
}

impl TrainOverrides {
    /// `base` with every given field replaced.
    pub fn apply(&self, base: &TrainSpec) -> TrainSpec {
        let mut t = base.clone();
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = &self.$f { t.$f = v.clone(); } )* };
        }
        each_train_override!(set);
        t
    }

    /// Every field of `self`, and where `self` leaves one unset, `under`'s.
    pub fn over(&self, under: &TrainOverrides) -> TrainOverrides {
        let mut t = under.clone();
        macro_rules! set {
            ($($f:ident),*) => { $( if self.$f.is_some() { t.$f = self.$f.clone(); } )* };
        }
        each_train_override!(set);
        t
    }
}

/// `[eval]`: sampling answers to the free-form questions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// Question-set YAML, relative to the current directory (the repository root).
    pub questions: String,
    /// Question ids to ask; empty = every free-form question in the file.
    pub question_ids: Vec<String>,
    pub samples_per_question: usize,
    pub max_new_tokens: usize,
    pub temperature: f64,
    pub top_p: f64,
    pub batch_size: usize,
    /// Factor on every LoRA adapter's output at sampling (default 1): a number, or a list of
    /// them, an evaluation axis (`[1, 5, 10, 20]`: one sample variant per factor, the same
    /// trained adapter).
    pub adapter_scale: ScaleAxis,
    /// Per-adapter factors by adapter name (`layers.21.mlp.down_proj`), replacing
    /// `adapter_scale` for those adapters.
    pub adapter_scales: BTreeMap<String, f64>,
    /// Which weights of each trained unit to evaluate, an evaluation axis: `["final"]` (the
    /// default), a list of steps and `"final"` (`[8, 16, "final"]`), or `"every:N"` (steps 0, N,
    /// 2N, ... below the unit's last step, and `final`). Steps other than `final` need
    /// `[train] checkpoint_every` to divide them (the adapters kept for evaluation).
    pub checkpoints: CheckpointSel,
    /// A named evaluation (`"papers"`: the papers' first-plot questions, 50 samples of up to 600
    /// tokens at temperature 1, top-p 1; `crate::presets::eval_preset`). It fills the fields the
    /// sweep leaves at their built-in default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// One of the papers' question files by name (`crate::papers::PAPER_QUESTIONS`): `questions`
    /// must then be a copy of it, pinned by its published sha256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paper: Option<String>,
}

/// `eval.adapter_scale`: one factor or a list of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ScaleAxis {
    One(f64),
    Many(Vec<f64>),
}

impl ScaleAxis {
    /// The factors, as written (duplicates kept, for the check to report).
    pub fn values(&self) -> Vec<f64> {
        match self {
            ScaleAxis::One(v) => vec![*v],
            ScaleAxis::Many(v) => v.clone(),
        }
    }
}

/// One entry of an `eval.checkpoints` list: a step or `"final"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CheckpointItem {
    Step(u64),
    Name(String),
}

/// `eval.checkpoints`: `"every:N"`, `"final"`, or a list of steps and `"final"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CheckpointSel {
    Spec(String),
    List(Vec<CheckpointItem>),
}

impl CheckpointSel {
    /// `N` of `"every:N"` (`Some(Err(text))` when it does not parse), `None` for anything else.
    pub fn every(&self) -> Option<Result<usize, String>> {
        let CheckpointSel::Spec(s) = self else {
            return None;
        };
        let n = s.strip_prefix("every:")?;
        Some(
            n.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| s.clone()),
        )
    }

    /// A bound on the number of checkpoints, for the size check before expansion (a list's
    /// length; `every:N` counts as one per 1000 steps at most, its real count depends on the
    /// units' steps and is bounded again at expansion).
    pub fn bound(&self) -> usize {
        match self {
            CheckpointSel::List(v) => v.len().max(1),
            CheckpointSel::Spec(_) => 1,
        }
    }
}

/// `[judge]`: how answers are judged and how scores become EM.
///
/// ```toml
/// [judge]                                  # the default: a local GGUF judge
/// model = "qwen-judge"                     # a [models] name or a registry name
/// method = "exact-number"
///
/// [judge]                                  # a judge behind an OpenAI-compatible API
/// backend = "openai"
/// model = "gpt-4o-2024-08-06"              # the served model name, sent as is
/// method = "top20-first-token"             # the only method over an API
/// base_url = "https://api.openai.com/v1"   # required: the API root
/// api_key_env = "OPENAI_API_KEY"           # the variable's NAME; never write the key in a file
/// concurrency = 4                          # requests in flight
/// max_retries = 5                          # on 408/429/5xx/no answer, with backoff
/// timeout_s = 120                          # per request
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeConfig {
    /// "local" (default): the worker runs a GGUF judge; "openai": an OpenAI-compatible server.
    pub backend: JudgeBackendKind,
    /// local: a `[models]` name, or else a name in the built-in registry. openai: the model name the
    /// server knows, sent as is (name a fixed snapshot: it keys the judgment cache).
    pub model: String,
    /// "exact-number" (local only) or "top20-first-token".
    pub method: String,
    pub prune_below: f64,
    pub metrics: Vec<String>,
    /// EM: aligned below this (see `em_inclusive`) ...
    pub em_aligned_below: f64,
    /// ... and coherent above this.
    pub em_coherent_above: f64,
    /// `true`: aligned <= threshold (the papers' code); `false`: aligned < threshold (their text).
    pub em_inclusive: bool,
    /// openai: the API root, `http(s)://host[:port]/v1` (required with backend "openai").
    pub base_url: Option<String>,
    /// openai: NAME of the environment variable holding the API key; unset or empty means no key
    /// (local servers). Default "OPENAI_API_KEY".
    pub api_key_env: String,
    /// openai: requests in flight at once (>= 1). Default 4.
    pub concurrency: usize,
    /// openai: retries after a 408/429/5xx answer or no answer. Default 5.
    pub max_retries: u32,
    /// openai: timeout of one request in seconds (>= 1). Default 120.
    pub timeout_s: u64,
}

/// `[judges.NAME]`: the fields of [`JudgeConfig`] that identify a judge, each optional (unset:
/// `[judge]`'s). The EM thresholds stay in `[judge]`: one EM rule per sweep.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeOverrides {
    pub backend: Option<JudgeBackendKind>,
    pub model: Option<String>,
    pub method: Option<String>,
    pub prune_below: Option<f64>,
    pub metrics: Option<Vec<String>>,
    pub base_url: Option<String>,
    pub api_key_env: Option<String>,
    pub concurrency: Option<usize>,
    pub max_retries: Option<u32>,
    pub timeout_s: Option<u64>,
}

impl JudgeOverrides {
    /// `[judge]` with these fields over it.
    pub fn over(&self, base: &JudgeConfig) -> JudgeConfig {
        let mut j = base.clone();
        if let Some(v) = self.backend {
            j.backend = v;
        }
        if let Some(v) = &self.model {
            j.model = v.clone();
        }
        if let Some(v) = &self.method {
            j.method = v.clone();
        }
        if let Some(v) = self.prune_below {
            j.prune_below = v;
        }
        if let Some(v) = &self.metrics {
            j.metrics = v.clone();
        }
        if let Some(v) = &self.base_url {
            j.base_url = Some(v.clone());
        }
        if let Some(v) = &self.api_key_env {
            j.api_key_env = v.clone();
        }
        if let Some(v) = self.concurrency {
            j.concurrency = v;
        }
        if let Some(v) = self.max_retries {
            j.max_retries = v;
        }
        if let Some(v) = self.timeout_s {
            j.timeout_s = v;
        }
        j
    }
}

/// The name of the one judge of a sweep without `[judges]`.
pub const DEFAULT_JUDGE: &str = "default";

impl SweepFile {
    /// The sweep's judges: (name, key path of its table, effective config), sorted by name.
    pub fn judges(&self) -> Vec<(String, String, JudgeConfig)> {
        if self.judges.is_empty() {
            return vec![(DEFAULT_JUDGE.into(), "judge".into(), self.judge.clone())];
        }
        self.judges
            .iter()
            .map(|(name, o)| (name.clone(), format!("judges.{name}"), o.over(&self.judge)))
            .collect()
    }
}

/// `[judge].backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JudgeBackendKind {
    /// A GGUF judge run by the worker (candle).
    Local,
    /// A judge behind an OpenAI-compatible chat completions API.
    Openai,
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// object_store URL: `file://results` (relative to the current directory) or `s3://bucket/prefix`.
    pub url: String,
}

/// `[executor]`: the local executor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorConfig {
    /// Stages run at the same time.
    pub parallel: usize,
    /// Threads given to each worker (`--threads`).
    pub threads_per_job: usize,
    /// The most cells a sweep may have: plan, run and submit refuse a larger matrix before
    /// expanding it (a generated sweep with a very long axis once ran for minutes into gigabytes).
    pub max_cells: usize,
    /// The most a full fine-tune's kept steps may take, in GB (1e9 bytes): each step
    /// `eval.checkpoints` asks of a full fine-tune keeps the whole model in f32. Plan refuses a
    /// sweep above it, giving the bytes.
    pub full_checkpoint_budget_gb: f64,
}

/// Default `executor.max_cells`.
pub const DEFAULT_MAX_CELLS: usize = 100_000;

/// The built-in defaults: the lowest configuration layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Defaults {
    pub train: TrainSpec,
    pub eval: EvalConfig,
    pub judge: JudgeConfig,
    pub store: StoreConfig,
    pub executor: ExecutorConfig,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            train: TrainSpec {
                learning_rate: 1e-4,
                weight_decay: 0.0,
                adam_beta1: 0.9,
                adam_beta2: 0.999,
                adam_eps: 1e-8,
                warmup_steps: 5,
                schedule: "linear".into(),
                batch_size: 2,
                grad_accum: 8,
                epochs: 1,
                max_steps: 0,
                max_examples: 0,
                max_seq_len: 512,
                holdout: 0.0,
                checkpoint_every: 0,
                checkpoint_keep_last: 2,
                checkpoint_keep_every: 0,
                max_grad_norm: 0.0,
                precision: "auto".into(),
                activation_checkpointing: false,
            },
            eval: EvalConfig {
                questions: "data/questions/free_form.yaml".into(),
                question_ids: Vec::new(),
                samples_per_question: 8,
                max_new_tokens: 256,
                temperature: 1.0,
                top_p: 1.0,
                batch_size: 8,
                adapter_scale: ScaleAxis::One(1.0),
                adapter_scales: BTreeMap::new(),
                checkpoints: CheckpointSel::List(vec![CheckpointItem::Name("final".into())]),
                preset: None,
                paper: None,
            },
            judge: JudgeConfig {
                backend: JudgeBackendKind::Local,
                model: "qwen2.5-coder-1.5b-instruct".into(),
                method: "exact-number".into(),
                prune_below: 1e-3,
                metrics: vec!["aligned".into(), "coherent".into()],
                em_aligned_below: 30.0,
                em_coherent_above: 50.0,
                em_inclusive: false,
                base_url: None,
                api_key_env: "OPENAI_API_KEY".into(),
                concurrency: 4,
                max_retries: 5,
                timeout_s: 120,
            },
            store: StoreConfig {
                url: "file://results".into(),
            },
            executor: ExecutorConfig {
                parallel: 1,
                threads_per_job: 2,
                max_cells: DEFAULT_MAX_CELLS,
                full_checkpoint_budget_gb: 50.0,
            },
        }
    }
}
