//! Claims: at most one run works on a stage of a cell and commits it.
//!
//! Before a stage runs, the worker creates `cells/<key>/<stage_dir>/CLAIM.json` with a create-only
//! put (`Store::put_new`): the run that creates it holds the stage. A run that finds a claim takes
//! it over only when the claim is provably stale: it is an earlier run of the same Slurm task (a
//! requeue: Slurm ends the old run before it starts the new one), its process on this host is gone,
//! or its Slurm task is no longer queued or running (`squeue`); `--take-over` forces it. Otherwise
//! the worker stops with [`CLAIMED_EXIT_CODE`] and names the claim. Right before `DONE.json` is
//! written the claim is read again: a run whose claim was taken over meanwhile (a stray job after
//! its task was requeued elsewhere) does not commit, and says so, with the same exit code. The
//! claim is removed after a commit or a recorded failure and kept on a requeue exit (the requeued
//! run takes it over).

use anyhow::{Context as _, Result};
use emorg_store::{Store, layout};
use serde::{Deserialize, Serialize};
use std::process::Command;

pub use emorg_store::CLAIMED_EXIT_CODE;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// Unique per run: host, pid and start time.
    pub run: String,
    pub host: String,
    pub pid: u32,
    /// `<array job>_<index>` (or the job id) when the run is a Slurm task.
    pub slurm_task: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
}

impl Claim {
    fn mine() -> Claim {
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        let pid = std::process::id();
        let at = chrono::Utc::now();
        Claim {
            run: format!(
                "{host}-{pid}-{}",
                at.timestamp_nanos_opt().unwrap_or_default()
            ),
            host,
            pid,
            slurm_task: slurm_task(),
            at,
        }
    }

    fn describe(&self) -> String {
        let slurm = match &self.slurm_task {
            Some(t) => format!(", Slurm task {t}"),
            None => String::new(),
        };
        format!(
            "run {} (host {}, pid {}{slurm}, since {})",
            self.run,
            self.host,
            self.pid,
            self.at.format("%Y-%m-%d %H:%M:%S UTC")
        )
    }
}

/// The stage belongs to another run (see the module docs); the message names it.
#[derive(Debug)]
pub struct Claimed(pub String);

impl std::fmt::Display for Claimed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Claimed {}

fn slurm_task() -> Option<String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID")) {
        (Some(job), Some(task)) => Some(format!("{job}_{task}")),
        _ => var("SLURM_JOB_ID"),
    }
}

/// Why `found` may be taken over by `me`, or `None` when it must be respected.
fn stale_reason(found: &Claim, me: &Claim) -> Option<String> {
    if let (Some(a), Some(b)) = (&found.slurm_task, &me.slurm_task)
        && a == b
    {
        return Some(format!("it is an earlier run of this Slurm task ({a})"));
    }
    if found.host == me.host && !std::path::Path::new(&format!("/proc/{}", found.pid)).exists() {
        return Some(format!("its process {} on this host is gone", found.pid));
    }
    if let Some(task) = &found.slurm_task
        && slurm_task_ended(task)
    {
        return Some(format!(
            "its Slurm task {task} is no longer queued or running"
        ));
    }
    None
}

/// Whether `squeue` says the task has ended (false when squeue cannot tell).
fn slurm_task_ended(task: &str) -> bool {
    let Ok(out) = Command::new("squeue")
        .args(["-h", "-j", task, "-o", "%T"])
        .output()
    else {
        return false;
    };
    if !out.status.success() {
        // A job slurmctld has forgotten.
        return String::from_utf8_lossy(&out.stderr).contains("Invalid job id");
    }
    let states = String::from_utf8_lossy(&out.stdout);
    let live = [
        "PENDING",
        "RUNNING",
        "CONFIGURING",
        "COMPLETING",
        "SUSPENDED",
        "REQUEUED",
        "REQUEUE_HOLD",
        "REQUEUE_FED",
        "RESIZING",
        "STOPPED",
        "SIGNALING",
        "STAGE_OUT",
    ];
    !states.split_whitespace().any(|s| live.contains(&s))
}

/// This run's hold on a stage.
pub struct Held {
    key: String,
    claim: Claim,
}

/// Claims the stage `stage_dir` of `cell_key` for this run (see the module docs).
pub fn acquire(store: &Store, cell_key: &str, stage_dir: &str, take_over: bool) -> Result<Held> {
    let key = layout::claim(cell_key, stage_dir);
    let me = Claim::mine();
    let bytes = serde_json::to_vec_pretty(&me)?;
    for _ in 0..3 {
        if store.put_new(&key, bytes.clone())? {
            return Ok(Held { key, claim: me });
        }
        let Some(found) = store.get_opt(&key)? else {
            continue; // released meanwhile
        };
        let reason = match serde_json::from_slice::<Claim>(&found) {
            Err(e) => Some(format!("it does not parse ({e})")),
            Ok(_) if take_over => Some("--take-over".to_string()),
            Ok(c) => match stale_reason(&c, &me) {
                Some(r) => Some(format!("{}: {r}", c.describe())),
                None => {
                    return Err(Claimed(format!(
                        "stage {stage_dir} of cell {cell_key} is claimed by {}: another run is working on it. \
                         If that run is dead, rerun with --take-over (or delete {key})",
                        c.describe()
                    ))
                    .into());
                }
            },
        };
        let reason = reason.unwrap_or_default();
        tracing::warn!("taking over the claim {key}: {reason}");
        store
            .delete(&key)
            .with_context(|| format!("removing the stale claim {key}"))?;
    }
    Err(Claimed(format!(
        "could not claim stage {stage_dir} of cell {cell_key}: other runs kept taking {key}"
    ))
    .into())
}

impl Held {
    /// Before the commit: the claim must still be this run's (a run whose claim was taken over
    /// does not commit).
    pub fn check(&self, store: &Store) -> Result<()> {
        let found = store.get_opt(&self.key)?;
        let current = found.and_then(|b| serde_json::from_slice::<Claim>(&b).ok());
        match current {
            Some(c) if c.run == self.claim.run => Ok(()),
            Some(c) => Err(Claimed(format!(
                "lost the claim {} to {} while running: not committing this run's result",
                self.key,
                c.describe()
            ))
            .into()),
            None => Err(Claimed(format!(
                "the claim {} was removed while this run worked: not committing this run's result",
                self.key
            ))
            .into()),
        }
    }

    /// Removes the claim if it is still this run's.
    pub fn release(&self, store: &Store) -> Result<()> {
        if self.check(store).is_ok() {
            store
                .delete(&self.key)
                .with_context(|| format!("removing the claim {}", self.key))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(host: &str, pid: u32, slurm: Option<&str>) -> Claim {
        Claim {
            run: format!("{host}-{pid}-1"),
            host: host.into(),
            pid,
            slurm_task: slurm.map(String::from),
            at: chrono::Utc::now(),
        }
    }

    #[test]
    fn staleness() {
        let me = Claim {
            slurm_task: Some("77_3".into()),
            ..Claim::mine()
        };
        let here = me.host.clone();
        // A live process on this host (this test) holds it.
        assert_eq!(
            stale_reason(&claim(&here, std::process::id(), None), &me),
            None
        );
        // The same Slurm task: a requeue.
        assert!(
            stale_reason(&claim("other", 1, Some("77_3")), &me)
                .unwrap()
                .contains("earlier run of this Slurm task")
        );
        // A process of this host that is gone (pid beyond pid_max).
        assert!(
            stale_reason(&claim(&here, 4_999_999, None), &me)
                .unwrap()
                .contains("is gone")
        );
        // Another host without Slurm: cannot tell, so it is respected.
        assert_eq!(stale_reason(&claim("elsewhere", 1, None), &me), None);
    }
}
