//! What every stage needs: the store, the records of its identity and those upstream of it, and
//! the commit of its outputs.

use crate::StageArgs;
use anyhow::{Context as _, Result, bail};
use emorg_spec::{Judgment, SampleVariant, Stage, StageRef, TrainingUnit};
use emorg_store::{DoneState, Manifest, OutputEntry, Store, layout};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub struct StageContext {
    pub store: Store,
    /// The stage this run works on.
    pub stage: StageRef,
    /// The training unit the stage belongs to (the variant's unit for sample and judge).
    pub unit: TrainingUnit,
    /// The sample variant (sample and judge stages).
    pub variant: Option<SampleVariant>,
    /// The judgment (judge stage).
    pub judgment: Option<Judgment>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    outputs: std::cell::RefCell<Vec<OutputEntry>>,
    claim: std::cell::RefCell<Option<crate::claim::Held>>,
}

/// Reads an identity's record and checks that its canonical JSON hashes to `key`.
fn read_record<T: DeserializeOwned>(
    store: &Store,
    stage: &StageRef,
    canonical_key: impl Fn(&T) -> String,
) -> Result<T> {
    let at = layout::record(stage);
    let record: T = store
        .get_json(&at)
        .with_context(|| format!("reading {at} from {}", store.url()))?;
    let found = canonical_key(&record);
    if found != stage.key() {
        bail!(
            "{at} hashes to {found}: the stored record is corrupt or was written by another worker version"
        );
    }
    Ok(record)
}

impl StageContext {
    pub fn open(args: &StageArgs, stage: Stage) -> Result<Self> {
        let store =
            Store::open(&args.store).with_context(|| format!("opening store {}", args.store))?;
        store.check_layout()?;
        let stage = StageRef::parse(stage, &args.key)?;
        let read_unit = |key: &emorg_spec::UnitKey| {
            read_record(&store, &StageRef::Train(key.clone()), |u: &TrainingUnit| {
                u.key().to_string()
            })
        };
        let read_variant = |key: &emorg_spec::VariantKey| {
            read_record(
                &store,
                &StageRef::Sample(key.clone()),
                |v: &SampleVariant| v.key().to_string(),
            )
        };
        let (unit, variant, judgment) = match &stage {
            StageRef::Train(k) => (read_unit(k)?, None, None),
            StageRef::Sample(k) => {
                let variant = read_variant(k)?;
                (read_unit(&variant.unit)?, Some(variant), None)
            }
            StageRef::Judge(_) => {
                let judgment = read_record(&store, &stage, |j: &Judgment| j.key().to_string())?;
                let variant = read_variant(&judgment.variant)?;
                (read_unit(&variant.unit)?, Some(variant), Some(judgment))
            }
        };
        if matches!(stage, StageRef::Train(_)) && !unit.trains() {
            bail!(
                "training unit {} is a base model (protocol kind base): it has no train stage; \
                 its variants sample the model as it is",
                unit.key()
            );
        }
        if unit.worker_version != emorg_spec::WORKER_VERSION {
            bail!(
                "training unit {} was planned for worker {} but this is worker {}: rebuild or re-plan",
                unit.key(),
                unit.worker_version,
                emorg_spec::WORKER_VERSION
            );
        }
        Ok(StageContext {
            store,
            stage,
            unit,
            variant,
            judgment,
            started_at: chrono::Utc::now(),
            outputs: Default::default(),
            claim: Default::default(),
        })
    }

    /// The training unit's key.
    pub fn unit_key(&self) -> emorg_spec::UnitKey {
        self.unit.key()
    }

    /// The sample variant (sample and judge stages).
    pub fn variant(&self) -> Result<&SampleVariant> {
        self.variant
            .as_ref()
            .with_context(|| format!("{} has no sample variant", self.stage))
    }

    /// The train stage of the unit, when it trains.
    pub fn train_stage(&self) -> Option<StageRef> {
        self.unit.trains().then(|| StageRef::Train(self.unit.key()))
    }

    /// The sample stage of the variant (sample and judge stages).
    pub fn sample_stage(&self) -> Option<StageRef> {
        self.variant.as_ref().map(|v| StageRef::Sample(v.key()))
    }

    /// The stages up to this one, in pipeline order: [train (if the unit trains), sample, judge].
    pub fn chain(&self) -> Vec<StageRef> {
        let mut chain: Vec<StageRef> = self.train_stage().into_iter().collect();
        if self.stage.stage() != Stage::Train {
            chain.extend(self.sample_stage());
        }
        if self.stage.stage() == Stage::Judge {
            chain.push(self.stage.clone());
        }
        chain
    }

    /// This run's claim on the stage: checked before the commit, released after it or after a
    /// recorded failure.
    pub fn hold(&self, held: crate::claim::Held) {
        *self.claim.borrow_mut() = Some(held);
    }

    /// Gives the claim back without a result (the stage was committed by another run meanwhile).
    pub fn release_claim(&self) -> Result<()> {
        if let Some(held) = self.claim.borrow_mut().take() {
            held.release(&self.store)?;
        }
        Ok(())
    }

    /// The store's state of `stage` (this one or one upstream of it), staleness included: the
    /// chain of stages up to it ([`Store::read_done_chain`], the one staleness rule of the
    /// executors too).
    pub fn state_of(&self, stage: &StageRef) -> Result<DoneState> {
        let chain = self.chain();
        let Some(at) = chain.iter().position(|s| s == stage) else {
            bail!("{stage} is not a stage of {}'s chain", self.stage);
        };
        let mut states = self.store.read_done_chain(&chain[..=at])?;
        Ok(states.pop().expect("the chain ends with the stage"))
    }

    /// Done: a valid DONE.json whose upstream inputs are unchanged (not stale).
    pub fn is_done(&self) -> Result<bool> {
        Ok(self.state_of(&self.stage)?.is_valid())
    }

    /// The manifest of an upstream stage this one depends on; an error when it is not done
    /// (missing, invalid or stale).
    pub fn require_done(&self, stage: &StageRef) -> Result<Manifest> {
        match self.state_of(stage)? {
            DoneState::Valid(m) => Ok(m),
            DoneState::Missing => bail!("{stage} has not finished (no DONE.json); run it first"),
            DoneState::Invalid { reason } => bail!("{stage} is invalid: {reason}; rerun it"),
            DoneState::Stale { reason, .. } => {
                bail!("{stage} is stale: {reason}; rerun it first")
            }
        }
    }

    /// Output `name` of the done upstream stage `manifest` commits, read only when its bytes hash
    /// to what that DONE.json records ([`Store::get_verified`]); records the hash in `inputs`
    /// under its store key ([`emorg_store::upstream_input_key`]), so that this stage turns stale
    /// when that output changes.
    pub fn read_upstream(
        &self,
        manifest: &Manifest,
        name: &str,
        inputs: &mut BTreeMap<String, String>,
    ) -> Result<emorg_store::Bytes> {
        let bytes = self.store.get_verified(manifest, name)?;
        record_upstream(manifest, name, inputs);
        Ok(bytes)
    }

    /// Before the stage runs (its claim held): removes a DONE.json that is there, so that a crash
    /// mid-run never leaves the old manifest valid over new partial outputs, and so that the
    /// create-only commit can succeed. It is there on `--force`, or because it is invalid or
    /// stale (the worker skips a done stage). A forced train also drops its checkpoints, so that
    /// it starts over instead of resuming.
    pub fn prepare_run(&self, force: bool) -> Result<()> {
        let why = match self.state_of(&self.stage)? {
            DoneState::Missing => None,
            DoneState::Valid(_) => Some("--force".to_string()),
            DoneState::Invalid { reason } => Some(format!("it is invalid: {reason}")),
            DoneState::Stale { reason, .. } => Some(format!("it is stale: {reason}")),
        };
        if let Some(why) = why {
            let done = layout::done(&self.stage);
            tracing::info!("{}: removing {done} ({why})", self.stage);
            self.store
                .delete(&done)
                .with_context(|| format!("removing {done} before redoing the stage"))?;
        }
        if force && self.stage.stage() == Stage::Train {
            crate::train_stage::remove_checkpoints(self)?;
        }
        Ok(())
    }

    /// An error when this run's claim on the stage was taken over (see src/claim.rs).
    pub fn check_claim(&self) -> Result<()> {
        match &*self.claim.borrow() {
            Some(held) => held.check(&self.store),
            None => Ok(()),
        }
    }

    /// Write one output under the stage and remember it for the manifest. Checks first that
    /// the claim is still this run's, so that a run whose stage was taken over stops before it
    /// overwrites the other run's outputs.
    pub fn put_output(&self, name: &str, bytes: Vec<u8>) -> Result<OutputEntry> {
        self.check_claim()?;
        let entry = self.store.put_output(&self.stage, name, bytes)?;
        self.outputs.borrow_mut().push(entry.clone());
        Ok(entry)
    }

    /// Lists an output an earlier run of this stage already wrote (a resumed train's step
    /// adapters), re-hashed from the store, in the manifest.
    pub fn keep_output(&self, name: &str) -> Result<OutputEntry> {
        let key = layout::output(&self.stage, name);
        let size = self
            .store
            .size(&key)?
            .with_context(|| format!("{key} is gone"))?;
        let entry = OutputEntry {
            name: name.to_string(),
            size,
            sha256: self.store.sha256_of(&key)?,
        };
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
            owner: self.stage.clone(),
            outputs: self.outputs.borrow().clone(),
            inputs,
            seeds,
            worker_version: emorg_spec::WORKER_VERSION.to_string(),
            started_at: self.started_at,
            finished_at: chrono::Utc::now(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            metrics,
        };
        self.check_claim()?;
        self.store.commit_stage(&manifest)?;
        if let Some(held) = self.claim.borrow_mut().take() {
            held.release(&self.store)?;
        }
        Ok(())
    }

    pub fn record_failure(&self, error: &str) -> Result<()> {
        let record = serde_json::json!({
            "stage": self.stage.stage().as_str(),
            "key": self.stage.key(),
            "error": error,
            "worker_version": emorg_spec::WORKER_VERSION,
            "host": gethostname::gethostname().to_string_lossy(),
            "at": chrono::Utc::now(),
        });
        self.store
            .put_json(&layout::failure(&self.stage), &record)?;
        if let Some(held) = self.claim.borrow_mut().take() {
            held.release(&self.store)?;
        }
        Ok(())
    }

    /// The verified local GGUF file of a model, checked against the sha256 it was planned with.
    pub fn model_path(&self, model: &emorg_spec::ModelRef) -> Result<PathBuf> {
        model_path(model)
    }

    /// Fetch an input from the store into a temp file, verifying its sha256.
    pub fn input_file(&self, key: &str, sha256: &str) -> Result<tempfile::NamedTempFile> {
        verified_input(&self.store, key, sha256)
    }
}

/// Records, in a manifest's `inputs`, the hash of output `name` of the stage `upstream` commits.
fn record_upstream(upstream: &Manifest, name: &str, inputs: &mut BTreeMap<String, String>) {
    if let Some(entry) = upstream.output(name) {
        inputs.insert(
            emorg_store::upstream_input_key(&upstream.owner, name),
            entry.sha256.clone(),
        );
    }
}

/// Whether `e` is the commit of a stage that another run committed first (its DONE.json was
/// there): the worker leaves the stage to that run, as for a claim it does not hold.
pub fn already_committed(e: &anyhow::Error) -> bool {
    e.downcast_ref::<emorg_store::StoreError>()
        .is_some_and(emorg_store::StoreError::is_already_committed)
}

/// The verified local GGUF file of a model, checked against the sha256 it was planned with.
pub fn model_path(model: &emorg_spec::ModelRef) -> Result<PathBuf> {
    let registry = emorg_models::Registry::from_env();
    let entry = registry.get(&model.name)?;
    if entry.sha256 != model.gguf_sha256 {
        bail!(
            "model {}: the plan expects GGUF sha256 {} but the registry has {}",
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

/// The adapters a unit's LoRA spec describes: every listed module on every listed layer.
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

/// Which device `EMORG_DEVICE` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// GPU 0 when CUDA is usable, else the CPU with a warning (unset, empty or `auto`).
    Auto,
    Cpu,
    /// GPU 0 or an error: for GPU partitions, where running on the CPU would waste the job.
    Cuda,
}

impl DeviceChoice {
    pub fn from_env() -> Result<Self> {
        match std::env::var("EMORG_DEVICE").as_deref() {
            Err(std::env::VarError::NotPresent) | Ok("") | Ok("auto") => Ok(Self::Auto),
            Ok("cpu") => Ok(Self::Cpu),
            Ok("cuda") => Ok(Self::Cuda),
            Ok(other) => bail!("EMORG_DEVICE={other:?}: expected cpu, cuda or auto (the default)"),
            Err(e) => bail!("EMORG_DEVICE: {e}"),
        }
    }
}

/// The device the math runs on, chosen once per process by `EMORG_DEVICE` (see [`DeviceChoice`]).
/// Once: two `Device::new_cuda(0)` calls give two devices whose tensors cannot be mixed.
/// `Device::cuda_if_available` is no help: with the `cuda` feature it returns the driver's error
/// instead of falling back, so the Err of `new_cuda` is handled here.
pub fn device() -> Result<candle_core::Device> {
    static DEVICE: std::sync::OnceLock<candle_core::Device> = std::sync::OnceLock::new();
    if let Some(d) = DEVICE.get() {
        return Ok(d.clone());
    }
    let d = choose_device(DeviceChoice::from_env()?)?;
    Ok(DEVICE.get_or_init(|| d).clone())
}

fn choose_device(choice: DeviceChoice) -> Result<candle_core::Device> {
    if choice == DeviceChoice::Cpu {
        return Ok(candle_core::Device::Cpu);
    }
    #[cfg(feature = "cuda")]
    {
        match candle_core::Device::new_cuda(0) {
            Ok(d) => {
                tracing::info!("running on CUDA device 0");
                return Ok(d);
            }
            Err(e) => {
                let cause = cuda_failure(&e.to_string());
                if choice == DeviceChoice::Cuda {
                    bail!(
                        "EMORG_DEVICE=cuda but CUDA is not usable on this node: {cause}; run on a GPU node or set EMORG_DEVICE=cpu"
                    );
                }
                tracing::warn!(
                    "CUDA is not usable on this node ({cause}): running on the CPU (set EMORG_DEVICE=cuda to make this an error)"
                );
            }
        }
    }
    if choice == DeviceChoice::Cuda {
        bail!(
            "EMORG_DEVICE=cuda but this emorg-worker was built without the `cuda` feature; build it with infra/cuda-build.sh (or cargo build --release -p emorg-worker --features cuda)"
        );
    }
    Ok(candle_core::Device::Cpu)
}

/// One line naming why CUDA failed: the driver's error code with what it usually means, else
/// candle's whole message.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
fn cuda_failure(message: &str) -> String {
    let code = message.find("CUDA_ERROR_").map(|at| {
        let rest = &message[at..];
        let len = rest
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(rest.len());
        &rest[..len]
    });
    let hint = match code {
        Some("CUDA_ERROR_STUB_LIBRARY") => {
            "the libcuda on the loader path is a stub, not a real NVIDIA driver"
        }
        Some("CUDA_ERROR_NO_DEVICE") => {
            "the driver sees no GPU (check CUDA_VISIBLE_DEVICES and the job's GPU request)"
        }
        Some("CUDA_ERROR_INSUFFICIENT_DRIVER") => {
            "the NVIDIA driver is older than the CUDA version this worker was built with"
        }
        Some("CUDA_ERROR_INVALID_DEVICE") => "GPU 0 is not a valid device for this process",
        _ => "",
    };
    match (code, hint) {
        (Some(code), "") => code.to_string(),
        (Some(code), hint) => format!("{code} ({hint})"),
        (None, _) => message.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// One asked question: (question id, paraphrase index, text, system prompt, judge prompts).
pub struct AskedQuestion {
    pub id: String,
    pub paraphrase_index: usize,
    pub text: String,
    pub system: Option<String>,
    pub judge_prompts: BTreeMap<String, String>,
}

/// The free-form questions the variant asks, in file order, each paraphrase separately.
pub fn asked_questions(ctx: &StageContext) -> Result<Vec<AskedQuestion>> {
    let variant = ctx.variant()?;
    let sha = &variant.questions_sha256;
    let file = ctx.input_file(&layout::questions(sha), sha)?;
    let set = emorg_data::load_questions(file.path())?;
    let wanted = &variant.question_ids;
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
            bail!("question id `{id}` is not a free-form question of the variant's question set");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod device_tests {
    use super::cuda_failure;

    #[test]
    fn cuda_failure_names_the_driver_code_in_one_line() {
        // The shape of candle's message for the stub driver (measured on a GPU-less node).
        let stub =
            r#"DriverError(CUDA_ERROR_STUB_LIBRARY, "<Failure when calling cuGetErrorString()>")"#;
        assert_eq!(
            cuda_failure(stub),
            "CUDA_ERROR_STUB_LIBRARY (the libcuda on the loader path is a stub, not a real NVIDIA driver)"
        );
        assert_eq!(
            cuda_failure("DriverError(CUDA_ERROR_LAUNCH_FAILED, \"x\")"),
            "CUDA_ERROR_LAUNCH_FAILED"
        );
        assert_eq!(cuda_failure("no\nfoo  bar"), "no foo bar");
    }
}

#[cfg(test)]
mod commit_tests {
    use super::already_committed;
    use anyhow::Context as _;
    use emorg_store::{ALREADY_COMMITTED, StoreError};

    #[test]
    fn a_commit_another_run_made_first_is_told_apart_from_other_errors() {
        let commit = |reason: &str| {
            anyhow::Error::from(StoreError::Commit {
                key: "units/k/train/DONE.json".into(),
                reason: reason.into(),
            })
        };
        assert!(already_committed(&commit(ALREADY_COMMITTED)));
        // Through added context too, as the stages return it.
        let wrapped = Err::<(), _>(commit(ALREADY_COMMITTED))
            .context("committing train")
            .unwrap_err();
        assert!(already_committed(&wrapped));
        assert!(!already_committed(&commit("listed output is missing")));
        assert!(!already_committed(&anyhow::anyhow!(ALREADY_COMMITTED)));
    }
}
