//! Stage manifests (`DONE.json`) and the outputs they list.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One output of a stage as recorded in its manifest: the name relative to the stage directory,
/// its size in bytes and the hex SHA-256 of its content.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct OutputEntry {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

impl OutputEntry {
    /// The entry for `bytes` stored under `name`.
    pub fn of_bytes(name: impl Into<String>, bytes: &[u8]) -> OutputEntry {
        OutputEntry {
            name: name.into(),
            size: bytes.len() as u64,
            sha256: sha256_hex(bytes),
        }
    }
}

/// `cells/<key>/<stage_dir>/DONE.json`: written last, after every output it lists. A stage without
/// a valid manifest is not done.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Manifest {
    pub cell_key: String,
    /// Stage name, e.g. `train`, `sample`, `judge`.
    pub stage: String,
    /// Directory of the stage under the cell, e.g. `train` or `judge/final`.
    pub stage_dir: String,
    pub outputs: Vec<OutputEntry>,
    /// Input name -> sha256 of what the stage read (dataset, questions, upstream manifests).
    pub inputs: BTreeMap<String, String>,
    /// RNG purpose -> seed actually used.
    pub seeds: BTreeMap<String, u64>,
    pub worker_version: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub host: String,
    /// Stage-specific summary figures (final loss, number of responses, ...).
    pub metrics: serde_json::Value,
}

impl Manifest {
    /// The recorded entry of output `name`, if listed.
    pub fn output(&self, name: &str) -> Option<&OutputEntry> {
        self.outputs.iter().find(|o| o.name == name)
    }
}

/// What `read_done` found for a stage.
// `Valid(Manifest)` unboxed is part of the public API (callers match on it); the enum is
// short-lived, so its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum DoneState {
    /// No `DONE.json`: the stage has not finished (never ran, running, crashed or failed).
    Missing,
    /// `DONE.json` parsed, belongs to this cell and stage, and every output it lists exists with
    /// the recorded size.
    Valid(Manifest),
    /// `DONE.json` exists but cannot be trusted; `reason` names the offending key.
    Invalid { reason: String },
}

impl DoneState {
    pub fn is_valid(&self) -> bool {
        matches!(self, DoneState::Valid(_))
    }

    /// The manifest when valid.
    pub fn manifest(&self) -> Option<&Manifest> {
        match self {
            DoneState::Valid(m) => Some(m),
            _ => None,
        }
    }
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
