//! Status of a sweep's cells: the store is the truth for done and failed; squeue (live) and sacct
//! (final, when accounting is on) add the Slurm state of each (cell, stage)'s last submission.

use std::collections::BTreeMap;

use anyhow::Result;
use emorg_exec::{StageState, stage_state};
use emorg_spec::{Axes, Cell, Stage, Sweep};
use emorg_store::Store;
use emorg_store::claim::held_claim;
use serde::Serialize;
use tracing::warn;

use crate::cli::{self, TaskState};
use crate::submission::{Placement, placements, submissions};

#[derive(Debug, Clone, Serialize)]
pub struct StageStatus {
    pub stage: Stage,
    /// done, failed, timeout, cancelled, out_of_memory, node_fail, blocked, claimed (another run
    /// holds it or an earlier stage: `reason` names the run), pending, running, stale, missing
    pub state: String,
    /// The store's view (done, failed, invalid, stale, missing).
    pub store: String,
    /// `ARRAYID_INDEX` of the last submission of this stage.
    pub task: Option<String>,
    pub slurm_state: Option<String>,
    pub reason: Option<String>,
    pub exit_code: Option<String>,
    pub log: Option<String>,
    /// Pending or running in Slurm.
    pub live: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CellStatus {
    pub key: String,
    pub axes: Axes,
    pub stages: Vec<StageStatus>,
}

impl CellStatus {
    /// A stage failed (in the store or in Slurm: failed, timeout, out of memory, node failure).
    pub fn failed(&self) -> bool {
        self.stages.iter().any(|s| {
            matches!(
                s.state.as_str(),
                "failed"
                    | "timeout"
                    | "out_of_memory"
                    | "node_fail"
                    | "boot_fail"
                    | "deadline"
                    | "preempted"
            )
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub sweep: String,
    /// How Slurm was asked: "squeue+sacct", "squeue (accounting disabled)", or why not at all.
    pub slurm: String,
    pub rows: Vec<CellStatus>,
}

impl StatusReport {
    pub fn any_failed(&self) -> bool {
        self.rows.iter().any(CellStatus::failed)
    }
}

/// The status of `cells` (of `sweep`, whose submissions the store holds).
pub fn collect_status(sweep: &Sweep, cells: &[Cell], store: &Store) -> Result<StatusReport> {
    let subs = submissions(store, &sweep.file.name)?;
    let places = placements(&subs);
    let mut ids: Vec<String> = places
        .values()
        .flatten()
        .map(|p| p.job.job_id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    // Live state from squeue, final state from sacct; each may be unavailable.
    let mut notes = Vec::new();
    let live = if ids.is_empty() {
        BTreeMap::new()
    } else {
        match cli::squeue(&ids) {
            Ok(m) => {
                notes.push("squeue");
                m
            }
            Err(e) => {
                notes.push("no squeue");
                warn!("{e:#}");
                BTreeMap::new()
            }
        }
    };
    let acct = if ids.is_empty() {
        BTreeMap::new()
    } else {
        match cli::sacct(&ids) {
            Ok(Some(m)) => {
                notes.push("sacct");
                m
            }
            Ok(None) => {
                notes.push(
                    "sacct: accounting disabled, so jobs Slurm has forgotten (MinJobAge) show only the store's state",
                );
                BTreeMap::new()
            }
            Err(e) => {
                notes.push("no sacct");
                warn!("{e:#}");
                BTreeMap::new()
            }
        }
    };
    let slurm = if ids.is_empty() {
        "nothing submitted".to_string()
    } else {
        notes.join(", ")
    };

    let mut rows = Vec::new();
    for cell in cells {
        let key = cell.key();
        let mut stages: Vec<StageStatus> = Vec::new();
        for stage in cell.stages() {
            let st = stage_state(store, &key, stage)?;
            // squeue is fresher; sacct fills in what squeue no longer holds.
            let task_state = |p: &Placement| {
                let t = format!("{}_{}", p.job.job_id, p.index);
                match (live.get(&t), acct.get(&t)) {
                    (Some(l), Some(a)) if !l.is_live() => Some(TaskState {
                        exit_code: a.exit_code.clone(),
                        ..l.clone()
                    }),
                    (Some(l), _) => Some(l.clone()),
                    (None, Some(a)) => Some(a.clone()),
                    (None, None) => None,
                }
            };
            // The newest submission of the stage that is still queued or running, else the newest
            // (after a duplicate submission the older one may be the one doing the work).
            let all = places.get(&(key.clone(), stage));
            let place = all.and_then(|ps| {
                ps.iter()
                    .rev()
                    .find(|p| task_state(p).is_some_and(|t| t.is_live()))
                    .or(ps.last())
            });
            let task = place.map(|p| format!("{}_{}", p.job.job_id, p.index));
            let ts: Option<TaskState> = place.and_then(task_state);
            // Another run holds the stage (its task here exited leaving it to that run), or an
            // earlier stage of the cell, which that run goes on from.
            let holder = if st == StageState::Done || ts.as_ref().is_some_and(TaskState::is_live) {
                None
            } else if let Some(c) = held_claim(store, &key, stage.dir())? {
                Some(format!("held by {}", c.describe()))
            } else {
                stages.iter().find(|s| s.state == "claimed").map(|s| {
                    format!(
                        "waits for stage {}, {}",
                        s.stage,
                        s.reason.as_deref().unwrap_or("")
                    )
                })
            };
            let earlier_failed = stages.iter().any(|s| {
                matches!(
                    s.state.as_str(),
                    "failed" | "timeout" | "cancelled" | "out_of_memory" | "node_fail" | "blocked"
                )
            });
            let is_live = ts.as_ref().is_some_and(TaskState::is_live)
                && ts.as_ref().and_then(|t| t.reason.as_deref())
                    != Some("DependencyNeverSatisfied");
            let state = if st == StageState::Done {
                "done".to_string()
            } else if is_live {
                match ts.as_ref().map(|t| t.state.as_str()) {
                    Some("RUNNING") | Some("COMPLETING") => "running".into(),
                    _ => "pending".into(),
                }
            } else if holder.is_some() {
                "claimed".into()
            } else if earlier_failed {
                "blocked".into()
            } else if st == StageState::Failed {
                "failed".into()
            } else if matches!(st, StageState::Stale(_)) {
                // Done once, but from upstream outputs that changed since: submit it again. Not
                // what Slurm says of the old task, which may have completed.
                "stale".into()
            } else {
                match ts.as_ref().map(|t| t.state.as_str()) {
                    Some("COMPLETED") => "failed".into(), // exited 0 without a valid DONE.json
                    Some("CANCELLED") => "cancelled".into(),
                    Some(s) => s.to_ascii_lowercase(),
                    None => "missing".into(),
                }
            };
            stages.push(StageStatus {
                stage,
                state,
                store: st.to_string(),
                task: task.clone(),
                slurm_state: ts.as_ref().map(|t| t.state.clone()),
                reason: holder.or_else(|| ts.as_ref().and_then(|t| t.reason.clone())),
                exit_code: ts.as_ref().and_then(|t| t.exit_code.clone()),
                log: place.map(|p| p.job.log_path(p.index).display().to_string()),
                live: is_live && st != StageState::Done,
            });
        }
        rows.push(CellStatus {
            key,
            axes: cell.axes.clone(),
            stages,
        });
    }
    Ok(StatusReport {
        sweep: sweep.file.name.clone(),
        slurm,
        rows,
    })
}
