//! emorg's executors' common ground.
//!
//! An executor takes a [`Prepared`] sweep (inputs checked and uploaded, each `cell.json` in the
//! store) and launches the stages that are not done. Two implement [`Executor`]: the local one
//! here ([`local::LocalExecutor`], worker subprocesses on this machine) and the Slurm one in the
//! emorg-slurm crate (job arrays through sbatch). Both read and write only through the store, so
//! they share only what is here: preparing a sweep ([`prepare`]), the sweep record
//! ([`record`]), the state of a stage in the store ([`state`]), and the model and file resolver
//! ([`resolver`]). Neither executor imports the other.

pub mod local;
pub mod prepare;
pub mod record;
pub mod resolver;
pub mod state;

use std::collections::BTreeSet;

pub use local::{LocalExecutor, LocalRun, LogProgress, Progress};
pub use prepare::{Prepared, ensure_models, prepare, worker_path};
pub use record::{SweepRecord, em_rule, open_store};
pub use resolver::LocalResolver;
pub use state::{StageState, cell_states, stage_state};

/// Launches the work of a prepared sweep.
pub trait Executor {
    /// What a launch gives back: the local executor's finished stages, Slurm's submission record.
    type Launched;

    /// "local", "slurm".
    fn name(&self) -> &'static str;

    /// Launches every stage that is not done, of the cells whose keys `only` holds (every cell
    /// when `None`), in stage order per cell. The local executor returns when they have run; the
    /// Slurm executor when they are queued.
    fn launch(
        &self,
        prepared: &Prepared,
        only: Option<&BTreeSet<String>>,
    ) -> anyhow::Result<Self::Launched>;
}
