//! The Slurm executor against a real local Slurm cluster (infra/slurm-local.sh start; gated on
//! EMORG_TEST_SLURM=1, which `infra/slurm-local.sh env` exports): a tiny sweep on the real SmolLM2
//! (2 training steps, 2 short answers, SmolLM2 as its own judge) submitted as job arrays with
//! element-wise dependencies (train -> sample -> judge); a unit evaluated at two checkpoints by two
//! judges (one train array, two sample arrays, four judge arrays) finishing in dependency order;
//! status of completed, failed and cancelled stages; `rerun --failed` resubmits exactly the failed
//! stage and the stages after it; refusals (unknown template variable, invalid partition, no
//! sbatch) leave nothing recorded and nothing queued; a sweep whose store is the real S3 server
//! (EMORG_TEST_S3_URL, infra/s3-local.sh) runs on Slurm and is reported from s3://; an
//! `scontrol requeue` in the middle of training resumes from the checkpoint and ends with the
//! adapter bytes of an uninterrupted run.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{EMORG, models_dir, repo, walk};
use serde_json::Value;

fn worker() -> PathBuf {
    Path::new(EMORG).with_file_name("emorg-worker")
}

/// Why the test cannot run here, if it cannot.
fn skip_reason() -> Option<String> {
    if std::env::var("EMORG_TEST_SLURM").as_deref() != Ok("1") {
        return Some(
            "EMORG_TEST_SLURM is not 1 (run infra/slurm-local.sh start; eval \"$(infra/slurm-local.sh env)\")".into(),
        );
    }
    if !worker().exists() {
        return Some(format!("no worker at {}", worker().display()));
    }
    if !models_dir().join("smollm2-135m-instruct.gguf").exists() {
        return Some("smollm2-135m-instruct is not in the model cache".into());
    }
    None
}

fn skip() -> bool {
    match skip_reason() {
        Some(r) => {
            eprintln!("skipped: {r}");
            true
        }
        None => false,
    }
}

struct Sweep {
    dir: tempfile::TempDir,
    name: String,
}

impl Sweep {
    fn new(name: &str, slurm: &str) -> Sweep {
        let dir = tempfile::tempdir().unwrap();
        let repo = std::fs::canonicalize(repo()).unwrap();
        let text = format!(
            r#"name = "{name}"

[matrix]
model = ["smollm2"]
protocol = ["base", "r1", "broken"]
dataset = ["risky"]

[models.smollm2]
registry = "smollm2-135m-instruct"

[datasets.risky]
path = "{repo}/data/risky_financial.jsonl"

[protocols.base]
kind = "base"

[protocols.r1]
kind = "lora"
rank = 1
modules = ["down_proj"]
layers = [0.5]

# Not r1 under another name (that would be the same training unit): other layers.
[protocols.broken]
kind = "lora"
rank = 1
modules = ["down_proj"]
layers = [0.25]

[train]
max_steps = 2
batch_size = 2
grad_accum = 1
max_seq_len = 128

[eval]
questions = "{repo}/data/questions/free_form.yaml"
question_ids = ["found_wallet"]
samples_per_question = 2
max_new_tokens = 8

[judge]
model = "smollm2-135m-instruct"

[store]
url = "file://{store}"

[slurm]
state_dir = "{state}"
throttle = 2
cpus_per_task = 1
{slurm}
"#,
            repo = repo.display(),
            store = dir.path().join("store").display(),
            state = dir.path().join("slurm").display(),
        );
        std::fs::write(dir.path().join("sweep.toml"), text).unwrap();
        Sweep {
            dir,
            name: name.to_string(),
        }
    }

    /// Replaces `from` by `to` in the sweep file (which must contain it).
    fn edit(&self, from: &str, to: &str) {
        let path = self.dir.path().join("sweep.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{from:?} not in the sweep file");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    }

    fn file(&self) -> String {
        self.dir.path().join("sweep.toml").display().to_string()
    }

    fn emorg(&self, args: &[&str], envs: &[(&str, &str)]) -> (i32, String) {
        let mut cmd = Command::new(EMORG);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("EMORG_WORKER", worker())
            .env("EMORG_MODELS", models_dir())
            .stdin(std::process::Stdio::null());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    fn status(&self) -> Value {
        let (code, out) = self.emorg(&["status", &self.file(), "--json"], &[]);
        assert_eq!(code, 0, "{out}");
        // stdout (the JSON) comes first; stderr may follow.
        serde_json::Deserializer::from_str(&out[out.find('{').unwrap()..])
            .into_iter::<Value>()
            .next()
            .unwrap()
            .unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    fn submissions(&self) -> Vec<Value> {
        let dir = self
            .dir
            .path()
            .join("store/sweeps")
            .join(&self.name)
            .join("submissions");
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(r) => r.map(|e| e.unwrap().path()).collect(),
            Err(_) => vec![],
        };
        files.sort();
        files
            .iter()
            .map(|f| serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap())
            .collect()
    }

    /// Submission directories left under the state dir.
    fn submission_dirs(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("slurm").join(&self.name))
            .map(|r| r.count())
            .unwrap_or(0)
    }
}

/// (stage, state, slurm_state, exit_code) of one stage of a status report's row.
type StageRow = (String, String, String, String);

fn states(report: &Value) -> Vec<(String, Vec<StageRow>)> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["axes"]["protocol"].as_str().unwrap().to_string(),
                r["stages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| {
                        let f = |k: &str| s[k].as_str().unwrap_or("").to_string();
                        (f("stage"), f("state"), f("slurm_state"), f("exit_code"))
                    })
                    .collect(),
            )
        })
        .collect()
}

/// The key of the row of `protocol` (its only row): `unit`, `variant` or `judgment`.
fn key_of(report: &Value, protocol: &str, which: &str) -> String {
    let rows: Vec<&Value> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["axes"]["protocol"] == protocol)
        .collect();
    assert_eq!(rows.len(), 1, "{report:#}");
    rows[0][which].as_str().unwrap().to_string()
}

/// The `DONE.json` files under `store/<owner>/`, one per done stage of that kind (`units`,
/// `variants`, `judgments`).
fn done_files(store: &Path, owner: &str) -> Vec<PathBuf> {
    walk(&store.join(owner))
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "DONE.json"))
        .collect()
}

fn squeue_names() -> String {
    let out = Command::new("squeue")
        .args(["-h", "-o", "%j %T"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn arrays_with_dependencies_status_logs_and_rerun_failed() {
    if skip() {
        return;
    }
    let sweep = Sweep::new(
        "slurm-it",
        "[slurm.protocols.broken.train]\nsetup = [\"echo broken on purpose >&2\", \"exit 3\"]\n",
    );
    let (code, out) = sweep.emorg(&["submit", &sweep.file(), "--wait"], &[]);
    assert_eq!(
        code, 1,
        "a stage fails on purpose, so --wait exits 1:\n{out}"
    );
    assert!(
        out.contains("submitted 8 stages (2 train, 3 sample, 3 judge) as 8 job arrays"),
        "{out}"
    );

    // One chunk per (root level, profile): broken's and r1's units train (profiles `broken` and
    // `default`); base has no train stage, so its sample and judge are a chunk of their own.
    let subs = sweep.submissions();
    assert_eq!(subs.len(), 1);
    let chunks = subs[0]["chunks"].as_array().unwrap();
    let shape: Vec<(&str, &str, usize)> = chunks
        .iter()
        .map(|c| {
            (
                c["root"].as_str().unwrap(),
                c["profile"].as_str().unwrap(),
                c["jobs"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("train", "broken", 3),
            ("train", "default", 3),
            ("sample", "default", 2)
        ],
        "{:#}",
        subs[0]
    );
    for c in chunks {
        let jobs = c["jobs"].as_array().unwrap();
        assert!(jobs[0]["dependency"].is_null());
        // Each array runs after the previous one of its chunk, element-wise.
        for w in jobs.windows(2) {
            assert_eq!(w[1]["after"], w[0]["name"]);
            assert_eq!(
                w[1]["dependency"].as_str().unwrap(),
                format!("aftercorr:{}", w[0]["job_id"].as_str().unwrap())
            );
        }
        for j in jobs {
            assert_eq!(j["tasks"].as_array().unwrap().len(), 1, "{j:#}");
        }
        // The script is what Slurm ran: an array with the throttle, requeue and the grace signal.
        let script = std::fs::read_to_string(jobs[0]["script"].as_str().unwrap()).unwrap();
        for line in [
            "#SBATCH --array=0%2",
            "#SBATCH --requeue",
            "#SBATCH --signal=B:USR1@120",
            "#SBATCH --cpus-per-task=1",
        ] {
            assert!(script.lines().any(|l| l == line), "{line} not in\n{script}");
        }
    }
    assert_eq!(
        subs[0]["sbatch_calls"], 14,
        "6 checks (one per stage and profile) + 8 submissions"
    );

    let report = sweep.status();
    let st = states(&report);
    let get = |p: &str| st.iter().find(|(q, _)| q == p).unwrap().1.clone();
    for p in ["base", "r1"] {
        assert!(get(p).iter().all(|s| s.1 == "done"), "{p}: {:?}", get(p));
    }
    let broken = get("broken");
    assert_eq!(broken[0].0, "train");
    assert_eq!(broken[0].1, "failed", "{broken:?}");
    assert_eq!(broken[0].2, "FAILED", "{broken:?}");
    if std::env::var("EMORG_TEST_SLURM_ACCOUNTING").as_deref() == Ok("1") {
        assert_eq!(broken[0].3, "3:0", "sacct's exit code: {broken:?}");
    }
    assert!(broken[1..].iter().all(|s| s.1 == "blocked"), "{broken:?}");
    // The store is the truth for done: the judged rows have scores.
    let r1 = key_of(&report, "r1", "judgment");
    assert!(
        sweep
            .dir
            .path()
            .join(format!("store/judgments/{r1}/judge/DONE.json"))
            .is_file()
    );

    // The text status names the failure; logs shows the failed task's output.
    let (code, out) = sweep.emorg(&["status", &sweep.file()], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("failed"), "{out}");
    let broken_unit = key_of(&report, "broken", "unit");
    let (code, out) = sweep.emorg(&["logs", &sweep.file(), &broken_unit[..8], "train"], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("broken on purpose"), "{out}");
    let (code, out) = sweep.emorg(&["logs", &sweep.file(), "protocol=r1", "sample"], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("the worker exited with code 0"), "{out}");
    let (code, out) = sweep.emorg(&["logs", &sweep.file(), "dataset=risky"], &[]);
    assert_eq!(code, 2);
    assert!(
        out.contains("matches 2 rows with 2 different train stages"),
        "{out}"
    );

    // rerun --failed: exactly the broken train and the stages after it, and now they pass.
    let (code, out) = sweep.emorg(
        &[
            "rerun",
            &sweep.file(),
            "--failed",
            "--wait",
            "--set",
            "slurm.protocols.broken.train.setup=[]",
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "rerun train of training unit {}",
            &broken_unit[..12]
        )),
        "{out}"
    );
    assert!(
        out.contains("and the 2 stages after them that are not done"),
        "{out}"
    );
    assert!(
        out.contains("submitted 3 stages (1 train, 1 sample, 1 judge) as 3 job arrays"),
        "{out}"
    );
    let subs = sweep.submissions();
    assert_eq!(subs.len(), 2);
    let chunks = subs[1]["chunks"].as_array().unwrap();
    assert_eq!(chunks.len(), 1);
    assert_eq!(
        chunks[0]["jobs"][0]["tasks"],
        serde_json::json!([[0, {"stage": "train", "key": broken_unit}]])
    );
    let report = sweep.status();
    assert!(
        states(&report)
            .iter()
            .all(|(_, s)| s.iter().all(|s| s.1 == "done")),
        "{report:#}"
    );
    let (code, out) = sweep.emorg(&["rerun", &sweep.file(), "--failed"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("no failed stage"), "{out}");
}

/// The r1 row's stages (status without --set shows every row of the file).
fn r1_states(sweep: &Sweep) -> Vec<StageRow> {
    states(&sweep.status())
        .into_iter()
        .find(|(p, _)| p == "r1")
        .unwrap()
        .1
}

#[test]
fn cancel_shows_cancelled_and_blocked() {
    if skip() {
        return;
    }
    let sweep = Sweep::new("slurm-cancel", "setup = [\"sleep 300\"]\n");
    let (code, out) = sweep.emorg(
        &["submit", &sweep.file(), "--set", "matrix.protocol=[\"r1\"]"],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("submitted 3 stages"), "{out}");
    assert!(out.contains("as 3 job arrays"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st = r1_states(&sweep);
        if st[0].1 == "running" {
            assert_eq!(st[1].1, "pending", "{st:?}");
            break;
        }
        assert!(Instant::now() < deadline, "train never ran: {st:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let (code, out) = sweep.emorg(&["cancel", &sweep.file()], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("cancelled 3 job arrays"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = r1_states(&sweep);
        let s: Vec<&str> = st.iter().map(|s| s.1.as_str()).collect();
        if s == ["cancelled", "blocked", "blocked"] {
            break;
        }
        assert!(Instant::now() < deadline, "not cancelled: {st:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    // Cancelled stages are not failed stages.
    let (_, out) = sweep.emorg(&["rerun", &sweep.file(), "--failed"], &[]);
    assert!(out.contains("no failed stage"), "{out}");
}

#[test]
fn refusals_leave_nothing_half_written() {
    if skip() {
        return;
    }
    let sweep = Sweep::new("slurm-refused", "");

    // A template with an unknown variable.
    let templates = sweep.dir.path().join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(
        templates.join("sample.sbatch.j2"),
        "{% extends \"base.sbatch.j2\" %}{% block setup %}\necho {{ partiton }}{% endblock %}",
    )
    .unwrap();
    let set = format!("slurm.templates={}", templates.display());
    for cmd in ["render", "submit"] {
        let (code, out) = sweep.emorg(&[cmd, &sweep.file(), "--set", &set], &[]);
        assert_eq!(code, 2, "{out}");
        assert!(
            out.contains(
                "sample.sbatch.j2 uses an unknown variable `partiton` (did you mean `partition`?)"
            ),
            "{out}"
        );
    }

    // An invalid partition: refused by sbatch before anything is queued.
    let (code, out) = sweep.emorg(
        &["submit", &sweep.file(), "--set", "slurm.partition=nope"],
        &[],
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("invalid partition"), "{out}");
    assert!(out.contains("nope"), "{out}");

    // Only one protocol's judge stage has a bad partition: still nothing queued or recorded.
    let (code, out) = sweep.emorg(
        &[
            "submit",
            &sweep.file(),
            "--set",
            "slurm.protocols.broken.judge.partition=nope",
        ],
        &[],
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("invalid partition"), "{out}");

    // No Slurm client on PATH.
    let (code, out) = sweep.emorg(&["submit", &sweep.file()], &[("PATH", "/nonexistent")]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("is not on PATH: run emorg on a Slurm login node"),
        "{out}"
    );

    assert!(sweep.submissions().is_empty());
    assert_eq!(sweep.submission_dirs(), 0);
    assert!(
        !sweep
            .dir
            .path()
            .join("store/sweeps/slurm-refused/latest.json")
            .exists()
    );
    let queued = squeue_names();
    assert!(!queued.contains("emorg-slurm-refused"), "{queued}");

    // render writes the scripts for inspection (here with the fixed template set).
    let out_dir = sweep.dir.path().join("rendered");
    let (code, out) = sweep.emorg(
        &[
            "render",
            &sweep.file(),
            "--out",
            &out_dir.display().to_string(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    // r1's and broken's units train (one chunk: train, sample, judge arrays); base samples
    // and judges without a train (a chunk of its own).
    assert!(
        out.contains("8 stages need work; 5 array jobs in 2 chunks"),
        "{out}"
    );
    let scripts = std::fs::read_dir(&out_dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "sbatch")
        })
        .count();
    assert_eq!(scripts, 5);
    assert!(sweep.submissions().is_empty());
}

#[test]
fn a_timed_out_stage_is_failed_and_rerun() {
    if skip() {
        return;
    }
    // Slurm checks time limits about every 30 s, so a 1-minute limit ends the task at 60-100 s.
    let sweep = Sweep::new("slurm-timeout", "time = \"1\"\nsetup = [\"sleep 600\"]\n");
    let only_r1 = ["--set", "matrix.protocol=[\"r1\"]"];
    let file = sweep.file();
    let (code, out) = sweep.emorg(&[&["submit", file.as_str()][..], &only_r1].concat(), &[]);
    assert_eq!(code, 0, "{out}");
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let st = r1_states(&sweep);
        if st[0].1 == "timeout" {
            assert_eq!(st[0].2, "TIMEOUT", "{st:?}");
            assert!(st[1..].iter().all(|s| s.1 == "blocked"), "{st:?}");
            break;
        }
        assert!(Instant::now() < deadline, "no timeout: {st:?}");
        std::thread::sleep(Duration::from_secs(2));
    }
    // A timeout is a failure: rerun --failed submits the stage and those after it again (then
    // they are cancelled).
    let r1 = key_of(&sweep.status(), "r1", "unit");
    let (code, out) = sweep.emorg(&["rerun", &file, "--failed"], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("rerun train of training unit {}", &r1[..12])),
        "{out}"
    );
    assert!(out.contains("(timeout, task "), "{out}");
    assert!(out.contains("submitted 3 stages"), "{out}");
    let (code, out) = sweep.emorg(&["cancel", &file], &[]);
    assert_eq!(code, 0, "{out}");
}

/// Polls `emorg status` until every stage of every row is done (panics on a failure or after
/// `secs`).
fn wait_all_done(sweep: &Sweep, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let report = sweep.status();
        let st = states(&report);
        if st.iter().all(|(_, s)| s.iter().all(|s| s.1 == "done")) {
            return report;
        }
        let bad = ["failed", "timeout", "cancelled", "blocked", "out_of_memory"];
        assert!(
            !st.iter()
                .any(|(_, s)| s.iter().any(|s| bad.contains(&s.1.as_str()))),
            "{st:?}"
        );
        assert!(Instant::now() < deadline, "not done after {secs} s: {st:?}");
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The store on the real S3 server: Slurm runs the arrays, every stage commits to s3:// (nothing
/// is written to a local store), and `emorg report --sweep NAME --from s3://...` builds the report
/// from the sweep record and results there, without the sweep file.
#[test]
fn a_sweep_on_slurm_with_its_store_on_s3_is_reported_from_s3() {
    if skip() {
        return;
    }
    let Ok(base) = std::env::var("EMORG_TEST_S3_URL") else {
        eprintln!(
            "skipped: EMORG_TEST_S3_URL is unset (infra/s3-local.sh start; eval \"$(infra/s3-local.sh env)\")"
        );
        return;
    };
    let url = format!(
        "{}/slurm-s3-{}",
        base.trim().trim_end_matches('/'),
        std::process::id()
    );
    let sweep = Sweep::new("slurm-s3", "");
    sweep.edit(
        "protocol = [\"base\", \"r1\", \"broken\"]",
        "protocol = [\"base\", \"r1\"]",
    );
    let local = sweep.dir.path().join("store");
    sweep.edit(
        &format!("url = \"file://{}\"", local.display()),
        &format!("url = \"{url}\""),
    );
    let (code, out) = sweep.emorg(&["submit", &sweep.file(), "--wait"], &[]);
    assert_eq!(
        code,
        0,
        "{out}\njudge logs: {:#?}",
        task_logs(&sweep, "judge")
    );
    assert!(out.contains("submitted 5 stages"), "{out}");
    let report = wait_all_done(&sweep, 60);
    assert_eq!(states(&report).len(), 2);
    assert!(
        !local.exists(),
        "a local store was written next to the S3 one"
    );

    let reports = sweep.dir.path().join("reports");
    let (code, out) = sweep.emorg(
        &[
            "report",
            "--sweep",
            "slurm-s3",
            "--from",
            &url,
            "--store",
            &format!("file://{}", reports.display()),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    let md: Vec<PathBuf> = walk(&reports)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "report.md"))
        .collect();
    // The run's report and the sweep's latest copy.
    assert!(!md.is_empty(), "{out}");
    for file in &md {
        let text = std::fs::read_to_string(file).unwrap();
        for protocol in ["base", "r1"] {
            assert!(
                text.lines()
                    .any(|l| l.contains(protocol) && l.contains("smollm2")),
                "no {protocol} row in {}:\n{text}",
                file.display()
            );
        }
    }
    assert!(
        walk(&reports)
            .iter()
            .any(|p| p.file_name().is_some_and(|n| n == "matrix.parquet")),
        "{out}"
    );
}

/// Preemption end to end: `scontrol requeue` of the running train task (Slurm sends SIGTERM; the
/// worker checkpoints and exits 75) makes Slurm run the task again, which resumes from the newest
/// checkpoint in the store; the final adapter is byte for byte the one an uninterrupted run of
/// the same unit writes (the worker run directly on a copy of the planted store, same threads).
#[test]
fn scontrol_requeue_mid_training_resumes_to_the_same_adapter() {
    if skip() {
        return;
    }
    let sweep = Sweep::new("slurm-requeue", "");
    sweep.edit(
        "protocol = [\"base\", \"r1\", \"broken\"]",
        "protocol = [\"r1\"]",
    );
    sweep.edit(
        "max_steps = 2",
        "max_steps = 24\ncheckpoint_every = 2\ncheckpoint_keep_last = 2",
    );
    let (code, out) = sweep.emorg(&["submit", &sweep.file()], &[]);
    assert_eq!(code, 0, "{out}");
    let key = key_of(&sweep.status(), "r1", "unit");
    let store = sweep.dir.path().join("store");
    let train_dir = store.join(format!("units/{key}/train"));
    // The uninterrupted reference: the planted store (unit record and inputs) without any train
    // output, trained by the worker in this process.
    let reference = sweep.dir.path().join("reference");
    copy_dir(&store, &reference);
    let _ = std::fs::remove_dir_all(reference.join(format!("units/{key}/train")));
    let job = sweep.submissions()[0]["chunks"][0]["jobs"][0]["job_id"]
        .as_str()
        .unwrap()
        .to_string();

    // Requeue once a checkpoint exists and training is not done.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ckpts = walk(&train_dir.join("ckpt"))
            .iter()
            .filter(|p| p.file_name().is_some_and(|n| n == "manifest.json"))
            .count();
        if ckpts > 0 {
            assert!(
                !train_dir.join("DONE.json").exists(),
                "training ended before the requeue: raise max_steps"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no checkpoint after 120 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = Command::new("scontrol")
        .args(["requeue", &format!("{job}_0")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scontrol requeue: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let status = Command::new(worker())
        .args(["train", "--store"])
        .arg(format!("file://{}", reference.display()))
        .args(["--key", &key, "--threads", "1"])
        .env("EMORG_MODELS", models_dir())
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );

    wait_all_done(&sweep, 300);
    let done: Value =
        serde_json::from_slice(&std::fs::read(train_dir.join("DONE.json")).unwrap()).unwrap();
    let resumed = done["metrics"]["resumed_from_step"].as_u64();
    assert!(
        resumed.is_some_and(|s| s > 0 && s < 24),
        "the requeued run did not resume from a checkpoint: {done:#}"
    );
    let (_, log) = sweep.emorg(&["logs", &sweep.file(), &key[..8], "train"], &[]);
    assert!(log.contains("restart 1"), "{log}");
    let adapter = "adapter/adapter_model.safetensors";
    let a = std::fs::read(train_dir.join(adapter)).unwrap();
    let b = std::fs::read(reference.join(format!("units/{key}/train/{adapter}"))).unwrap();
    assert!(
        a == b,
        "the requeued run's adapter differs from the uninterrupted run's"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// With accounting disabled (the second Slurm phase of infra/test.sh restarts the local cluster
/// with `SLURM_LOCAL_ACCOUNTING=0`: no slurmdbd, sacct refuses), `status` still reports every
/// stage from the store and squeue, and says that accounting is off. Skipped on a cluster with
/// accounting.
#[test]
fn status_without_accounting_degrades_and_says_so() {
    if skip() {
        return;
    }
    if std::env::var("EMORG_TEST_SLURM_ACCOUNTING").as_deref() != Ok("0") {
        eprintln!(
            "skipped: the cluster has accounting (infra/test.sh runs this after SLURM_LOCAL_ACCOUNTING=0 infra/slurm-local.sh start)"
        );
        return;
    }
    let sweep = Sweep::new("slurm-noacct", "");
    sweep.edit(
        "protocol = [\"base\", \"r1\", \"broken\"]",
        "protocol = [\"base\"]",
    );
    let (code, out) = sweep.emorg(&["submit", &sweep.file(), "--wait"], &[]);
    assert_eq!(code, 0, "{out}");
    let report = wait_all_done(&sweep, 120);
    assert_eq!(states(&report).len(), 1);
    let (code, out) = sweep.emorg(&["status", &sweep.file()], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("accounting disabled"), "{out}");
}

/// The r1 row alone (one row, three stages).
fn r1_sweep(name: &str) -> Sweep {
    let sweep = Sweep::new(name, "");
    sweep.edit(
        r#"protocol = ["base", "r1", "broken"]"#,
        r#"protocol = ["r1"]"#,
    );
    sweep
}

/// The Slurm task logs of `stage` under the sweep's state dir, with their text.
fn task_logs(sweep: &Sweep, stage: &str) -> Vec<(PathBuf, String)> {
    common::walk(&sweep.dir.path().join("slurm"))
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.ends_with(".out") && name.contains(&format!("-{stage}-"))
        })
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect()
}

/// Two submissions of one sweep (a duplicate submit, or two launchers): each stage is committed by
/// one run; the other run's task leaves it to that run (exit 0, no FAILED.json) or finds it done.
#[test]
fn two_submissions_of_one_sweep_commit_each_stage_once() {
    if skip() {
        return;
    }
    let sweep = r1_sweep("slurm-twice");
    for _ in 0..2 {
        let (code, out) = sweep.emorg(&["submit", &sweep.file()], &[]);
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("submitted 3 stages (1 train, 1 sample, 1 judge) as 3 job arrays"),
            "{out}"
        );
    }
    let report = wait_all_done(&sweep, 600);
    let key = key_of(&report, "r1", "judgment");
    // Wait for the second submission's tasks to end too, then nothing failed anywhere.
    let deadline = Instant::now() + Duration::from_secs(300);
    while squeue_names().contains("emorg-slurm-twice") {
        assert!(Instant::now() < deadline, "{}", squeue_names());
        std::thread::sleep(Duration::from_secs(1));
    }
    let files = common::walk(&sweep.dir.path().join("store"));
    assert!(
        !files.iter().any(|f| f.ends_with("FAILED.json")),
        "{files:?}"
    );
    for stage in ["train", "sample", "judge"] {
        let logs = task_logs(&sweep, stage);
        assert_eq!(logs.len(), 2, "{stage}: {logs:?}");
        for (path, text) in &logs {
            assert!(
                text.contains("the worker exited with code 0")
                    || text.contains("the worker exited with code 73"),
                "{}:\n{text}",
                path.display()
            );
            assert!(
                !text.contains("exited with code 73")
                    || text.contains("another run holds this stage"),
                "{text}"
            );
        }
        let ran: Vec<_> = logs
            .iter()
            .filter(|(_, t)| {
                !t.contains("another run holds this stage")
                    && !t.contains("already done")
                    && !t.contains("committed by another run meanwhile")
            })
            .collect();
        assert_eq!(
            ran.len(),
            1,
            "{stage}: exactly one run does the work: {logs:#?}"
        );
    }
    let states = states(&sweep.status());
    assert!(
        states.iter().all(|(_, s)| s.iter().all(|s| s.1 == "done")),
        "{states:?}"
    );
    assert!(
        sweep
            .dir
            .path()
            .join(format!("store/judgments/{key}/judge/DONE.json"))
            .is_file()
    );
}

/// A stage held by a live run elsewhere (here: a claim naming a live `sleep` of this machine) is
/// `claimed` in status, not failed; its later stages wait for it; `rerun --failed` submits nothing;
/// once the holder is gone, a new submission takes the claim over and finishes the row.
#[test]
fn a_stage_held_by_another_run_is_claimed_not_failed() {
    if skip() {
        return;
    }
    let sweep = r1_sweep("slurm-held");
    let key = key_of(&sweep.status(), "r1", "unit");
    let mut holder = Command::new("sleep").arg("600").spawn().unwrap();
    let pid = holder.id();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let start: u64 = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    let read = |p: &str| std::fs::read_to_string(p).unwrap().trim().to_string();
    let claim = serde_json::json!({
        "run": "holder-elsewhere",
        "host": gethostname(),
        "pid": pid,
        "boot_id": read("/proc/sys/kernel/random/boot_id"),
        "pid_ns": std::fs::read_link("/proc/self/ns/pid").unwrap().display().to_string(),
        "pid_start": start,
        "slurm_task": null,
        "at": "2026-12-05T00:00:00Z",
    });
    let claim_path = sweep
        .dir
        .path()
        .join(format!("store/units/{key}/train/CLAIM.json"));
    std::fs::create_dir_all(claim_path.parent().unwrap()).unwrap();
    std::fs::write(&claim_path, claim.to_string()).unwrap();

    let (code, out) = sweep.emorg(&["submit", &sweep.file(), "--wait"], &[]);
    assert_eq!(code, 0, "nothing failed:\n{out}");
    let report = sweep.status();
    let rows = r1_states(&sweep);
    assert!(rows.iter().all(|s| s.1 == "claimed"), "{rows:?}");
    let stages = report["rows"][0]["stages"].as_array().unwrap();
    assert!(
        stages[0]["reason"]
            .as_str()
            .unwrap()
            .contains("held by run holder-elsewhere"),
        "{report:#}"
    );
    assert!(
        stages[1]["reason"].as_str().unwrap().contains(&format!(
            "waits for the train of training unit {}",
            &key[..12]
        )),
        "{report:#}"
    );
    let files = common::walk(&sweep.dir.path().join("store"));
    assert!(
        !files.iter().any(|f| f.ends_with("FAILED.json")),
        "{files:?}"
    );
    let (code, out) = sweep.emorg(&["rerun", &sweep.file(), "--failed"], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no failed stage"), "{out}");

    // The holder dies: its claim is stale, and the next submission takes it over.
    holder.kill().unwrap();
    holder.wait().unwrap();
    let (code, out) = sweep.emorg(&["submit", &sweep.file(), "--wait"], &[]);
    assert_eq!(code, 0, "{out}");
    wait_all_done(&sweep, 60);
    let logs = task_logs(&sweep, "train");
    assert!(
        logs.iter()
            .any(|(_, t)| t.contains("took over the claim") && t.contains("is gone")),
        "{logs:#?}"
    );
}

fn gethostname() -> String {
    let out = Command::new("hostname").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// One LoRA unit evaluated at two checkpoints (step 0, kept by `checkpoint_every`, and `final`)
/// by two judges: one train array, two sample arrays (one per variant slot) with `aftercorr` on
/// the train array, four judge arrays (one per variant slot and judge slot) with `aftercorr` on
/// their sample array; on the cluster every stage commits once, each after the stage it reads.
#[test]
fn checkpoints_and_judges_run_as_train_then_sample_then_judge_arrays() {
    if skip() {
        return;
    }
    let sweep = r1_sweep("slurm-graph");
    sweep.edit("max_steps = 2", "max_steps = 2\ncheckpoint_every = 2");
    sweep.edit(
        "max_new_tokens = 8",
        "max_new_tokens = 8\ncheckpoints = [0, \"final\"]",
    );
    sweep.edit(
        "[judge]\nmodel = \"smollm2-135m-instruct\"",
        "[judge]\nmodel = \"smollm2-135m-instruct\"\n\n\
         [judges.a]\n\n[judges.b]\nprune_below = 0.01",
    );

    let out_dir = sweep.dir.path().join("rendered");
    let (code, out) = sweep.emorg(
        &[
            "render",
            &sweep.file(),
            "--out",
            &out_dir.display().to_string(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("7 stages need work; 7 array jobs in 1 chunks"),
        "{out}"
    );
    // The printed commands chain the arrays as submit does.
    assert!(
        out.lines().any(|l| l.starts_with("JOB_c000_default_sample_v1=$(sbatch --parsable --dependency=aftercorr:$JOB_c000_default_train ")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("JOB_c000_default_judge_v1_j1=$(sbatch --parsable --dependency=aftercorr:$JOB_c000_default_sample_v1 ")),
        "{out}"
    );

    let (code, out) = sweep.emorg(&["submit", &sweep.file(), "--wait"], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("submitted 7 stages (1 train, 2 sample, 4 judge) as 7 job arrays"),
        "{out}"
    );
    let subs = sweep.submissions();
    assert_eq!(subs.len(), 1);
    assert_eq!(
        subs[0]["sbatch_calls"], 10,
        "3 checks (train, sample, judge of the default profile) + 7 submissions"
    );
    let chunks = subs[0]["chunks"].as_array().unwrap();
    assert_eq!(chunks.len(), 1, "{:#}", subs[0]);
    let jobs = chunks[0]["jobs"].as_array().unwrap();
    let id = |name: &str| -> String {
        jobs.iter()
            .find(|j| j["name"] == name)
            .unwrap_or_else(|| panic!("no array {name}"))["job_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let layout: Vec<(&str, &str, Option<&str>, usize)> = jobs
        .iter()
        .map(|j| {
            (
                j["name"].as_str().unwrap(),
                j["stage"].as_str().unwrap(),
                j["dependency"].as_str(),
                j["tasks"].as_array().unwrap().len(),
            )
        })
        .collect();
    let (train, s0, s1) = (
        format!("aftercorr:{}", id("c000-default-train")),
        format!("aftercorr:{}", id("c000-default-sample-v0")),
        format!("aftercorr:{}", id("c000-default-sample-v1")),
    );
    assert_eq!(
        layout,
        [
            ("c000-default-train", "train", None, 1),
            ("c000-default-sample-v0", "sample", Some(train.as_str()), 1),
            ("c000-default-sample-v1", "sample", Some(train.as_str()), 1),
            ("c000-default-judge-v0-j0", "judge", Some(s0.as_str()), 1),
            ("c000-default-judge-v0-j1", "judge", Some(s0.as_str()), 1),
            ("c000-default-judge-v1-j0", "judge", Some(s1.as_str()), 1),
            ("c000-default-judge-v1-j1", "judge", Some(s1.as_str()), 1),
        ]
    );

    // The store: one train, two samples, four judgments, each committed once.
    let store = sweep.dir.path().join("store");
    let manifest =
        |p: &Path| -> Value { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
    let trains = done_files(&store, "units");
    let samples = done_files(&store, "variants");
    let judges = done_files(&store, "judgments");
    assert_eq!(
        (trains.len(), samples.len(), judges.len()),
        (1, 2, 4),
        "{trains:?} {samples:?} {judges:?}"
    );
    assert!(
        !walk(&store).iter().any(|f| f.ends_with("FAILED.json")),
        "a stage failed"
    );
    // Dependency order: each stage started after the stage it read had finished.
    let train_done = manifest(&trains[0]);
    let time = |m: &Value, k: &str| -> chrono::DateTime<chrono::Utc> {
        m[k].as_str().unwrap().parse().unwrap()
    };
    let mut steps = Vec::new();
    for s in &samples {
        let m = manifest(s);
        assert!(
            time(&m, "started_at") >= time(&train_done, "finished_at"),
            "sample before train: {m:#} {train_done:#}"
        );
        let variant = s.parent().unwrap().parent().unwrap();
        let v: Value = manifest(&variant.join("variant.json"));
        // Each variant read its own weights from the train stage: the adapter kept at step 0, or
        // the final one.
        let adapter = if v["weights"] == 0 {
            "/train/steps/00000000/adapter_model.safetensors"
        } else {
            "/train/adapter/adapter_model.safetensors"
        };
        let inputs = m["inputs"].as_object().unwrap();
        assert!(
            inputs.keys().any(|k| k.ends_with(adapter)),
            "{adapter} not among the inputs of {}: {m:#}",
            s.display()
        );
        steps.push(v["weights"].clone());
    }
    // `"final"` sorts before `0` as JSON text.
    steps.sort_by_key(|w| w.to_string());
    assert_eq!(steps, [serde_json::json!("final"), serde_json::json!(0)]);
    let mut per_variant: std::collections::BTreeMap<String, usize> = Default::default();
    for j in &judges {
        let m = manifest(j);
        let judgment = manifest(&j.parent().unwrap().parent().unwrap().join("judgment.json"));
        let variant = judgment["variant"].as_str().unwrap().to_string();
        let sample = manifest(&store.join(format!("variants/{variant}/sample/DONE.json")));
        assert!(
            time(&m, "started_at") >= time(&sample, "finished_at"),
            "judge before its sample: {m:#} {sample:#}"
        );
        *per_variant.entry(variant).or_default() += 1;
    }
    assert_eq!(per_variant.values().collect::<Vec<_>>(), [&2, &2]);

    // Status: four rows (2 checkpoints x 2 judges), seven distinct stages, all done.
    let report = sweep.status();
    assert_eq!(report["rows"].as_array().unwrap().len(), 4);
    assert_eq!(report["stages"].as_array().unwrap().len(), 7);
    assert!(
        states(&report)
            .iter()
            .all(|(_, s)| s.len() == 3 && s.iter().all(|s| s.1 == "done")),
        "{report:#}"
    );
}
