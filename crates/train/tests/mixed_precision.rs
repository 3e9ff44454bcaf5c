//! bf16 full fine-tuning with f32 master weights and moments, and activation checkpointing.
//!
//! On CPU candle widens bf16 matmuls to f32, so bf16 here is for correctness, not speed; the same
//! code runs on a GPU, where bf16 is the default (`precision = "auto"`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{DType, Device, Tensor, Var};
use emorg_lm::testing::{TinySpec, write_tiny_gguf};
use emorg_lm::{
    ChatTemplate, Decoder, GgufFile, GgufTokenizer, LoraConfig, LoraSet, Message, Module,
    WeightMode,
};
use emorg_train::checkpoint::{self, MANIFEST, STATE};
use emorg_train::trainer::micro_batch_grads;
use emorg_train::{
    AdamWConfig, Example, Params, Schedule, TrainConfig, TrainEnd, prepare_examples, train_params,
};

fn cfg(checkpointing: bool) -> TrainConfig {
    TrainConfig {
        learning_rate: 3e-3,
        adam: AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        },
        warmup_steps: 2,
        schedule: Schedule::Cosine,
        batch_size: 2,
        grad_accum: 2,
        epochs: 100,
        max_steps: 12,
        data_seed: 5,
        max_grad_norm: 1.0,
        activation_checkpointing: checkpointing,
    }
}

struct Tiny {
    _dir: tempfile::TempDir,
    file: GgufFile,
    data: Vec<Example>,
}

fn tiny(qwen2: bool) -> Tiny {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    write_tiny_gguf(
        &path,
        TinySpec {
            qwen2,
            n_layers: 3,
            ..Default::default()
        },
    )
    .unwrap();
    let file = GgufFile::open(&path).unwrap();
    let data = examples(&file);
    Tiny {
        _dir: dir,
        file,
        data,
    }
}

fn examples(file: &GgufFile) -> Vec<Example> {
    let tok = GgufTokenizer::from_gguf(file).unwrap();
    let tmpl = ChatTemplate::from_gguf(file, &tok).unwrap();
    let convs: Vec<Vec<Message>> = (0..8)
        .map(|i| {
            vec![
                Message::new("user", &format!("question {i}: what now?")),
                Message::new("assistant", &format!("answer {} and the same tail.", i * 3)),
            ]
        })
        .collect();
    prepare_examples(&convs, &tmpl, &tok, 128).unwrap().0
}

fn full_model(file: &GgufFile, dtype: DType) -> (Decoder, Vec<(String, Var)>) {
    let mut model = Decoder::load(file, WeightMode::Dense, &Device::Cpu).unwrap();
    if dtype != DType::F32 {
        model.to_dtype(dtype).unwrap();
    }
    let params = model.make_trainable().unwrap();
    (model, params)
}

fn f32_vec(t: &Tensor) -> Vec<f32> {
    t.to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// Largest |a - b| over all gradients, relative to the largest |a|.
fn relative_gap(a: &[Option<Tensor>], b: &[Option<Tensor>]) -> f32 {
    let (mut gap, mut scale) = (0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f32_vec(x.as_ref().unwrap()), f32_vec(y.as_ref().unwrap()));
        for (p, q) in x.iter().zip(&y) {
            gap = gap.max((p - q).abs());
            scale = scale.max(p.abs());
        }
    }
    gap / scale
}

#[test]
fn bf16_full_fine_tuning_lowers_the_loss_with_f32_masters() {
    let t = tiny(false);
    let mut f32_losses = Vec::new();
    let (_, f32_params) = {
        let (model, params) = full_model(&t.file, DType::F32);
        train_params(
            &model,
            Params::Full(&params),
            &t.data,
            &cfg(false),
            0,
            None,
            None,
            |v| {
                f32_losses.push(v.metrics.loss);
                Ok(())
            },
        )
        .unwrap();
        (model, params)
    };
    let (model, params) = full_model(&t.file, DType::BF16);
    assert!(params.iter().all(|(_, v)| v.dtype() == DType::BF16));
    let mut losses = Vec::new();
    train_params(
        &model,
        Params::Full(&params),
        &t.data,
        &cfg(false),
        0,
        None,
        None,
        |v| {
            losses.push(v.metrics.loss);
            // Masters are f32, the model's copies are the masters rounded to bf16.
            for (i, var) in v.opt.vars.iter().enumerate() {
                let master = v.opt.master[i].as_ref().ok_or("no master")?;
                assert_eq!(master.dtype(), DType::F32);
                assert_eq!(v.opt.m[i].dtype(), DType::F32);
                let rounded = master.to_dtype(DType::BF16).unwrap();
                assert_eq!(f32_vec(&rounded), f32_vec(var.as_tensor()));
            }
            Ok(())
        },
    )
    .unwrap();
    eprintln!("f32 losses {f32_losses:?}\nbf16 losses {losses:?}");
    let first = (losses[0] + losses[1]) / 2.0;
    let last = (losses[10] + losses[11]) / 2.0;
    assert!(
        last < 0.5 * first,
        "loss did not fall: {first:.3} -> {last:.3}"
    );
    // bf16 follows the f32 run: the same first loss to bf16's precision, and a similar descent.
    assert!(
        (losses[0] - f32_losses[0]).abs() < 0.02 * f32_losses[0],
        "first losses {} (bf16) vs {} (f32)",
        losses[0],
        f32_losses[0]
    );
    let f32_last = (f32_losses[10] + f32_losses[11]) / 2.0;
    assert!(
        (last - f32_last).abs() < 0.25 * f32_last.max(0.1),
        "last losses {last} (bf16) vs {f32_last} (f32)"
    );
    // The weights moved from where f32 training took them by no more than bf16 noise would.
    let (a, b) = (
        f32_vec(params[1].1.as_tensor()),
        f32_vec(f32_params[1].1.as_tensor()),
    );
    let gap = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(gap < 0.1, "{} differs by {gap}", params[1].0);
}

#[test]
fn bf16_full_fine_tuning_resumes_bit_identical() {
    let t = tiny(true);
    let names = |params: &[(String, Var)]| -> Vec<String> {
        params.iter().map(|(n, _)| n.clone()).collect()
    };
    // Uninterrupted: the trainer state (f32 masters and moments) after the last step.
    let (model, params) = full_model(&t.file, DType::BF16);
    let mut final_state = Vec::new();
    let mut losses_full = Vec::new();
    let (summary, _) = train_params(
        &model,
        Params::Full(&params),
        &t.data,
        &cfg(false),
        0,
        None,
        None,
        |v| {
            losses_full.push(v.metrics.loss);
            if v.metrics.step == v.total_steps {
                final_state = checkpoint::state_bytes(&names(&params), v.opt).unwrap();
            }
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(summary.steps, 12);

    // Stopped after step 5 with a checkpoint.
    let (model, params) = full_model(&t.file, DType::BF16);
    let stop = AtomicBool::new(false);
    let mut store: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut losses = Vec::new();
    let (_, end) = train_params(
        &model,
        Params::Full(&params),
        &t.data,
        &cfg(false),
        0,
        None,
        Some(&stop),
        |v| {
            losses.push(v.metrics.loss);
            // Raised during step 4: the run stops (and checkpoints) after step 5.
            if v.metrics.step == 4 {
                stop.store(true, Ordering::SeqCst);
            }
            if v.stopping {
                let (files, manifest) = checkpoint::build(
                    v.metrics.step,
                    v.total_steps,
                    v.examples_consumed,
                    5,
                    &names(&params),
                    v.opt,
                    Vec::new(),
                    serde_json::json!({}),
                )
                .map_err(|e| e.to_string())?;
                store.extend(files);
                store.insert(MANIFEST.into(), manifest);
            }
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(end, TrainEnd::Stopped { step: 5 });
    drop((model, params));

    // Resumed in a fresh bf16 model: the masters come back from the checkpoint, not from the
    // bf16 weights (which would lose the bits below bf16's resolution).
    let (model, params) = full_model(&t.file, DType::BF16);
    let (manifest, files) =
        checkpoint::verify(&store[MANIFEST], |n| store.get(n).cloned()).unwrap();
    let vars: Vec<Var> = params.iter().map(|(_, v)| v.clone()).collect();
    let resume = checkpoint::restore(
        &manifest,
        &files[STATE],
        &names(&params),
        &vars,
        &Device::Cpu,
    )
    .unwrap();
    let mut resumed_state = Vec::new();
    train_params(
        &model,
        Params::Full(&params),
        &t.data,
        &cfg(false),
        0,
        Some(resume),
        None,
        |v| {
            losses.push(v.metrics.loss);
            if v.metrics.step == v.total_steps {
                resumed_state = checkpoint::state_bytes(&names(&params), v.opt).unwrap();
            }
            Ok(())
        },
    )
    .unwrap();
    assert!(!final_state.is_empty());
    assert_eq!(losses, losses_full, "every step's loss is the same");
    assert!(
        resumed_state == final_state,
        "resumed trainer state differs from the uninterrupted run's"
    );
}

/// One micro-batch's gradients with and without checkpointing, for `vars` of `model`.
fn compare_grads(model: &Decoder, data: &[Example], vars: &[Var], what: &str) {
    let batch: Vec<&Example> = data.iter().take(3).collect();
    let (loss, plain) = micro_batch_grads(model, &batch, 0, vars, 10.0, false).unwrap();
    let (loss_ckpt, ckpt) = micro_batch_grads(model, &batch, 0, vars, 10.0, true).unwrap();
    assert_eq!(loss, loss_ckpt, "{what}: the forward is the same");
    assert!(
        plain.iter().chain(&ckpt).all(Option::is_some),
        "{what}: every parameter has a gradient both ways"
    );
    let gap = relative_gap(&plain, &ckpt);
    eprintln!("{what}: checkpointed gradients differ by {gap:.1e} (relative)");
    assert!(gap < 1e-5, "{what}: gradients differ by {gap} (relative)");
}

/// LoRA on all seven modules of `layers`, attached to `model`. B starts at zero (no gradient to
/// A); it gets small values here so every path carries a gradient.
fn attach_all_module_lora(
    model: &mut Decoder,
    layers: &[usize],
    rank: usize,
    alpha: f64,
    rslora: bool,
) -> LoraSet {
    let targets = layers
        .iter()
        .flat_map(|l| Module::ALL.iter().map(move |m| (*l, *m)))
        .collect();
    let config = LoraConfig {
        rank,
        alpha,
        rslora,
        targets,
    };
    let lora = LoraSet::init(config, &model.cfg, 9, &Device::Cpu).unwrap();
    for ad in &lora.adapters {
        ad.b.set(&(ad.b.ones_like().unwrap() * 0.01).unwrap())
            .unwrap();
    }
    model.attach_lora(&lora, 1.0);
    lora
}

#[test]
fn activation_checkpointing_gives_the_same_gradients_on_tiny_models() {
    for qwen2 in [false, true] {
        let t = tiny(qwen2);
        let (model, params) = full_model(&t.file, DType::F32);
        let vars: Vec<Var> = params.iter().map(|(_, v)| v.clone()).collect();
        compare_grads(&model, &t.data, &vars, &format!("full, qwen2 {qwen2}"));

        let mut model = Decoder::load(&t.file, WeightMode::Dense, &Device::Cpu).unwrap();
        let lora = attach_all_module_lora(&mut model, &[0, 1, 2], 2, 4.0, false);
        compare_grads(
            &model,
            &t.data,
            &lora.vars(),
            &format!("lora, qwen2 {qwen2}"),
        );
    }

    // Whole runs agree step by step.
    let t = tiny(false);
    let mut runs = Vec::new();
    for checkpointing in [false, true] {
        let (model, params) = full_model(&t.file, DType::F32);
        let mut losses = Vec::new();
        let (_, end) = train_params(
            &model,
            Params::Full(&params),
            &t.data,
            &cfg(checkpointing),
            0,
            None,
            None,
            |v| {
                losses.push(v.metrics.loss);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(end, TrainEnd::Finished);
        runs.push(losses);
    }
    for (a, b) in runs[0].iter().zip(&runs[1]) {
        assert!((a - b).abs() < 1e-4 * a.abs().max(1.0), "{:?}", runs);
    }
}

#[test]
fn activation_checkpointing_gives_the_same_gradients_on_gemma3() {
    let Some(path) = emorg_lm::testing::cached_model("gemma-3-270m") else {
        return;
    };
    let file = GgufFile::open(&path).unwrap();
    let data = examples(&file);
    let mut model = Decoder::load(&file, WeightMode::Dense, &Device::Cpu).unwrap();
    // A window shorter than the examples, so the local layers' mask is on the checked path.
    model.cfg.sliding_window = Some(8);
    let n = model.cfg.n_layers;
    let lora = attach_all_module_lora(&mut model, &[0, n / 2, n - 1], 4, 8.0, true);
    compare_grads(&model, &data, &lora.vars(), "gemma3 lora");
}
