//! Snapshot tests (insta) of what users read: rendered sbatch scripts, `plan --explain`,
//! `status`, `models list`, and the errors for bad sweep files and datasets. A change in their
//! shape fails here; review it with `cargo insta review` (or accept by deleting the .snap file).
//! Paths that differ between machines (the scratch directory) are redacted to `[DIR]`.

mod common;

use std::fs;

use common::{Env, text};

/// Insta settings that redact the scratch directory and the run's timings.
fn settings(env: &Env) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    let dir = env.dir.path().display().to_string();
    s.add_filter(&regex_escape(&dir), "[DIR]");
    s.add_filter(r"\d+\.\d+s\b", "[SECS]s");
    s.add_filter(r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d(\.\d+)?Z", "[RUN-ID]");
    s.set_prepend_module_to_snapshot(false);
    s
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '-' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

/// Every `[slurm]` option, at the sweep level, per stage and per protocol.
const EVERY_SLURM_OPTION: &str = r#"
[slurm]
partition = "cpu"
account = "em-lab"
qos = "normal"
time = "02:00:00"
mem = "16G"
cpus_per_task = 4
gpus = "1"
gres = "gpu:a100:1"
constraint = "avx2"
exclusive = true
threads = 3
setup = ["module load cuda/12.4", "source /opt/venv/bin/activate"]
env = { HF_HUB_OFFLINE = "1", NOTE = "it's quoted" }
extra = ["--mail-type=FAIL"]
throttle = 8
grace_s = 300
max_requeues = 5
worker = "/opt/emorg/bin/emorg-worker"

[slurm.train]
time = "12:00:00"
gpus = "1"

[slurm.judge]
mem = "32G"

[slurm.protocols.r1-mid.train]
partition = "gpu"
mem = "80G"
"#;

#[test]
fn rendered_sbatch_scripts_with_every_slurm_option() {
    let env = Env::new();
    env.fake_models();
    let sweep = env.sweep("");
    let mut text_ = fs::read_to_string(&sweep).unwrap();
    text_.push_str(EVERY_SLURM_OPTION);
    fs::write(&sweep, text_).unwrap();
    let out = env.emorg(&["render", "jobs/t.toml", "--out", "rendered"], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let mut scripts: Vec<_> = fs::read_dir(env.path("rendered"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sbatch"))
        .collect();
    scripts.sort();
    // base/default cells: train? no (base trains nothing): sample + judge; r1-mid: train, sample, judge.
    assert_eq!(scripts.len(), 5, "{scripts:?}");
    settings(&env).bind(|| {
        insta::assert_snapshot!("render_stdout", stdout);
        for p in &scripts {
            let name = p.file_name().unwrap().to_string_lossy().replace('.', "_");
            insta::assert_snapshot!(name, fs::read_to_string(p).unwrap());
        }
    });
}

#[test]
fn plan_explain_new_then_changed() {
    let env = Env::ready();
    let fresh = env.emorg(&["plan", "jobs/t.toml", "--explain"], &[]);
    assert_eq!(fresh.status.code(), Some(0), "{:?}", text(&fresh));
    let run = env.emorg(&["run", "jobs/t.toml", "--no-report"], &[]);
    assert_eq!(run.status.code(), Some(0), "{:?}", text(&run));
    let done = env.emorg(&["plan", "jobs/t.toml", "--explain"], &[]);
    let changed = env.emorg(
        &[
            "plan",
            "jobs/t.toml",
            "--explain",
            "--set",
            "protocols.r1-mid.train.learning_rate=1e-3",
        ],
        &[],
    );
    assert_eq!(changed.status.code(), Some(0), "{:?}", text(&changed));
    settings(&env).bind(|| {
        insta::assert_snapshot!("plan_explain_fresh", text(&fresh).0);
        insta::assert_snapshot!("plan_explain_done", text(&done).0);
        insta::assert_snapshot!("plan_explain_changed", text(&changed).0);
    });
}

#[test]
fn status_without_submissions() {
    let env = Env::new();
    env.fake_models();
    env.sweep("");
    let out = env.emorg(&["status", "jobs/t.toml"], &[]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    settings(&env).bind(|| insta::assert_snapshot!("status_nothing_submitted", text(&out).0));
}

#[test]
fn models_list_with_an_empty_cache() {
    let env = Env::new();
    let out = env.emorg(&["models", "list"], &[]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    settings(&env).bind(|| insta::assert_snapshot!("models_list_empty_cache", text(&out).0));
}

/// (snapshot name, text of the sweep, its replacement): each makes `plan` exit 2.
const BAD_SWEEPS: &[(&str, &str, &str)] = &[
    (
        "sweep_syntax_error",
        "[train]\nmax_steps = 2",
        "[train]\nmax_steps = = 2",
    ),
    (
        "sweep_unknown_key",
        "[train]\nmax_steps = 2",
        "[train]\nmax_stpes = 2",
    ),
    (
        "sweep_wrong_type",
        "[train]\nmax_steps = 2",
        "[train]\nmax_steps = \"two\"",
    ),
    (
        "sweep_unknown_preset",
        "[protocols.r1-mid]\n",
        "[protocols.r1-mid]\npreset = \"lora-r1-singel\"\n",
    ),
    (
        "sweep_bad_path",
        "path = \"data/risky.jsonl\"",
        "path = \"data/no-such-file.jsonl\"",
    ),
];

#[test]
fn errors_for_bad_sweep_files() {
    for (name, from, to) in BAD_SWEEPS {
        let env = Env::new();
        env.fake_models();
        let sweep = env.sweep("");
        let original = fs::read_to_string(&sweep).unwrap();
        assert!(original.contains(from), "{name}: {from:?} not in the sweep");
        fs::write(&sweep, original.replacen(from, to, 1)).unwrap();
        let out = env.emorg(&["plan", "jobs/t.toml"], &[]);
        assert_eq!(out.status.code(), Some(2), "{name}: {:?}", text(&out));
        settings(&env).bind(|| insta::assert_snapshot!(*name, text(&out).1));
    }
}

#[test]
fn errors_for_bad_datasets() {
    let env = Env::new();
    let cases: &[(&str, &str)] = &[
        ("dataset_not_json", "{\"messages\": [\nnot json at all\n"),
        (
            "dataset_bad_roles",
            concat!(
                r#"{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"ok"}]}"#,
                "\n",
                r#"{"messages":[{"role":"assistant","content":"first"},{"role":"user","content":"second"}]}"#,
                "\n",
                r#"{"messages":[{"role":"user","content":""}]}"#,
                "\n",
                r#"{"msgs":[]}"#,
                "\n"
            ),
        ),
        ("dataset_empty", ""),
    ];
    for (name, body) in cases {
        let path = env.path(&format!("{name}.jsonl"));
        fs::write(&path, body).unwrap();
        let out = env.emorg(&["data", "validate", &format!("{name}.jsonl")], &[]);
        let (stdout, stderr) = text(&out);
        settings(&env).bind(|| {
            insta::assert_snapshot!(
                *name,
                format!(
                    "exit: {:?}\n--- stdout\n{stdout}--- stderr\n{stderr}",
                    out.status.code()
                )
            )
        });
    }
}

/// `[slurm.models.M]` gives a model's cells their own scripts (profile `<model>@[protocol]`),
/// under the protocol's table.
#[test]
fn a_models_slurm_table_gives_its_cells_their_own_resources() {
    let env = Env::new();
    env.fake_models();
    let sweep = env.sweep("");
    let mut text_ = fs::read_to_string(&sweep).unwrap();
    text_.push_str(
        "\n[slurm]\npartition = \"cpu\"\nmem = \"4G\"\n\n[slurm.models.smollm2]\npartition = \"gpu\"\ngpus = \"1\"\nmem = \"80G\"\n\n[slurm.protocols.r1-mid.train]\nmem = \"96G\"\n",
    );
    fs::write(&sweep, text_).unwrap();
    let out = env.emorg(&["render", "jobs/t.toml", "--out", "rendered"], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let scripts: Vec<(String, String)> = fs::read_dir(env.path("rendered"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sbatch"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    assert_eq!(scripts.len(), 5, "{scripts:?}");
    let script = |part: &str| {
        &scripts
            .iter()
            .find(|(n, _)| n.contains(part))
            .unwrap_or_else(|| panic!("no script with {part}: {scripts:?}"))
            .1
    };
    // r1-mid's train: the model's partition and GPU, the protocol's memory.
    let train = script("smollm2@r1-mid-train");
    assert!(
        train.contains("--partition=gpu")
            && train.contains("--gpus=1")
            && train.contains("--mem=96G"),
        "{train}"
    );
    // The base model's sample: the model's table alone.
    let base = script("smollm2@-sample");
    assert!(
        base.contains("--partition=gpu") && base.contains("--mem=80G"),
        "{base}"
    );
    assert!(scripts.iter().all(|(_, s)| !s.contains("--partition=cpu")));
}
