//! A run stopped mid-way and resumed from its checkpoint ends with the same adapter bytes, the
//! same losses and the same moments as an uninterrupted run (tiny GGUF, CPU).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::Device;
use emorg_lm::testing::{TinySpec, write_tiny_gguf};
use emorg_lm::{
    ChatTemplate, Decoder, GgufFile, GgufTokenizer, LoraConfig, LoraSet, Message, Module,
    WeightMode,
};
use emorg_train::checkpoint::{self, MANIFEST, STATE};
use emorg_train::{AdamWConfig, Schedule, TrainConfig, TrainEnd, prepare_examples, train};

fn cfg() -> TrainConfig {
    TrainConfig {
        learning_rate: 5e-3,
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
        // 10 examples, 4 per step: 3 steps per epoch, 9 in all; the stop falls inside epoch 2.
        epochs: 3,
        max_steps: 0,
        data_seed: 11,
        max_grad_norm: 0.0,
        activation_checkpointing: false,
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    model: Decoder,
    lora: LoraSet,
    data: Vec<emorg_train::Example>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    write_tiny_gguf(&path, TinySpec::default()).unwrap();
    let file = GgufFile::open(&path).unwrap();
    let tok = GgufTokenizer::from_gguf(&file).unwrap();
    let tmpl = ChatTemplate::from_gguf(&file, &tok).unwrap();
    let convs: Vec<Vec<Message>> = (0..10)
        .map(|i| {
            vec![
                Message::new("user", &format!("question number {i}?")),
                Message::new("assistant", &format!("answer {} of ten.", i * 7)),
            ]
        })
        .collect();
    let (data, _) = prepare_examples(&convs, &tmpl, &tok, 128).unwrap();
    let mut model = Decoder::load(&file, WeightMode::Dense, &Device::Cpu).unwrap();
    let lora = LoraSet::init(
        LoraConfig {
            rank: 1,
            alpha: 4.0,
            rslora: true,
            targets: vec![
                (0, Module::DownProj),
                (1, Module::DownProj),
                (1, Module::QProj),
            ],
        },
        &model.cfg,
        3,
        &Device::Cpu,
    )
    .unwrap();
    model.attach_lora(&lora, 1.0);
    Setup {
        _dir: dir,
        model,
        lora,
        data,
    }
}

fn names(lora: &LoraSet) -> Vec<String> {
    lora.adapters
        .iter()
        .flat_map(|a| {
            let p = a.peft_prefix();
            [format!("{p}.lora_A.weight"), format!("{p}.lora_B.weight")]
        })
        .collect()
}

#[test]
fn stop_checkpoint_resume_is_bit_identical() {
    // Uninterrupted.
    let s = setup();
    let mut losses_full = Vec::new();
    let (summary, end) = train(&s.model, &s.lora, &s.data, &cfg(), 0, None, None, |v| {
        losses_full.push(v.metrics.loss);
        Ok(())
    })
    .unwrap();
    assert_eq!((summary.steps, end), (9, TrainEnd::Finished));
    let full = s.lora.to_safetensors().unwrap();

    // Stopped: the flag goes up during step 4, the run stops after step 5 and checkpoints there.
    let s = setup();
    let stop = AtomicBool::new(false);
    let mut store: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut losses = Vec::new();
    let (_, end) = train(
        &s.model,
        &s.lora,
        &s.data,
        &cfg(),
        0,
        None,
        Some(&stop),
        |v| {
            losses.push(v.metrics.loss);
            if v.metrics.step == 4 {
                stop.store(true, Ordering::SeqCst);
            }
            if v.stopping {
                let (files, manifest) = checkpoint::build(
                    v.metrics.step,
                    v.total_steps,
                    v.examples_consumed,
                    11,
                    &names(v.lora.unwrap()),
                    v.opt,
                    vec![(
                        "adapter_model.safetensors".into(),
                        v.lora.unwrap().to_safetensors().unwrap(),
                    )],
                    serde_json::json!({"note": "test"}),
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
    assert_eq!(losses.len(), 5);
    let stopped_adapter = s.lora.to_safetensors().unwrap();
    assert_ne!(stopped_adapter, full, "5 of 9 steps is not the end result");
    drop(s);

    // A corrupted state file is refused.
    let mut bad = store.clone();
    bad.get_mut(STATE).unwrap()[100] ^= 1;
    let err = checkpoint::verify(&bad[MANIFEST], |n| bad.get(n).cloned()).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");

    // Resumed in a fresh setup (as a new process would: same seeds, fresh init).
    let s = setup();
    let (manifest, files) =
        checkpoint::verify(&store[MANIFEST], |n| store.get(n).cloned()).unwrap();
    assert_eq!(
        (manifest.step, manifest.examples_consumed, manifest.adam_t),
        (5, 20, 5)
    );
    let resume = checkpoint::restore(
        &manifest,
        &files[STATE],
        &names(&s.lora),
        &s.lora.vars(),
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(
        s.lora.to_safetensors().unwrap(),
        stopped_adapter,
        "restored in place"
    );
    let (summary, end) = train(
        &s.model,
        &s.lora,
        &s.data,
        &cfg(),
        0,
        Some(resume),
        None,
        |v| {
            losses.push(v.metrics.loss);
            Ok(())
        },
    )
    .unwrap();
    assert_eq!((summary.steps, end), (9, TrainEnd::Finished));
    assert_eq!(losses, losses_full, "every step's loss is the same");
    assert_eq!(
        s.lora.to_safetensors().unwrap(),
        full,
        "final adapter bytes are the same"
    );
}
