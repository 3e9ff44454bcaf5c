//! Key layout: the one place where store keys are spelled (DESIGN §3).
//!
//! ```text
//! cells/<key>/cell.json                 the resolved cell
//! cells/<key>/<stage_dir>/<name>        a stage output (stage_dir may nest: "judge/final")
//! cells/<key>/<stage_dir>/DONE.json     the stage manifest, written last
//! cells/<key>/<stage_dir>/FAILED.json   the last failure of the stage
//! cells/<key>/train/ckpt/<step:08>/     a trainer-state checkpoint, manifest.json last
//! cells/<key>/logs/<stage>.log          the stage's log
//! inputs/datasets/<sha256>.jsonl        content-addressed datasets
//! inputs/questions/<sha256>.yaml        content-addressed question sets
//! inputs/labels/<sha256>.jsonl          content-addressed labelled judge-validation sets
//! judges/<judge_id>/judge.json          a judge as validation sees it (spec + question file)
//! judges/<judge_id>/validation/<labels_sha256>/   scores.parquet, report.md, report.json (last)
//! judgments/<model>/<method>/<h[..2]>/<h>.json   cached API judgments (emorg_judge::cache)
//! sweeps/<sweep>/latest.json            the newest submission record of a sweep
//! sweeps/<sweep>/submissions/<id>.json  what one `emorg submit` sent to Slurm (job ids, cells per index)
//! reports/<sweep>/<run_id>/             matrix.parquet, report.md, index.html
//! ```
//!
//! Every function joins its parts with `/` and strips stray slashes at the joins, so
//! `stage_key("k", "judge/final/", "scores.parquet")` is `cells/k/judge/final/scores.parquet`.

/// Name of the manifest that marks a stage as done.
pub const DONE_FILE: &str = "DONE.json";
/// Name of the record of a stage's last failure.
pub const FAILED_FILE: &str = "FAILED.json";
/// The claim of the run working on a stage (bin/emorg-worker/src/claim.rs).
pub const CLAIM_FILE: &str = "CLAIM.json";

fn join(parts: &[&str]) -> String {
    let mut out = String::new();
    for part in parts {
        let part = part.trim_matches('/');
        if part.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(part);
    }
    out
}

/// `cells/<key>`: every key of a cell lives under this prefix.
pub fn cell_prefix(cell_key: &str) -> String {
    join(&["cells", cell_key])
}

/// `cells/<key>/<stage_dir>`: every output of a stage lives under this prefix.
pub fn stage_prefix(cell_key: &str, stage_dir: &str) -> String {
    join(&["cells", cell_key, stage_dir])
}

/// `cells/<key>/cell.json`
pub fn cell_json(cell_key: &str) -> String {
    join(&["cells", cell_key, "cell.json"])
}

/// `cells/<key>/<stage_dir>/<name>`
pub fn stage_key(cell_key: &str, stage_dir: &str, name: &str) -> String {
    join(&["cells", cell_key, stage_dir, name])
}

/// `cells/<key>/<stage_dir>/DONE.json`
pub fn done(cell_key: &str, stage_dir: &str) -> String {
    stage_key(cell_key, stage_dir, DONE_FILE)
}

/// `cells/<key>/<stage_dir>/FAILED.json`
pub fn failure(cell_key: &str, stage_dir: &str) -> String {
    stage_key(cell_key, stage_dir, FAILED_FILE)
}

/// `cells/<key>/train/ckpt`: every trainer-state checkpoint of a cell lives under this prefix.
pub fn checkpoints_prefix(cell_key: &str) -> String {
    join(&["cells", cell_key, "train", "ckpt"])
}

/// `cells/<key>/train/ckpt/<step:08>/<name>` (zero-padded so keys sort by step).
pub fn checkpoint(cell_key: &str, step: usize, name: &str) -> String {
    join(&[
        "cells",
        cell_key,
        "train",
        "ckpt",
        &format!("{step:08}"),
        name,
    ])
}

/// `cells/<key>/<stage_dir>/CLAIM.json`
pub fn claim(cell_key: &str, stage_dir: &str) -> String {
    stage_key(cell_key, stage_dir, CLAIM_FILE)
}

/// The step of a key under [`checkpoints_prefix`] (`.../ckpt/00000040/x` gives 40).
pub fn checkpoint_step(key: &str) -> Option<usize> {
    let (_, rest) = key.split_once("/train/ckpt/")?;
    rest.split('/').next()?.parse().ok()
}

/// `cells/<key>/logs/<stage>.log`
pub fn stage_log(cell_key: &str, stage: &str) -> String {
    let file = format!("{}.log", stage.trim_matches('/').replace('/', "-"));
    join(&["cells", cell_key, "logs", &file])
}

/// `inputs/datasets/<sha256>.jsonl`
pub fn dataset(sha256: &str) -> String {
    join(&["inputs", "datasets", &format!("{sha256}.jsonl")])
}

/// `inputs/questions/<sha256>.yaml`
pub fn questions(sha256: &str) -> String {
    join(&["inputs", "questions", &format!("{sha256}.yaml")])
}

/// `inputs/labels/<sha256>.jsonl`
pub fn labels(sha256: &str) -> String {
    join(&["inputs", "labels", &format!("{sha256}.jsonl")])
}

/// `judges/<judge_id>/judge.json`
pub fn judge_spec(judge_id: &str) -> String {
    join(&["judges", judge_id, "judge.json"])
}

/// `judges/<judge_id>/validation/<labels_sha256>/<name>`; `report.json` is written last and marks
/// the validation as complete.
pub fn judge_validation(judge_id: &str, labels_sha256: &str, name: &str) -> String {
    join(&["judges", judge_id, "validation", labels_sha256, name])
}

/// `judgments/<model_slug>/<method>/<hash[..2]>/<hash>.json`: one cached judgment, addressed by the
/// hash of (judge model, method, prompt) (see `emorg_judge::cache`), shared by every cell and sweep.
pub fn judgment(model_slug: &str, method: &str, hash: &str) -> String {
    let shard = hash.get(..2).unwrap_or(hash);
    join(&[
        "judgments",
        model_slug,
        method,
        shard,
        &format!("{hash}.json"),
    ])
}

/// `sweeps/<sweep>/latest.json`
pub fn sweep_record(sweep: &str) -> String {
    join(&["sweeps", sweep, "latest.json"])
}

/// `sweeps/<sweep>/submissions`: the prefix of a sweep's Slurm submission records.
pub fn sweep_submissions(sweep: &str) -> String {
    join(&["sweeps", sweep, "submissions"])
}

/// `sweeps/<sweep>/submissions/<id>.json`: one Slurm submission (ids sort by time).
pub fn sweep_submission(sweep: &str, id: &str) -> String {
    join(&["sweeps", sweep, "submissions", &format!("{id}.json")])
}

/// `reports/<sweep>/<run_id>`
pub fn report_dir(sweep: &str, run_id: &str) -> String {
    join(&["reports", sweep, run_id])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_spelled_as_designed() {
        assert_eq!(cell_json("abc"), "cells/abc/cell.json");
        assert_eq!(
            stage_key("abc", "judge/final", "scores.parquet"),
            "cells/abc/judge/final/scores.parquet"
        );
        assert_eq!(
            stage_key("abc", "/train/", "metrics.parquet"),
            "cells/abc/train/metrics.parquet"
        );
        assert_eq!(done("abc", "train"), "cells/abc/train/DONE.json");
        assert_eq!(
            failure("abc", "sample/final"),
            "cells/abc/sample/final/FAILED.json"
        );
        assert_eq!(stage_log("abc", "train"), "cells/abc/logs/train.log");
        assert_eq!(dataset("ff00"), "inputs/datasets/ff00.jsonl");
        assert_eq!(questions("ff00"), "inputs/questions/ff00.yaml");
        assert_eq!(sweep_record("quick"), "sweeps/quick/latest.json");
        assert_eq!(
            sweep_submission("quick", "2026-01-01T00-00-00.000Z"),
            "sweeps/quick/submissions/2026-01-01T00-00-00.000Z.json"
        );
        assert_eq!(
            report_dir("quick", "2026-01-01T00-00"),
            "reports/quick/2026-01-01T00-00"
        );
        assert_eq!(stage_prefix("abc", "judge/final"), "cells/abc/judge/final");
        assert_eq!(
            judgment("gpt-4o", "top20-first-token", "ab12"),
            "judgments/gpt-4o/top20-first-token/ab/ab12.json"
        );
    }
}
