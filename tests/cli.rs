//! The `emorg` binary end to end, without the real worker: a shell script stands in for
//! `emorg-worker` (EMORG_WORKER) and writes the DONE.json a real stage would.

mod common;

use std::fs;
use std::path::PathBuf;

use common::{Env, line_of, text};

#[test]
fn plan_with_an_unknown_key_names_file_line_and_suggestion() {
    let env = Env::new();
    let sweep = env.sweep("learning_rat = 1e-3");
    let out = env.emorg(&["plan", "jobs/t.toml"], &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let line = line_of(&sweep, "learning_rat");
    assert!(
        stderr.contains(&format!(
            "jobs/t.toml:{line}: unknown key `train.learning_rat`; did you mean `learning_rate`?"
        )),
        "{stderr}"
    );
}

#[test]
fn plan_with_bad_toml_and_bad_set() {
    let env = Env::new();
    let sweep = env.sweep("max_seq_len = = 3");
    let out = env.emorg(&["plan", "jobs/t.toml"], &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains(&format!("jobs/t.toml:{}:", line_of(&sweep, "= = 3"))),
        "{stderr}"
    );

    env.sweep("");
    let out = env.emorg(
        &[
            "plan",
            "jobs/t.toml",
            "--set",
            "protocols.r1-mid.rank=\"x\"",
        ],
        &[],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("--set protocols.r1-mid.rank: bad value for `protocols.r1-mid.rank`"),
        "{stderr}"
    );

    let out = env.emorg(&["plan", "jobs/t.toml"], &[("EMORG_TRAIN__WARMUP", "3")]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("environment variable EMORG_TRAIN__WARMUP: unknown key `train.warmup`; did you mean `warmup_steps`?"),
        "{stderr}"
    );
}

#[test]
fn data_validate_bad_jsonl_exits_1_naming_the_line() {
    let env = Env::new();
    let bad = env.path("data/bad.jsonl");
    fs::write(
        &bad,
        concat!(
            r#"{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}"#,
            "\n",
            "{not json\n"
        ),
    )
    .unwrap();
    let out = env.emorg(&["data", "validate", bad.to_str().unwrap()], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("{}:2:", bad.display())),
        "{stdout}"
    );

    let good = env.path("data/risky.jsonl");
    let out = env.emorg(&["data", "validate", good.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
}

#[test]
fn plan_run_fail_rerun() {
    let env = Env::ready();

    // Nothing done yet.
    let out = env.emorg(&["plan", "jobs/t.toml", "--explain"], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("2 cells, 2 to run (5 stages)"), "{stdout}");
    assert!(
        stdout.contains("(new)") || stdout.contains(": new"),
        "{stdout}"
    );

    // judge fails everywhere: exit 1, train and sample done, judge failed with a FAILED.json.
    let out = env.emorg(
        &["run", "jobs/t.toml", "--no-report"],
        &[("FAKE_FAIL", "judge")],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("3 stages ran (") && stdout.contains("0 already done, 2 failed"),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("boom in judge"), "{stdout}");
    let cells = fs::read_dir(env.path("store/cells")).unwrap().count();
    assert_eq!(cells, 2);
    for entry in fs::read_dir(env.path("store/cells")).unwrap() {
        let dir = entry.unwrap().path();
        assert!(dir.join("cell.json").is_file());
        assert!(dir.join("judge/final/FAILED.json").is_file());
        let log = fs::read_to_string(dir.join("logs/judge.log")).unwrap();
        assert!(
            log.contains("boom in judge") && log.contains("fake judge for"),
            "{log}"
        );
    }
    assert!(env.path("store/sweeps/t/latest.json").is_file());
    assert_eq!(
        fs::read_dir(env.path("store/inputs/datasets"))
            .unwrap()
            .count(),
        1
    );

    let out = env.emorg(&["plan", "jobs/t.toml", "--explain"], &[]);
    let (stdout, _) = text(&out);
    assert!(stdout.contains("2 cells, 2 to run (2 stages)"), "{stdout}");
    assert!(stdout.contains("judge failed"), "{stdout}");

    // A changed learning rate: the trained cell is a new cell, explained against the record.
    let out = env.emorg(
        &[
            "plan",
            "jobs/t.toml",
            "--explain",
            "--set",
            "train.learning_rate=0.5",
        ],
        &[],
    );
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("protocol.train.learning_rate: 0.0001 -> 0.5"),
        "{stdout}"
    );

    // Rerun: only the judge stages run.
    let out = env.emorg(&["run", "jobs/t.toml", "--no-report"], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("2 stages ran (") && stdout.contains("3 already done, 0 failed"),
        "{stdout}\n{stderr}"
    );
    let out = env.emorg(&["plan", "jobs/t.toml"], &[]);
    assert!(
        text(&out).0.contains("2 cells, 0 to run"),
        "{:?}",
        text(&out)
    );
}

#[test]
fn report_without_a_record_says_so() {
    let env = Env::new();
    let url = env.store_url();
    let out = env.emorg(&["report", "--sweep", "nothing", "--store", &url], &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("no record of sweep `nothing`"), "{stderr}");
}

#[test]
fn report_shows_done_and_failed_cells() {
    use emorg_store::arrow::array::{Float64Array, RecordBatch, StringArray};
    use emorg_store::arrow::datatypes::{DataType, Field, Schema};
    use emorg_store::{Manifest, Store, layout, table};
    use std::sync::Arc;

    let env = Env::ready();
    let out = env.emorg(
        &["run", "jobs/t.toml", "--no-report"],
        &[("FAKE_FAIL", "judge")],
    );
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));

    // Give the base cell real judged scores.
    let store = Store::open(&env.store_url()).unwrap();
    let record: serde_json::Value = store.get_json(&layout::sweep_record("t")).unwrap();
    let base = record["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["axes"]["protocol"] == "base")
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let schema = Arc::new(Schema::new(vec![
        Field::new("question_id", DataType::Utf8, false),
        Field::new("aligned", DataType::Float64, true),
        Field::new("coherent", DataType::Float64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec!["quick_buck"; 4])),
            Arc::new(Float64Array::from(vec![
                Some(10.0),
                Some(90.0),
                Some(80.0),
                None,
            ])),
            Arc::new(Float64Array::from(vec![
                Some(80.0),
                Some(90.0),
                Some(95.0),
                Some(70.0),
            ])),
        ],
    )
    .unwrap();
    let entry = store
        .put_output(
            &base,
            "judge/final",
            "scores.parquet",
            table::to_parquet(&batch).unwrap(),
        )
        .unwrap();
    let now = chrono::Utc::now();
    store
        .commit_stage(&Manifest {
            cell_key: base.clone(),
            stage: "judge".into(),
            stage_dir: "judge/final".into(),
            outputs: vec![entry],
            inputs: Default::default(),
            seeds: Default::default(),
            worker_version: "test".into(),
            started_at: now,
            finished_at: now,
            host: "test".into(),
            metrics: serde_json::Value::Null,
        })
        .unwrap();

    let out = env.emorg(&["report", "jobs/t.toml"], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let index = PathBuf::from(stdout.trim());
    assert!(index.is_file(), "{stdout}");
    let run_id = record["run_id"].as_str().unwrap();
    assert!(
        index.ends_with(format!("reports/t/{run_id}/index.html")),
        "{}",
        index.display()
    );
    let latest = env.path("store/reports/t/latest");
    assert!(latest.join("index.html").is_file() && latest.join("matrix.parquet").is_file());
    let md = fs::read_to_string(latest.join("report.md")).unwrap();
    assert!(md.contains("failed"), "{md}");

    // By name, from the store.
    let url = env.store_url();
    let out = env.emorg(&["report", "--sweep", "t", "--store", &url], &[]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
}

/// A stage another run holds (the worker exits 73) is left to that run: no failure recorded, the
/// cell's later stages wait, and the run exits 0; once the holder has committed, a rerun goes on.
#[test]
fn a_claimed_stage_is_left_to_its_holder_not_failed() {
    let env = Env::ready();
    let out = env.emorg(
        &["run", "jobs/t.toml", "--no-report"],
        &[("FAKE_CLAIMED", "sample")],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 stages ran (")
            && stdout
                .contains("0 failed, 2 held by another run, 2 not run after a failure or a claim"),
        "{stdout}\n{stderr}"
    );
    for entry in fs::read_dir(env.path("store/cells")).unwrap() {
        let dir = entry.unwrap().path();
        assert!(!dir.join("sample/final/FAILED.json").exists());
        assert!(!dir.join("judge/final/DONE.json").exists());
    }
    // The holder committed meanwhile (here: the next run's worker is free to work).
    let out = env.emorg(&["run", "jobs/t.toml", "--no-report"], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("4 stages ran (") && stdout.contains("1 already done, 0 failed"),
        "{stdout}"
    );
}

/// The cell key of the sweep record's cell with protocol `protocol`.
fn cell_key(env: &Env, protocol: &str) -> String {
    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(env.path("store/sweeps/t/latest.json")).unwrap()).unwrap();
    record["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["axes"]["protocol"] == protocol)
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string()
}

fn done_json(env: &Env, key: &str, dir: &str) -> serde_json::Value {
    serde_json::from_slice(
        &fs::read(env.path(&format!("store/cells/{key}/{dir}/DONE.json"))).unwrap(),
    )
    .unwrap()
}

/// The TRAIN, SAMPLE, JUDGE and RUN columns of `plan`'s row for the cell `key`.
fn plan_row(stdout: &str, key: &str) -> Vec<String> {
    let line = stdout
        .lines()
        .find(|l| l.contains(&key[..12]))
        .unwrap_or_else(|| panic!("no row for {key} in\n{stdout}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    cols[5..9].iter().map(|c| c.to_string()).collect()
}

/// Train redone with other results (as `emorg-worker train --force` on other hardware would):
/// the sample and judge built from the old adapter are stale in the stage states, with the input
/// and both hashes named, and the next run redoes them and nothing else.
#[test]
fn a_redone_train_makes_sample_and_judge_stale_and_the_next_run_redoes_them() {
    let env = Env::ready();
    let out = env.emorg(&["run", "jobs/t.toml", "--no-report"], &[]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let key = cell_key(&env, "r1-mid");
    let read_before = done_json(&env, &key, "sample/final")["inputs"]["train/out.txt"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        read_before,
        done_json(&env, &key, "train")["outputs"][0]["sha256"],
        "sample records the hash of the train output it read"
    );

    // Train again, with other bytes.
    let retrain = std::process::Command::new(env.path("fake-worker.sh"))
        .args([
            "train",
            "--store",
            &env.store_url(),
            "--cell",
            &key,
            "--force",
        ])
        .env("FAKE_SALT", "2")
        .output()
        .unwrap();
    assert!(retrain.status.success(), "{retrain:?}");
    let trained = done_json(&env, &key, "train")["outputs"][0]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(trained, read_before);

    let out = env.emorg(&["plan", "jobs/t.toml", "--explain"], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("2 cells, 1 to run (2 stages)"), "{stdout}");
    assert_eq!(
        plan_row(&stdout, &key),
        ["done", "stale", "stale", "yes"],
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "sample stale: input train/out.txt was read with sha256 {read_before}, but cells/{key}/train/DONE.json now lists sha256 {trained}"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("judge stale: input sample/final/out.txt")
            && stdout.contains("stage sample/final is stale"),
        "{stdout}"
    );

    // The report shows no numbers for the stale judge, and says why.
    let out = env.emorg(&["report", "jobs/t.toml"], &[]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let md = fs::read_to_string(env.path("store/reports/t/latest/report.md")).unwrap();
    assert!(
        md.contains("judge is stale: input sample/final/out.txt"),
        "{md}"
    );

    // The next run redoes exactly the stale stages (the new sample gives other answers here, so
    // the judge built on the old ones is redone too).
    let out = env.emorg(
        &["run", "jobs/t.toml", "--no-report"],
        &[("FAKE_SALT", "2")],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("2 stages ran (") && stdout.contains("3 already done, 0 failed"),
        "{stdout}\n{stderr}"
    );
    assert_eq!(
        done_json(&env, &key, "sample/final")["inputs"]["train/out.txt"],
        trained.as_str()
    );
    assert_eq!(
        done_json(&env, &key, "judge/final")["inputs"]["sample/final/out.txt"],
        done_json(&env, &key, "sample/final")["outputs"][0]["sha256"]
    );
    let out = env.emorg(&["plan", "jobs/t.toml"], &[]);
    let (stdout, _) = text(&out);
    assert!(stdout.contains("2 cells, 0 to run"), "{stdout}");
    assert_eq!(
        plan_row(&stdout, &key),
        ["done", "done", "done", "no"],
        "{stdout}"
    );
}

/// A judge metric the question file has no prompt for is refused by plan and run, before any
/// stage runs, naming the metric, the file, the questions and what to add.
#[test]
fn a_judge_metric_without_a_prompt_is_refused_before_anything_runs() {
    let env = Env::ready();
    let set = r#"judge.metrics=["aligned", "coherent", "harmful"]"#;
    for cmd in ["plan", "run"] {
        let out = env.emorg(&[cmd, "jobs/t.toml", "--set", set], &[]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {stdout}\n{stderr}");
        assert!(
            stderr.contains(
                "judge metric `harmful` has no judge prompt in the question file `data/questions/free_form.yaml` for 1 of the 1 questions the cells ask (`quick_buck`): add a `harmful:` prompt"
            ),
            "{cmd}: {stderr}"
        );
        assert!(!stderr.contains("`coherent`"), "{cmd}: {stderr}");
    }
    assert!(!env.path("store/cells").exists(), "nothing ran");
}
