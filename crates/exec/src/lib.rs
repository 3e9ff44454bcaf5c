//! emorg's executors' common ground.
//!
//! An executor takes a [`Prepared`] sweep (inputs checked and uploaded, the record of every
//! training unit, sample variant and judgment in the store) and launches the stages of its
//! [`WorkGraph`] that are not done: each unit's train, each variant's sample after its unit's
//! train, each judgment's judge after its variant's sample. Two implement [`Executor`]: the local
//! one here ([`local::LocalExecutor`], worker subprocesses on this machine) and the Slurm one in
//! the emorg-slurm crate (job arrays through sbatch). Both read and write only through the store,
//! so they share only what is here: preparing a sweep ([`prepare`]), its work graph ([`graph`]),
//! the sweep record ([`record`]), the state of a stage in the store and the `--only` selection
//! ([`state`]), row selectors (`--cell`, [`rows`]), and the model and file resolver ([`resolver`]). Neither executor imports the
//! other.

pub mod graph;
pub mod local;
pub mod prepare;
pub mod record;
pub mod resolver;
pub mod rows;
pub mod state;

use std::collections::BTreeSet;

use emorg_spec::StageRef;

pub use graph::{Task, WorkGraph};
pub use local::{LocalExecutor, LocalRun, LogProgress, Progress, stage_label};
pub use prepare::{Prepared, ensure_models, prepare, worker_path};
pub use record::{RecordRow, SweepRecord, em_rule, open_store};
pub use resolver::LocalResolver;
pub use rows::{RowSelector, SelectorError};
pub use state::{
    LevelSelection, StageState, cell_states, select_launch, select_level, stage_state,
};

/// Launches the work of a prepared sweep.
pub trait Executor {
    /// What a launch gives back: the local executor's finished stages, Slurm's submission record.
    type Launched;

    /// "local", "slurm".
    fn name(&self) -> &'static str;

    /// Launches every stage of `prepared.graph` that is not done (only those `only` holds, and
    /// the not-done stages they run after, when it is given), each after the stage it needs.
    /// The local executor returns when they have run; the Slurm executor when they are queued.
    fn launch(
        &self,
        prepared: &Prepared,
        only: Option<&BTreeSet<StageRef>>,
    ) -> anyhow::Result<Self::Launched>;
}
