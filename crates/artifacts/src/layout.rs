//! Store layout: the one place where store keys are spelled.
//!
//! ```text
//! layout.json                             {"version": 2}: the layout of this store
//! units/<unit>/unit.json                  a training unit (model, protocol, dataset, seed, ...)
//! units/<unit>/train/...                  its training: adapter/, model/, metrics.parquet,
//!                                         trajectory.parquet, DONE.json (last)
//! units/<unit>/train/ckpt/<step:08>/      a trainer-state checkpoint for resume (manifest.json last)
//! units/<unit>/train/steps/<step:08>/     the PEFT adapter at a step, kept for evaluation
//! variants/<variant>/variant.json         a sample variant (unit, weights, scales, sampler, ...)
//! variants/<variant>/sample/...           responses.parquet, DONE.json (last)
//! judgments/<judgment>/judgment.json      a judgment (variant, judge)
//! judgments/<judgment>/judge/...          scores.parquet, DONE.json (last)
//! <owner>/<stage>/FAILED.json             the last failure of the stage
//! <owner>/<stage>/CLAIM.json              the run working on the stage
//! <owner>/logs/<stage>.log                the stage's log
//! inputs/datasets/<sha256>.jsonl          content-addressed datasets
//! inputs/questions/<sha256>.yaml          content-addressed question sets
//! inputs/labels/<sha256>.jsonl            content-addressed labelled judge-validation sets
//! judges/<judge_id>/judge.json            a judge as validation sees it (spec + question file)
//! judges/<judge_id>/validation/<labels_sha256>/   scores.parquet, report.md, report.json (last)
//! judge-cache/<model>/<method>/<h[..2]>/<h>.json  cached judgments (emorg_judge::cache)
//! sweeps/<sweep>/latest.json              the newest record of a sweep
//! sweeps/<sweep>/submissions/<id>.json    what one `emorg submit` sent to Slurm
//! reports/<sweep>/<run_id>/               matrix.parquet, report.md, index.html
//! ```
//!
//! Layout version 1 (before training units) kept everything of a cell under `cells/<key>/`; a
//! store with that prefix and no `layout.json` is refused, never misread ([`LEGACY_PREFIX`]).

use crate::keys::{JudgmentKey, Stage, StageRef, UnitKey, VariantKey};

/// Name of the manifest that marks a stage as done.
pub const DONE_FILE: &str = "DONE.json";
/// Name of the record of a stage's last failure.
pub const FAILED_FILE: &str = "FAILED.json";
/// The claim of the run working on a stage.
pub const CLAIM_FILE: &str = "CLAIM.json";

/// The layout this code writes and reads.
pub const LAYOUT_VERSION: u32 = 2;
/// `layout.json` at the store root: `{"version": N}`.
pub const LAYOUT_FILE: &str = "layout.json";
/// The prefix of layout version 1 (everything of a cell under `cells/<key>/`).
pub const LEGACY_PREFIX: &str = "cells/";

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

/// `units/<unit>`: everything of a training unit lives under this prefix.
pub fn unit_prefix(unit: &UnitKey) -> String {
    join(&["units", unit.as_str()])
}

/// `units/<unit>/unit.json`
pub fn unit_json(unit: &UnitKey) -> String {
    join(&["units", unit.as_str(), "unit.json"])
}

/// `variants/<variant>/variant.json`
pub fn variant_json(variant: &VariantKey) -> String {
    join(&["variants", variant.as_str(), "variant.json"])
}

/// `judgments/<judgment>/judgment.json`
pub fn judgment_json(judgment: &JudgmentKey) -> String {
    join(&["judgments", judgment.as_str(), "judgment.json"])
}

/// `units/<unit>`, `variants/<variant>` or `judgments/<judgment>`: the owner of a stage.
pub fn owner_prefix(stage: &StageRef) -> String {
    match stage {
        StageRef::Train(k) => join(&["units", k.as_str()]),
        StageRef::Sample(k) => join(&["variants", k.as_str()]),
        StageRef::Judge(k) => join(&["judgments", k.as_str()]),
    }
}

/// The owner's record (`unit.json`, `variant.json`, `judgment.json`).
pub fn record(stage: &StageRef) -> String {
    match stage {
        StageRef::Train(k) => unit_json(k),
        StageRef::Sample(k) => variant_json(k),
        StageRef::Judge(k) => judgment_json(k),
    }
}

/// `<owner>/<stage>`: every output of a stage lives under this prefix.
pub fn stage_prefix(stage: &StageRef) -> String {
    join(&[&owner_prefix(stage), stage.stage().as_str()])
}

/// `<owner>/<stage>/<name>` (name may nest: `adapter/adapter_model.safetensors`).
pub fn output(stage: &StageRef, name: &str) -> String {
    join(&[&stage_prefix(stage), name])
}

/// `<stage_prefix>/<name>`: an output key from a prefix a manifest recorded.
pub fn under(stage_prefix: &str, name: &str) -> String {
    join(&[stage_prefix, name])
}

/// `<owner>/<stage>/DONE.json`
pub fn done(stage: &StageRef) -> String {
    output(stage, DONE_FILE)
}

/// `<owner>/<stage>/FAILED.json`
pub fn failure(stage: &StageRef) -> String {
    output(stage, FAILED_FILE)
}

/// `<owner>/<stage>/CLAIM.json`
pub fn claim(stage: &StageRef) -> String {
    output(stage, CLAIM_FILE)
}

/// `<owner>/logs/<stage>.log`
pub fn stage_log(stage: &StageRef) -> String {
    join(&[
        &owner_prefix(stage),
        "logs",
        &format!("{}.log", stage.stage().as_str()),
    ])
}

/// `units/<unit>/train/ckpt`: every trainer-state checkpoint of a unit lives under this prefix.
pub fn checkpoints_prefix(unit: &UnitKey) -> String {
    join(&["units", unit.as_str(), "train", "ckpt"])
}

/// `units/<unit>/train/ckpt/<step:08>/<name>` (zero-padded so keys sort by step).
pub fn checkpoint(unit: &UnitKey, step: usize, name: &str) -> String {
    join(&[&checkpoints_prefix(unit), &format!("{step:08}"), name])
}

/// The step of a key under [`checkpoints_prefix`] or [`step_adapters_prefix`]
/// (`.../ckpt/00000040/x` and `.../steps/00000040/x` give 40).
pub fn checkpoint_step(key: &str) -> Option<usize> {
    let rest = key
        .split_once("/train/ckpt/")
        .or_else(|| key.split_once("/train/steps/"))?
        .1;
    rest.split('/').next()?.parse().ok()
}

/// The name, relative to the train stage, of a file of the adapter kept at `step` for
/// evaluation: `steps/<step:08>/<file>`. The train DONE.json lists these outputs.
pub fn step_adapter_name(step: usize, file: &str) -> String {
    join(&["steps", &format!("{step:08}"), file])
}

/// `units/<unit>/train/steps`: the adapters kept for evaluation.
pub fn step_adapters_prefix(unit: &UnitKey) -> String {
    join(&["units", unit.as_str(), "train", "steps"])
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

/// `judge-cache/<model_slug>/<method>/<hash[..2]>/<hash>.json`: one cached judgment, addressed by
/// the hash of (judge identity, method, prompt) (see `emorg_judge::cache`), shared by every
/// judgment and sweep.
pub fn judgment_cache(model_slug: &str, method: &str, hash: &str) -> String {
    let shard = hash.get(..2).unwrap_or(hash);
    join(&[
        "judge-cache",
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

/// The stage whose record or outputs `key` lies under, if any (for listings and messages).
pub fn stage_of(key: &str) -> Option<StageRef> {
    let mut parts = key.split('/');
    let (owner, hex) = (parts.next()?, parts.next()?);
    let stage = match owner {
        "units" => Stage::Train,
        "variants" => Stage::Sample,
        "judgments" => Stage::Judge,
        _ => return None,
    };
    StageRef::parse(stage, hex).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(c: char) -> String {
        std::iter::repeat_n(c, 64).collect()
    }

    #[test]
    fn keys_are_spelled_as_designed() {
        let u = UnitKey::parse(&k('a')).unwrap();
        let v = VariantKey::parse(&k('b')).unwrap();
        let j = JudgmentKey::parse(&k('c')).unwrap();
        let (a, b, c) = (k('a'), k('b'), k('c'));
        assert_eq!(unit_json(&u), format!("units/{a}/unit.json"));
        assert_eq!(variant_json(&v), format!("variants/{b}/variant.json"));
        assert_eq!(judgment_json(&j), format!("judgments/{c}/judgment.json"));
        let train = StageRef::Train(u.clone());
        let sample = StageRef::Sample(v);
        let judge = StageRef::Judge(j);
        assert_eq!(done(&train), format!("units/{a}/train/DONE.json"));
        assert_eq!(
            output(&sample, "/responses.parquet"),
            format!("variants/{b}/sample/responses.parquet")
        );
        assert_eq!(failure(&judge), format!("judgments/{c}/judge/FAILED.json"));
        assert_eq!(claim(&judge), format!("judgments/{c}/judge/CLAIM.json"));
        assert_eq!(stage_log(&sample), format!("variants/{b}/logs/sample.log"));
        assert_eq!(record(&train), unit_json(&u));
        assert_eq!(
            checkpoint(&u, 40, "manifest.json"),
            format!("units/{a}/train/ckpt/00000040/manifest.json")
        );
        assert_eq!(checkpoint_step(&checkpoint(&u, 40, "x")), Some(40));
        let step = under(
            &stage_prefix(&train),
            &step_adapter_name(8, "adapter_config.json"),
        );
        assert_eq!(
            step,
            format!("units/{a}/train/steps/00000008/adapter_config.json")
        );
        assert_eq!(checkpoint_step(&step), Some(8));
        assert_eq!(stage_of(&step), Some(train));
        assert_eq!(stage_of("inputs/datasets/x.jsonl"), None);
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
        assert_eq!(
            judgment_cache("gpt-4o", "top20-first-token", "ab12"),
            "judge-cache/gpt-4o/top20-first-token/ab/ab12.json"
        );
    }

    #[test]
    fn each_stage_lives_under_its_owner_and_is_found_back_from_its_keys() {
        let u = UnitKey::parse(&k('a')).unwrap();
        let v = VariantKey::parse(&k('b')).unwrap();
        let j = JudgmentKey::parse(&k('c')).unwrap();
        for (stage, owner, name, file) in [
            (
                StageRef::Train(u.clone()),
                format!("units/{}", k('a')),
                "train",
                "unit.json",
            ),
            (
                StageRef::Sample(v),
                format!("variants/{}", k('b')),
                "sample",
                "variant.json",
            ),
            (
                StageRef::Judge(j),
                format!("judgments/{}", k('c')),
                "judge",
                "judgment.json",
            ),
        ] {
            assert_eq!(owner_prefix(&stage), owner);
            assert_eq!(stage_prefix(&stage), format!("{owner}/{name}"));
            assert_eq!(record(&stage), format!("{owner}/{file}"));
            assert_eq!(stage_log(&stage), format!("{owner}/logs/{name}.log"));
            assert_eq!(done(&stage), format!("{owner}/{name}/{DONE_FILE}"));
            // Every key of the stage, and its owner's record and log, name the stage.
            for key in [
                record(&stage),
                done(&stage),
                claim(&stage),
                stage_log(&stage),
                output(&stage, "a/b.bin"),
            ] {
                assert_eq!(stage_of(&key).as_ref(), Some(&stage), "{key}");
            }
        }
        assert_eq!(unit_prefix(&u), format!("units/{}", k('a')));
        assert_eq!(
            step_adapters_prefix(&u),
            under(&stage_prefix(&StageRef::Train(u.clone())), "steps")
        );
        assert_eq!(
            checkpoints_prefix(&u),
            under(&stage_prefix(&StageRef::Train(u.clone())), "ckpt")
        );
        // Keys of no stage, or of a malformed one, name none.
        for key in [
            "units",
            "units/abc/train/DONE.json",
            &format!("units/{}/train", k('A')),
            &format!("cells/{}/train/DONE.json", k('a')),
            "judge-cache/m/x/ab/ab12.json",
            LAYOUT_FILE,
        ] {
            assert_eq!(stage_of(key), None, "{key}");
        }
    }

    #[test]
    fn steps_are_read_back_only_from_checkpoint_and_step_keys() {
        let u = UnitKey::parse(&k('a')).unwrap();
        let train = StageRef::Train(u.clone());
        assert_eq!(step_adapter_name(0, "x"), "steps/00000000/x");
        assert_eq!(checkpoint_step(&checkpoint(&u, 0, "x")), Some(0));
        assert_eq!(
            checkpoint_step(&checkpoint(&u, 123_456_789, "x")),
            Some(123_456_789)
        );
        for key in [
            output(&train, "adapter/adapter_model.safetensors"),
            done(&train),
            under(&checkpoints_prefix(&u), "latest/x"),
            format!("variants/{}/sample/steps/00000008/x", k('b')),
        ] {
            assert_eq!(checkpoint_step(&key), None, "{key}");
        }
    }

    #[test]
    fn the_layout_constants_and_shared_keys() {
        assert_eq!(LAYOUT_VERSION, 2);
        assert_eq!(LAYOUT_FILE, "layout.json");
        assert_eq!(LEGACY_PREFIX, "cells/");
        assert_eq!(labels("ff00"), "inputs/labels/ff00.jsonl");
        assert_eq!(judge_spec("j1"), "judges/j1/judge.json");
        assert_eq!(
            judge_validation("j1", "ff00", "report.json"),
            "judges/j1/validation/ff00/report.json"
        );
        assert_eq!(sweep_submissions("quick"), "sweeps/quick/submissions");
        // A hash shorter than the shard is its own shard, never a panic.
        assert_eq!(judgment_cache("m", "x", "a"), "judge-cache/m/x/a/a.json");
        // Parts are joined with one slash, whatever slashes they carry.
        assert_eq!(under("/a/b/", "/c/"), "a/b/c");
    }
}
