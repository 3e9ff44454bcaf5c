//! Claims: at most one run works on a stage and commits it.
//!
//! Before a stage runs, the worker creates `<owner>/<stage>/CLAIM.json` create-only
//! (`Store::put_new`): the run that creates it holds the stage. A claim changes hands only by a
//! conditional replace of the version that was read (`Store::put_if_unchanged`), never by a delete,
//! so two runs that find the same stale claim cannot both take it and no run removes a claim
//! another has just taken (what each backend guarantees: crates/store/src/conditional.rs). A run
//! that finds a claim takes it over when it is released, or provably stale: an earlier run of the
//! same Slurm task (a requeue: Slurm ends the old run before it starts the new one, with a higher
//! `SLURM_RESTART_COUNT`), a process of this machine and pid namespace that is gone (or whose pid
//! now belongs to a process that started later), or a Slurm task that is no longer queued or
//! running (`squeue`); `--take-over` forces it. Otherwise the worker stops with
//! [`CLAIMED_EXIT_CODE`] and names the holder. Right before `DONE.json` is written the claim is read
//! again: a run whose claim was taken over meanwhile does not commit. The claim is released (marked,
//! not deleted) after a commit or a recorded failure, and kept on a requeue exit (the requeued run
//! takes it over). A stage whose input stage is held by a live run leaves itself to that run.

use anyhow::{Context as _, Result};
use emorg_spec::StageRef;
use emorg_store::claim::{Claim, held_claim};
use emorg_store::{DoneState, Store, layout};
use std::process::Command;

pub use emorg_store::CLAIMED_EXIT_CODE;

/// The stage belongs to another run (see the module docs); the message names it.
#[derive(Debug)]
pub struct Claimed(pub String);

impl std::fmt::Display for Claimed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Claimed {}

/// This process's claim.
fn mine() -> Claim {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let pid = std::process::id();
    let at = chrono::Utc::now();
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let slurm_task = match (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID")) {
        (Some(job), Some(task)) => Some(format!("{job}_{task}")),
        _ => var("SLURM_JOB_ID"),
    };
    Claim {
        run: format!(
            "{host}-{pid}-{}",
            at.timestamp_nanos_opt().unwrap_or_default()
        ),
        boot_id: proc_line("/proc/sys/kernel/random/boot_id"),
        pid_ns: std::fs::read_link("/proc/self/ns/pid")
            .ok()
            .map(|p| p.to_string_lossy().into_owned()),
        pid_start: process_start(pid),
        slurm_restart: var("SLURM_RESTART_COUNT")
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        slurm_task,
        host,
        pid,
        at,
        released_at: None,
    }
}

fn proc_line(path: &str) -> Option<String> {
    let s = std::fs::read_to_string(path).ok()?;
    Some(s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Field 22 of `/proc/<pid>/stat` (start time in clock ticks after boot); `None` when the process
/// is gone. The command name (field 2) may hold spaces and parentheses, so fields are counted
/// after its last `)`.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Why `found` may be taken over by `me`, or `None` when it must be respected. `task_ended` asks
/// Slurm whether a task has ended ([`slurm_task_ended`]).
fn stale_reason(found: &Claim, me: &Claim, task_ended: &dyn Fn(&str) -> bool) -> Option<String> {
    if let (Some(a), Some(b)) = (&found.slurm_task, &me.slurm_task)
        && a == b
        && found.slurm_restart < me.slurm_restart
    {
        return Some(format!(
            "it is an earlier run (restart {}) of this Slurm task {a}, now at restart {}",
            found.slurm_restart, me.slurm_restart
        ));
    }
    if let Some(reason) = gone_on_this_machine(found, me) {
        return Some(reason);
    }
    if let Some(task) = &found.slurm_task
        && task_ended(task)
    {
        return Some(format!(
            "its Slurm task {task} is no longer queued or running"
        ));
    }
    None
}

/// Whether the claim's process provably ended: same host, boot and pid namespace (fields an
/// older claim lacks are taken as equal), and its pid is gone or belongs to a later process.
fn gone_on_this_machine(found: &Claim, me: &Claim) -> Option<String> {
    let same = |a: &Option<String>, b: &Option<String>| match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    };
    if found.host != me.host
        || !same(&found.boot_id, &me.boot_id)
        || !same(&found.pid_ns, &me.pid_ns)
    {
        return None;
    }
    match (process_start(found.pid), found.pid_start) {
        (None, _) => Some(format!("its process {} on this host is gone", found.pid)),
        (Some(now), Some(then)) if now != then => Some(format!(
            "its process {} on this host is gone (the pid now belongs to a process started later)",
            found.pid
        )),
        _ => None,
    }
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

/// Claims `stage` for this run (see the module docs).
pub fn acquire(store: &Store, stage: &StageRef, take_over: bool) -> Result<Held> {
    let key = layout::claim(stage);
    let me = mine();
    let bytes = serde_json::to_vec_pretty(&me)?;
    // Each round either takes the claim or sees that it changed hands meanwhile; a few rounds
    // settle any race.
    for _ in 0..5 {
        if store.put_new(&key, bytes.clone())? {
            return Ok(Held { key, claim: me });
        }
        let Some(found) = store.get_versioned(&key)? else {
            continue; // deleted by hand meanwhile
        };
        let reason = match serde_json::from_slice::<Claim>(&found.bytes) {
            Err(e) => Some(format!("it does not parse ({e})")),
            Ok(c) if c.is_released() => None,
            Ok(c) if take_over => Some(format!("{}: --take-over", c.describe())),
            Ok(c) => match stale_reason(&c, &me, &slurm_task_ended) {
                Some(r) => Some(format!("{}: {r}", c.describe())),
                None => {
                    return Err(Claimed(format!(
                        "{stage} is claimed by {}: another run is working on it. \
                         If that run is dead, rerun with --take-over",
                        c.describe()
                    ))
                    .into());
                }
            },
        };
        if store.put_if_unchanged(&key, &found.version, bytes.clone())? {
            if let Some(reason) = reason {
                tracing::warn!("took over the claim {key}: {reason}");
            }
            return Ok(Held { key, claim: me });
        }
    }
    Err(Claimed(format!(
        "could not claim {stage}: other runs kept taking {key}"
    ))
    .into())
}

/// A stage reads the outputs of the stages before it in its chain (`chain` ends with the stage):
/// when one of them is not done and a live run holds it, this stage is left to that run (the run
/// that holds an input stage runs the stages after it), rather than failing for want of its input.
pub fn check_inputs(store: &Store, chain: &[StageRef]) -> Result<()> {
    let Some((stage, upstream)) = chain.split_last() else {
        return Ok(());
    };
    for earlier in upstream {
        if matches!(store.read_done(earlier)?, DoneState::Valid(_)) {
            continue;
        }
        if let Some(holder) = held_claim(store, earlier)?
            && stale_reason(&holder, &mine(), &slurm_task_ended).is_none()
        {
            return Err(Claimed(format!(
                "{stage} needs {earlier}, which {} is running: leaving it to that run",
                holder.describe()
            ))
            .into());
        }
    }
    Ok(())
}

impl Held {
    /// Before the commit: the claim must still be this run's (a run whose claim was taken over
    /// does not commit).
    pub fn check(&self, store: &Store) -> Result<()> {
        let found = store.get_opt(&self.key)?;
        let current = found.and_then(|b| serde_json::from_slice::<Claim>(&b).ok());
        match current {
            Some(c) if c.run == self.claim.run && !c.is_released() => Ok(()),
            Some(c) if c.run == self.claim.run => Err(Claimed(format!(
                "the claim {} was released while this run worked: not committing this run's result",
                self.key
            ))
            .into()),
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

    /// Marks the claim released if it is still this run's (a conditional replace: a run that took
    /// it over meanwhile keeps it).
    pub fn release(&self, store: &Store) -> Result<()> {
        let Some(found) = store.get_versioned(&self.key)? else {
            return Ok(());
        };
        match serde_json::from_slice::<Claim>(&found.bytes) {
            Ok(c) if c.run == self.claim.run && !c.is_released() => {
                let released = Claim {
                    released_at: Some(chrono::Utc::now()),
                    ..c
                };
                store
                    .put_if_unchanged(
                        &self.key,
                        &found.version,
                        serde_json::to_vec_pretty(&released)?,
                    )
                    .with_context(|| format!("releasing the claim {}", self.key))?;
            }
            _ => {}
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
            boot_id: None,
            pid_ns: None,
            pid_start: None,
            slurm_task: slurm.map(String::from),
            slurm_restart: 0,
            at: chrono::Utc::now(),
            released_at: None,
        }
    }

    #[test]
    fn staleness() {
        let me = Claim {
            slurm_task: Some("77_3".into()),
            slurm_restart: 1,
            ..mine()
        };
        let here = me.host.clone();
        let ended = |task: &str| task == "12_0";
        let stale_reason = |found: &Claim, me: &Claim| super::stale_reason(found, me, &ended);
        let live = Claim {
            boot_id: me.boot_id.clone(),
            pid_ns: me.pid_ns.clone(),
            pid_start: process_start(std::process::id()),
            ..claim(&here, std::process::id(), None)
        };
        // A live process on this machine (this test) holds it.
        assert_eq!(stale_reason(&live, &me), None);
        // The same pid, but it started at another time: the pid was reused.
        let reused = Claim {
            pid_start: live.pid_start.map(|t| t + 1),
            ..live.clone()
        };
        assert!(
            stale_reason(&reused, &me)
                .unwrap()
                .contains("started later")
        );
        // The same pid in another pid namespace (a container sharing the host name): cannot tell.
        let container = Claim {
            pid_ns: Some("pid:[1]".into()),
            pid_start: None,
            ..claim(&here, 4_999_999, None)
        };
        assert_eq!(stale_reason(&container, &me), None);
        // An earlier run of this Slurm task: a requeue.
        assert!(
            stale_reason(&claim("other", 1, Some("77_3")), &me)
                .unwrap()
                .contains("earlier run (restart 0)")
        );
        // The same Slurm job at the same restart: two runs inside one allocation, respected.
        let sibling = Claim {
            slurm_restart: 1,
            ..claim("other", 1, Some("77_3"))
        };
        assert_eq!(stale_reason(&sibling, &me), None);
        // A process of this machine that is gone (pid beyond pid_max).
        assert!(
            stale_reason(&claim(&here, 4_999_999, None), &me)
                .unwrap()
                .contains("is gone")
        );
        // Another host without Slurm: cannot tell, so it is respected.
        assert_eq!(stale_reason(&claim("elsewhere", 1, None), &me), None);
        // Another host, whose Slurm task has ended.
        assert!(
            stale_reason(&claim("elsewhere", 1, Some("12_0")), &me)
                .unwrap()
                .contains("no longer queued or running")
        );
    }

    #[test]
    fn claims_change_hands_by_replacing_never_by_deleting() {
        let store = Store::open("memory://").unwrap();
        let stage = StageRef::Train(emorg_spec::UnitKey::parse(&"a".repeat(64)).unwrap());
        let key = layout::claim(&stage);
        let first = acquire(&store, &stage, false).unwrap();
        first.check(&store).unwrap();
        // A live holder (this process) is respected.
        let err = acquire(&store, &stage, false).err().unwrap();
        assert!(err.downcast_ref::<Claimed>().is_some(), "{err:#}");
        assert!(err.to_string().contains("claimed by run"), "{err:#}");
        // --take-over replaces it; the first run then may not commit, and its release leaves the
        // new claim alone.
        let second = acquire(&store, &stage, true).unwrap();
        assert!(first.check(&store).is_err());
        first.release(&store).unwrap();
        second.check(&store).unwrap();
        // Released: the claim stays, marked, and the next run takes it without --take-over.
        second.release(&store).unwrap();
        let c: Claim = store.get_json(&key).unwrap();
        assert!(c.is_released());
        assert_eq!(held_claim(&store, &stage).unwrap(), None);
        let third = acquire(&store, &stage, false).unwrap();
        third.check(&store).unwrap();
    }

    /// Sixteen runs find the same stale claim at once: exactly one takes it over.
    #[test]
    fn one_of_many_takes_over_a_stale_claim() {
        for url in ["memory://", "file://"] {
            let dir = tempfile::tempdir().unwrap();
            let url = if url == "file://" {
                format!("file://{}", dir.path().display())
            } else {
                url.to_string()
            };
            let store = Store::open(&url).unwrap();
            let stage = StageRef::Sample(emorg_spec::VariantKey::parse(&"b".repeat(64)).unwrap());
            let key = layout::claim(&stage);
            let dead = claim(&mine().host, 4_999_999, None);
            store.put_json(&key, &dead).unwrap();
            let barrier = std::sync::Barrier::new(16);
            let held: Vec<Held> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..16)
                    .map(|_| {
                        s.spawn(|| {
                            barrier.wait();
                            acquire(&store, &stage, false).ok()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .filter_map(|h| h.join().unwrap())
                    .collect()
            });
            // Threads of one process share its pid, so every loser sees a live holder.
            assert_eq!(held.len(), 1, "{url}");
            held[0].check(&store).unwrap();
        }
    }
}
