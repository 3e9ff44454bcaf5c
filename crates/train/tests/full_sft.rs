//! Full fine-tuning on tiny GGUFs (llama and qwen2 layouts): every weight is trainable and gets a
//! gradient, the loss falls, the weights come out under HF names, and loading them back into a
//! fresh model reproduces the trained model's logits exactly.

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use emorg_lm::testing::{TinySpec, write_tiny_gguf};
use emorg_lm::{ChatTemplate, Decoder, GgufFile, GgufTokenizer, Message, OpsMode, WeightMode};
use emorg_train::{AdamWConfig, Params, Schedule, TrainConfig, prepare_examples, train_params};

fn cfg() -> TrainConfig {
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
        grad_accum: 1,
        epochs: 100,
        max_steps: 15,
        data_seed: 5,
        max_grad_norm: 1.0,
        activation_checkpointing: false,
    }
}

fn logits(model: &Decoder, ids: &Tensor) -> Vec<f32> {
    let h = model.forward_hidden(ids, None, OpsMode::Infer).unwrap();
    model
        .logits(&h)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn full_sft(qwen2: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    write_tiny_gguf(
        &path,
        TinySpec {
            qwen2,
            ..Default::default()
        },
    )
    .unwrap();
    let file = GgufFile::open(&path).unwrap();
    let tok = GgufTokenizer::from_gguf(&file).unwrap();
    let tmpl = ChatTemplate::from_gguf(&file, &tok).unwrap();
    let convs: Vec<Vec<Message>> = (0..6)
        .map(|i| {
            vec![
                Message::new("user", &format!("say {i}")),
                Message::new("assistant", "the same short answer every time."),
            ]
        })
        .collect();
    let (data, _) = prepare_examples(&convs, &tmpl, &tok, 128).unwrap();
    let mut model = Decoder::load(&file, WeightMode::Dense, &Device::Cpu).unwrap();
    let params = model.make_trainable().unwrap();
    let names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
    // HF names, all of them: embedding, 2 x (2 norms + 7 projections (+ 3 biases for qwen2)), norm.
    assert_eq!(names[0], "model.embed_tokens.weight");
    assert!(names.contains(&"model.layers.1.self_attn.q_proj.weight"));
    assert!(names.contains(&"model.layers.0.post_attention_layernorm.weight"));
    assert!(names.contains(&"model.norm.weight"));
    let per_layer = if qwen2 { 12 } else { 9 };
    let untied_head = usize::from(names.contains(&"lm_head.weight"));
    assert_eq!(
        names.len(),
        1 + 2 * per_layer + 1 + untied_head,
        "{names:?}"
    );
    assert_eq!(
        names.contains(&"model.layers.0.self_attn.k_proj.bias"),
        qwen2
    );

    let mut losses = Vec::new();
    let mut norms = Vec::new();
    train_params(
        &model,
        Params::Full(&params),
        &data,
        &cfg(),
        0,
        None,
        None,
        |v| {
            losses.push(v.metrics.loss);
            norms.push(v.metrics.grad_norm);
            assert!(v.lora.is_none());
            Ok(())
        },
    )
    .unwrap();
    eprintln!("losses {losses:?}\ngrad norms {norms:?}");
    assert!(norms.iter().all(|n| n.is_finite() && *n > 0.0));
    let first = (losses[0] + losses[1]) / 2.0;
    let last = (losses[13] + losses[14]) / 2.0;
    assert!(
        last < 0.5 * first,
        "loss did not fall: {first:.3} -> {last:.3}"
    );

    // Every weight moved (each one got a gradient), norms included.
    let fresh = Decoder::load(&file, WeightMode::Dense, &Device::Cpu).unwrap();
    let mut fresh_t = Decoder::load(&file, WeightMode::Dense, &Device::Cpu).unwrap();
    let initial = fresh_t.make_trainable().unwrap();
    for ((name, trained), (_, init)) in params.iter().zip(&initial) {
        let d = (trained.as_tensor() - init.as_tensor())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(d > 0.0, "{name} did not change");
    }

    // The HF-named weights load back into a fresh model and give the trained model's logits.
    let ids = Tensor::new(&[[5u32, 17, 99, 3, 200, 41]], &Device::Cpu).unwrap();
    let trained_logits = logits(&model, &ids);
    assert_ne!(trained_logits, logits(&fresh, &ids));
    let tensors: HashMap<String, Tensor> = params
        .iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
        .collect();
    let mut reloaded = Decoder::load(&file, WeightMode::Dense, &Device::Cpu).unwrap();
    reloaded.load_hf_weights(&tensors).unwrap();
    assert_eq!(logits(&reloaded, &ids), trained_logits);
    // A missing tensor is named.
    let mut partial = tensors.clone();
    partial.remove("model.norm.weight");
    let err = reloaded.load_hf_weights(&partial).unwrap_err().to_string();
    assert!(err.contains("model.norm.weight"), "{err}");
}

#[test]
fn full_fine_tuning_trains_every_weight_llama() {
    full_sft(false);
}

#[test]
fn full_fine_tuning_trains_every_weight_qwen2() {
    full_sft(true);
}
