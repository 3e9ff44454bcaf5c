//! PEFT interop with the real library, both directions, on Llama, Qwen2 and Gemma 3 checkpoints
//! saved by transformers (crates/lm/tests/hf_checkpoint/make_checkpoints.py: small random models,
//! f32, f16 with biases and an untied head, f32 Gemma 3):
//! - an adapter written by Python PEFT (`PeftModel.save_pretrained`, rank 4 rsLoRA on all seven
//!   modules of two layers, random A and B) loads in `emorg-worker logits --adapter` and gives
//!   PEFT's logits;
//! - an adapter written by emorg (`LoraSet::to_safetensors` and `peft_config_json`, the functions
//!   the train stage writes `adapter/` with) loads in `PeftModel.from_pretrained` and gives
//!   emorg's logits.
//!
//! Both sides compute in float32 from the same stored weights, so the bound is the f32 one of
//! crates/lm/tests/hf_checkpoint.rs (1e-3; measured deltas are in docs/ARCHITECTURE.md), against
//! adapters that move the logits by far more (asserted). Needs EMORG_TEST_PY (the reference venv:
//! `eval $(infra/py-reference.sh env)`); skips with the reason otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

use emorg_lm::candle_core::{Device, Tensor};
use emorg_lm::{LoraConfig, LoraSet, ModelFiles, Module};

const WORKER: &str = env!("CARGO_BIN_EXE_emorg-worker");
const TOLERANCE: f64 = 1e-3;
const BASES: &[&str] = &["llama-f32-sharded", "qwen2-f16-untied", "gemma3-f32"];

fn python() -> Option<PathBuf> {
    let py = std::env::var_os("EMORG_TEST_PY").map(PathBuf::from);
    if py.is_none() {
        eprintln!(
            "skipped: EMORG_TEST_PY is unset (the reference venv's python: `eval $(infra/py-reference.sh env)`)"
        );
    }
    py
}

fn script(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn py(py: &Path, args: &[&Path]) {
    let out = Command::new(py).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed:\n{}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[derive(serde::Deserialize)]
struct Reference {
    text: String,
    ids: Vec<u32>,
    logits: Vec<Vec<f64>>,
    #[serde(default)]
    lora_b_tensors: usize,
}

fn read_reference(path: &Path) -> Reference {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// emorg's ids and all-position logits of `text` on `model`, with `adapter` when given.
fn emorg_logits(model: &Path, adapter: Option<&Path>, text: &str) -> (Vec<u32>, Vec<Vec<f64>>) {
    let mut cmd = Command::new(WORKER);
    cmd.args(["logits", "--model"])
        .arg(model)
        .args(["--text", text, "--all-positions"]);
    if let Some(a) = adapter {
        cmd.arg("--adapter").arg(a);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids = serde_json::from_value(v["ids"].clone()).unwrap();
    let logits = serde_json::from_value(v["logits"].clone()).unwrap();
    (ids, logits)
}

fn max_abs_diff(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    assert_eq!(a.len(), b.len(), "positions");
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len(), "vocabulary");
            x.iter().zip(y).map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f64::max)
}

/// An emorg adapter on `base` with random A and B: rank 2, alpha 6, on q/v of layer 0, every MLP
/// module of the last layer and o_proj of layer 1, written as the train stage writes it.
fn write_emorg_adapter(base: &Path, dir: &Path, seed: u64) -> usize {
    let files = ModelFiles::open(base).unwrap();
    let last = files.config.n_layers - 1;
    let mut targets = vec![(0, Module::QProj), (0, Module::VProj), (1, Module::OProj)];
    targets.extend([Module::GateProj, Module::UpProj, Module::DownProj].map(|m| (last, m)));
    let cfg = LoraConfig {
        rank: 2,
        alpha: 6.0,
        rslora: false,
        targets,
    };
    let set = LoraSet::init(cfg, &files.config, seed, &Device::Cpu).unwrap();
    // B away from zero, a fixed function of the seed (A is the seeded init).
    for (i, ad) in set.adapters.iter().enumerate() {
        let n = ad.b.elem_count();
        let values: Vec<f32> = (0..n)
            .map(|j| 0.3 * ((j as f32 + 1.0) * 0.7 + (seed as f32) + i as f32).sin())
            .collect();
        ad.b.set(&Tensor::from_vec(values, ad.b.shape(), &Device::Cpu).unwrap())
            .unwrap();
    }
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("adapter_model.safetensors"),
        set.to_safetensors().unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("adapter_config.json"),
        serde_json::to_vec_pretty(&set.peft_config_json(&base.display().to_string())).unwrap(),
    )
    .unwrap();
    set.adapters.len()
}

#[test]
fn peft_and_emorg_load_each_others_adapters_with_the_same_logits() {
    let Some(python) = python() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    py(
        &python,
        &[
            &script("../../crates/lm/tests/hf_checkpoint/make_checkpoints.py"),
            &models,
        ],
    );
    let peft_script = script("tests/peft_interop/peft_reference.py");
    for (i, name) in BASES.iter().enumerate() {
        let base = models.join(name);

        // PEFT -> emorg.
        let by_peft = tmp.path().join(format!("peft-{name}"));
        py(
            &python,
            &[
                &peft_script,
                Path::new("write"),
                &base,
                &by_peft,
                Path::new(&format!("{}", 11 + i)),
            ],
        );
        assert!(by_peft.join("adapter_model.safetensors").is_file());
        let r = read_reference(&by_peft.join("reference.json"));
        let (ids, with) = emorg_logits(&base, Some(&by_peft), &r.text);
        assert_eq!(ids, r.ids, "{name}: token ids");
        let (_, without) = emorg_logits(&base, None, &r.text);
        let effect = max_abs_diff(&with, &without);
        let delta = max_abs_diff(&with, &r.logits);
        eprintln!(
            "{name}: PEFT adapter in emorg: max |delta logit| {delta:.2e} (adapter effect {effect:.2})"
        );
        assert!(
            effect > 0.1,
            "{name}: the PEFT adapter changed nothing in emorg"
        );
        assert!(
            delta < TOLERANCE,
            "{name}: PEFT -> emorg max |delta| {delta}"
        );

        // emorg -> PEFT.
        let by_emorg = tmp.path().join(format!("emorg-{name}"));
        let n = write_emorg_adapter(&base, &by_emorg, 21 + i as u64);
        let out = tmp.path().join(format!("emorg-{name}.json"));
        py(
            &python,
            &[&peft_script, Path::new("load"), &base, &by_emorg, &out],
        );
        let r = read_reference(&out);
        assert_eq!(
            r.lora_b_tensors, n,
            "{name}: PEFT attached every emorg adapter"
        );
        let (ids, with) = emorg_logits(&base, Some(&by_emorg), &r.text);
        assert_eq!(ids, r.ids, "{name}: token ids");
        let effect = max_abs_diff(&with, &without);
        let delta = max_abs_diff(&with, &r.logits);
        eprintln!(
            "{name}: emorg adapter in PEFT: max |delta logit| {delta:.2e} (adapter effect {effect:.2})"
        );
        assert!(effect > 0.1, "{name}: the emorg adapter changed nothing");
        assert!(
            delta < TOLERANCE,
            "{name}: emorg -> PEFT max |delta| {delta}"
        );
    }
}
