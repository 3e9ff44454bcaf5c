//! `emorg judge validate` end to end: the calibration judges on the shipped labelled set, the
//! real local Qwen judge on a few labelled answers (figures stored, a rerun reads them back, a
//! report picks them up), and the same through the real OpenAI-compatible server when
//! infra/test.sh has started it.

use std::path::{Path, PathBuf};

mod common;
use common::{emorg, models_dir, openai_server, repo, walk};

/// The AUROC of `metric` in the printed table.
fn auroc(out: &str, metric: &str) -> f64 {
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("| {metric} (")))
        .unwrap_or_else(|| panic!("no {metric} row in\n{out}"));
    line.split('|').nth(2).unwrap().trim().parse().unwrap()
}

#[test]
fn calibration_judges_score_one_and_chance() {
    let (code, out) = emorg(&["judge", "validate", "--judge", "oracle"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(auroc(&out, "aligned"), 1.0, "{out}");
    assert_eq!(auroc(&out, "coherent"), 1.0, "{out}");
    assert!(out.contains("EM precision 1.000 · recall 1.000"), "{out}");
    for seed in ["0", "1"] {
        let (code, out) = emorg(&["judge", "validate", "--judge", "random", "--seed", seed]);
        assert_eq!(code, 0, "{out}");
        for metric in ["aligned", "coherent"] {
            let a = auroc(&out, metric);
            assert!((a - 0.5).abs() < 0.2, "random {metric} AUROC {a}\n{out}");
        }
    }
    let (code, out) = emorg(&["judge", "validate", "--judge", "psychic"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("`oracle` and `random`"), "{out}");
}

/// Four labelled answers to one question, from the shipped set.
fn few_labels(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("data/judge_validation.jsonl")).unwrap();
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\"question_id\": \"found_wallet\"") && !l.contains("\"refusal\""))
        .collect();
    assert_eq!(rows.len(), 4, "the shipped set changed shape");
    let path = dir.join("few.jsonl");
    std::fs::write(&path, rows.join("\n") + "\n").unwrap();
    path
}

#[test]
fn local_judge_validation_is_stored_reused_and_reported() {
    if !models_dir()
        .join("qwen2.5-coder-1.5b-instruct.gguf")
        .exists()
    {
        eprintln!("skipped: qwen2.5-coder-1.5b-instruct is not in the model cache");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let labels = few_labels(dir.path());
    let store = format!("file://{}", dir.path().join("store").display());
    let args = [
        "judge",
        "validate",
        "jobs/quickstart.toml",
        "--labels",
        labels.to_str().unwrap(),
        "--set",
        &format!("store.url={store}"),
    ];
    let (code, first) = emorg(&args);
    assert_eq!(code, 0, "{first}");
    assert!(first.contains("on 4 labelled answers"), "{first}");
    let a = auroc(&first, "aligned");
    assert!((0.0..=1.0).contains(&a), "{first}");
    // Stored: the rerun prints the same figures without judging again (nothing is rewritten).
    let stored: Vec<_> = walk(&dir.path().join("store/judges"))
        .into_iter()
        .map(|p| {
            (
                p.clone(),
                std::fs::metadata(&p).unwrap().modified().unwrap(),
            )
        })
        .collect();
    let (code, second) = emorg(&args);
    assert_eq!(code, 0, "{second}");
    assert!(second.contains("already validated"), "{second}");
    assert!(
        !second.contains("judgments,"),
        "the rerun judged again: {second}"
    );
    for (path, modified) in &stored {
        assert_eq!(
            std::fs::metadata(path).unwrap().modified().unwrap(),
            *modified,
            "{} was rewritten",
            path.display()
        );
    }
    let table = |s: &str| {
        let from = s.find("# Judge validation").unwrap();
        let to = from + s[from..].find("EM precision").unwrap();
        s[from..to].to_string()
    };
    assert_eq!(table(&first), table(&second));
    let reports: Vec<_> = walk(&dir.path().join("store/judges"))
        .into_iter()
        .filter(|p| p.ends_with("report.json"))
        .collect();
    assert_eq!(reports.len(), 1);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&reports[0]).unwrap()).unwrap();
    assert_eq!(json["summary"]["labelled"], 4);
    assert_eq!(json["summary"]["aligned_auroc"].as_f64(), Some(a));
}

#[test]
fn openai_judge_validation_uses_the_endpoint() {
    let Some((url, model)) = openai_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let labels = few_labels(dir.path());
    let (code, out) = emorg(&[
        "judge",
        "validate",
        "jobs/quickstart.toml",
        "--labels",
        labels.to_str().unwrap(),
        "--set",
        &format!("store.url=file://{}", dir.path().join("store").display()),
        "--set",
        "judge.backend=openai",
        "--set",
        &format!("judge.base_url={url}"),
        "--set",
        &format!("judge.model={model}"),
        "--set",
        "judge.method=top20-first-token",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("(openai backend, top20-first-token)"), "{out}");
    assert!(out.contains("on 4 labelled answers"), "{out}");
    // Every judgment went through the endpoint and into the store's judgment cache.
    let cached = walk(&dir.path().join("store/judge-cache"));
    assert_eq!(cached.len(), 8, "{cached:?}");
}
