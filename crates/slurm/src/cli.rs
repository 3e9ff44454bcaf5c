//! The Slurm client commands emorg calls: sbatch, scancel, scontrol, squeue, sacct.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use anyhow::{Context, Result, bail};

/// Runs a Slurm client command; a missing binary is an error that says what to do.
fn run(program: &str, args: &[String]) -> Result<Output> {
    Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!(
                    "`{program}` is not on PATH: run emorg on a Slurm login node (or install Slurm's \
                     client commands; locally: infra/slurm-local.sh start)"
                )
            } else {
                anyhow::anyhow!("cannot run `{program}`: {e}")
            }
        })
}

fn stderr_of(out: &Output) -> String {
    let e = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if e.is_empty() {
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    } else {
        e
    }
}

/// `sbatch --parsable [--dependency=aftercorr:DEP] [--test-only] SCRIPT`: the job id.
pub fn sbatch(script: &Path, dependency: Option<&str>, test_only: bool) -> Result<String> {
    let mut args = vec!["--parsable".to_string()];
    if let Some(dep) = dependency {
        args.push(format!("--dependency=aftercorr:{dep}"));
    }
    if test_only {
        // One index stands for the array: Slurm 22.05's --test-only fails with "allocation
        // failure: Resource temporarily unavailable" on arrays of about 1000 tasks.
        args.push("--test-only".into());
        args.push("--array=0".into());
    }
    args.push(script.display().to_string());
    let out = run("sbatch", &args)?;
    if !out.status.success() {
        bail!(
            "sbatch {} was refused ({}): {}",
            script.display(),
            out.status,
            stderr_of(&out)
        );
    }
    if test_only {
        return Ok(String::new());
    }
    // `123` or `123;cluster`.
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("sbatch {} printed no job id: {text:?}", script.display());
    }
    Ok(id)
}

/// `scancel ID...` (unknown and finished ids are no-ops for scancel).
pub fn scancel(ids: &[String]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let out = run("scancel", ids)?;
    if !out.status.success() {
        bail!("scancel {} failed: {}", ids.join(" "), stderr_of(&out));
    }
    Ok(())
}

/// `MaxArraySize` from `scontrol show config`: an array's indices must stay below it.
pub fn max_array_size() -> Result<usize> {
    let out = run("scontrol", &["show".into(), "config".into()])?;
    if !out.status.success() {
        bail!("scontrol show config failed: {}", stderr_of(&out));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=')
            && k.trim() == "MaxArraySize"
        {
            return v
                .trim()
                .parse()
                .with_context(|| format!("cannot read MaxArraySize from {line:?}"));
        }
    }
    bail!("scontrol show config has no MaxArraySize line")
}

/// The state of one array task as Slurm reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskState {
    /// `PENDING`, `RUNNING`, `COMPLETED`, `FAILED`, `TIMEOUT`, `CANCELLED`, `OUT_OF_MEMORY`, ...
    pub state: String,
    /// squeue's reason (`Dependency`, `DependencyNeverSatisfied`, `None`), when it comes from squeue.
    pub reason: Option<String>,
    /// sacct's ExitCode (`3:0`), when it comes from sacct.
    pub exit_code: Option<String>,
}

impl TaskState {
    pub fn is_live(&self) -> bool {
        matches!(
            self.state.as_str(),
            "PENDING"
                | "RUNNING"
                | "REQUEUED"
                | "CONFIGURING"
                | "COMPLETING"
                | "SUSPENDED"
                | "RESIZING"
                | "REQUEUE_HOLD"
                | "REQUEUE_FED"
                | "SIGNALING"
                | "STAGE_OUT"
        )
    }
}

/// Expands `12_[0-3,7%2]` into `12_0 .. 12_3, 12_7`; other ids are returned as they are.
pub fn expand_array_id(id: &str) -> Vec<String> {
    let Some((job, rest)) = id.split_once("_[") else {
        return vec![id.to_string()];
    };
    let body = rest.trim_end_matches(']');
    let body = body.split('%').next().unwrap_or("");
    let mut out = Vec::new();
    for part in body.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>()) {
                    out.extend((a..=b).map(|i| format!("{job}_{i}")));
                }
            }
            None => {
                if let Ok(i) = part.parse::<u64>() {
                    out.push(format!("{job}_{i}"));
                }
            }
        }
    }
    out
}

/// Live state of the tasks of these array jobs from squeue (jobs Slurm still holds in memory,
/// finished ones for MinJobAge). Keys are `ARRAYID_INDEX`.
pub fn squeue(array_ids: &[String]) -> Result<BTreeMap<String, TaskState>> {
    let mut map = BTreeMap::new();
    if array_ids.is_empty() {
        return Ok(map);
    }
    let fmt = "%i|%T|%r".to_string();
    let mut args = vec![
        "-h".to_string(),
        "-r".into(),
        "-t".into(),
        "all".into(),
        "-o".into(),
        fmt.clone(),
        "-j".into(),
        array_ids.join(","),
    ];
    let mut out = run("squeue", &args)?;
    if !out.status.success() && stderr_of(&out).contains("Invalid job id") {
        // One id is no longer known: list this user's jobs and filter.
        args = vec![
            "-h".into(),
            "-r".into(),
            "-t".into(),
            "all".into(),
            "--me".into(),
            "-o".into(),
            fmt,
        ];
        out = run("squeue", &args)?;
    }
    if !out.status.success() {
        bail!("squeue failed: {}", stderr_of(&out));
    }
    let wanted: std::collections::BTreeSet<&str> = array_ids.iter().map(String::as_str).collect();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut f = line.split('|');
        let (Some(id), Some(state), reason) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        for id in expand_array_id(id.trim()) {
            let array = id.split('_').next().unwrap_or("");
            if wanted.contains(array) {
                map.insert(
                    id,
                    TaskState {
                        state: state.trim().to_string(),
                        reason: reason.map(|r| r.trim().to_string()),
                        exit_code: None,
                    },
                );
            }
        }
    }
    Ok(map)
}

/// Final states from accounting (`sacct`), or `Ok(None)` when accounting is disabled.
pub fn sacct(array_ids: &[String]) -> Result<Option<BTreeMap<String, TaskState>>> {
    let mut map = BTreeMap::new();
    if array_ids.is_empty() {
        return Ok(Some(map));
    }
    let args = vec![
        "-X".to_string(),
        "-P".into(),
        "-n".into(),
        "--format=JobID,State,ExitCode".into(),
        "-j".into(),
        array_ids.join(","),
    ];
    let out = run("sacct", &args)?;
    if !out.status.success() {
        let e = stderr_of(&out);
        if e.contains("accounting storage is disabled") {
            return Ok(None);
        }
        bail!("sacct failed: {e}");
    }
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut f = line.split('|');
        let (Some(id), Some(state), code) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        // `CANCELLED by 0` -> CANCELLED.
        let state = state.split_whitespace().next().unwrap_or("").to_string();
        for id in expand_array_id(id.trim()) {
            map.insert(
                id,
                TaskState {
                    state: state.clone(),
                    reason: None,
                    exit_code: code.map(|c| c.trim().to_string()),
                },
            );
        }
    }
    Ok(Some(map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_ids_expand() {
        assert_eq!(
            expand_array_id("12_[0-2,5%2]"),
            vec!["12_0", "12_1", "12_2", "12_5"]
        );
        assert_eq!(expand_array_id("12_3"), vec!["12_3"]);
        assert_eq!(expand_array_id("12_[4]"), vec!["12_4"]);
    }
}
