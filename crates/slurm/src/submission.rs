//! The submission record, `sweeps/<name>/submissions/<id>.json`: what one submit sent to Slurm
//! (chunks of cells, one job array per stage, their ids, scripts and log patterns). After submit
//! it is the truth for where each (cell, stage) ran.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use emorg_spec::Stage;
use emorg_store::{Store, layout};
use serde::{Deserialize, Serialize};

/// Format of the submission record.
pub const SUBMISSION_FORMAT: u32 = 1;

/// `sweeps/<name>/submissions/<id>.json`: what one `emorg submit` sent to Slurm.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Submission {
    pub format: u32,
    pub sweep: String,
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub store_url: String,
    /// Scripts, cells files and Slurm logs of this submission.
    pub dir: String,
    pub max_array_size: usize,
    pub sbatch_calls: usize,
    pub chunks: Vec<Chunk>,
}

/// Cells that share resources and stages left, and their arrays (one per stage).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Chunk {
    pub name: String,
    /// The `[slurm.protocols]` name, or `default`.
    pub profile: String,
    /// Index i of every array of the chunk is `cells[i]`.
    pub cells: Vec<String>,
    pub cells_file: String,
    pub jobs: Vec<ArrayJob>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArrayJob {
    pub stage: Stage,
    /// Empty in a rendered (not submitted) plan.
    pub job_id: String,
    pub script: String,
    /// The Slurm output pattern (`%A`, `%a`).
    pub output: String,
    /// `aftercorr:<id>` on the previous stage of the chunk.
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
            store
                .get_json::<Submission>(k)
                .with_context(|| format!("cannot read the submission record {k}"))
        })
        .collect()
}

/// Where a (cell, stage) was last submitted: the job and the index.
pub struct Placement<'a> {
    pub job: &'a ArrayJob,
    pub index: usize,
}

/// Every submission of every (cell key, stage), oldest first (a sweep submitted twice, or rerun,
/// has several).
pub fn placements(subs: &[Submission]) -> BTreeMap<(String, Stage), Vec<Placement<'_>>> {
    let mut map: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for s in subs {
        for c in &s.chunks {
            for (i, key) in c.cells.iter().enumerate() {
                for j in &c.jobs {
                    map.entry((key.clone(), j.stage))
                        .or_default()
                        .push(Placement { job: j, index: i });
                }
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
            stage: Stage::Train,
            job_id: "12".into(),
            script: String::new(),
            output: "/d/logs/c000-default-train-%A_%a.out".into(),
            dependency: None,
        };
        assert_eq!(
            j.log_path(3),
            PathBuf::from("/d/logs/c000-default-train-12_3.out")
        );
    }
}
