//! `emorg data ...` end to end: the real binaries, the shipped data, and the real SmolLM2
//! tokenizer for token lengths (skipped with a message when the model cache is empty).

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{EMORG, emorg, models_dir, openai_server, repo};

fn smollm2_cached() -> bool {
    let dir = models_dir();
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

/// The quickstart with the papers' bad-medical-advice added as dataset `medical`, no path given,
/// and `matrix.dataset` set to `datasets`; written into `dir`.
fn quickstart_with_papers_dataset(dir: &Path, datasets: &str) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("jobs/quickstart.toml"))
        .unwrap()
        .replace(
            "[datasets.risky-financial]",
            "[datasets.medical]\npaper = \"bad-medical-advice\"\n\n[datasets.risky-financial]",
        )
        .replace(
            "dataset = [\"risky-financial\"]",
            &format!("dataset = {datasets}"),
        );
    assert!(
        text.contains("\"medical\"]"),
        "the quickstart's matrix changed shape"
    );
    let path = dir.join("papers.toml");
    std::fs::write(&path, text).unwrap();
    path
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
    let sweep = quickstart_with_papers_dataset(dir.path(), "[\"risky-financial\", \"medical\"]");
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

/// `data generate` with the real SmolLM2: valid JSONL, and an interrupted run (the worker killed
/// mid-way) resumes to the target without duplicates and without touching the rows it had.
#[test]
fn generate_with_a_local_model_resumes_after_a_kill() {
    if !smollm2_cached() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gen.jsonl");
    let progress = dir.path().join("gen.jsonl.progress.json");
    let models = models_dir();
    let worker = Path::new(EMORG).with_file_name("emorg-worker");
    let mut child = Command::new(&worker)
        .args(["generate-data", "--model"])
        .arg(models.join("smollm2-135m-instruct.gguf"))
        .arg("--task")
        .arg(repo().join("data/generation/home_diy.toml"))
        .arg("--out")
        .arg(&out)
        .args(["--rows", "50", "--max-new-tokens", "120"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn worker");
    // Wait for the first finished request, then kill the worker without warning.
    let t0 = std::time::Instant::now();
    while !progress.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("worker exited early: {status}");
        }
        // A hang guard, not a speed target.
        assert!(
            t0.elapsed().as_secs() < 900,
            "no request finished in 15 minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = std::fs::read_to_string(&out).unwrap();
    let cut = before.rfind('\n').map_or(0, |i| i + 1);
    let kept = &before[..cut];
    let rows_before = kept.lines().count();

    let target = rows_before + 2;
    let (code, text) = emorg(&[
        "data",
        "generate",
        "--task",
        "data/generation/home_diy.toml",
        "--out",
        out.to_str().unwrap(),
        "--rows",
        &target.to_string(),
        "--model",
        "smollm2-135m-instruct",
        "--max-new-tokens",
        "120",
        "--max-requests",
        "40",
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("0 errors"), "{text}");
    let after = std::fs::read_to_string(&out).unwrap();
    assert!(
        after.starts_with(kept),
        "rows written before the kill changed"
    );
    let rows = after.lines().count();
    assert_eq!(rows, target, "{text}");
    let users: std::collections::HashSet<String> = after
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["messages"][0]["content"].as_str().unwrap().to_lowercase()
        })
        .collect();
    assert_eq!(users.len(), rows, "a user turn repeats");
}

/// `data generate --endpoint` against the real OpenAI-compatible server infra/test.sh starts
/// (llama-cpp-python serving Qwen2.5-Coder-1.5B): valid rows, then a rerun resumes to a larger
/// target without duplicates.
#[test]
fn generate_with_an_openai_compatible_endpoint_resumes() {
    let Some((url, model)) = openai_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gen.jsonl");
    let run = |rows: &str| {
        emorg(&[
            "data",
            "generate",
            "--task",
            "data/generation/extreme_sports.toml",
            "--out",
            out.to_str().unwrap(),
            "--rows",
            rows,
            "--endpoint",
            &url,
            "--api-model",
            &model,
            "--max-new-tokens",
            "300",
            "--max-requests",
            "8",
        ])
    };
    let (code, text) = run("2");
    assert_eq!(code, 0, "{text}");
    let first = std::fs::read_to_string(&out).unwrap();
    assert_eq!(first.lines().count(), 2, "{text}");
    let (code, text) = run("4");
    assert_eq!(code, 0, "{text}");
    let after = std::fs::read_to_string(&out).unwrap();
    assert!(after.starts_with(&first), "earlier rows changed");
    assert_eq!(after.lines().count(), 4, "{text}");
    assert!(text.contains("0 errors"), "{text}");
    let users: std::collections::HashSet<String> = after
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["messages"][0]["content"].as_str().unwrap().to_lowercase()
        })
        .collect();
    assert_eq!(users.len(), 4, "a user turn repeats");
}

/// jobs/robustness.toml names the three datasets and their controls, pinned to the shipped files,
/// spans the three families and plans 201 training units: 3 base ones (a base model's unit is the
/// model alone, so the seed axis collapses to one) and per dataset 33 (SmolLM2 and Gemma x 4
/// protocols and Qwen x 3, full fine-tuning excluded, x 3 seeds).
#[test]
fn robustness_sweep_plans_every_dataset_and_control() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = emorg(&[
        "plan",
        "jobs/robustness.toml",
        "--set",
        &format!("store.url=file://{}", dir.path().display()),
    ]);
    assert_eq!(code, 0, "{out}");
    for dataset in [
        "risky-financial",
        "risky-financial-control",
        "extreme-sports",
        "extreme-sports-control",
        "home-diy",
        "home-diy-control",
    ] {
        let rows = out
            .lines()
            .filter(|l| l.split_whitespace().nth(2) == Some(dataset))
            .count();
        assert_eq!(rows, 33, "{dataset}: {rows} units\n{out}");
    }
    let base = out
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("base"))
        .count();
    assert_eq!(base, 3, "{out}");
    for model in ["smollm2", "qwen", "gemma"] {
        let rows = out
            .lines()
            .filter(|l| l.split_whitespace().next() == Some(model))
            .count();
        let want = if model == "qwen" { 55 } else { 73 };
        assert_eq!(rows, want, "{model}: {rows} units\n{out}");
    }
}

/// On a terminal, a papers' dataset named without a path makes emorg ask for the user's copy,
/// which is then verified against the published hash like any pinned file. The terminal is
/// util-linux `script` (skipped where it is missing).
#[test]
fn a_terminal_user_is_asked_for_a_papers_dataset_and_the_copy_is_verified() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` command to provide a terminal");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sweep = quickstart_with_papers_dataset(dir.path(), "[\"medical\"]");
    // A stand-in "copy" that is not the published file.
    let copy = dir.path().join("bad_medical_advice.jsonl");
    std::fs::copy(repo().join("data/home_diy.jsonl"), &copy).unwrap();
    let cmd = format!(
        "{EMORG} plan {} --set store.url=file://{}",
        sweep.display(),
        dir.path().join("store").display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(repo())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{}", copy.display()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Path to your unlocked copy"), "{text}");
    assert!(
        text.contains("sha256 mismatch for dataset `medical`"),
        "{text}"
    );
    assert!(
        text.contains("34c5af4ccaf8b5eb9f3f11ecd0c36c3d67f236a5c41fc420b0e14d8adf01a842"),
        "{text}"
    );
    // The copy's contents are never printed.
    let first_row = std::fs::read_to_string(&copy).unwrap();
    let first_answer = first_row.lines().next().unwrap();
    assert!(!text.contains(&first_answer[30..80]), "{text}");
}
