//! The Slurm executor: job scripts rendered from templates, submitted with `sbatch`, followed with
//! `squeue`/`sacct`, cancelled with `scancel` (all through std::process, see [`cli`]).
//!
//! A submission schedules the sweep's work graph ([`emorg_exec::WorkGraph`]): the train stages of
//! the training units, the sample stages of their variants after them, the judge stages of the
//! judgments after those, each element-wise (`--dependency=aftercorr:ID`: task i of an array
//! starts when task i of the array it depends on has completed). [`plan`] lays the stages that
//! need work out as job arrays (and says why that layout: a train array per chunk of units, a
//! sample array per variant slot, a judge array per (variant slot, judge slot)); each array's
//! keys file maps an index to the key of the stage's owner, which the script passes to
//! `emorg-worker <stage> --key`. Rendering ([`SlurmExecutor::render`]) is apart from submitting
//! ([`SlurmExecutor::launch`]), so `emorg render` writes the same scripts without a cluster. The
//! store stays the truth for done and failed; squeue and sacct add the live state of what was
//! submitted ([`status`]).

pub mod cli;
pub mod plan;
pub mod render;
pub mod states;
pub mod status;
pub mod submission;
pub mod template;
pub mod testing;

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Result;
use chrono::Utc;
use emorg_exec::{Executor, Prepared, WorkGraph};
use emorg_spec::{Cell, Stage, StageRef, Sweep};
use emorg_store::{Store, layout};
use tracing::warn;

pub use render::{absolute_store_url, profile_of, stages_to_run, state_dir};
pub use states::StoreStates;
pub use status::{RowStatus, StageStatus, StatusReport, collect_status};
pub use submission::{
    ArrayJob, Chunk, Placement, SUBMISSION_FORMAT, Submission, placements, submissions,
};
pub use template::{ScriptContext, Templates, shell_quote};

/// MaxArraySize assumed when no Slurm is reachable (Slurm's default).
pub const DEFAULT_MAX_ARRAY_SIZE: usize = 1001;

/// The Slurm executor of one sweep: its templates, the worker path the scripts run, and the
/// cluster's MaxArraySize.
pub struct SlurmExecutor {
    pub templates: Templates,
    pub worker: String,
    pub max_array_size: usize,
}

/// Scripts written, not submitted: the chunks carry no job ids.
pub struct Rendered {
    /// Stages to run.
    pub stages: usize,
    pub chunks: Vec<Chunk>,
}

impl Rendered {
    /// The job arrays, in submission order.
    pub fn jobs(&self) -> impl Iterator<Item = &ArrayJob> {
        self.chunks.iter().flat_map(|c| c.jobs.iter())
    }
}

impl SlurmExecutor {
    /// For a sweep, with `max_array_size` as the cluster says (see [`cli::max_array_size`]).
    pub fn new(sweep: &Sweep, max_array_size: usize) -> Result<SlurmExecutor> {
        Ok(SlurmExecutor {
            templates: render::templates_for(sweep)?,
            worker: render::worker_for(sweep)?,
            max_array_size,
        })
    }

    /// Writes the scripts and keys files for the stages of `graph` (the work of `cells`) that are
    /// not done (those of `only` and the not-done stages they run after, when given) into `dir`;
    /// `store_url` is what the scripts pass to the worker.
    #[allow(clippy::too_many_arguments)]
    pub fn render(
        &self,
        sweep: &Sweep,
        cells: &[Cell],
        graph: &WorkGraph,
        store: &Store,
        only: Option<&BTreeSet<StageRef>>,
        dir: &Path,
        store_url: &str,
    ) -> Result<Rendered> {
        let run = stages_to_run(store, graph, only)?;
        let profile = |t: &emorg_exec::Task| profile_of(sweep, cells, t);
        let planned = plan::plan(graph, &run, &profile, self.max_array_size);
        let chunks = render::write_scripts(
            sweep,
            &self.templates,
            &planned,
            dir,
            store_url,
            &self.worker,
        )?;
        Ok(Rendered {
            stages: run.len(),
            chunks,
        })
    }
}

impl Executor for SlurmExecutor {
    /// The submission record (also saved in the store), or `None` when nothing needed work.
    type Launched = Option<Submission>;

    fn name(&self) -> &'static str {
        "slurm"
    }

    /// Renders into `<state dir>/<sweep>/<submission id>/`, checks the scripts with
    /// `sbatch --test-only`, submits the arrays with their dependencies, and saves the submission
    /// record. On any refusal the jobs already queued are cancelled and nothing is recorded.
    fn launch(
        &self,
        prepared: &Prepared,
        only: Option<&BTreeSet<StageRef>>,
    ) -> Result<Option<Submission>> {
        let sweep = &prepared.sweep;
        let abs_url = absolute_store_url(&prepared.store_url)?;
        let id = Utc::now().format("%Y-%m-%dT%H-%M-%S%.3fZ").to_string();
        let dir = state_dir(sweep).join(&sweep.file.name).join(&id);
        let rendered = self
            .render(
                sweep,
                &prepared.cells,
                &prepared.graph,
                &prepared.store,
                only,
                &dir,
                &abs_url,
            )
            .inspect_err(|_| {
                let _ = std::fs::remove_dir_all(&dir);
            })?;
        if rendered.stages == 0 {
            let _ = std::fs::remove_dir_all(&dir);
            return Ok(None);
        }
        let mut chunks = rendered.chunks;
        let calls = submit_chunks(&mut chunks).inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&dir);
        })?;
        let submission = Submission {
            format: SUBMISSION_FORMAT,
            sweep: sweep.file.name.clone(),
            id: id.clone(),
            created_at: Utc::now(),
            store_url: abs_url,
            dir: dir.display().to_string(),
            max_array_size: self.max_array_size,
            sbatch_calls: calls,
            chunks,
        };
        prepared.store.put_json(
            &layout::sweep_submission(&sweep.file.name, &id),
            &submission,
        )?;
        Ok(Some(submission))
    }
}

/// Submits the arrays of `chunks` in order, each with `aftercorr` on the job of the array it runs
/// after; on any refusal cancels what was already submitted. Returns the number of sbatch calls.
///
/// Scripts are checked first with `sbatch --test-only` (partition, limits, syntax), so that a
/// refusal usually happens before anything is queued: one check per (stage, resource profile),
/// since the scripts of one (stage, profile) carry the same directives and differ only in the
/// array's indices, keys file and log name (and `--test-only` stands for the array with one
/// index, see [`cli::sbatch`]).
pub fn submit_chunks(chunks: &mut [Chunk]) -> Result<usize> {
    let mut calls = 0usize;
    let mut checked: BTreeSet<(Stage, &str)> = BTreeSet::new();
    for j in chunks.iter().flat_map(|c| c.jobs.iter()) {
        if checked.insert((j.stage, j.profile.as_str())) {
            cli::sbatch(Path::new(&j.script), None, true)?;
            calls += 1;
        }
    }
    let mut submitted: Vec<String> = Vec::new();
    for c in chunks.iter_mut() {
        for n in 0..c.jobs.len() {
            let dep = c.jobs[n]
                .after
                .as_ref()
                .and_then(|a| c.jobs[..n].iter().find(|j| &j.name == a))
                .map(|j| j.job_id.clone());
            let j = &mut c.jobs[n];
            match cli::sbatch(Path::new(&j.script), dep.as_deref(), false) {
                Ok(id) => {
                    calls += 1;
                    j.dependency = dep.map(|d| format!("aftercorr:{d}"));
                    j.job_id = id.clone();
                    submitted.push(id);
                }
                Err(e) => {
                    if let Err(ce) = cli::scancel(&submitted) {
                        warn!(
                            "cannot cancel the jobs already submitted ({}): {ce:#}",
                            submitted.join(" ")
                        );
                    }
                    return Err(e.context(format!(
                        "nothing was recorded; the {} job(s) already submitted were cancelled",
                        submitted.len()
                    )));
                }
            }
        }
    }
    Ok(calls)
}

/// Cancels the sweep's job arrays that still have pending or running tasks; returns their ids,
/// or `None` when the sweep was never submitted.
pub fn cancel(store: &Store, sweep: &str) -> Result<Option<Vec<String>>> {
    let subs = submissions(store, sweep)?;
    let mut ids: Vec<String> = subs
        .iter()
        .flat_map(|s| s.jobs().map(|j| j.job_id.clone()))
        .collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Ok(None);
    }
    let live: BTreeSet<String> = cli::squeue(&ids)?
        .into_iter()
        .filter(|(_, s)| s.is_live())
        .map(|(t, _)| t.split('_').next().unwrap_or("").to_string())
        .collect();
    let live: Vec<String> = live.into_iter().collect();
    cli::scancel(&live)?;
    Ok(Some(live))
}
