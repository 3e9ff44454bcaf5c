//! The submission record, `sweeps/<name>/submissions/<id>.json`: what one submit sent to Slurm
//! (chunks of job arrays, each array's stage at each index, their ids, scripts, keys files, log
//! patterns and dependencies). After submit it is the truth for where each stage ran.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use emorg_spec::{Stage, StageRef};
use emorg_store::{Store, layout};
use serde::{Deserialize, Serialize};

/// Format of the submission record. 2: arrays of stages (train, sample, judge) keyed by the
/// stage's owner (unit, variant, judgment); 1 had arrays of cells.
pub const SUBMISSION_FORMAT: u32 = 2;

/// `sweeps/<name>/submissions/<id>.json`: what one `emorg submit` sent to Slurm.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Submission {
    pub format: u32,
    pub sweep: String,
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub store_url: String,
    /// Scripts, keys files and Slurm logs of this submission.
    pub dir: String,
    pub max_array_size: usize,
    /// `sbatch` calls made, the `--test-only` checks included.
    pub sbatch_calls: usize,
    pub chunks: Vec<Chunk>,
}

impl Submission {
    /// Every array of the submission, in submission order.
    pub fn jobs(&self) -> impl Iterator<Item = &ArrayJob> {
        self.chunks.iter().flat_map(|c| c.jobs.iter())
    }

    /// The stages submitted (each once).
    pub fn stages(&self) -> usize {
        self.jobs().map(|j| j.tasks.len()).sum()
    }
}

/// Arrays that share an index space (see [`crate::plan`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Chunk {
    pub name: String,
    /// The `[slurm.protocols]` name of the chunk's roots, or `default`.
    pub profile: String,
    /// The level of the first stage to run of each index: train, sample or judge.
    pub root: Stage,
    pub jobs: Vec<ArrayJob>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArrayJob {
    pub name: String,
    pub stage: Stage,
    /// The resource profile: a `[slurm.protocols]` name or `default`.
    pub profile: String,
    /// Empty in a rendered (not submitted) plan.
    pub job_id: String,
    pub script: String,
    /// The Slurm output pattern (`%A`, `%a`).
    pub output: String,
    /// Line `i + 1` holds the key of the stage at index `i`.
    pub keys_file: String,
    /// (array index, stage), by ascending index.
    pub tasks: Vec<(usize, StageRef)>,
    /// The array of the chunk this one runs after, element-wise (its name).
    pub after: Option<String>,
    /// `aftercorr:<job id of after>` once submitted.
    pub dependency: Option<String>,
}

impl ArrayJob {
    /// The Slurm log of array index `i`.
    pub fn log_path(&self, i: usize) -> PathBuf {
        PathBuf::from(
            self.output
                .replace("%A", &self.job_id)
                .replace("%a", &i.to_string()),
        )
    }
}

/// Every submission record of a sweep, oldest first.
pub fn submissions(store: &Store, sweep: &str) -> Result<Vec<Submission>> {
    let mut keys = store.list(&layout::sweep_submissions(sweep))?;
    keys.retain(|k| k.ends_with(".json"));
    keys.sort();
    keys.iter()
        .map(|k| {
            let value: serde_json::Value = store
                .get_json(k)
                .with_context(|| format!("cannot read the submission record {k}"))?;
            let format = value.get("format").and_then(|f| f.as_u64());
            if format != Some(SUBMISSION_FORMAT.into()) {
                bail!(
                    "the submission record {k} has format {}, this emorg reads format \
                     {SUBMISSION_FORMAT}: it was written by another version of emorg (move it \
                     away to go on; its jobs are not followed)",
                    format.map_or("none".to_string(), |f| f.to_string())
                );
            }
            serde_json::from_value(value)
                .with_context(|| format!("cannot read the submission record {k}"))
        })
        .collect()
}

/// Where a stage was submitted: the array and the index.
pub struct Placement<'a> {
    pub job: &'a ArrayJob,
    pub index: usize,
}

impl Placement<'_> {
    /// `ARRAYID_INDEX`.
    pub fn task_id(&self) -> String {
        format!("{}_{}", self.job.job_id, self.index)
    }
}

/// Every submission of every stage, oldest first (a sweep submitted twice, or rerun, has
/// several).
pub fn placements(subs: &[Submission]) -> BTreeMap<&StageRef, Vec<Placement<'_>>> {
    let mut map: BTreeMap<&StageRef, Vec<Placement<'_>>> = BTreeMap::new();
    for s in subs {
        for job in s.jobs() {
            for (index, stage) in &job.tasks {
                map.entry(stage)
                    .or_default()
                    .push(Placement { job, index: *index });
            }
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_paths_expand() {
        let j = ArrayJob {
            name: "c000-default-train".into(),
            stage: Stage::Train,
            profile: "default".into(),
            job_id: "12".into(),
            script: String::new(),
            output: "/d/logs/c000-default-train-%A_%a.out".into(),
            keys_file: String::new(),
            tasks: vec![],
            after: None,
            dependency: None,
        };
        assert_eq!(
            j.log_path(3),
            PathBuf::from("/d/logs/c000-default-train-12_3.out")
        );
    }

    #[test]
    fn a_record_of_another_format_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("file://{}", dir.path().display())).unwrap();
        store
            .put_json(
                &layout::sweep_submission("s", "old"),
                &serde_json::json!({"format": 1, "chunks": []}),
            )
            .unwrap();
        let e = submissions(&store, "s").unwrap_err().to_string();
        assert!(
            e.contains("sweeps/s/submissions/old.json has format 1, this emorg reads format 2"),
            "{e}"
        );
    }
}
