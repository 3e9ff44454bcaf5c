//! Trainer-state checkpoints: everything a run needs to continue bit for bit.
//!
//! A checkpoint is a set of files plus `manifest.json`, which is written LAST and lists every other
//! file with its size and sha256. A checkpoint counts only when its manifest parses and every file
//! it lists matches; a run killed while writing one resumes from the previous one.
//!
//! - `state.safetensors`: the trainable tensors (`param/<name>`; for bf16 parameters their f32
//!   master copies) and AdamW's first and second moments (`adam_m/<name>`, `adam_v/<name>`), f32,
//!   exactly as in memory.
//! - any other file the caller adds (the worker adds the PEFT adapter and the metrics and trajectory
//!   rows so far).
//!
//! The data cursor is the optimizer step: the data order is a pure function of the data seed and
//! the epoch (see [`crate::trainer`]), and no other RNG runs during training (no dropout), so the
//! manifest's `step` and `data_seed` are the whole RNG state.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, Var};
use sha2::{Digest, Sha256};

use crate::optim::AdamW;

/// Version of the checkpoint layout; a manifest with another is not resumed from.
pub const CHECKPOINT_FORMAT: u32 = 1;
/// Name of the manifest file (written last).
pub const MANIFEST: &str = "manifest.json";
/// Name of the trainer-state file.
pub const STATE: &str = "state.safetensors";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint: {0}")]
    Invalid(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// One file of a checkpoint as its manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileEntry {
    pub size: u64,
    pub sha256: String,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CheckpointManifest {
    pub format: u32,
    /// Optimizer steps done (1-based count); training continues with step `step + 1`.
    pub step: usize,
    /// Steps of the whole run (a manifest of another run length is not resumed from).
    pub total_steps: usize,
    /// Examples consumed from the seeded data order so far.
    pub examples_consumed: usize,
    /// Seed of the data order (one permutation per epoch from `data_seed + epoch`).
    pub data_seed: u64,
    /// AdamW's update count (its bias corrections).
    pub adam_t: u64,
    /// The parameter names in optimizer order.
    pub params: Vec<String>,
    pub files: BTreeMap<String, FileEntry>,
    /// Whatever else the caller wants back on resume (e.g. the holdout loss before training).
    pub extra: serde_json::Value,
}

/// A restored trainer state, ready for [`crate::trainer::train`].
pub struct ResumeState {
    pub step: usize,
    /// The parameters in f32 (master copies for bf16 parameters), in optimizer order.
    pub params: Vec<Tensor>,
    pub adam_t: u64,
    pub m: Vec<Tensor>,
    pub v: Vec<Tensor>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `state.safetensors` bytes: parameters and moments under their names (deterministic bytes).
pub fn state_bytes(names: &[String], opt: &AdamW) -> Result<Vec<u8>, CheckpointError> {
    if names.len() != opt.vars.len() {
        return Err(CheckpointError::Invalid(format!(
            "{} names for {} parameters",
            names.len(),
            opt.vars.len()
        )));
    }
    let mut tensors: BTreeMap<String, Tensor> = BTreeMap::new();
    for (i, name) in names.iter().enumerate() {
        tensors.insert(format!("param/{name}"), opt.param_f32(i));
        tensors.insert(format!("adam_m/{name}"), opt.m[i].clone());
        tensors.insert(format!("adam_v/{name}"), opt.v[i].clone());
    }
    safetensors::tensor::serialize(tensors.iter().map(|(k, v)| (k.as_str(), v)), None)
        .map_err(|e| CheckpointError::Invalid(format!("serialising the trainer state: {e}")))
}

/// Files of a checkpoint as (name, bytes).
pub type Files = Vec<(String, Vec<u8>)>;

/// Everything needed to write one checkpoint: `files` in order, then the manifest's bytes.
#[allow(clippy::too_many_arguments)]
pub fn build(
    step: usize,
    total_steps: usize,
    examples_consumed: usize,
    data_seed: u64,
    names: &[String],
    opt: &AdamW,
    mut extra_files: Files,
    extra: serde_json::Value,
) -> Result<(Files, Vec<u8>), CheckpointError> {
    let mut files = vec![(STATE.to_string(), state_bytes(names, opt)?)];
    files.append(&mut extra_files);
    let manifest = CheckpointManifest {
        format: CHECKPOINT_FORMAT,
        step,
        total_steps,
        examples_consumed,
        data_seed,
        adam_t: opt.t,
        params: names.to_vec(),
        files: files
            .iter()
            .map(|(n, b)| {
                (
                    n.clone(),
                    FileEntry {
                        size: b.len() as u64,
                        sha256: sha256_hex(b),
                    },
                )
            })
            .collect(),
        extra,
    };
    let manifest = serde_json::to_vec_pretty(&manifest)?;
    Ok((files, manifest))
}

/// The manifest, if every file it lists is present (through `get`) with its size and sha256.
pub fn verify(
    manifest_bytes: &[u8],
    mut get: impl FnMut(&str) -> Option<Vec<u8>>,
) -> Result<(CheckpointManifest, BTreeMap<String, Vec<u8>>), CheckpointError> {
    let manifest: CheckpointManifest = serde_json::from_slice(manifest_bytes)?;
    if manifest.format != CHECKPOINT_FORMAT {
        return Err(CheckpointError::Invalid(format!(
            "format {} (this worker reads {CHECKPOINT_FORMAT})",
            manifest.format
        )));
    }
    let mut files = BTreeMap::new();
    for (name, entry) in &manifest.files {
        let bytes =
            get(name).ok_or_else(|| CheckpointError::Invalid(format!("`{name}` is missing")))?;
        if bytes.len() as u64 != entry.size || sha256_hex(&bytes) != entry.sha256 {
            return Err(CheckpointError::Invalid(format!(
                "`{name}` does not match the manifest ({} bytes, expected {})",
                bytes.len(),
                entry.size
            )));
        }
        files.insert(name.clone(), bytes);
    }
    if !files.contains_key(STATE) {
        return Err(CheckpointError::Invalid(format!("no `{STATE}`")));
    }
    Ok((manifest, files))
}

/// Restore the parameters into `vars` (in place, so a model holding them sees the new values) and
/// return the moments. `names` must be the manifest's parameter names in the same order.
pub fn restore(
    manifest: &CheckpointManifest,
    state: &[u8],
    names: &[String],
    vars: &[Var],
    device: &Device,
) -> Result<ResumeState, CheckpointError> {
    if manifest.params != names {
        return Err(CheckpointError::Invalid(
            "its parameters are not this run's (another adapter shape)".into(),
        ));
    }
    let tensors = candle_core::safetensors::load_buffer(state, device)?;
    let get = |k: String| {
        tensors
            .get(&k)
            .cloned()
            .ok_or_else(|| CheckpointError::Invalid(format!("no tensor `{k}`")))
    };
    let mut params = Vec::with_capacity(names.len());
    let mut m = Vec::with_capacity(names.len());
    let mut v = Vec::with_capacity(names.len());
    for (name, var) in names.iter().zip(vars) {
        let p = get(format!("param/{name}"))?;
        if p.dims() != var.dims() || p.dtype() != DType::F32 {
            return Err(CheckpointError::Invalid(format!(
                "`{name}` has shape {:?}, this run's has {:?}",
                p.dims(),
                var.dims()
            )));
        }
        // The model sees the value in its own dtype; the trainer restores the f32 master.
        var.set(&p.to_dtype(var.dtype())?)?;
        params.push(p);
        m.push(get(format!("adam_m/{name}"))?);
        v.push(get(format!("adam_v/{name}"))?);
    }
    Ok(ResumeState {
        step: manifest.step,
        params,
        adam_t: manifest.adam_t,
        m,
        v,
    })
}

/// Which of the checkpoints at `steps` to delete after one was written: every one that is neither
/// among the newest `keep_last` nor at a multiple of `keep_every` (0 = no such rule).
pub fn to_delete(steps: &[usize], keep_last: usize, keep_every: usize) -> Vec<usize> {
    let mut sorted = steps.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let newest: Vec<usize> = sorted.iter().rev().take(keep_last).copied().collect();
    sorted
        .into_iter()
        .filter(|s| {
            let kept_by_rule = keep_every > 0 && s.is_multiple_of(keep_every);
            !(newest.contains(s) || kept_by_rule)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_keeps_the_newest_and_every_mth() {
        let steps: Vec<usize> = (1..=10).map(|i| i * 5).collect();
        assert_eq!(
            to_delete(&steps, 2, 20),
            vec![5, 10, 15, 25, 30, 35],
            "keeps 20, 40 (every 20) and 45, 50 (newest two)"
        );
        assert_eq!(to_delete(&steps, 100, 0), Vec::<usize>::new());
        assert_eq!(to_delete(&[3], 0, 0), vec![3]);
    }
}
