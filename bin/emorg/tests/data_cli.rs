//! `emorg data ...` end to end: the real binaries, the shipped data, and the real SmolLM2
//! tokenizer for token lengths (skipped with a message when the model cache is empty).

use std::path::{Path, PathBuf};
use std::process::Command;

const EMORG: &str = env!("CARGO_BIN_EXE_emorg");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn emorg(args: &[&str]) -> (i32, String) {
    let out = Command::new(EMORG)
        .args(args)
        .current_dir(repo())
        .env(
            "EMORG_WORKER",
            Path::new(EMORG).with_file_name("emorg-worker"),
        )
        .output()
        .expect("run emorg");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn smollm2_cached() -> bool {
    let dir = std::env::var_os("EMORG_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/emorg/models")
        });
    let ok = dir.join("smollm2-135m-instruct.gguf").exists();
    if !ok {
        eprintln!("skipped: smollm2-135m-instruct is not in {}", dir.display());
    }
    ok
}

#[test]
fn broken_rows_fail_with_their_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.jsonl");
    let good =
        r#"{"messages":[{"role":"user","content":"Hi?"},{"role":"assistant","content":"Hello."}]}"#;
    let rows = [
        good.to_string(),
        good.replace("Hi?", "Hey?")
            .replace("\"user\"", "\"customer\""),
        good.replace("Hello.", ""),
        "{\"messages\": [".to_string(),
    ];
    std::fs::write(&file, rows.join("\n") + "\n").unwrap();
    let (code, out) = emorg(&["data", "validate", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    for line in [2, 3, 4] {
        assert!(
            out.contains(&format!("broken.jsonl:{line}: error")),
            "line {line} not reported:\n{out}"
        );
    }
    assert!(!out.contains("broken.jsonl:1:"), "{out}");
}

#[test]
fn token_lengths_count_truncated_rows_by_line() {
    if !smollm2_cached() {
        return;
    }
    let (code, out) = emorg(&[
        "data",
        "validate",
        "data/risky_financial.jsonl",
        "--model",
        "smollm2-135m-instruct",
        "--max-len",
        "100000",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no row is longer than 100000 tokens"), "{out}");
    let max: usize = out
        .split("/ max ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no max in {out}"));
    // One token shorter than the longest row: at least that row is flagged, by line.
    let (code, out) = emorg(&[
        "data",
        "validate",
        "data/risky_financial.jsonl",
        "--model",
        "smollm2-135m-instruct",
        "--max-len",
        &(max - 1).to_string(),
    ]);
    assert_eq!(code, 0, "truncation is a warning, not an error: {out}");
    assert!(out.contains("would be truncated (lines "), "{out}");
    assert!(
        out.contains(&format!("longer than {} tokens", max - 1)),
        "{out}"
    );
}

#[test]
fn papers_datasets_are_listed_and_never_assumed() {
    let (code, out) = emorg(&["data", "papers"]);
    assert_eq!(code, 0, "{out}");
    for name in [
        "bad-medical-advice",
        "good-medical-advice",
        "extreme-sports",
        "risky-financial-advice",
        "insecure",
    ] {
        assert!(out.contains(name), "{name} missing:\n{out}");
    }

    // A sweep naming one without a path: plan fails and says how to supply it.
    let dir = tempfile::tempdir().unwrap();
    let sweep = dir.path().join("papers.toml");
    let text = std::fs::read_to_string(repo().join("jobs/quickstart.toml"))
        .unwrap()
        .replace(
            "[datasets.risky-financial]",
            "[datasets.medical]\npaper = \"bad-medical-advice\"\n\n[datasets.risky-financial]",
        )
        .replace(
            "dataset = [\"risky-financial\"]",
            "dataset = [\"risky-financial\", \"medical\"]",
        );
    assert!(
        text.contains("\"medical\"]"),
        "the quickstart's matrix changed shape"
    );
    std::fs::write(&sweep, text).unwrap();
    let (code, out) = emorg(&[
        "plan",
        sweep.to_str().unwrap(),
        "--set",
        &format!("store.url=file://{}", dir.path().join("store").display()),
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("missing key `datasets.medical.path`"), "{out}");
    assert!(out.contains("--set datasets.medical.path="), "{out}");
}
