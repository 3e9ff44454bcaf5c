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
    assert!(
        stdout.contains("2 rows: 2 units (1 train), 2 variants, 2 judgments; to run: 1 train, 2 sample, 2 judge (5 stages)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("smollm2/r1-mid/risky/seed0 (unit ")
            && stdout.contains("): new (1 train, 1 sample, 1 judge)"),
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
    assert_eq!(fs::read_dir(env.path("store/units")).unwrap().count(), 2);
    assert_eq!(fs::read_dir(env.path("store/variants")).unwrap().count(), 2);
    assert_eq!(
        fs::read_dir(env.path("store/judgments")).unwrap().count(),
        2
    );
    for entry in fs::read_dir(env.path("store/judgments")).unwrap() {
        let dir = entry.unwrap().path();
        assert!(dir.join("judgment.json").is_file());
        assert!(dir.join("judge/FAILED.json").is_file());
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
    assert!(
        stdout.contains("to run: 0 train, 0 sample, 2 judge (2 stages)"),
        "{stdout}"
    );

    // --cell: only the selected rows' stages are planned and run; the record stays whole.
    for bad in ["size=1", "seed=7", "ab"] {
        let out = env.emorg(&["plan", "jobs/t.toml", "--cell", bad], &[]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(
            stderr.contains(&format!("{bad:?}"))
                && (stderr.contains("not an axis")
                    || stderr.contains("no row of the sweep matches")
                    || stderr.contains("4+ hex")),
            "{bad}: {stderr}"
        );
    }
    let out = env.emorg(&["plan", "jobs/t.toml", "--cell", "protocol=base"], &[]);
    let (stdout, stderr) = text(&out);
    assert!(
        stdout.contains("to run: 0 train, 0 sample, 1 judge (1 stages)"),
        "{stdout}\n{stderr}"
    );
    let out = env.emorg(
        &[
            "run",
            "jobs/t.toml",
            "--no-report",
            "--cell",
            "protocol=base",
        ],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 stages ran (") && stdout.contains("0 failed"),
        "{stdout}\n{stderr}"
    );
    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(env.path("store/sweeps/t/latest.json")).unwrap()).unwrap();
    assert_eq!(record["rows"].as_array().unwrap().len(), 2, "{record}");
    let out = env.emorg(&["plan", "jobs/t.toml", "--explain"], &[]);
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("to run: 0 train, 0 sample, 1 judge (1 stages)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("judge only: judge 'default': judge failed"),
        "{stdout}"
    );

    // A changed learning rate: the trained unit is a new unit, explained against the record, and
    // everything of it reruns; the base model's unit is untouched.
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
        stdout.contains(
            "train + all: protocol.train.learning_rate: 0.0001 -> 0.5 (1 train, 1 sample, 1 judge)"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("to run: 1 train, 1 sample, 1 judge (3 stages)"),
        "{stdout}"
    );

    // Rerun: only the failed judge stage runs.
    let out = env.emorg(&["run", "jobs/t.toml", "--no-report"], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 stages ran (") && stdout.contains("4 already done, 0 failed"),
        "{stdout}\n{stderr}"
    );
    let out = env.emorg(&["plan", "jobs/t.toml"], &[]);
    assert!(
        text(&out)
            .0
            .contains("to run: 0 train, 0 sample, 0 judge (0 stages)"),
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
    use emorg_store::{JudgmentKey, Manifest, StageRef, Store, layout, table};
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
    // The base model's judgment: its row's judgment key, from the record.
    let judgment = record["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["axes"]["protocol"] == "base")
        .unwrap()["judgment_key"]
        .as_str()
        .unwrap()
        .to_string();
    let owner = StageRef::Judge(JudgmentKey::parse(&judgment).unwrap());
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
        .put_output(&owner, "scores.parquet", table::to_parquet(&batch).unwrap())
        .unwrap();
    let now = chrono::Utc::now();
    store
        .commit_stage(&Manifest {
            owner: owner.clone(),
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
    for entry in fs::read_dir(env.path("store/variants")).unwrap() {
        assert!(!entry.unwrap().path().join("sample/FAILED.json").exists());
    }
    for entry in fs::read_dir(env.path("store/judgments")).unwrap() {
        assert!(!entry.unwrap().path().join("judge/DONE.json").exists());
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

/// The unit, variant and judgment keys of the sweep record's row with protocol `protocol`.
fn row_keys(env: &Env, protocol: &str) -> [String; 3] {
    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(env.path("store/sweeps/t/latest.json")).unwrap()).unwrap();
    let row = record["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["axes"]["protocol"] == protocol)
        .unwrap();
    ["unit_key", "variant_key", "judgment_key"].map(|k| row[k].as_str().unwrap().to_string())
}

/// The DONE.json of the stage whose directory is `stage_dir` (e.g. `units/<key>/train`).
fn done_json(env: &Env, stage_dir: &str) -> serde_json::Value {
    serde_json::from_slice(&fs::read(env.path(&format!("store/{stage_dir}/DONE.json"))).unwrap())
        .unwrap()
}

/// The TRAIN, SAMPLE, JUDGE and RUN columns of `plan`'s row for the unit `key`.
fn plan_row(stdout: &str, key: &str) -> Vec<String> {
    let line = stdout
        .lines()
        .find(|l| l.contains(&key[..12]) && !l.contains("(unit "))
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
    let [unit, variant, judgment] = row_keys(&env, "r1-mid");
    let (train_dir, sample_dir, judge_dir) = (
        format!("units/{unit}/train"),
        format!("variants/{variant}/sample"),
        format!("judgments/{judgment}/judge"),
    );
    let train_out = format!("{train_dir}/out.txt");
    let sample_out = format!("{sample_dir}/out.txt");
    let read_before = done_json(&env, &sample_dir)["inputs"][&train_out]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        read_before,
        done_json(&env, &train_dir)["outputs"][0]["sha256"],
        "sample records the hash of the train output it read, under its full key"
    );

    // Train again, with other bytes.
    let retrain = std::process::Command::new(env.path("fake-worker.sh"))
        .args([
            "train",
            "--store",
            &env.store_url(),
            "--key",
            &unit,
            "--force",
        ])
        .env("FAKE_SALT", "2")
        .output()
        .unwrap();
    assert!(retrain.status.success(), "{retrain:?}");
    let trained = done_json(&env, &train_dir)["outputs"][0]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(trained, read_before);

    let out = env.emorg(&["plan", "jobs/t.toml", "--explain"], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("to run: 0 train, 1 sample, 1 judge (2 stages)"),
        "{stdout}"
    );
    assert_eq!(
        plan_row(&stdout, &unit),
        ["done", "0/1", "0/1", "2"],
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "sample + judge: sample stale: input {train_out} was read with sha256 {read_before}, but {train_dir}/DONE.json now lists sha256 {trained}"
        )),
        "{stdout}"
    );

    // The report shows no numbers for the stale judge, and says why.
    let out = env.emorg(&["report", "jobs/t.toml"], &[]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let md = fs::read_to_string(env.path("store/reports/t/latest/report.md")).unwrap();
    assert!(
        md.contains(&format!(
            "judge is stale: input variants/{}",
            &variant[..20]
        )),
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
        done_json(&env, &sample_dir)["inputs"][&train_out],
        trained.as_str()
    );
    assert_eq!(
        done_json(&env, &judge_dir)["inputs"][&sample_out],
        done_json(&env, &sample_dir)["outputs"][0]["sha256"]
    );
    let out = env.emorg(&["plan", "jobs/t.toml"], &[]);
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("to run: 0 train, 0 sample, 0 judge (0 stages)"),
        "{stdout}"
    );
    assert_eq!(
        plan_row(&stdout, &unit),
        ["done", "1/1", "1/1", "no"],
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
    for dir in ["units", "variants", "judgments"] {
        assert!(!env.path(&format!("store/{dir}")).exists(), "nothing ran");
    }
}
