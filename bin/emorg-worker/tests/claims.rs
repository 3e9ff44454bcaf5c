//! Claims (src/claim.rs) through the real worker on the real SmolLM2 (skipped with a message when
//! the model cache lacks it): a stage claimed by a live run is left alone (exit 73, nothing
//! written, no FAILED.json); a claim whose process is gone, or of an earlier run of the same Slurm
//! task (a requeue), is taken over; a run whose claim is taken over while it trains does not
//! commit; a committed stage leaves its claim released.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::{have_smollm2, one_cell_sweep, planted_store, worker};
use emorg_spec::StageRef;
use emorg_store::claim::held_claim;
use emorg_store::{Store, layout};

fn sweep() -> String {
    one_cell_sweep(
        "claims",
        r#"preset = "lora-r1-single"
[protocols.p.train]
batch_size = 2
grad_accum = 1
max_examples = 8
max_seq_len = 96
warmup_steps = 1"#,
        "",
    )
}

fn host() -> String {
    let out = std::process::Command::new("hostname").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn plant_claim(store: &Store, stage: &StageRef, host: &str, pid: u32, slurm: Option<&str>) {
    let claim = serde_json::json!({
        "run": format!("{host}-{pid}-42"),
        "host": host,
        "pid": pid,
        "slurm_task": slurm,
        "at": "2026-12-01T00:00:00Z",
    });
    store.put_json(&layout::claim(stage), &claim).unwrap();
}

fn train_files(store: &Store, stage: &StageRef) -> Vec<String> {
    store
        .list(&layout::stage_prefix(stage))
        .unwrap()
        .into_iter()
        .filter(|k| !k.ends_with("CLAIM.json"))
        .collect()
}

#[test]
fn a_live_claim_is_respected_and_a_stale_one_taken_over() {
    if !have_smollm2() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (store, planted) = planted_store(dir.path(), &sweep());
    let key = planted.train();

    // Another host's run, not a Slurm task: cannot be proven dead, so it is respected.
    plant_claim(&store, &key, "node-elsewhere", 1234, None);
    let out = worker(&key, dir.path()).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(73), "{log}");
    assert!(
        log.contains("is claimed by run node-elsewhere-1234-42 (host node-elsewhere, pid 1234"),
        "{log}"
    );
    assert!(log.contains("--take-over"), "{log}");
    assert!(
        train_files(&store, &key).is_empty(),
        "{:?}",
        train_files(&store, &key)
    );
    assert!(!store.exists(&layout::failure(&key)).unwrap());

    // A live process of this host (this test) holds it: respected too.
    plant_claim(&store, &key, &host(), std::process::id(), None);
    let out = worker(&key, dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(73));

    // An earlier run of the same Slurm task (a requeue: a higher restart count): taken over,
    // trained, committed, claim released.
    plant_claim(&store, &key, "node-elsewhere", 1234, Some("900_4"));
    let out = worker(&key, dir.path())
        .env("SLURM_ARRAY_JOB_ID", "900")
        .env("SLURM_ARRAY_TASK_ID", "4")
        .env("SLURM_JOB_ID", "905")
        .env("SLURM_RESTART_COUNT", "1")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("earlier run (restart 0) of this Slurm task 900_4, now at restart 1"),
        "{log}"
    );
    assert!(store.exists(&layout::done(&key)).unwrap());
    assert!(store.exists(&layout::claim(&key)).unwrap());
    assert_eq!(held_claim(&store, &key).unwrap(), None);

    // A process of this host that is gone: taken over (here for a forced rerun).
    plant_claim(&store, &key, &host(), 4_999_999, None);
    let out = worker(&key, dir.path()).arg("--force").output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("its process 4999999 on this host is gone"),
        "{log}"
    );
    assert_eq!(held_claim(&store, &key).unwrap(), None);
}

#[test]
fn a_run_whose_claim_is_taken_over_does_not_commit() {
    if !have_smollm2() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (store, planted) = planted_store(dir.path(), &sweep());
    let key = planted.train();
    let mut child = worker(&key, dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut log = String::new();
    let mut replaced = false;
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if !replaced && line.contains("step 1/") {
            // Another run takes the stage over (as a requeued task on another node would).
            let ours: serde_json::Value = store.get_json(&layout::claim(&key)).unwrap();
            assert_eq!(ours["pid"], child.id(), "{ours}");
            plant_claim(&store, &key, "node-elsewhere", 77, Some("901_0"));
            replaced = true;
        }
    }
    let status = child.wait().unwrap();
    assert!(replaced, "{log}");
    assert_eq!(status.code(), Some(73), "{log}");
    assert!(
        log.contains("lost the claim") && log.contains("node-elsewhere-77-42"),
        "{log}"
    );
    assert!(!store.exists(&layout::done(&key)).unwrap());
    assert!(!store.exists(&layout::failure(&key)).unwrap());
    // The claim is the other run's, untouched.
    let claim: serde_json::Value = store.get_json(&layout::claim(&key)).unwrap();
    assert_eq!(claim["host"], "node-elsewhere");
}
