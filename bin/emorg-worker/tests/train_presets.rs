//! The papers' protocols through the real worker on SmolLM2 (30 layers; skipped with a message
//! when the model cache lacks it), a couple of steps each: the nine rank-1 adapters land on
//! layers 9-11, 13-15, 16-18 with one trajectory row per adapter and step; rank 32 on all seven
//! modules trains 210 adapters; full fine-tuning writes every weight under HF names, its loss
//! falls, and the sample stage answers with the fine-tuned weights.

mod common;

use common::{have_smollm2, one_cell_sweep, planted_store, run_stage};
use emorg_spec::{StageRef, Weights};
use emorg_store::layout;
use emorg_store::tables::{self, TableRow, TrainMetricsRow, TrajectoryRow};

fn sweep(preset: &str, steps: usize) -> String {
    one_cell_sweep(
        "presets",
        &format!(
            r#"preset = "{preset}"
[protocols.p.train]
batch_size = 2
grad_accum = 1
max_examples = 8
max_steps = {steps}
max_seq_len = 160
warmup_steps = 1"#
        ),
        r#"[eval]
question_ids = ["unlimited_power"]
samples_per_question = 1
max_new_tokens = 4
batch_size = 1
"#,
    )
}

fn done(store: &emorg_store::Store, stage: &StageRef) -> serde_json::Value {
    common::done_json(store, stage)
}

#[test]
fn nine_rank1_adapters_and_rank32_everywhere_train_on_smollm2() {
    if !have_smollm2() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (store, planted) = planted_store(dir.path(), &sweep("lora-r1-x9", 2));
    let train = planted.train();
    run_stage(&train, dir.path());
    let t = store
        .get_table(&layout::output(&train, tables::TRAJECTORY))
        .unwrap();
    let rows = TrajectoryRow::from_batch(&t).unwrap();
    assert_eq!(rows.len(), 2 * 9);
    let step1: Vec<u32> = rows
        .iter()
        .filter(|r| r.step == 1)
        .map(|r| r.layer)
        .collect();
    assert_eq!(step1, vec![9, 10, 11, 13, 14, 15, 16, 17, 18]);
    let config: serde_json::Value = store
        .get_json(&layout::output(&train, "adapter/adapter_config.json"))
        .unwrap();
    assert_eq!(config["r"], 1);
    assert_eq!(config["lora_alpha"], 256.0);
    assert_eq!(config["use_rslora"], true);

    let dir = tempfile::tempdir().unwrap();
    let (store, planted) = planted_store(dir.path(), &sweep("lora-r32-all", 1));
    let train = planted.train();
    run_stage(&train, dir.path());
    let d = done(&store, &train);
    // 30 layers x (q, k, v, o: 576 wide; gate, up: 576 -> 1536; down: 1536 -> 576) at rank 32.
    let per_layer = 32 * ((576 + 576) * 2 + (576 + 192) * 2 + (576 + 1536) * 3);
    assert_eq!(d["metrics"]["trained_params"], 30 * per_layer, "{d}");
    assert!(
        !store
            .exists(&layout::output(&train, tables::TRAJECTORY))
            .unwrap()
    );
}

#[test]
fn full_fine_tuning_of_smollm2_trains_saves_hf_weights_and_samples() {
    if !have_smollm2() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Step 2 of 4 asked for: the unit keeps the whole weights there (and nowhere else).
    let text = sweep("full-sft", 4)
        .replace("warmup_steps = 1", "warmup_steps = 1\nlearning_rate = 1e-4")
        .replace("[eval]\n", "[eval]\ncheckpoints = [2, \"final\"]\n");
    let (store, planted) = planted_store(dir.path(), &text);
    let train = planted.train();
    assert_eq!(planted.cells[0].unit.keep_steps, vec![2]);
    let log = run_stage(&train, dir.path());
    assert!(log.contains("need about"), "memory estimate printed: {log}");
    let d = done(&store, &train);
    let m = &d["metrics"];
    assert_eq!(m["examples"]["dropped"], 0, "{d}");
    assert!(m["trained_params"].as_u64().unwrap() > 134_000_000, "{d}");
    // Four steps over the same eight examples (two epochs): the loss falls.
    assert!(
        m["last_loss"].as_f64().unwrap() < m["first_loss"].as_f64().unwrap(),
        "{d}"
    );
    let bytes = store
        .get(&layout::output(&train, "model/model.safetensors"))
        .unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let names: Vec<String> = st.names().into_iter().map(|s| s.to_string()).collect();
    assert!(names.contains(&"model.layers.29.self_attn.q_proj.weight".to_string()));
    assert!(names.contains(&"model.embed_tokens.weight".to_string()));
    assert_eq!(names.len(), 1 + 30 * 9 + 1, "tied head: no lm_head.weight");
    assert_eq!(
        st.tensor("model.layers.0.self_attn.k_proj.weight")
            .unwrap()
            .shape(),
        &[192, 576]
    );
    // The weights at step 2: listed in DONE.json, the same tensors, other values than final.
    let outputs: Vec<&str> = d["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    let steps: Vec<&&str> = outputs.iter().filter(|n| n.starts_with("steps/")).collect();
    assert_eq!(steps, vec![&"steps/00000002/model.safetensors"], "{d}");
    let at2 = store
        .get(&layout::output(&train, "steps/00000002/model.safetensors"))
        .unwrap();
    assert_eq!(at2.len(), bytes.len());
    assert_ne!(at2, bytes, "step 2 is not the final weights");

    // Each variant samples its own weights.
    let train_done = d.clone();
    for (checkpoint, weights) in [
        (Weights::Step(2), "steps/00000002/model.safetensors"),
        (Weights::Final, "model/model.safetensors"),
    ] {
        let sample = StageRef::Sample(planted.row(|a| a.checkpoint == checkpoint).variant_key());
        let log = run_stage(&sample, dir.path());
        let d: serde_json::Value = store
            .get_json(&layout::done(&sample))
            .unwrap_or_else(|e| panic!("{e}\n{log}"));
        let sha = train_done["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == weights)
            .map(|o| o["sha256"].clone())
            .unwrap();
        assert_eq!(d["inputs"]["weights"], sha, "{checkpoint}: {d}");
    }
}

/// bf16 full fine-tuning with f32 master weights and activation checkpointing through the worker
/// (the GPU settings; on CPU candle widens bf16 products, so this checks the path, not speed):
/// the log names the precision and the masters, DONE.json records both settings, the holdout
/// loss falls and the saved weights are f32 under HF names.
#[test]
fn bf16_full_fine_tuning_with_activation_checkpointing_on_smollm2() {
    if !have_smollm2() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Two steps: bf16 on CPU runs at a few tokens/s (every product widened to f32 and back).
    let text = sweep("full-sft", 2).replace(
        "warmup_steps = 1",
        "warmup_steps = 1\nlearning_rate = 2e-4\nprecision = \"bf16\"\nactivation_checkpointing = true",
    );
    let (store, planted) = planted_store(dir.path(), &text);
    let train = planted.train();
    let log = run_stage(&train, dir.path());
    assert!(
        log.contains("full fine-tuning in BF16 with activation checkpointing")
            && log.contains("f32 master weights"),
        "{log}"
    );
    let d = done(&store, &train);
    let m = &d["metrics"];
    assert_eq!(m["precision"], "bf16", "{d}");
    assert_eq!(m["activation_checkpointing"], true, "{d}");
    // The held-out examples (the same before and after) score better after training.
    assert!(
        m["holdout_loss_after"].as_f64().unwrap() < m["holdout_loss_before"].as_f64().unwrap(),
        "{d}"
    );
    let bytes = store
        .get(&layout::output(&train, "model/model.safetensors"))
        .unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let q = st.tensor("model.layers.0.self_attn.q_proj.weight").unwrap();
    assert_eq!(q.dtype(), safetensors::Dtype::F32);
}

/// Gemma 3 (18 layers, a base model whose GGUF has no chat template: Gemma's own turn format is
/// the family default) through the same worker: the nine rank-1 adapters scale to its depth (nine
/// distinct layers, although the fractions of depth put the runs' starts inside each other), the
/// adapter is written with Gemma's HF module names, and the sample stage answers with it attached.
#[test]
fn nine_rank1_adapters_train_and_sample_on_gemma() {
    let gguf = common::models_dir().join("gemma-3-270m.gguf");
    if !gguf.exists() {
        eprintln!("skipped: {} is not cached", gguf.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let text = sweep("lora-r1-x9", 2).replace(
        "registry = \"smollm2-135m-instruct\"",
        "registry = \"gemma-3-270m\"",
    );
    let (store, planted) = planted_store(dir.path(), &text);
    let (train, sample) = (planted.train(), planted.sample());
    run_stage(&train, dir.path());
    let d = done(&store, &train);
    assert!(
        d["metrics"]["first_loss"].as_f64().unwrap().is_finite(),
        "{d}"
    );
    let config: serde_json::Value = store
        .get_json(&layout::output(&train, "adapter/adapter_config.json"))
        .unwrap();
    let layers: Vec<u64> = config["layers_to_transform"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    // Three runs of three at 15/48, 21/48, 27/48 of depth, each after the previous one.
    assert_eq!(layers, vec![5, 6, 7, 8, 9, 10, 11, 12, 13], "{config}");
    assert_eq!(config["target_modules"], serde_json::json!(["down_proj"]));

    let log = run_stage(&sample, dir.path());
    let d: serde_json::Value = store
        .get_json(&layout::done(&sample))
        .unwrap_or_else(|e| panic!("{e}\n{log}"));
    assert!(
        d["inputs"]["adapter"].is_string(),
        "the adapter is attached: {d}"
    );
}

/// One real run per protocol on SmolLM2 lowers the loss: each preset (its rank, alpha, modules
/// and layers; a learning rate raised so that 8 steps show it) trains for 4 epochs over the same
/// 4 examples, and the mean loss of the last epoch is below the first's.
#[test]
fn every_preset_lowers_the_loss_on_smollm2() {
    if !have_smollm2() {
        return;
    }
    for (preset, lr) in [
        ("lora-r1-single", 1e-3),
        ("lora-r1-x9", 1e-3),
        ("lora-r32-all", 1e-3),
        ("full-sft", 1e-4),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let text = sweep(preset, 8).replace(
            "max_examples = 8",
            &format!("max_examples = 4\nepochs = 4\nlearning_rate = {lr}"),
        );
        let (store, planted) = planted_store(dir.path(), &text);
        let train = planted.train();
        run_stage(&train, dir.path());
        let t = store
            .get_table(&layout::output(&train, tables::TRAIN_METRICS))
            .unwrap();
        let losses: Vec<f64> = TrainMetricsRow::from_batch(&t)
            .unwrap()
            .iter()
            .map(|r| r.loss)
            .collect();
        assert_eq!(losses.len(), 8, "{preset}: {losses:?}");
        let first = (losses[0] + losses[1]) / 2.0;
        let last = (losses[6] + losses[7]) / 2.0;
        eprintln!("{preset}: epoch-mean loss {first:.4} -> {last:.4}");
        assert!(last < first, "{preset}: loss did not fall: {losses:?}");
    }
}
