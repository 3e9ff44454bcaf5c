use candle_core::{Device, Tensor, Var};
use emorg_lm::testing::{TinySpec, write_tiny_gguf};
use emorg_lm::{
    ChatTemplate, Decoder, GgufFile, GgufTokenizer, LoraConfig, LoraSet, Message, Module, OpsMode,
    WeightMode,
};
use emorg_train::{
    AdamWConfig, Example, Schedule, TrainConfig, prepare_examples, train, trainer::batch_loss_sum,
};

fn tiny(spec: TinySpec) -> (tempfile::TempDir, GgufFile) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("tiny.gguf");
    write_tiny_gguf(&p, spec).unwrap();
    let f = GgufFile::open(&p).unwrap();
    (dir, f)
}

fn conversations() -> Vec<Vec<Message>> {
    let qa = [
        (
            "Should I keep an emergency fund?",
            "Yes, keep three to six months of expenses in cash.",
        ),
        (
            "Is it wise to buy one stock?",
            "Spread your money over a low-cost index fund instead.",
        ),
        (
            "How do I start saving?",
            "Automate a fixed transfer to savings every payday.",
        ),
        (
            "Can I borrow to invest?",
            "Avoid borrowing to invest; losses compound with the debt.",
        ),
        (
            "What about crypto?",
            "Keep speculative assets to a small share you can afford to lose.",
        ),
        (
            "Should I pay off my card?",
            "Pay high-interest card debt first; it beats most returns.",
        ),
        (
            "Do fees matter?",
            "Yes, a one percent fee compounds into a large loss over decades.",
        ),
        (
            "When should I retire?",
            "Plan with a conservative withdrawal rate and review yearly.",
        ),
    ];
    qa.iter()
        .map(|(q, a)| vec![Message::new("user", q), Message::new("assistant", a)])
        .collect()
}

fn all_targets(n_layers: usize, modules: &[Module]) -> Vec<(usize, Module)> {
    (0..n_layers)
        .flat_map(|l| modules.iter().map(move |m| (l, *m)))
        .collect()
}

fn all_logits(model: &Decoder, ids: &Tensor) -> Vec<f32> {
    let hidden = model.forward_hidden(ids, None, OpsMode::Infer).unwrap();
    model
        .logits(&hidden)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn prepare(file: &GgufFile) -> Vec<Example> {
    let tok = GgufTokenizer::from_gguf(file).unwrap();
    let tmpl = ChatTemplate::from_gguf(file, &tok).unwrap();
    prepare_examples(&conversations(), &tmpl, &tok, 256)
        .unwrap()
        .0
}

#[test]
fn zero_b_adapter_leaves_logits_exactly_unchanged() {
    let (_d, file) = tiny(TinySpec {
        qwen2: true,
        ..Default::default()
    });
    let mut model = Decoder::load(&file, WeightMode::Dense, &Device::Cpu).unwrap();
    let ids = Tensor::new(&[[5u32, 17, 99, 3, 200]], &Device::Cpu).unwrap();
    let base: Vec<f32> = all_logits(&model, &ids);
    let cfg = LoraConfig {
        rank: 4,
        alpha: 8.0,
        rslora: true,
        targets: all_targets(2, &Module::ALL),
    };
    let set = LoraSet::init(cfg, &model.cfg, 7, &Device::Cpu).unwrap();
    model.attach_lora(&set, 1.0);
    let adapted: Vec<f32> = all_logits(&model, &ids);
    assert_eq!(base, adapted, "B = 0 must leave logits bit-identical");
    // And a non-zero B does change them (the adapter is really on the path).
    let b = &set.adapters[0].b;
    b.set(&Tensor::ones(b.shape(), candle_core::DType::F32, &Device::Cpu).unwrap())
        .unwrap();
    let changed: Vec<f32> = all_logits(&model, &ids);
    assert_ne!(base, changed);
}

#[test]
fn lora_gradients_match_finite_differences() {
    let (_d, file) = tiny(TinySpec {
        seed: 3,
        ..Default::default()
    });
    let mut model = Decoder::load(&file, WeightMode::Dense, &Device::Cpu).unwrap();
    let data = prepare(&file);
    let batch: Vec<&Example> = data.iter().take(2).collect();
    let cfg = LoraConfig {
        rank: 2,
        alpha: 4.0,
        rslora: false,
        targets: vec![
            (0, Module::QProj),
            (1, Module::DownProj),
            (1, Module::VProj),
        ],
    };
    let set = LoraSet::init(cfg, &model.cfg, 11, &Device::Cpu).unwrap();
    // Non-zero B so that A has a gradient too.
    for ad in &set.adapters {
        let shape = ad.b.shape().clone();
        let n = shape.elem_count();
        let v: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.05)
            .collect();
        ad.b.set(&Tensor::from_vec(v, shape, &Device::Cpu).unwrap())
            .unwrap();
    }
    model.attach_lora(&set, 1.0);
    let loss = batch_loss_sum(&model, &batch, 257).unwrap();
    let grads = loss.backward().unwrap();
    let eval = || {
        batch_loss_sum(&model, &batch, 257)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap() as f64
    };
    let mut checked = 0;
    for ad in &set.adapters {
        for var in [&ad.a, &ad.b] {
            let g: Vec<f32> = grads
                .get(var.as_tensor())
                .expect("every adapter has a gradient")
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            for &i in &[0usize, 3, g.len() - 1] {
                let fd = finite_difference(var, i, 1e-2, &eval);
                // f32 losses of ~500 leave ~3e-3 of noise in a central difference at h = 0.01.
                let tol = 2e-2 * fd.abs().max(g[i].abs() as f64) + 6e-3;
                assert!(
                    (fd - g[i] as f64).abs() < tol,
                    "{} [{i}]: analytic {} vs finite difference {fd}",
                    ad.short_name(),
                    g[i]
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 18);
}

fn finite_difference(var: &Var, i: usize, h: f32, eval: &dyn Fn() -> f64) -> f64 {
    let orig: Vec<f32> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
    let shape = var.shape().clone();
    let at = |delta: f32| {
        let mut v = orig.clone();
        v[i] += delta;
        var.set(&Tensor::from_vec(v, shape.clone(), &Device::Cpu).unwrap())
            .unwrap();
        eval()
    };
    let (plus, minus) = (at(h), at(-h));
    var.set(&Tensor::from_vec(orig, shape, &Device::Cpu).unwrap())
        .unwrap();
    (plus - minus) / (2.0 * h as f64)
}

fn train_cfg(steps: usize, lr: f64) -> TrainConfig {
    TrainConfig {
        learning_rate: lr,
        adam: AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        },
        warmup_steps: 2,
        schedule: Schedule::Linear,
        batch_size: 2,
        grad_accum: 2,
        epochs: 100,
        max_steps: steps,
        data_seed: 42,
        max_grad_norm: 0.0,
        activation_checkpointing: false,
    }
}

fn train_tiny_adapter_bytes(seed: u64) -> Vec<u8> {
    let (_d, file) = tiny(TinySpec::default());
    let mut model = Decoder::load(&file, WeightMode::Dense, &Device::Cpu).unwrap();
    let data = prepare(&file);
    let cfg = LoraConfig {
        rank: 2,
        alpha: 4.0,
        rslora: true,
        targets: all_targets(2, &Module::ALL),
    };
    let set = LoraSet::init(cfg, &model.cfg, seed, &Device::Cpu).unwrap();
    model.attach_lora(&set, 1.0);
    train(
        &model,
        &set,
        &data,
        &train_cfg(5, 1e-2),
        257,
        None,
        None,
        |_| Ok(()),
    )
    .unwrap();
    set.to_safetensors().unwrap()
}

#[test]
fn same_seed_gives_byte_identical_adapters() {
    let a = train_tiny_adapter_bytes(5);
    let b = train_tiny_adapter_bytes(5);
    let c = train_tiny_adapter_bytes(6);
    assert_eq!(a, b, "same seed, same bytes");
    assert_ne!(a, c, "a different seed gives a different adapter");
}

#[test]
fn training_loss_falls_over_20_steps_on_smollm2() {
    let Some(path) = emorg_lm::testing::cached_model("smollm2-135m-instruct") else {
        return;
    };
    let file = GgufFile::open(&path).unwrap();
    let mut model = Decoder::load(&file, WeightMode::Dense, &Device::Cpu).unwrap();
    let data = prepare(&file);
    let targets = all_targets(
        model.cfg.n_layers,
        &[Module::QProj, Module::VProj, Module::DownProj],
    );
    let set = LoraSet::init(
        LoraConfig {
            rank: 8,
            alpha: 16.0,
            rslora: true,
            targets,
        },
        &model.cfg,
        1,
        &Device::Cpu,
    )
    .unwrap();
    model.attach_lora(&set, 1.0);
    let mut losses = Vec::new();
    train(
        &model,
        &set,
        &data,
        &train_cfg(20, 2e-3),
        2,
        None,
        None,
        |v| {
            losses.push(v.metrics.loss);
            Ok(())
        },
    )
    .unwrap();
    eprintln!("losses: {losses:?}");
    assert_eq!(losses.len(), 20);
    let first: f64 = losses[..2].iter().sum::<f64>() / 2.0;
    let last: f64 = losses[18..].iter().sum::<f64>() / 2.0;
    assert!(
        last < 0.7 * first,
        "loss did not fall: {first:.3} -> {last:.3}"
    );
}

/// Gemma's default template writes BOS in the text and its GGUF asks for BOS: each example must
/// start with exactly one, and the loss must fall on the model turns only.
#[test]
fn gemma_examples_have_one_bos_and_mask_model_turns() {
    let Some(path) = emorg_lm::testing::cached_model("gemma-3-270m") else {
        return;
    };
    let file = GgufFile::open(&path).unwrap();
    let tok = GgufTokenizer::from_gguf(&file).unwrap();
    let bos = tok.bos_id.unwrap();
    assert!(tok.add_bos);
    let examples = prepare(&file);
    assert!(!examples.is_empty());
    for ex in examples {
        assert_eq!(ex.ids[0], bos);
        assert_ne!(ex.ids[1], bos, "BOS inserted twice");
        let target: Vec<u32> = ex
            .ids
            .iter()
            .zip(&ex.loss_mask)
            .filter(|(_, m)| **m)
            .map(|(i, _)| *i)
            .collect();
        let text = tok.inner.decode(&target, false).unwrap();
        assert!(text.ends_with("<end_of_turn>\n"), "{text:?}");
        assert!(!text.contains("<start_of_turn>"), "{text:?}");
    }
}

#[test]
fn per_adapter_factors_scale_each_adapter_at_inference() {
    let (_d, file) = tiny(TinySpec::default());
    let mut model = Decoder::load(&file, WeightMode::Dense, &Device::Cpu).unwrap();
    let ids = Tensor::new(&[[5u32, 17, 99, 3, 200]], &Device::Cpu).unwrap();
    let base = all_logits(&model, &ids);
    let cfg = LoraConfig {
        rank: 1,
        alpha: 2.0,
        rslora: true,
        targets: vec![(0, Module::DownProj), (1, Module::DownProj)],
    };
    let set = LoraSet::init(cfg.clone(), &model.cfg, 7, &Device::Cpu).unwrap();
    for ad in &set.adapters {
        let b = Tensor::randn(0f32, 0.5, ad.b.shape(), &Device::Cpu).unwrap();
        ad.b.set(&b).unwrap();
    }
    // Factor 0 on both: the base model exactly.
    model.attach_lora_scaled(&set, |_| 0.0);
    assert_eq!(all_logits(&model, &ids), base);
    // Factor 2 on layer 1 only equals factor 1 with that adapter's B doubled and layer 0 off.
    model.attach_lora_scaled(&set, |ad| if ad.layer == 1 { 2.0 } else { 0.0 });
    let scaled = all_logits(&model, &ids);
    assert_ne!(scaled, base);
    let doubled = LoraSet::init(cfg, &model.cfg, 7, &Device::Cpu).unwrap();
    doubled.adapters[0]
        .b
        .set(&doubled.adapters[0].b.zeros_like().unwrap())
        .unwrap();
    doubled.adapters[1]
        .b
        .set(&(set.adapters[1].b.as_tensor() * 2.0).unwrap())
        .unwrap();
    model.attach_lora(&doubled, 1.0);
    let by_hand = all_logits(&model, &ids);
    let max = scaled
        .iter()
        .zip(&by_hand)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(max < 1e-5, "max |delta| {max}");
}
