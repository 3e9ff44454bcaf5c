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
    let out = emorg_command(args, store).output().expect("run emorg");
    (out.status.success(), text(&out))
}

/// stdout then stderr.
fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `emorg ARGS` on the tiny sizes, with its store at `store`.
fn emorg_command(args: &[&str], store: &str) -> Command {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new(EMORG);
    cmd.args(args)
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
        .stdin(std::process::Stdio::null());
    cmd
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

/// The figure before `label` in a run's summary line ("3 stages ran", "1 held by another run").
fn count_before(out: &str, label: &str) -> usize {
    let line = out
        .lines()
        .find(|l| l.contains(" stages ran ("))
        .unwrap_or_else(|| panic!("no summary in\n{out}"));
    let at = line
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in {line}"));
    line[..at]
        .trim_end()
        .rsplit([' ', ','])
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Two launchers on one sweep at once, locally: nothing fails, each stage is committed once, and
/// what one launcher holds the other leaves to it (or finds done).
#[test]
fn two_launchers_on_one_sweep_run_each_stage_once() {
    if !worker().exists() || !models_present() {
        eprintln!(
            "skipping: needs the emorg-worker binary and both models (infra/test.sh fetches them)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().display());
    let args = [
        "run",
        "jobs/quickstart.toml",
        "--no-report",
        "--set",
        r#"matrix.protocol=["r1-mid"]"#,
    ];
    let children: Vec<_> = (0..2)
        .map(|_| {
            emorg_command(&args, &store)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            let text = text(&out);
            assert!(out.status.success(), "a launcher failed:\n{text}");
            text
        })
        .collect();
    for out in &outs {
        assert_eq!(count_before(out, "failed"), 0, "{out}");
    }
    let ran: usize = outs.iter().map(|o| count_before(o, "stages ran")).sum();
    assert_eq!(
        ran,
        3,
        "each of the three stages ran once:\n{}",
        outs.join("\n----\n")
    );
    let files: Vec<PathBuf> = walk(dir.path());
    assert!(
        !files.iter().any(|f| f.ends_with("FAILED.json")),
        "{files:?}"
    );
    for stage in [
        "train/DONE.json",
        "sample/final/DONE.json",
        "judge/final/DONE.json",
    ] {
        assert_eq!(
            files.iter().filter(|f| f.ends_with(stage)).count(),
            1,
            "{stage}: {files:?}"
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
