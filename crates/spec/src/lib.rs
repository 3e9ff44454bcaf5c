//! Sweep files, config layering, cell expansion and cell keys.
//!
//! A sweep file (TOML, see [`schema`]) names models, datasets and protocols and a `[matrix]` over
//! them. [`Sweep::load`] reads it with its configuration layers (built-in defaults < the file <
//! `EMORG_*` environment < `--set key.path=value`; see [`load`]), and [`resolve`] expands it into
//! fully resolved [`Cell`]s, each with a content key ([`Cell::key`]). [`explain`] says which inputs
//! of a cell changed against a previous version of it.
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
    Axes, Cell, DatasetRef, EvalSpec, JudgeBackend, JudgeRecord, JudgeSpec, LoraSpec, ModelRef,
    OpenAiJudgeSpec, Protocol, ProtocolKind, Stage, TrainSpec, WORKER_VERSION, derive_seed,
    judge_id,
};
pub use error::{Diagnostic, Location, SpecError};
pub use explain::{explain, explain_values};
pub use load::{LoadOptions, Sweep, env_overrides, parse_set};
pub use papers::{PAPER_DATASETS, PaperDataset, paper_dataset};
pub use resolve::{InputFile, InputKind, ModelInfo, Resolution, Resolver, resolve, resolve_full};
pub use schema::{Defaults, JudgeBackendKind, LayerSel, SweepFile};
pub use slurm::{SlurmConfig, SlurmResources};

#[cfg(test)]
mod tests;
