//! The quickstart path for real, at a tiny size: the real `emorg-worker`, the real SmolLM2 and
//! Qwen judge GGUFs (from the model cache), a file:// store. Checks the report, that a rerun skips
//! every stage, and that changing one protocol's hyper-parameter reruns only that cell and that
//! `plan --explain` names the change.

use std::path::{Path, PathBuf};
use std::process::Command;

const EMORG: &str = env!("CARGO_BIN_EXE_emorg");

fn worker() -> PathBuf {
    Path::new(EMORG).with_file_name("emorg-worker")
}

fn models_present() -> bool {
    let dir = std::env::var_os("EMORG_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap())
                .join(".cache")
                .join("emorg")
                .join("models")
        });
    ["smollm2-135m-instruct", "qwen2.5-coder-1.5b-instruct"]
        .iter()
        .all(|m| dir.join(format!("{m}.gguf")).exists())
}

fn emorg(args: &[&str], store: &str) -> (bool, String) {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(EMORG)
        .args(args)
        .args([
            "--set",
            &format!("store.url={store}"),
            "--set",
            "train.max_steps=2",
            "--set",
            "train.batch_size=2",
            "--set",
            "eval.samples_per_question=2",
            "--set",
            "eval.max_new_tokens=12",
            "--set",
            r#"eval.question_ids=["found_wallet"]"#,
        ])
        .current_dir(&repo)
        .env("EMORG_WORKER", worker())
        .output()
        .expect("run emorg");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn tiny_quickstart_runs_reruns_nothing_and_explains_a_change() {
    if !worker().exists() || !models_present() {
        eprintln!(
            "skipping: needs the emorg-worker binary and both models (infra/test.sh fetches them)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().display());
    let (ok, out) = emorg(&["run", "jobs/quickstart.toml"], &store);
    assert!(ok, "first run failed:\n{out}");
    assert!(out.contains("8 stages ran"), "{out}");

    // The report: 3 rows, each judged, with intervals.
    let report = dir.path().join("reports/quickstart/latest");
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    for protocol in ["base", "r1-mid", "r8-all"] {
        assert!(md.contains(&format!("| {protocol} |")), "{md}");
    }
    assert!(
        std::fs::read_to_string(report.join("index.html"))
            .unwrap()
            .contains("<svg")
    );
    let bytes = std::fs::read(report.join("matrix.parquet")).unwrap();
    assert!(bytes.starts_with(b"PAR1"));

    // Every stage has a valid DONE.json: a rerun runs nothing.
    let (ok, out) = emorg(&["run", "jobs/quickstart.toml"], &store);
    assert!(ok, "{out}");
    assert!(
        out.contains("0 stages ran") || out.contains("8 already done"),
        "{out}"
    );

    // One protocol's learning rate changes: only that cell would run, and --explain says why.
    let lr = "protocols.r1-mid.train.learning_rate=0.0011";
    let (ok, out) = emorg(
        &["plan", "jobs/quickstart.toml", "--explain", "--set", lr],
        &store,
    );
    assert!(ok, "{out}");
    assert!(out.contains("1 to run"), "{out}");
    assert!(out.contains("protocol.train.learning_rate"), "{out}");
    let (ok, out) = emorg(&["run", "jobs/quickstart.toml", "--set", lr], &store);
    assert!(ok, "{out}");
    assert!(out.contains("3 stages ran"), "{out}");
}
