//! The Slurm executor: job scripts rendered from templates, submitted with `sbatch`, followed with
//! `squeue`/`sacct`, cancelled with `scancel` (all through std::process, see [`cli`]).
//!
//! A submission groups the cells that need work by (resource profile, stages left): the profile is
//! the cell's protocol when `[slurm.protocols]` names it, else the default. Each group is split in
//! chunks of at most MaxArraySize cells, and each chunk gets one job array per stage left, later
//! stages depending element-wise on the earlier one (`--dependency=aftercorr:ID`): task i of every
//! array of a chunk is the same cell, line i+1 of the chunk's cells file. Rendering ([`render`])
//! is apart from submitting ([`SlurmExecutor::launch`]), so `emorg render` writes the same scripts
//! without a cluster. The store stays the truth for done and failed; squeue and sacct add the live
//! state of what was submitted ([`status`]).

pub mod cli;
pub mod render;
pub mod status;
pub mod submission;
pub mod template;

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Result;
use chrono::Utc;
use emorg_exec::{Executor, Prepared};
use emorg_spec::{Cell, Sweep};
use emorg_store::{Store, layout};
use tracing::warn;

pub use render::{Pending, absolute_store_url, pending_cells, state_dir};
pub use status::{CellStatus, StageStatus, StatusReport, collect_status};
pub use submission::{ArrayJob, Chunk, SUBMISSION_FORMAT, Submission, placements, submissions};
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
    /// Cells with a stage to run.
    pub pending: usize,
    pub chunks: Vec<Chunk>,
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

    /// Writes the scripts and cells files for the cells (of `only`, when given) with a stage that
    /// is not done into `dir`; `store_url` is what the scripts pass to the worker.
    pub fn render(
        &self,
        sweep: &Sweep,
        cells: &[Cell],
        store: &Store,
        only: Option<&BTreeSet<String>>,
        dir: &Path,
        store_url: &str,
    ) -> Result<Rendered> {
        let pending = pending_cells(store, cells, only)?;
        let planned = render::plan_chunks(sweep, &pending, self.max_array_size);
        let chunks = render::write_scripts(
            sweep,
            &self.templates,
            &planned,
            dir,
            store_url,
            &self.worker,
        )?;
        Ok(Rendered {
            pending: pending.len(),
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

    /// Renders into `<state dir>/<sweep>/<submission id>/`, checks every script with
    /// `sbatch --test-only`, submits the arrays with their dependencies, and saves the submission
    /// record. On any refusal the jobs already queued are cancelled and nothing is recorded.
    fn launch(
        &self,
        prepared: &Prepared,
        only: Option<&BTreeSet<String>>,
    ) -> Result<Option<Submission>> {
        let sweep = &prepared.sweep;
        let abs_url = absolute_store_url(&prepared.store_url)?;
        let id = Utc::now().format("%Y-%m-%dT%H-%M-%S%.3fZ").to_string();
        let dir = state_dir(sweep).join(&sweep.file.name).join(&id);
        let rendered = self
            .render(
                sweep,
                &prepared.cells,
                &prepared.store,
                only,
                &dir,
                &abs_url,
            )
            .inspect_err(|_| {
                let _ = std::fs::remove_dir_all(&dir);
            })?;
        if rendered.pending == 0 {
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

/// Submits `chunks`' scripts; on any refusal cancels what was already submitted.
fn submit_chunks(chunks: &mut [Chunk]) -> Result<usize> {
    // Every script is checked first (sbatch --test-only: partition, limits, syntax), so that a
    // refusal usually happens before anything is queued.
    let mut calls = 0usize;
    for c in chunks.iter() {
        for j in &c.jobs {
            cli::sbatch(Path::new(&j.script), None, true)?;
            calls += 1;
        }
    }
    let mut submitted: Vec<String> = Vec::new();
    for c in chunks.iter_mut() {
        let mut prev: Option<String> = None;
        for j in c.jobs.iter_mut() {
            match cli::sbatch(Path::new(&j.script), prev.as_deref(), false) {
                Ok(id) => {
                    calls += 1;
                    j.dependency = prev.as_ref().map(|p| format!("aftercorr:{p}"));
                    j.job_id = id.clone();
                    submitted.push(id.clone());
                    prev = Some(id);
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
        .flat_map(|s| {
            s.chunks
                .iter()
                .flat_map(|c| c.jobs.iter().map(|j| j.job_id.clone()))
        })
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
