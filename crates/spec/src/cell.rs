//! The three identities of the work and their keys: the one place where a key is computed.
//!
//! - [`TrainingUnit`]: (model, protocol with its resolved train spec, dataset, seed, numerics
//!   version, replicate). Owns the train stage. Training seeds derive from its key alone, so no
//!   evaluation setting can change what is trained. A base model's unit is the model alone.
//! - [`SampleVariant`]: (unit key, weights `final` or a checkpoint step, adapter scales, an
//!   intervention slot (reserved), sampler, question set). Owns the sample stage; sampling seeds
//!   derive from its key.
//! - [`Judgment`]: (variant key, judge). Owns the judge stage.
//!
//! Each key is the sha256 of the identity's canonical JSON (keys sorted, no whitespace); the store
//! holds exactly those bytes at `units/<key>/unit.json`, `variants/<key>/variant.json` and
//! `judgments/<key>/judgment.json`. A [`Cell`] is one row of a sweep's matrix: its axis values and
//! the three identities it is the product of.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use emorg_artifacts::{JudgmentKey, Stage, StageRef, UnitKey, VariantKey};

/// Version of the worker's numerics. Bump it when a change alters results, so every unit reruns.
pub const WORKER_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "+numerics.1");

/// Canonical JSON: serde_json with keys sorted (serde_json::Value's map is a BTreeMap here), no
/// whitespace.
fn canonical_json<T: Serialize>(value: &T) -> String {
    let value = serde_json::to_value(value).expect("an identity always serialises");
    serde_json::to_string(&value).expect("a JSON value always serialises")
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

/// A training unit: what is trained, once, whatever it is later evaluated with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingUnit {
    pub model: ModelRef,
    pub protocol: Protocol,
    /// `None` for protocols that do not train (the untrained base control).
    pub dataset: Option<DatasetRef>,
    /// The seed axis value (0 for a base model, whose unit is the model alone).
    pub seed: u64,
    /// `--replicate N`: the same work again with new seeds. Left out of the JSON at 0.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub replicate: u32,
    /// Full fine-tuning only: the steps whose whole weights are kept for evaluation, exactly the
    /// steps `eval.checkpoints` asks of this unit (a full model per step is too big to keep
    /// every N-th, as LoRA does). What training writes, so part of the key; left out when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep_steps: Vec<usize>,
    pub worker_version: String,
}

impl TrainingUnit {
    pub fn canonical_json(&self) -> String {
        canonical_json(self)
    }

    /// The unit key: lowercase hex sha256 of the canonical JSON.
    pub fn key(&self) -> UnitKey {
        UnitKey::parse(&sha256_hex(&self.canonical_json())).expect("sha256 hex is a key")
    }

    /// Whether the unit has a training stage.
    pub fn trains(&self) -> bool {
        self.protocol.kind != ProtocolKind::Base
    }

    /// Seed for one purpose of training ("lora-init", "data-order", "holdout", ...): derived from
    /// the unit key alone.
    pub fn derive_seed(&self, purpose: &str) -> u64 {
        derive_seed(self.key().as_str(), Stage::Train, purpose)
    }
}

/// Which weights a variant samples from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Weights {
    /// The adapter (or model) after the last step.
    Final,
    /// The adapter kept at this optimizer step (`[train] checkpoint_every`); step 0 is the
    /// adapter before training.
    Step(usize),
}

impl Weights {
    /// `final` or `step-N`, for tables and messages.
    pub fn label(&self) -> String {
        match self {
            Weights::Final => "final".into(),
            Weights::Step(n) => format!("step-{n}"),
        }
    }

    /// The step, or `None` for `final`.
    pub fn step(&self) -> Option<usize> {
        match self {
            Weights::Final => None,
            Weights::Step(n) => Some(*n),
        }
    }
}

impl std::fmt::Display for Weights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

// In JSON: "final" or the step number.
impl Serialize for Weights {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Weights::Final => s.serialize_str("final"),
            Weights::Step(n) => s.serialize_u64(*n as u64),
        }
    }
}

impl<'de> Deserialize<'de> for Weights {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Step(u64),
            Name(String),
        }
        match Raw::deserialize(d)? {
            Raw::Step(n) => Ok(Weights::Step(n as usize)),
            Raw::Name(s) if s == "final" => Ok(Weights::Final),
            Raw::Name(s) => Err(serde::de::Error::custom(format!(
                "weights must be \"final\" or a step number, not {s:?}"
            ))),
        }
    }
}

/// Factors on the LoRA adapters' outputs at sampling (the papers scale B by 1, 5, 10, 20).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scales {
    /// Factor on every adapter. Left out of the JSON at 1.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub adapter_scale: f64,
    /// Per-adapter factors that replace `adapter_scale` for the adapters named
    /// (`layers.21.mlp.down_proj`); 0 switches an adapter off.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub adapter_scales: std::collections::BTreeMap<String, f64>,
}

impl Scales {
    /// Every adapter at factor 1.
    pub fn identity() -> Scales {
        Scales {
            adapter_scale: 1.0,
            adapter_scales: Default::default(),
        }
    }

    pub fn is_identity(&self) -> bool {
        self.adapter_scale == 1.0 && self.adapter_scales.values().all(|v| *v == 1.0)
    }
}

/// An intervention on the residual stream while sampling (steering, ablation). Reserved: no kind
/// exists yet, and a variant without one leaves the field out of its JSON, so adding kinds later
/// changes no existing key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Intervention {}

/// How answers are sampled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplerSpec {
    pub samples_per_question: usize,
    pub max_new_tokens: usize,
    pub temperature: f64,
    pub top_p: f64,
    /// Samples generated together in one batch.
    pub batch_size: usize,
}

/// A sample variant: one way of sampling answers from a unit's weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleVariant {
    pub unit: UnitKey,
    pub weights: Weights,
    pub scales: Scales,
    /// Reserved for steering and ablation; absent today.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intervention: Option<Intervention>,
    pub sampler: SamplerSpec,
    /// sha256 of the question-set YAML; the store holds it at `inputs/questions/<sha256>.yaml`.
    pub questions_sha256: String,
    /// Question ids to ask (empty = every free-form question in the file).
    pub question_ids: Vec<String>,
    /// `--only sample --replicate N`: new samples of the same weights. Left out at 0.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub replicate: u32,
}

impl SampleVariant {
    pub fn canonical_json(&self) -> String {
        canonical_json(self)
    }

    /// The variant key: lowercase hex sha256 of the canonical JSON.
    pub fn key(&self) -> VariantKey {
        VariantKey::parse(&sha256_hex(&self.canonical_json())).expect("sha256 hex is a key")
    }

    /// Seed for one purpose of sampling: derived from the variant key alone.
    pub fn derive_seed(&self, purpose: &str) -> u64 {
        derive_seed(self.key().as_str(), Stage::Sample, purpose)
    }
}

/// A judgment: one judge's scores of one variant's answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Judgment {
    pub variant: VariantKey,
    pub judge: JudgeSpec,
    /// `--only judge --replicate N`: judge again (an API judge's cache still answers). Left out
    /// at 0.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub replicate: u32,
}

impl Judgment {
    pub fn canonical_json(&self) -> String {
        canonical_json(self)
    }

    /// The judgment key: lowercase hex sha256 of the canonical JSON.
    pub fn key(&self) -> JudgmentKey {
        JudgmentKey::parse(&sha256_hex(&self.canonical_json())).expect("sha256 hex is a key")
    }
}

/// One row of a sweep's matrix: its axis values and the identities it is the product of. Not
/// stored as such: the sweep record lists the rows, the store holds the identities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cell {
    pub axes: Axes,
    pub unit: TrainingUnit,
    pub variant: SampleVariant,
    pub judgment: Judgment,
}

impl Cell {
    pub fn unit_key(&self) -> UnitKey {
        self.unit.key()
    }

    pub fn variant_key(&self) -> VariantKey {
        self.variant.key()
    }

    pub fn judgment_key(&self) -> JudgmentKey {
        self.judgment.key()
    }

    /// Whether the row's unit has a training stage.
    pub fn trains(&self) -> bool {
        self.unit.trains()
    }

    /// The row's stages in pipeline order: train (when the unit trains), sample, judge. Each
    /// reads the outputs of those before it.
    pub fn chain(&self) -> Vec<StageRef> {
        let mut chain = Vec::with_capacity(3);
        if self.trains() {
            chain.push(StageRef::Train(self.unit_key()));
        }
        chain.push(StageRef::Sample(self.variant_key()));
        chain.push(StageRef::Judge(self.judgment_key()));
        chain
    }
}

/// The axis values of a row, as written in the sweep: `[matrix]` (model, protocol, dataset, seed)
/// and the evaluation axes of `[eval]` (checkpoint, scale) and `[judges]` (judge).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Axes {
    pub model: String,
    pub protocol: String,
    /// `"-"` when the protocol does not train.
    pub dataset: String,
    pub seed: u64,
    pub checkpoint: Weights,
    /// The factor on every adapter, as written (`"1"`, `"5"`, `"0.5"`).
    pub scale: String,
    /// The judge's name (`[judges.NAME]`; `default` for `[judge]`).
    pub judge: String,
    /// `--replicate N` (0 is the original).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub replicate: u32,
}

/// A model by name in the model registry, pinned by the sha256 of its GGUF file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRef {
    pub name: String,
    pub gguf_sha256: String,
}

/// What training does. `kind = "base"` means no training: the model is evaluated as is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protocol {
    pub kind: ProtocolKind,
    /// The preset the protocol started from (informational: the values below are what counts).
    /// Absent from the JSON when none, so cells without a preset kept their keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// Present for `kind = "lora"`.
    pub lora: Option<LoraSpec>,
    /// Present for every kind that trains.
    pub train: Option<TrainSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProtocolKind {
    /// No training: the untrained model is the control row.
    Base,
    /// LoRA adapters on a frozen base.
    Lora,
    /// Full fine-tuning: every weight of the model is trained.
    Full,
}

/// Which (layer, module) pairs get an adapter, and its shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraSpec {
    pub rank: usize,
    pub alpha: f64,
    /// rsLoRA: scale = alpha / sqrt(rank) instead of alpha / rank.
    pub rslora: bool,
    /// HF module names: q_proj k_proj v_proj o_proj gate_proj up_proj down_proj.
    pub modules: Vec<String>,
    /// Resolved layer indices (a sweep may write fractions of depth; the cell holds indices).
    pub layers: Vec<usize>,
}

/// Optimiser, schedule and data hyper-parameters of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub adam_beta1: f64,
    pub adam_beta2: f64,
    pub adam_eps: f64,
    pub warmup_steps: usize,
    /// "linear" (warmup then linear decay to 0) or "constant".
    pub schedule: String,
    pub batch_size: usize,
    pub grad_accum: usize,
    pub epochs: usize,
    /// Caps the number of optimizer steps (0 = no cap).
    pub max_steps: usize,
    /// Use only the first N training rows after the seeded shuffle (0 = all).
    pub max_examples: usize,
    pub max_seq_len: usize,
    /// Fraction of the dataset held out (seeded) and never trained on.
    pub holdout: f64,
    /// Save a checkpoint every N optimizer steps (0 = only the final one).
    pub checkpoint_every: usize,
    /// Keep the newest N checkpoints (older ones are deleted unless `checkpoint_keep_every` keeps
    /// them). Default 2. Fields at their default are left out of the JSON, so cells planned
    /// before these fields existed kept their keys.
    #[serde(
        default = "default_keep_last",
        skip_serializing_if = "is_default_keep_last"
    )]
    pub checkpoint_keep_last: usize,
    /// Also keep every checkpoint whose step is a multiple of M (0 = none), e.g. for a
    /// phase-transition analysis over the run.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub checkpoint_keep_every: usize,
    /// Clip the global gradient norm to this (0 = no clipping; the papers' trainer clips at 1.0).
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub max_grad_norm: f64,
    /// Compute precision of full fine-tuning: "auto" (bf16 on a GPU, f32 on CPU), "f32", or
    /// "bf16" (bf16 weights, gradients and activations; f32 master weights and AdamW moments).
    /// LoRA adapters always train in f32.
    #[serde(
        default = "default_precision",
        skip_serializing_if = "is_default_precision"
    )]
    pub precision: String,
    /// Recompute each layer's activations in the backward pass instead of keeping them (about
    /// one more forward pass of compute for the activation memory of one layer).
    #[serde(default, skip_serializing_if = "is_false")]
    pub activation_checkpointing: bool,
}

/// The `precision` values: see [`TrainSpec::precision`].
pub const PRECISIONS: &[&str] = &["auto", "f32", "bf16"];

fn default_precision() -> String {
    "auto".into()
}

fn is_default_precision(v: &str) -> bool {
    v == "auto"
}

fn is_false(v: &bool) -> bool {
    !*v
}

fn default_keep_last() -> usize {
    2
}

fn is_default_keep_last(v: &usize) -> bool {
    *v == default_keep_last()
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0
}

/// A dataset pinned by content. The store holds it at `inputs/datasets/<sha256>.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetRef {
    pub name: String,
    pub sha256: String,
}

fn one() -> f64 {
    1.0
}

fn is_one(v: &f64) -> bool {
    *v == 1.0
}

/// How answers are judged.
///
/// In the cell's JSON the backend is one key: `"model": {"name", "gguf_sha256"}` for a local GGUF
/// judge (the same JSON as before the `openai` backend existed, so local cells kept their keys), or
/// `"openai": {"model", "base_url", "api_key_env", ...}` for a judge behind an OpenAI-compatible
/// API. The API key itself is never part of a cell: only the name of the variable that holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "JudgeSpecJson", into = "JudgeSpecJson")]
pub struct JudgeSpec {
    pub backend: JudgeBackend,
    /// "exact-number": exact probability of each number string (digit-splitting tokenizers; local
    /// only); "top20-first-token": the papers' single-token rule.
    pub method: String,
    /// Branches with probability below this are not expanded (their mass counts as unresolved);
    /// local `exact-number` only.
    pub prune_below: f64,
    /// Metrics to judge, e.g. ["aligned", "coherent"].
    pub metrics: Vec<String>,
}

/// Where the judge model runs.
#[derive(Debug, Clone, PartialEq)]
pub enum JudgeBackend {
    /// A GGUF judge the worker runs itself, pinned by the file's sha256.
    Local(ModelRef),
    /// A judge behind an OpenAI-compatible API.
    OpenAi(OpenAiJudgeSpec),
}

/// A judge behind an OpenAI-compatible API (`[judge] backend = "openai"`).
///
/// The connection settings are part of the cell (the worker reads nothing else), so changing
/// `concurrency`, `max_retries` or `timeout_s` gives new cell keys; the judgments themselves are
/// cached by (model, method, prompt) and are not requested again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiJudgeSpec {
    /// The model name the server knows (sent as `model`, and part of every cached judgment's key).
    pub model: String,
    /// The API root, without a trailing slash: `https://api.openai.com/v1`.
    pub base_url: String,
    /// Name of the environment variable that holds the API key (unset or empty: no key is sent).
    pub api_key_env: String,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Retries of a request after a 408/429/5xx answer or no answer.
    pub max_retries: u32,
    /// Timeout of one request, in seconds.
    pub timeout_s: u64,
}

impl JudgeSpec {
    /// `"local"` or `"openai"`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            JudgeBackend::Local(_) => "local",
            JudgeBackend::OpenAi(_) => "openai",
        }
    }

    /// The judge model's name: the registry name (local) or the served model name (openai).
    pub fn model_name(&self) -> &str {
        match &self.backend {
            JudgeBackend::Local(m) => &m.name,
            JudgeBackend::OpenAi(o) => &o.model,
        }
    }

    /// The local judge model, when the judge runs locally.
    pub fn local_model(&self) -> Option<&ModelRef> {
        match &self.backend {
            JudgeBackend::Local(m) => Some(m),
            JudgeBackend::OpenAi(_) => None,
        }
    }
}

/// The JSON form of [`JudgeSpec`]: exactly one of `model` and `openai`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JudgeSpecJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model: Option<ModelRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    openai: Option<OpenAiJudgeSpec>,
    method: String,
    prune_below: f64,
    metrics: Vec<String>,
}

impl TryFrom<JudgeSpecJson> for JudgeSpec {
    type Error = String;

    fn try_from(j: JudgeSpecJson) -> Result<Self, Self::Error> {
        let backend = match (j.model, j.openai) {
            (Some(m), None) => JudgeBackend::Local(m),
            (None, Some(o)) => JudgeBackend::OpenAi(o),
            _ => {
                return Err(
                    "a cell's judge needs exactly one of `model` (local) and `openai`".into(),
                );
            }
        };
        Ok(JudgeSpec {
            backend,
            method: j.method,
            prune_below: j.prune_below,
            metrics: j.metrics,
        })
    }
}

impl From<JudgeSpec> for JudgeSpecJson {
    fn from(j: JudgeSpec) -> Self {
        let (model, openai) = match j.backend {
            JudgeBackend::Local(m) => (Some(m), None),
            JudgeBackend::OpenAi(o) => (None, Some(o)),
        };
        JudgeSpecJson {
            model,
            openai,
            method: j.method,
            prune_below: j.prune_below,
            metrics: j.metrics,
        }
    }
}

/// A judge as validation sees it, stored at `judges/<judge_id>/judge.json` by `emorg judge
/// validate` and read by the worker: the judge spec and the question file its prompts come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeRecord {
    pub judge: JudgeSpec,
    pub questions_sha256: String,
}

impl JudgeRecord {
    /// [`judge_id`] of this record.
    pub fn id(&self) -> String {
        judge_id(&self.judge, &self.questions_sha256)
    }
}

/// The identity of a judge for validation: its spec, the question file its judge prompts come
/// from, and the worker version. Judge validation results live under `judges/<judge_id>/`, so a
/// report finds the figures of exactly the judge that scored its cells.
pub fn judge_id(judge: &JudgeSpec, questions_sha256: &str) -> String {
    let value = serde_json::json!({
        "judge": judge,
        "questions_sha256": questions_sha256,
        "worker_version": WORKER_VERSION,
    });
    let canonical = serde_json::to_string(&value).expect("a JSON value always serialises");
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// Seed for one purpose of one stage from the owning identity's key (see
/// [`TrainingUnit::derive_seed`], [`SampleVariant::derive_seed`]); every RNG derives from one.
pub fn derive_seed(key: &str, stage: Stage, purpose: &str) -> u64 {
    let digest = Sha256::digest(format!("{key}/{}/{purpose}", stage.as_str()).as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("sha256 has 32 bytes"))
}
