//! `<owner>/<stage>/CLAIM.json`: which run works on a stage. The worker takes and gives up
//! claims (bin/emorg-worker/src/claim.rs, with conditional puts: [`crate::Store::put_new`] and
//! [`crate::Store::put_if_unchanged`]); executors and `emorg status` read them here.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Result, StageRef, Store, layout};

/// One run's claim on a stage. A released claim stays in the store (a claim changes hands by a
/// conditional replace, never by a delete, so that no run can remove a claim another run has just
/// taken) and counts as free.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// Unique per run: host, pid and start time.
    pub run: String,
    pub host: String,
    pub pid: u32,
    /// `/proc/sys/kernel/random/boot_id`: the same host name on another machine, or after a
    /// reboot, is not the same host.
    #[serde(default)]
    pub boot_id: Option<String>,
    /// The pid namespace (`/proc/self/ns/pid`): containers that share a host name and boot number
    /// their processes apart, so a pid means something only within one namespace.
    #[serde(default)]
    pub pid_ns: Option<String>,
    /// The process's start time (clock ticks after boot, `/proc/<pid>/stat` field 22): a reused
    /// pid has another.
    #[serde(default)]
    pub pid_start: Option<u64>,
    /// `<array job>_<index>` (or the job id) when the run is a Slurm task or runs inside an
    /// allocation.
    pub slurm_task: Option<String>,
    /// `SLURM_RESTART_COUNT`: a requeued task runs again with a higher count.
    #[serde(default)]
    pub slurm_restart: u32,
    pub at: DateTime<Utc>,
    /// When the run gave the claim up (after its commit or a recorded failure).
    #[serde(default)]
    pub released_at: Option<DateTime<Utc>>,
}

impl Claim {
    /// Who holds it, for messages: run, host, pid, Slurm task and since when.
    pub fn describe(&self) -> String {
        let slurm = match &self.slurm_task {
            Some(t) if self.slurm_restart > 0 => {
                format!(", Slurm task {t} restart {}", self.slurm_restart)
            }
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

    pub fn is_released(&self) -> bool {
        self.released_at.is_some()
    }
}

/// The claim on a stage that is held (not released), if any. A claim that does not parse is
/// reported as held by an unknown run: something wrote it, and only `--take-over` clears it.
pub fn held_claim(store: &Store, stage: &StageRef) -> Result<Option<Claim>> {
    let key = layout::claim(stage);
    let Some(bytes) = store.get_opt(&key)? else {
        return Ok(None);
    };
    Ok(match serde_json::from_slice::<Claim>(&bytes) {
        Ok(c) if c.is_released() => None,
        Ok(c) => Some(c),
        Err(e) => Some(Claim {
            run: format!("unknown ({key} does not parse: {e})"),
            host: "?".into(),
            pid: 0,
            boot_id: None,
            pid_ns: None,
            pid_start: None,
            slurm_task: None,
            slurm_restart: 0,
            at: DateTime::<Utc>::UNIX_EPOCH,
            released_at: None,
        }),
    })
}
