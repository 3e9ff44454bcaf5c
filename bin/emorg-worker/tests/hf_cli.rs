//! `emorg-worker tokenize` and `logits` take a Hugging Face checkpoint directory for `--model`: the
//! same tiny model written as a GGUF and as an HF directory (HF names, un-permuted llama q/k, f32
//! safetensors, tokenizer.json) gives the same ids, chat rendering and logits. Needs no Python and
//! no model cache; transformers itself is the reference in crates/lm/tests/hf_checkpoint.rs.

use std::path::Path;
use std::process::Command;

use emorg_lm::testing::{TinySpec, write_hf_checkpoint_from_gguf, write_tiny_gguf};

const WORKER: &str = env!("CARGO_BIN_EXE_emorg-worker");

fn run(args: &[&str]) -> serde_json::Value {
    let out = Command::new(WORKER).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn logits(model: &Path, text: &str) -> (serde_json::Value, Vec<f64>) {
    let args = [
        "logits",
        "--model",
        model.to_str().unwrap(),
        "--text",
        text,
        "--all-positions",
    ];
    let v = run(&args);
    let flat = v["logits"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()))
        .collect();
    (v["ids"].clone(), flat)
}

#[test]
fn hf_directory_and_gguf_of_one_model_agree() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, spec) in [
        ("llama", TinySpec::default()),
        (
            "qwen2",
            TinySpec {
                qwen2: true,
                seed: 3,
                ..TinySpec::default()
            },
        ),
    ] {
        let gguf = tmp.path().join(format!("{name}.gguf"));
        let dir = tmp.path().join(name);
        write_tiny_gguf(&gguf, spec).unwrap();
        write_hf_checkpoint_from_gguf(&gguf, &dir).unwrap();
        let text = "Héllo <|im_start|>wörld 12345";
        let chat = r#"[{"role":"user","content":"hi"}]"#;
        for args in [["--text", text], ["--chat", chat]] {
            let g = run(&[
                "tokenize",
                "--model",
                gguf.to_str().unwrap(),
                args[0],
                args[1],
            ]);
            let h = run(&[
                "tokenize",
                "--model",
                dir.to_str().unwrap(),
                args[0],
                args[1],
            ]);
            assert_eq!(g, h, "{name}: tokenize {args:?}");
        }
        // Dense weights only: the quantized modes differ by design (a GGUF keeps its f32 tensors,
        // an HF checkpoint is quantized to Q8_0 at load).
        let (gids, g) = logits(&gguf, text);
        let (hids, h) = logits(&dir, text);
        assert_eq!(gids, hids);
        assert_eq!(g.len(), h.len());
        let max = g
            .iter()
            .zip(&h)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(max < 1e-5, "{name}: max |delta logit| {max}");
    }
}

#[test]
fn a_directory_without_config_json_is_refused_with_what_a_model_is() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(WORKER)
        .args([
            "tokenize",
            "--model",
            tmp.path().to_str().unwrap(),
            "--text",
            "hi",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("a directory without config.json") && err.contains("Hugging Face checkpoint"),
        "{err}"
    );
}
