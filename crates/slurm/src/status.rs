//! Status of a sweep's stages: the store is the truth for done and failed; squeue (live) and sacct
//! (final, when accounting is on) add the Slurm state of each stage's last submission. Each
//! distinct stage (a unit's train, a variant's sample, a judgment's judge) is looked at once; a
//! row of the matrix shows the states of the stages it is the product of.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use emorg_exec::{StageState, WorkGraph};
use emorg_spec::{Axes, Cell, JudgmentKey, Stage, StageRef, Sweep, UnitKey, VariantKey};
use emorg_store::Store;
use emorg_store::claim::held_claim;
use serde::Serialize;
use tracing::warn;

use crate::cli::{self, TaskState};
use crate::states::StoreStates;
use crate::submission::{Placement, placements, submissions};

/// States that count as a failure of the stage (`rerun --failed` submits them again).
const FAILED: &[&str] = &[
    "failed",
    "timeout",
    "out_of_memory",
    "node_fail",
    "boot_fail",
    "deadline",
    "preempted",
];

/// States after which the stages that run after this one cannot run: they are `blocked`.
const BLOCKING: &[&str] = &[
    "failed",
    "timeout",
    "cancelled",
    "out_of_memory",
    "node_fail",
    "boot_fail",
    "deadline",
    "preempted",
    "blocked",
];

#[derive(Debug, Clone, Serialize)]
pub struct StageStatus {
    /// `"stage"` (train, sample, judge) and `"key"` (of its unit, variant or judgment).
    #[serde(flatten)]
    pub of: StageRef,
    /// done, failed, timeout, cancelled, out_of_memory, node_fail, blocked (a stage it runs after
    /// failed or was cancelled), claimed (another run holds it or a stage it runs after: `reason`
    /// names the run), pending, running, stale, missing
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

impl StageStatus {
    pub fn stage(&self) -> Stage {
        self.of.stage()
    }

    /// Failed in the store or in Slurm (failed, timeout, out of memory, node failure, ...); not
    /// cancelled, not blocked.
    pub fn failed(&self) -> bool {
        FAILED.contains(&self.state.as_str())
    }
}

/// One row of the matrix: its axes, its identities' keys, and its stages' states.
#[derive(Debug, Clone, Serialize)]
pub struct RowStatus {
    pub axes: Axes,
    pub unit: UnitKey,
    pub variant: VariantKey,
    pub judgment: JudgmentKey,
    /// Its train (when the unit trains), sample and judge stages, in pipeline order.
    pub stages: Vec<StageStatus>,
}

impl RowStatus {
    /// A stage of the row failed.
    pub fn failed(&self) -> bool {
        self.stages.iter().any(StageStatus::failed)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub sweep: String,
    /// How Slurm was asked: "squeue, sacct", "squeue, sacct: accounting disabled ...", or
    /// "nothing submitted".
    pub slurm: String,
    /// Every distinct stage once: trains, then samples, then judges.
    pub stages: Vec<StageStatus>,
    pub rows: Vec<RowStatus>,
}

impl StatusReport {
    pub fn any_failed(&self) -> bool {
        self.stages.iter().any(StageStatus::failed)
    }

    /// A stage is pending or running in Slurm.
    pub fn any_live(&self) -> bool {
        self.stages.iter().any(|s| s.live)
    }

    /// The failed stages, and the stages that run after them and are not done (blocked, or
    /// waiting in Slurm): what `rerun --failed` submits.
    pub fn failed_and_after(&self, graph: &WorkGraph) -> (Vec<StageRef>, BTreeSet<StageRef>) {
        let failed: Vec<StageRef> = self
            .stages
            .iter()
            .filter(|s| s.failed())
            .map(|s| s.of.clone())
            .collect();
        let not_done: BTreeSet<&StageRef> = self
            .stages
            .iter()
            .filter(|s| s.state != "done")
            .map(|s| &s.of)
            .collect();
        let mut run: BTreeSet<StageRef> = failed.iter().cloned().collect();
        // Graph order: a stage's upstream is decided before it.
        for task in &graph.tasks {
            if task.after.as_ref().is_some_and(|a| run.contains(a))
                && not_done.contains(&task.stage)
            {
                run.insert(task.stage.clone());
            }
        }
        (failed, run)
    }

    /// Distinct stages per (stage, state).
    pub fn counts(&self) -> BTreeMap<(Stage, &str), usize> {
        let mut counts = BTreeMap::new();
        for s in &self.stages {
            *counts.entry((s.stage(), s.state.as_str())).or_default() += 1;
        }
        counts
    }
}

/// The status of `cells` (of `sweep`, whose submissions the store holds).
pub fn collect_status(sweep: &Sweep, cells: &[Cell], store: &Store) -> Result<StatusReport> {
    let graph = WorkGraph::new(cells);
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
    // squeue is fresher; sacct fills in what squeue no longer holds.
    let task_state = |p: &Placement| -> Option<TaskState> {
        let t = p.task_id();
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

    let mut states = StoreStates::new(store, &graph);
    let mut stages: Vec<StageStatus> = Vec::with_capacity(graph.tasks.len());
    let mut index: BTreeMap<StageRef, usize> = BTreeMap::new();
    for task in &graph.tasks {
        let of = &task.stage;
        let st = states.stage_state(of)?;
        let upstream = task
            .after
            .as_ref()
            .and_then(|a| index.get(a))
            .map(|&i| &stages[i]);
        // The newest submission of the stage that is still queued or running, else the newest
        // (after a duplicate submission the older one may be the one doing the work).
        let place = places.get(of).and_then(|ps| {
            ps.iter()
                .rev()
                .find(|p| task_state(p).is_some_and(|t| t.is_live()))
                .or(ps.last())
        });
        let ts: Option<TaskState> = place.and_then(task_state);
        // Another run holds the stage (its task here exited leaving it to that run), or the
        // stage it runs after, which that run goes on from.
        let holder = if st == StageState::Done || ts.as_ref().is_some_and(TaskState::is_live) {
            None
        } else if let Some(c) = held_claim(store, of)? {
            Some(format!("held by {}", c.describe()))
        } else {
            upstream.filter(|u| u.state == "claimed").map(|u| {
                format!(
                    "waits for the {}, {}",
                    u.of,
                    u.reason.as_deref().unwrap_or("")
                )
            })
        };
        let upstream_blocks = upstream.is_some_and(|u| BLOCKING.contains(&u.state.as_str()));
        let is_live = ts.as_ref().is_some_and(TaskState::is_live)
            && ts.as_ref().and_then(|t| t.reason.as_deref()) != Some("DependencyNeverSatisfied");
        let state = if st == StageState::Done {
            "done".to_string()
        } else if is_live {
            match ts.as_ref().map(|t| t.state.as_str()) {
                Some("RUNNING") | Some("COMPLETING") => "running".into(),
                _ => "pending".into(),
            }
        } else if holder.is_some() {
            "claimed".into()
        } else if upstream_blocks {
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
        index.insert(of.clone(), stages.len());
        stages.push(StageStatus {
            of: of.clone(),
            state,
            store: st.to_string(),
            task: place.map(Placement::task_id),
            slurm_state: ts.as_ref().map(|t| t.state.clone()),
            reason: holder.or_else(|| ts.as_ref().and_then(|t| t.reason.clone())),
            exit_code: ts.as_ref().and_then(|t| t.exit_code.clone()),
            log: place.map(|p| p.job.log_path(p.index).display().to_string()),
            live: is_live && st != StageState::Done,
        });
    }

    let rows = cells
        .iter()
        .map(|cell| RowStatus {
            axes: cell.axes.clone(),
            unit: cell.unit_key(),
            variant: cell.variant_key(),
            judgment: cell.judgment_key(),
            stages: cell
                .chain()
                .iter()
                .map(|s| stages[index[s]].clone())
                .collect(),
        })
        .collect();
    Ok(StatusReport {
        sweep: sweep.file.name.clone(),
        slurm,
        stages,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_status_names_its_stage_and_key_in_json_and_failed_stages_take_their_dependants() {
        let cells = crate::testing::rows(1, 2, 1, false, "r1");
        let graph = WorkGraph::new(&cells);
        let status = |of: &StageRef, state: &str| StageStatus {
            of: of.clone(),
            state: state.into(),
            store: "missing".into(),
            task: None,
            slurm_state: None,
            reason: None,
            exit_code: None,
            log: None,
            live: false,
        };
        let train = &graph.tasks[0].stage;
        let json = serde_json::to_value(status(train, "failed")).unwrap();
        assert_eq!(json["stage"], "train");
        assert_eq!(json["key"], train.key());
        assert_eq!(json["state"], "failed");

        // A failed sample: it and its judge are rerun; the other variant (done) is not.
        let stages: Vec<StageStatus> = graph
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| match i {
                1 => status(&t.stage, "timeout"),
                3 => status(&t.stage, "blocked"),
                _ => status(&t.stage, "done"),
            })
            .collect();
        let report = StatusReport {
            sweep: "s".into(),
            slurm: String::new(),
            stages,
            rows: vec![],
        };
        let (failed, run) = report.failed_and_after(&graph);
        assert_eq!(failed, [graph.tasks[1].stage.clone()]);
        assert_eq!(
            run,
            [graph.tasks[1].stage.clone(), graph.tasks[3].stage.clone()].into()
        );
        assert_eq!(graph.tasks[3].after.as_ref(), Some(&graph.tasks[1].stage));
    }
}
