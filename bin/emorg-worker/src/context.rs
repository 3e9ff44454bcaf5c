//! What every stage needs: the store, the cell, its key, and the commit of its outputs.

use crate::StageArgs;
use anyhow::{Context as _, Result, bail};
use emorg_spec::{Cell, Stage};
use emorg_store::{DoneState, Manifest, OutputEntry, Store, layout};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub struct StageContext {
    pub store: Store,
    pub key: String,
    pub cell: Cell,
    pub stage: Stage,
    pub started_at: chrono::DateTime<chrono::Utc>,
    outputs: std::cell::RefCell<Vec<OutputEntry>>,
}

impl StageContext {
    pub fn open(args: &StageArgs, stage: Stage) -> Result<Self> {
        let store =
            Store::open(&args.store).with_context(|| format!("opening store {}", args.store))?;
        let cell: Cell = store
            .get_json(&layout::cell_json(&args.cell))
            .with_context(|| format!("reading cell {} from {}", args.cell, args.store))?;
        let key = cell.key();
        if key != args.cell {
            bail!(
                "cells/{}/cell.json hashes to {key}: the stored cell is corrupt or was written by another worker version",
                args.cell
            );
        }
        if cell.worker_version != emorg_spec::WORKER_VERSION {
            bail!(
                "cell {key} was planned for worker {} but this is worker {}: rebuild or re-plan",
                cell.worker_version,
                emorg_spec::WORKER_VERSION
            );
        }
        Ok(StageContext {
            store,
            key,
            cell,
            stage,
            started_at: chrono::Utc::now(),
            outputs: Default::default(),
        })
    }

    pub fn dir(&self) -> &'static str {
        self.stage.dir()
    }

    pub fn is_done(&self) -> Result<bool> {
        Ok(matches!(
            self.store.read_done(&self.key, self.dir())?,
            DoneState::Valid(_)
        ))
    }

    /// The manifest of an earlier stage this one depends on; an error when it is not done.
    pub fn require_done(&self, stage: Stage) -> Result<Manifest> {
        match self.store.read_done(&self.key, stage.dir())? {
            DoneState::Valid(m) => Ok(m),
            DoneState::Missing => bail!(
                "stage {stage} of cell {} has not finished (no DONE.json); run it first",
                self.key
            ),
            DoneState::Invalid { reason } => bail!(
                "stage {stage} of cell {} is invalid: {reason}; rerun it",
                self.key
            ),
        }
    }

    /// Write one output under the stage dir and remember it for the manifest.
    pub fn put_output(&self, name: &str, bytes: Vec<u8>) -> Result<OutputEntry> {
        let entry = self.store.put_output(&self.key, self.dir(), name, bytes)?;
        self.outputs.borrow_mut().push(entry.clone());
        Ok(entry)
    }

    /// DONE.json last, after every output.
    pub fn commit(
        &self,
        inputs: BTreeMap<String, String>,
        seeds: BTreeMap<String, u64>,
        metrics: serde_json::Value,
    ) -> Result<()> {
        let manifest = Manifest {
            cell_key: self.key.clone(),
            stage: self.stage.as_str().to_string(),
            stage_dir: self.dir().to_string(),
            outputs: self.outputs.borrow().clone(),
            inputs,
            seeds,
            worker_version: emorg_spec::WORKER_VERSION.to_string(),
            started_at: self.started_at,
            finished_at: chrono::Utc::now(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            metrics,
        };
        self.store.commit_stage(&manifest)?;
        Ok(())
    }

    pub fn record_failure(&self, error: &str) -> Result<()> {
        let record = serde_json::json!({
            "cell_key": self.key,
            "stage": self.stage.as_str(),
            "error": error,
            "worker_version": emorg_spec::WORKER_VERSION,
            "host": gethostname::gethostname().to_string_lossy(),
            "at": chrono::Utc::now(),
        });
        self.store
            .put_json(&layout::failure(&self.key, self.dir()), &record)?;
        Ok(())
    }

    pub fn seed(&self, purpose: &str) -> u64 {
        emorg_spec::derive_seed(&self.key, self.stage, purpose)
    }

    /// The verified local GGUF file of a model, checked against the sha256 the cell was planned with.
    pub fn model_path(&self, model: &emorg_spec::ModelRef) -> Result<PathBuf> {
        model_path(model)
    }

    /// Fetch an input from the store into a temp file, verifying its sha256.
    pub fn input_file(&self, key: &str, sha256: &str) -> Result<tempfile::NamedTempFile> {
        verified_input(&self.store, key, sha256)
    }
}

/// The verified local GGUF file of a model, checked against the sha256 it was planned with.
pub fn model_path(model: &emorg_spec::ModelRef) -> Result<PathBuf> {
    let registry = emorg_models::Registry::from_env();
    let entry = registry.get(&model.name)?;
    if entry.sha256 != model.gguf_sha256 {
        bail!(
            "model {}: the cell expects GGUF sha256 {} but the registry has {}",
            model.name,
            model.gguf_sha256,
            entry.sha256
        );
    }
    Ok(registry.resolve(&model.name)?)
}

/// Reads an input from the store, verifying its sha256.
pub fn verified_input(store: &Store, key: &str, sha256: &str) -> Result<tempfile::NamedTempFile> {
    let bytes = store.get(key)?;
    let actual = emorg_store::sha256_hex(&bytes);
    if actual != sha256 {
        bail!(
            "input {key} in the store has sha256 {actual}, expected {sha256}: re-upload it with `emorg run`"
        );
    }
    let mut f = tempfile::NamedTempFile::new()?;
    std::io::Write::write_all(&mut f, &bytes)?;
    Ok(f)
}

/// The adapters a cell's LoRA spec describes: every listed module on every listed layer.
pub fn lora_config(spec: &emorg_spec::LoraSpec) -> Result<emorg_lm::LoraConfig> {
    let modules = spec
        .modules
        .iter()
        .map(|m| emorg_lm::Module::parse(m))
        .collect::<Result<Vec<_>, _>>()?;
    let targets = spec
        .layers
        .iter()
        .flat_map(|l| modules.iter().map(move |m| (*l, *m)))
        .collect();
    Ok(emorg_lm::LoraConfig {
        rank: spec.rank,
        alpha: spec.alpha,
        rslora: spec.rslora,
        targets,
    })
}

/// The device the math runs on. With the `cuda` feature the worker uses GPU 0 when the driver
/// reports one; otherwise, or when `EMORG_DEVICE=cpu`, the CPU. `EMORG_DEVICE=cuda` makes a missing
/// GPU an error instead of a fallback (for GPU partitions, where running on CPU would waste the job).
pub fn device() -> Result<candle_core::Device> {
    let wanted = std::env::var("EMORG_DEVICE").unwrap_or_default();
    if wanted == "cpu" {
        return Ok(candle_core::Device::Cpu);
    }
    #[cfg(feature = "cuda")]
    {
        match candle_core::Device::new_cuda(0) {
            Ok(d) => {
                tracing::info!("running on CUDA device 0");
                return Ok(d);
            }
            Err(e) if wanted == "cuda" => bail!("EMORG_DEVICE=cuda but no usable GPU: {e}"),
            Err(e) => tracing::warn!("no usable GPU ({e}); running on CPU"),
        }
    }
    if wanted == "cuda" {
        bail!("EMORG_DEVICE=cuda but this emorg-worker was built without the `cuda` feature");
    }
    Ok(candle_core::Device::Cpu)
}

/// The tokenised questions of a cell: (question id, paraphrase index, text, system prompt, judge prompts).
pub struct AskedQuestion {
    pub id: String,
    pub paraphrase_index: usize,
    pub text: String,
    pub system: Option<String>,
    pub judge_prompts: BTreeMap<String, String>,
}

/// The free-form questions the cell asks, in file order, each paraphrase separately.
pub fn asked_questions(ctx: &StageContext) -> Result<Vec<AskedQuestion>> {
    let sha = &ctx.cell.eval.questions_sha256;
    let file = ctx.input_file(&layout::questions(sha), sha)?;
    let set = emorg_data::load_questions(file.path())?;
    let wanted = &ctx.cell.eval.question_ids;
    let mut out = Vec::new();
    for q in set.free_form() {
        if !wanted.is_empty() && !wanted.contains(&q.id) {
            continue;
        }
        for (i, p) in q.paraphrases.iter().enumerate() {
            out.push(AskedQuestion {
                id: q.id.clone(),
                paraphrase_index: i,
                text: p.clone(),
                system: q.system.clone(),
                judge_prompts: q.judge_prompts.clone(),
            });
        }
    }
    for id in wanted {
        if !out.iter().any(|q| &q.id == id) {
            bail!("question id `{id}` is not a free-form question of the cell's question set");
        }
    }
    Ok(out)
}
