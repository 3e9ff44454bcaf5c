//! "Done" with integrity, through the worker: a stage reads an upstream output only when its
//! bytes hash to what the upstream DONE.json records; a stage built from upstream outputs that
//! changed since is stale and runs again instead of being skipped; `--force` removes the old
//! DONE.json (and train's checkpoints) before it runs. The first tests plant upstream stages by
//! hand and need no model; the last one runs train, sample and judge on the real SmolLM2 (skipped
//! with a message when the model cache lacks it).

mod common;

use std::collections::BTreeMap;
use std::process::Output;

use common::{
    have_smollm2, one_cell_sweep, one_cell_sweep_judged_by, planted_store, run_stage, worker,
};
use emorg_spec::StageRef;
use emorg_store::{DoneState, Manifest, Store, layout, sha256_hex, upstream_input_key};

const ADAPTER: &str = "adapter/adapter_model.safetensors";

fn lora_sweep() -> String {
    one_cell_sweep(
        "integrity",
        r#"preset = "lora-r1-single"
[protocols.p.train]
batch_size = 2
grad_accum = 1
max_examples = 4
max_seq_len = 96
warmup_steps = 1"#,
        "",
    )
}

/// Writes `outputs` under the stage and commits a manifest listing them, with `inputs`.
fn plant_stage(
    store: &Store,
    stage: &StageRef,
    outputs: &[(&str, &[u8])],
    inputs: BTreeMap<String, String>,
) -> Manifest {
    let entries = outputs
        .iter()
        .map(|(name, bytes)| store.put_output(stage, name, bytes.to_vec()).unwrap())
        .collect();
    let now = chrono::Utc::now();
    let m = Manifest {
        owner: stage.clone(),
        outputs: entries,
        inputs,
        seeds: BTreeMap::new(),
        worker_version: "test".into(),
        started_at: now,
        finished_at: now,
        host: "test".into(),
        metrics: serde_json::Value::Null,
    };
    store.commit_stage(&m).unwrap();
    m
}

/// Runs `stage` with a model cache that holds nothing: a stage that gets as far as loading a
/// model fails there.
fn run_without_models(stage: &StageRef, dir: &std::path::Path, force: bool) -> Output {
    let empty = tempfile::tempdir().unwrap();
    let mut cmd = worker(stage, dir);
    cmd.env("EMORG_MODELS", empty.path());
    if force {
        cmd.arg("--force");
    }
    cmd.output().unwrap()
}

fn log(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn sample_refuses_a_tampered_adapter_naming_the_key_both_hashes_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (store, planted) = planted_store(dir.path(), &lora_sweep());
    let (train, sample) = (planted.train(), planted.sample());
    plant_stage(
        &store,
        &train,
        &[(ADAPTER, b"the trained adapter")],
        BTreeMap::new(),
    );
    // Same size, other bytes: DONE.json still checks out by sizes.
    let adapter_key = layout::output(&train, ADAPTER);
    store
        .put(&adapter_key, &b"THE TRAINED ADAPTER"[..])
        .unwrap();
    assert!(store.read_done(&train).unwrap().is_valid());

    let out = run_without_models(&sample, dir.path(), false);
    let log = log(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    for part in [
        format!("integrity check failed for {adapter_key}"),
        sha256_hex(b"THE TRAINED ADAPTER"),
        sha256_hex(b"the trained adapter"),
        format!(
            "emorg-worker train --force --store <url> --key {}",
            train.key()
        ),
    ] {
        assert!(log.contains(&part), "{part} in\n{log}");
    }
    assert!(!store.exists(&layout::done(&sample)).unwrap());
    assert!(store.exists(&layout::failure(&sample)).unwrap());
}

#[test]
fn judge_refuses_tampered_responses_naming_the_key_and_both_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let (store, planted) = planted_store(dir.path(), &lora_sweep());
    let (train_stage, sample, judge) = (planted.train(), planted.sample(), planted.judge());
    let train = plant_stage(
        &store,
        &train_stage,
        &[(ADAPTER, b"adapter")],
        BTreeMap::new(),
    );
    plant_stage(
        &store,
        &sample,
        &[("responses.parquet", b"parquet bytes")],
        BTreeMap::from([(
            upstream_input_key(&train_stage, ADAPTER),
            train.outputs[0].sha256.clone(),
        )]),
    );
    let responses = layout::output(&sample, "responses.parquet");
    store.put(&responses, &b"PARQUET BYTES"[..]).unwrap();

    let out = run_without_models(&judge, dir.path(), false);
    let log = log(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    for part in [
        format!("integrity check failed for {responses}"),
        sha256_hex(b"PARQUET BYTES"),
        sha256_hex(b"parquet bytes"),
        "rerun that stage with --force (`emorg-worker sample --force".to_string(),
    ] {
        assert!(log.contains(&part), "{part} in\n{log}");
    }
    assert!(!store.exists(&layout::done(&judge)).unwrap());
}

#[test]
fn force_removes_the_old_done_json_and_checkpoints_before_running() {
    let dir = tempfile::tempdir().unwrap();
    let (store, planted) = planted_store(dir.path(), &lora_sweep());
    let train = planted.train();
    let unit = planted.cells[0].unit_key();
    plant_stage(
        &store,
        &train,
        &[(ADAPTER, b"old adapter")],
        BTreeMap::new(),
    );
    for name in ["state.safetensors", "manifest.json"] {
        store
            .put(&layout::checkpoint(&unit, 2, name), &b"old checkpoint"[..])
            .unwrap();
    }

    // Without --force a done stage is skipped: nothing is touched.
    let out = run_without_models(&train, dir.path(), false);
    assert!(out.status.success(), "{}", log(&out));
    assert!(log(&out).contains("already done"), "{}", log(&out));
    assert!(store.read_done(&train).unwrap().is_valid());

    // Forced, and failing (no model): the old DONE.json was removed before the run, so it does not
    // vouch for outputs the failed run may have half replaced; the old checkpoints are gone too.
    let out = run_without_models(&train, dir.path(), true);
    let text = log(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("(--force)"), "{text}");
    assert!(matches!(
        store.read_done(&train).unwrap(),
        DoneState::Missing
    ));
    assert!(store.exists(&layout::failure(&train)).unwrap());
    assert_eq!(
        store.list(&layout::checkpoints_prefix(&unit)).unwrap(),
        Vec::<String>::new()
    );
}

#[test]
fn a_done_but_stale_sample_is_run_again_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (store, planted) = planted_store(dir.path(), &lora_sweep());
    let (train_stage, sample) = (planted.train(), planted.sample());
    let train = plant_stage(
        &store,
        &train_stage,
        &[(ADAPTER, b"adapter A")],
        BTreeMap::new(),
    );
    let read = BTreeMap::from([(
        upstream_input_key(&train_stage, ADAPTER),
        train.outputs[0].sha256.clone(),
    )]);
    plant_stage(&store, &sample, &[("responses.parquet", b"answers")], read);
    // Built from the adapter train lists: skipped (no model is needed to skip).
    let out = run_without_models(&sample, dir.path(), false);
    assert!(out.status.success(), "{}", log(&out));
    assert!(log(&out).contains("already done"), "{}", log(&out));

    // Train redone with other results: the sample is stale, so the worker runs it again (here it
    // then fails for want of a model) after removing its old DONE.json.
    store.delete(&layout::done(&train_stage)).unwrap();
    plant_stage(
        &store,
        &train_stage,
        &[(ADAPTER, b"adapter B")],
        BTreeMap::new(),
    );
    let out = run_without_models(&sample, dir.path(), false);
    let text = log(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(!text.contains("already done"), "{text}");
    assert!(
        text.contains(&format!(
            "it is stale: input {}",
            upstream_input_key(&train_stage, ADAPTER)
        )) && text.contains(&sha256_hex(b"adapter A"))
            && text.contains(&sha256_hex(b"adapter B")),
        "{text}"
    );
    assert!(matches!(
        store.read_done(&sample).unwrap(),
        DoneState::Missing
    ));
}

/// The chain of the row's states, as the executors see it.
fn chain(store: &Store, planted: &common::Planted) -> Vec<DoneState> {
    store
        .read_done_chain(&[planted.train(), planted.sample(), planted.judge()])
        .unwrap()
}

/// Real stages: each records what it read; a deterministic forced retrain (same adapter bytes,
/// checkpoints dropped) leaves sample and judge done; an adapter with other bytes makes both
/// stale, and running them again (without --force) redoes them against the new adapter.
#[test]
fn a_retrained_adapter_makes_sample_and_judge_stale_and_rerunning_redoes_them() {
    if !have_smollm2() {
        return;
    }
    let sweep = one_cell_sweep_judged_by(
        "integrity",
        "preset = \"lora-r1-single\"\n[protocols.p.train]\nbatch_size = 2\ngrad_accum = 1\n\
         max_examples = 8\nmax_seq_len = 96\nwarmup_steps = 1\ncheckpoint_every = 1",
        "smollm2",
        "[eval]\nquestion_ids = [\"unlimited_power\"]\nsamples_per_question = 2\nmax_new_tokens = 6\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let (store, planted) = planted_store(dir.path(), &sweep);
    let (t, s, j) = (planted.train(), planted.sample(), planted.judge());
    for stage in [&t, &s, &j] {
        run_stage(stage, dir.path());
    }
    let done = |d: &StageRef| -> Manifest { store.get_json(&layout::done(d)).unwrap() };
    let (train, sample, judge) = (done(&t), done(&s), done(&j));
    let adapter_sha = train.output(ADAPTER).unwrap().sha256.clone();
    assert_eq!(sample.inputs[&upstream_input_key(&t, ADAPTER)], adapter_sha);
    assert_eq!(
        judge.inputs[&upstream_input_key(&s, "responses.parquet")],
        sample.output("responses.parquet").unwrap().sha256
    );
    assert!(chain(&store, &planted).iter().all(DoneState::is_valid));
    assert!(
        train.metrics["total_steps"].as_u64().unwrap() > 1,
        "{}",
        train.metrics
    );
    assert!(
        !store
            .list(&layout::checkpoints_prefix(&planted.cells[0].unit_key()))
            .unwrap()
            .is_empty()
    );

    // Forced retrain: starts over (not from the checkpoints) and, on CPU, gives the same bytes,
    // so what was built on them stays done.
    let text = {
        let out = worker(&t, dir.path()).arg("--force").output().unwrap();
        let text = log(&out);
        assert!(out.status.success(), "{text}");
        text
    };
    assert!(text.contains("training starts over"), "{text}");
    assert!(!text.contains("resuming at step"), "{text}");
    assert_eq!(
        done(&t).output(ADAPTER).unwrap().sha256,
        adapter_sha,
        "a deterministic retrain"
    );
    assert!(chain(&store, &planted).iter().all(DoneState::is_valid));

    // A retrain with other results (other hardware): the adapter's values scaled, same layout.
    let bytes = store.get(&layout::output(&t, ADAPTER)).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let scaled: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let data = view
                .data()
                .chunks_exact(4)
                .flat_map(|c| (f32::from_le_bytes(c.try_into().unwrap()) * 8.0).to_le_bytes())
                .collect();
            (name, data, view.shape().to_vec())
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = scaled
        .iter()
        .map(|(name, data, shape)| {
            (
                name.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data)
                    .unwrap(),
            )
        })
        .collect();
    let other = safetensors::tensor::serialize(views, None).unwrap();
    assert_ne!(sha256_hex(&other), adapter_sha);
    store.delete(&layout::done(&t)).unwrap();
    done_train_with(&store, &train, &other);

    let states = chain(&store, &planted);
    assert!(states[0].is_valid());
    for (state, input) in [
        (&states[1], upstream_input_key(&t, ADAPTER)),
        (&states[2], upstream_input_key(&s, "responses.parquet")),
    ] {
        match state {
            DoneState::Stale { reason, .. } => assert!(reason.contains(&input), "{reason}"),
            other => panic!("expected stale, got {other:?}"),
        }
    }

    // Run again without --force: the stale stages are redone, from the new adapter.
    let text = run_stage(&s, dir.path());
    assert!(text.contains("it is stale"), "{text}");
    run_stage(&j, dir.path());
    let (sample, judge) = (done(&s), done(&j));
    assert_eq!(
        sample.inputs[&upstream_input_key(&t, ADAPTER)],
        sha256_hex(&other)
    );
    assert_eq!(
        judge.inputs[&upstream_input_key(&s, "responses.parquet")],
        sample.output("responses.parquet").unwrap().sha256
    );
    assert!(chain(&store, &planted).iter().all(DoneState::is_valid));
}

/// Commits `train` again with `adapter` in place of its adapter (the other outputs as they are).
fn done_train_with(store: &Store, train: &Manifest, adapter: &[u8]) {
    let mut m = train.clone();
    let entry = store
        .put_output(&train.owner, ADAPTER, adapter.to_vec())
        .unwrap();
    for out in &mut m.outputs {
        if out.name == ADAPTER {
            *out = entry.clone();
        }
    }
    store.commit_stage(&m).unwrap();
}
