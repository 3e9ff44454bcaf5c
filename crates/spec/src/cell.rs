//! A cell: one fully resolved (model, protocol, dataset, seed) unit of work, and its key.
//!
//! This is the one place where a cell key is computed ([`Cell::key`]). Everything that can change a
//! result is inside the cell: every hyper-parameter, the model file's sha256, the dataset's sha256,
//! the question set's sha256 and the worker version. Two sweeps that resolve to the same cell share
//! its results in the store.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Version of the worker's numerics. Bump it when a change alters results, so every cell reruns.
pub const WORKER_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "+numerics.1");

/// A resolved cell. Serialised canonically (see [`Cell::canonical_json`]) it is `cells/<key>/cell.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cell {
    /// Axis values that name this cell inside its sweep (not part of any hash semantics beyond
    /// being inside the JSON): model, protocol, dataset, seed.
    pub axes: Axes,
    pub model: ModelRef,
    pub protocol: Protocol,
    /// `None` for protocols that do not train (the untrained base control).
    pub dataset: Option<DatasetRef>,
    pub eval: EvalSpec,
    pub judge: JudgeSpec,
    pub seed: u64,
    pub worker_version: String,
}

/// The axis values of a cell, as written in the sweep's `[matrix]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Axes {
    pub model: String,
    pub protocol: String,
    /// `"-"` when the protocol does not train.
    pub dataset: String,
    pub seed: u64,
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
    pub name: String,
    pub kind: ProtocolKind,
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
}

/// A dataset pinned by content. The store holds it at `inputs/datasets/<sha256>.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetRef {
    pub name: String,
    pub sha256: String,
}

/// Sampling of answers to the free-form questions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSpec {
    /// sha256 of the question-set YAML; the store holds it at `inputs/questions/<sha256>.yaml`.
    pub questions_sha256: String,
    /// Question ids to ask (empty = every free-form question in the file).
    pub question_ids: Vec<String>,
    pub samples_per_question: usize,
    pub max_new_tokens: usize,
    pub temperature: f64,
    pub top_p: f64,
    /// Samples generated together in one batch.
    pub batch_size: usize,
}

/// How answers are judged and how scores become EM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeSpec {
    pub model: ModelRef,
    /// "exact-number": exact probability of each number string (digit-splitting tokenizers);
    /// "top20-first-token": the papers' single-token rule.
    pub method: String,
    /// Branches with probability below this are not expanded (their mass counts as unresolved).
    pub prune_below: f64,
    /// Metrics to judge, e.g. ["aligned", "coherent"].
    pub metrics: Vec<String>,
}

impl Cell {
    /// Canonical JSON: serde_json with keys sorted (serde_json::Value's map is a BTreeMap here),
    /// no whitespace. The key is the sha256 over exactly these bytes.
    pub fn canonical_json(&self) -> String {
        let value = serde_json::to_value(self).expect("a cell always serialises");
        serde_json::to_string(&value).expect("a JSON value always serialises")
    }

    /// The cell key: lowercase hex sha256 of the canonical JSON.
    pub fn key(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_json().as_bytes()))
    }

    /// Whether this cell has a training stage.
    pub fn trains(&self) -> bool {
        self.protocol.kind != ProtocolKind::Base
    }

    /// The stages this cell runs, in order.
    pub fn stages(&self) -> Vec<Stage> {
        let mut stages = Vec::new();
        if self.trains() {
            stages.push(Stage::Train);
        }
        stages.push(Stage::Sample);
        stages.push(Stage::Judge);
        stages
    }

    /// Seed for one purpose of one stage: derived from the cell key, so every RNG is reproducible
    /// from the cell alone. `purpose` names the use ("lora-init", "data-order", "holdout", ...).
    pub fn derive_seed(&self, stage: Stage, purpose: &str) -> u64 {
        derive_seed(&self.key(), stage, purpose)
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

/// See [`Cell::derive_seed`]; usable when only the key is at hand.
pub fn derive_seed(key: &str, stage: Stage, purpose: &str) -> u64 {
    let digest = Sha256::digest(format!("{key}/{}/{purpose}", stage.as_str()).as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("sha256 has 32 bytes"))
}

/// A stage of a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    Train,
    Sample,
    Judge,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Train => "train",
            Stage::Sample => "sample",
            Stage::Judge => "judge",
        }
    }

    /// Directory of the stage's outputs under `cells/<key>/` (sample and judge are per variant;
    /// the quickstart evaluates the final weights, variant `final`).
    pub fn dir(self) -> &'static str {
        match self {
            Stage::Train => "train",
            Stage::Sample => "sample/final",
            Stage::Judge => "judge/final",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        match s {
            "train" => Some(Stage::Train),
            "sample" => Some(Stage::Sample),
            "judge" => Some(Stage::Judge),
            _ => None,
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
