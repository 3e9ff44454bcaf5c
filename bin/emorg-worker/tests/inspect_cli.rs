//! `emorg-worker tokenize` and `logits` on the real SmolLM2 GGUF (skipped with a message when the
//! model cache is empty): ids round-trip, the chat template is applied, last-position logits equal
//! the last row of all positions, .npy output reads back, and a PEFT adapter directory is applied
//! (zero B: identical logits; non-zero B: different logits).

use std::path::PathBuf;
use std::process::Command;

use emorg_lm::candle_core::{Device, Tensor};
use emorg_lm::{GgufFile, LoraConfig, LoraSet, ModelConfig, Module};

const WORKER: &str = env!("CARGO_BIN_EXE_emorg-worker");

fn smollm2() -> Option<PathBuf> {
    emorg_lm::testing::cached_model("smollm2-135m-instruct")
}

fn run(args: &[&str]) -> serde_json::Value {
    let out = Command::new(WORKER).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn logits_of(v: &serde_json::Value) -> Vec<Vec<f64>> {
    v["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect()
}

#[test]
fn tokenize_round_trips_and_applies_the_chat_template() {
    let Some(model) = smollm2() else { return };
    let m = model.to_str().unwrap();
    let text = "Héllo wörld 12345 🙂  code();";
    let v = run(&["tokenize", "--model", m, "--text", text]);
    assert_eq!(v["decoded"], text);
    assert_eq!(
        v["ids"].as_array().unwrap().len(),
        v["pieces"].as_array().unwrap().len()
    );
    let v = run(&[
        "tokenize",
        "--model",
        m,
        "--chat",
        r#"[{"role":"user","content":"Hi"}]"#,
    ]);
    let rendered = v["text"].as_str().unwrap();
    assert!(
        rendered.contains("<|im_start|>user\nHi<|im_end|>"),
        "{rendered}"
    );
    assert!(rendered.ends_with("<|im_start|>assistant\n"), "{rendered}");
}

#[test]
fn logits_positions_npy_and_adapters_agree() {
    let Some(model) = smollm2() else { return };
    let m = model.to_str().unwrap();
    let text = "The capital of France is";
    let last = logits_of(&run(&["logits", "--model", m, "--text", text]));
    let all = logits_of(&run(&[
        "logits",
        "--model",
        m,
        "--text",
        text,
        "--all-positions",
    ]));
    assert_eq!(last.len(), 1);
    assert!(all.len() > 1);
    let vocab = last[0].len();
    let diff = last[0]
        .iter()
        .zip(all.last().unwrap())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(diff < 1e-3, "last position differs by {diff}");

    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("logits.npy");
    run(&[
        "logits",
        "--model",
        m,
        "--text",
        text,
        "--all-positions",
        "--npy",
        npy.to_str().unwrap(),
    ]);
    let t = Tensor::read_npy(&npy).unwrap();
    assert_eq!(t.dims(), &[all.len(), vocab]);

    // A PEFT adapter directory: rank 2 on down_proj of layers 3 and 4.
    let gguf = GgufFile::open(&model).unwrap();
    let cfg = ModelConfig::from_gguf(&gguf).unwrap();
    let lora = LoraConfig {
        rank: 2,
        alpha: 4.0,
        rslora: false,
        targets: vec![(3, Module::DownProj), (4, Module::DownProj)],
    };
    let set = LoraSet::init(lora, &cfg, 7, &Device::Cpu).unwrap();
    let write = |set: &LoraSet, name: &str| {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("adapter_model.safetensors"),
            set.to_safetensors().unwrap(),
        )
        .unwrap();
        std::fs::write(
            d.join("adapter_config.json"),
            set.peft_config_json("smollm2").to_string(),
        )
        .unwrap();
        d
    };
    let zero = write(&set, "zero");
    let with_zero = logits_of(&run(&[
        "logits",
        "--model",
        m,
        "--text",
        text,
        "--adapter",
        zero.to_str().unwrap(),
    ]));
    assert_eq!(
        with_zero, last,
        "an adapter with B = 0 must not change the logits"
    );
    for v in set.vars() {
        if v.dims()[1] == 2 {
            // B: (out, rank); A: (rank, in) has dims[0] == 2 instead.
            v.set(&(v.ones_like().unwrap() * 0.05).unwrap()).unwrap();
        }
    }
    let moved = write(&set, "moved");
    let with_moved = logits_of(&run(&[
        "logits",
        "--model",
        m,
        "--text",
        text,
        "--adapter",
        moved.to_str().unwrap(),
    ]));
    let change = with_moved[0]
        .iter()
        .zip(&last[0])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        change > 1e-2,
        "a non-zero adapter changed the logits by only {change}"
    );
}

#[test]
fn logits_of_an_empty_text_is_a_clear_error_not_a_panic() {
    let Some(model) = smollm2() else { return };
    let out = Command::new(WORKER)
        .args(["logits", "--model", model.to_str().unwrap(), "--text", ""])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("encodes to no tokens"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
