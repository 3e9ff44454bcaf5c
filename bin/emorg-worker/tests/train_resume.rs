//! The preemption contract of `emorg-worker train`, end to end on the real SmolLM2 (skipped with a
//! message when the model cache lacks it): SIGTERM mid-run writes a checkpoint and exits 75 with no
//! FAILED.json; a rerun resumes and ends with the same adapter bytes and the same trajectory as an
//! uninterrupted run; retention keeps what keep-last/keep-every say; trajectory.parquet holds A and
//! B of every step.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{have_smollm2, one_cell_sweep, planted_store, worker};
use emorg_spec::StageRef;
use emorg_store::Store;
use emorg_store::tables::{self, TableRow, TrajectoryRow};

fn sweep() -> String {
    one_cell_sweep(
        "resume",
        r#"preset = "lora-r1-single"
[protocols.p.train]
learning_rate = 1e-3
batch_size = 2
grad_accum = 1
max_examples = 12
max_seq_len = 96
warmup_steps = 2
checkpoint_every = 2
checkpoint_keep_last = 1
checkpoint_keep_every = 4"#,
        "",
    )
}

fn trajectory(store: &Store, train: &StageRef) -> Vec<(u64, Vec<f32>, Vec<f32>)> {
    let t = store
        .get_table(&emorg_store::layout::output(train, tables::TRAJECTORY))
        .unwrap();
    TrajectoryRow::from_batch(&t)
        .unwrap()
        .into_iter()
        .map(|r| (r.step, r.a, r.b))
        .collect()
}

#[test]
fn sigterm_checkpoints_exits_75_and_a_rerun_resumes_bit_for_bit() {
    if !have_smollm2() {
        return;
    }
    // Uninterrupted run.
    let full_dir = tempfile::tempdir().unwrap();
    let (full, planted) = planted_store(full_dir.path(), &sweep());
    let key = planted.train();
    let out = worker(&key, full_dir.path()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let adapter_key = emorg_store::layout::output(&key, "adapter/adapter_model.safetensors");
    let full_adapter = full.get(&adapter_key).unwrap();
    let done: serde_json::Value = full.get_json(&emorg_store::layout::done(&key)).unwrap();
    assert_eq!(done["metrics"]["total_steps"], 6);
    // Written at 2 and 4 (not at the last step); keep-last 1 and keep-every 4 leave only 4.
    assert_eq!(done["metrics"]["checkpoints"], serde_json::json!([4]));
    assert!(done["metrics"]["resumed_from_step"].is_null());
    let full_traj = trajectory(&full, &key);
    assert_eq!(full_traj.len(), 6, "one rank-1 adapter, one row per step");
    assert_eq!(
        full_traj.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6]
    );
    assert_eq!(
        (full_traj[0].1.len(), full_traj[0].2.len()),
        (1536, 576),
        "A over d_ff, B over d_model"
    );

    // Interrupted: SIGTERM once the first step is logged.
    let cut_dir = tempfile::tempdir().unwrap();
    let (cut, planted2) = planted_store(cut_dir.path(), &sweep());
    assert_eq!(key, planted2.train());
    let mut child = worker(&key, cut_dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut log = String::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.contains("step 1/6") {
            let ok = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(ok.success());
        }
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(75), "requeue exit code; log:\n{log}");
    assert!(log.contains("checkpoint at step"), "{log}");
    assert!(!cut.exists(&emorg_store::layout::done(&key)).unwrap());
    assert!(
        !cut.exists(&emorg_store::layout::failure(&key)).unwrap(),
        "a requeue is not a failure"
    );

    // Rerun: resumes and ends where the uninterrupted run ended, byte for byte.
    let out = worker(&key, cut_dir.path()).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("resuming at step"), "{log}");
    assert_eq!(
        cut.get(&adapter_key).unwrap(),
        full_adapter,
        "final adapter bytes"
    );
    assert_eq!(trajectory(&cut, &key), full_traj, "every step's A and B");
    let done: serde_json::Value = cut.get_json(&emorg_store::layout::done(&key)).unwrap();
    assert!(
        done["metrics"]["resumed_from_step"].as_u64().unwrap() >= 1,
        "{done}"
    );
}
