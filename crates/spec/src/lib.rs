//! Sweep files, config layering, matrix expansion and the keys of the three identities.
//!
//! A sweep file (TOML, see [`schema`]) names models, datasets and protocols and a `[matrix]` over
//! them. [`Sweep::load`] reads it with its configuration layers (built-in defaults < the file <
//! `EMORG_*` environment < `--set key.path=value`; see [`load`]), and [`resolve`] expands it into
//! fully resolved [`Cell`]s: matrix rows, each naming its [`TrainingUnit`], [`SampleVariant`] and
//! [`Judgment`], whose content keys ([`TrainingUnit::key`], [`SampleVariant::key`],
//! [`Judgment::key`]) are computed in `cell.rs`. [`explain`] says which inputs of an identity
//! changed against a previous version of it.
//!
//! Every error names where it comes from: the file and line (or the environment variable, or the
//! `--set` argument) and the key path, with the nearest valid key when a key is unknown.

mod cell;
pub mod error;
mod explain;
pub mod load;
pub mod papers;
pub mod presets;
mod resolve;
pub mod schema;
pub mod secrets;
pub mod slurm;
pub mod suggest;

pub use cell::{
    Axes, Cell, DatasetRef, Intervention, JudgeBackend, JudgeRecord, JudgeSpec, Judgment,
    JudgmentKey, LoraSpec, ModelRef, OpenAiJudgeSpec, Protocol, ProtocolKind, SampleVariant,
    SamplerSpec, Scales, Stage, StageRef, TrainSpec, TrainingUnit, UnitKey, VariantKey,
    WORKER_VERSION, Weights, derive_seed, judge_id,
};
pub use error::{Diagnostic, Location, SpecError};
pub use explain::{explain, explain_values};
pub use load::{LoadOptions, Replicate, Sweep, env_overrides, parse_set};
pub use papers::{PAPER_DATASETS, PaperDataset, paper_dataset};
pub use resolve::{InputFile, InputKind, ModelInfo, Resolution, Resolver, resolve, resolve_full};
pub use schema::{
    CheckpointItem, CheckpointSel, DEFAULT_JUDGE, Defaults, JudgeBackendKind, JudgeOverrides,
    LayerSel, ScaleAxis, SweepFile,
};
pub use slurm::{SlurmConfig, SlurmResources};

#[cfg(test)]
mod tests;
