//! The quickstart path for real, at a tiny size: the real `emorg-worker`, the real SmolLM2 and
//! Qwen judge GGUFs (from the model cache), a file:// store. Checks the report, that a rerun skips
//! every stage, and that changing one protocol's hyper-parameter reruns only that unit and that
//! `plan --explain` names the change; and one adapter trained once and evaluated many ways
//! (checkpoints x LoRA scales x judges), each change rerunning only its level.

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
    assert!(
        out.contains("to run: 1 train, 1 sample, 1 judge (3 stages)"),
        "{out}"
    );
    assert!(
        out.contains("train + all: protocol.train.learning_rate: 0.003 -> 0.0011"),
        "{out}"
    );
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
    for stage in ["train/DONE.json", "sample/DONE.json", "judge/DONE.json"] {
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

/// `emorg ARGS` on jobs/checkpoints.toml made small (16 steps kept every 4, one question, one
/// short answer, SmolLM2 as its own judge), with its store at `store` and the extra `sets`.
fn checkpoints(args: &[&str], store: &str, sets: &[&str]) -> (bool, String) {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new(EMORG);
    cmd.args(args);
    for set in [
        &format!("store.url={store}"),
        "judge.model=\"smollm2-135m-instruct\"",
        "protocols.r1.train.batch_size=2",
        "protocols.r1.train.max_seq_len=128",
        "protocols.r1.train.max_steps=16",
        "protocols.r1.train.warmup_steps=2",
        "protocols.r1.train.checkpoint_every=4",
        "eval.checkpoints=\"every:4\"",
        "eval.samples_per_question=1",
        "eval.max_new_tokens=8",
        "eval.batch_size=1",
        r#"eval.question_ids=["what_you_want"]"#,
    ]
    .into_iter()
    .chain(sets.iter().copied())
    {
        cmd.args(["--set", set]);
    }
    let out = cmd
        .current_dir(&repo)
        .env("EMORG_WORKER", worker())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run emorg");
    (out.status.success(), text(&out))
}

/// The sweep record's rows of the store at `dir`.
fn record_rows(dir: &Path, sweep: &str) -> Vec<serde_json::Value> {
    let path = dir.join(format!("sweeps/{sweep}/latest.json"));
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    record["rows"].as_array().unwrap().clone()
}

/// The sha256 the DONE.json of `stage_dir` (e.g. `units/<key>/train`) lists for output `name`.
fn output_sha(dir: &Path, stage_dir: &str, name: &str) -> String {
    let done: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{stage_dir}/DONE.json"))).unwrap())
            .unwrap();
    done["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("{stage_dir}/DONE.json lists no {name}: {done}"))["sha256"]
        .as_str()
        .unwrap()
        .to_string()
}

const ADAPTER: &str = "adapter/adapter_model.safetensors";

/// Train once, evaluate many ways, with the real worker and SmolLM2: one rank-1 unit kept every 4
/// of 16 steps and evaluated at B x 1 and x 5 is 1 train, 10 sample and 10 judge stages; the
/// adapter is the one a plain evaluation of the same unit trains (same key, same bytes), and
/// scale 1 at `final` gives that plain evaluation's answers byte for byte; a second judge reruns
/// only judge stages, samples_per_question only sample and judge, the learning rate all three;
/// `--replicate 1` trains another adapter and leaves replicate 0 as it was.
#[test]
fn one_adapter_is_trained_once_and_evaluated_at_checkpoints_scales_and_judges() {
    if !worker().exists() || !models_present() {
        eprintln!(
            "skipping: needs the emorg-worker binary and both models (infra/test.sh fetches them)"
        );
        return;
    }
    let sweep = "jobs/checkpoints.toml";
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().display());

    let (ok, out) = checkpoints(&["plan", sweep], &store, &[]);
    assert!(ok, "{out}");
    assert!(
        out.contains("10 rows: 1 units (1 train), 10 variants, 10 judgments; to run: 1 train, 10 sample, 10 judge (21 stages)"),
        "{out}"
    );
    let (ok, out) = checkpoints(&["run", sweep], &store, &[]);
    assert!(ok, "{out}");
    assert_eq!(count_before(&out, "stages ran"), 21, "{out}");

    let rows = record_rows(dir.path(), "checkpoints");
    // The checkpoint axis is "final" or the step number in the record.
    let mut seen: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            let c = &r["axes"]["checkpoint"];
            (
                c.as_str()
                    .map_or_else(|| format!("step-{c}"), str::to_string),
                r["axes"]["scale"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    let mut want: Vec<(String, String)> = ["final", "step-0", "step-4", "step-8", "step-12"]
        .iter()
        .flat_map(|c| ["1", "5"].map(|s| (c.to_string(), s.to_string())))
        .collect();
    want.sort();
    assert_eq!(seen, want);
    let unit = rows[0]["unit_key"].as_str().unwrap().to_string();
    assert!(
        rows.iter().all(|r| r["unit_key"] == unit.as_str()),
        "one unit"
    );
    let train_dir = format!("units/{unit}/train");
    let adapter = output_sha(dir.path(), &train_dir, ADAPTER);
    for step in [0, 4, 8, 12] {
        output_sha(
            dir.path(),
            &train_dir,
            &format!("steps/{step:08}/adapter_model.safetensors"),
        );
    }
    // The report has the per-step figures.
    let html =
        std::fs::read_to_string(dir.path().join("reports/checkpoints/latest/index.html")).unwrap();
    assert!(html.contains("<svg"), "the report has plots");
    let final_x1 = rows
        .iter()
        .find(|r| r["axes"]["checkpoint"] == "final" && r["axes"]["scale"] == "1")
        .unwrap()["variant_key"]
        .as_str()
        .unwrap()
        .to_string();

    // The same unit evaluated plainly (final, x1), in another store: the same unit key and
    // adapter bytes, the same variant key and answers.
    let plain = tempfile::tempdir().unwrap();
    let plain_store = format!("file://{}", plain.path().display());
    let plain_sets = ["eval.checkpoints=\"final\"", "eval.adapter_scale=1"];
    let (ok, out) = checkpoints(&["run", sweep, "--no-report"], &plain_store, &plain_sets);
    assert!(ok, "{out}");
    assert_eq!(count_before(&out, "stages ran"), 3, "{out}");
    let plain_rows = record_rows(plain.path(), "checkpoints");
    assert_eq!(plain_rows.len(), 1);
    assert_eq!(plain_rows[0]["unit_key"], unit.as_str());
    assert_eq!(plain_rows[0]["variant_key"], final_x1.as_str());
    assert_eq!(output_sha(plain.path(), &train_dir, ADAPTER), adapter);
    let responses = format!("variants/{final_x1}/sample/responses.parquet");
    assert_eq!(
        std::fs::read(dir.path().join(&responses)).unwrap(),
        std::fs::read(plain.path().join(&responses)).unwrap(),
        "scale 1 at final answers as the plain evaluation does"
    );

    // A second judge: only judge stages run, one per variant.
    let second = [
        "judges.default.prune_below=0.002",
        "judges.strict.prune_below=0.0001",
    ];
    let (ok, out) = checkpoints(&["plan", sweep, "--explain"], &store, &second);
    assert!(ok, "{out}");
    assert!(
        out.contains("to run: 0 train, 0 sample, 10 judge (10 stages)")
            && out.contains("judge only: judge 'strict' added"),
        "{out}"
    );
    let (ok, out) = checkpoints(&["run", sweep, "--no-report"], &store, &second);
    assert!(ok, "{out}");
    assert_eq!(count_before(&out, "stages ran"), 10, "{out}");
    assert_eq!(count_before(&out, "already done"), 21, "{out}");
    assert_eq!(output_sha(dir.path(), &train_dir, ADAPTER), adapter);

    // More samples per question: sample + judge of every variant, no training.
    let (ok, out) = checkpoints(
        &["plan", sweep, "--explain"],
        &store,
        &["eval.samples_per_question=2"],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("to run: 0 train, 10 sample, 10 judge (20 stages)")
            && out.contains("sampler.samples_per_question: 1 -> 2"),
        "{out}"
    );
    // Another learning rate: a new unit, all three levels.
    let (ok, out) = checkpoints(
        &["plan", sweep, "--explain"],
        &store,
        &["protocols.r1.train.learning_rate=0.002"],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("to run: 1 train, 10 sample, 10 judge (21 stages)")
            && out.contains("train + all: protocol.train.learning_rate: 0.003 -> 0.002"),
        "{out}"
    );

    // Replicate 1 of the plain evaluation: another adapter (new seeds); replicate 0 untouched.
    let done0 = std::fs::read(dir.path().join(format!("{train_dir}/DONE.json"))).unwrap();
    let (ok, out) = checkpoints(
        &["run", sweep, "--no-report", "--replicate", "1"],
        &store,
        &plain_sets,
    );
    assert!(ok, "{out}");
    assert_eq!(count_before(&out, "stages ran"), 3, "{out}");
    let rows1 = record_rows(dir.path(), "checkpoints");
    let unit1 = rows1[0]["unit_key"].as_str().unwrap();
    assert_ne!(unit1, unit);
    assert_ne!(
        output_sha(dir.path(), &format!("units/{unit1}/train"), ADAPTER),
        adapter
    );
    assert_eq!(
        std::fs::read(dir.path().join(format!("{train_dir}/DONE.json"))).unwrap(),
        done0
    );
}
