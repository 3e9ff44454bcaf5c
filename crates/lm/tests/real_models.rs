//! Tests on the real GGUF models (fetched by `emorg models fetch`, cached under EMORG_MODELS or the
//! user cache dir). Each test prints a notice and returns when its model is absent, so that the crate
//! tests run anywhere; the CI script fetches the models first, so there they always run.

use candle_core::{Device, Tensor};
use emorg_lm::{ChatTemplate, Decoder, GgufFile, GgufTokenizer, Message, OpsMode, WeightMode};
use std::path::PathBuf;

fn model_path(name: &str) -> Option<PathBuf> {
    emorg_lm::testing::cached_model(name)
}

fn last_logits(model: &Decoder, ids: &[u32]) -> Vec<f32> {
    emorg_lm::testing::last_logits(model, ids).unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn smollm2_chat_tokens_are_exact() {
    let Some(path) = model_path("smollm2-135m-instruct") else {
        return;
    };
    let file = GgufFile::open(&path).unwrap();
    let tok = GgufTokenizer::from_gguf(&file).unwrap();
    let tmpl = ChatTemplate::from_gguf(&file, &tok).unwrap();
    let text = tmpl
        .render(&[Message::new("user", "Hello 2025!")], true)
        .unwrap();
    assert_eq!(
        text,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHello 2025!<|im_end|>\n<|im_start|>assistant\n"
    );
    let ids = tok.encode(&text).unwrap();
    // "Hello" is 19556 in SmolLM2's own tokenizer (no prefix space); digits are split one by one.
    assert_eq!(ids[0], 1, "<|im_start|>");
    let user_start = ids
        .iter()
        .position(|&i| i == 19556)
        .expect("Hello -> 19556");
    let digits: Vec<String> = ids[user_start + 1..user_start + 6]
        .iter()
        .map(|i| tok.decode(&[*i]).unwrap())
        .collect();
    assert_eq!(digits, [" ", "2", "0", "2", "5"]);
    assert!(tok.decode(&ids).unwrap().contains("Hello 2025!"));
    // Round trip of ordinary text.
    let s = "Prices rose 12.5% in 2024; café ümlaut 🚀 code: fn main() {}\n\tindent";
    assert_eq!(tok.decode(&tok.encode(s).unwrap()).unwrap(), s);
}

#[test]
fn smollm2_matches_candle_transformers_quantized_llama() {
    let Some(path) = model_path("smollm2-135m-instruct") else {
        return;
    };
    let file = GgufFile::open(&path).unwrap();
    let tok = GgufTokenizer::from_gguf(&file).unwrap();
    let ids = tok
        .encode(
            "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
        )
        .unwrap();

    // Reference: candle-transformers' own quantized llama on the same file.
    let mut reader = std::fs::File::open(&path).unwrap();
    let content = candle_core::quantized::gguf_file::Content::read(&mut reader).unwrap();
    let mut reference = candle_transformers::models::quantized_llama::ModelWeights::from_gguf(
        content,
        &mut reader,
        &Device::Cpu,
    )
    .unwrap();
    let input = Tensor::new(ids.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let ref_logits: Vec<f32> = reference
        .forward(&input, 0)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();

    // Quantized path: Q4_1 weights re-quantized to Q8_0, so only close, not equal.
    let q = Decoder::load(&file, WeightMode::Quantized, &Device::Cpu).unwrap();
    let ql = last_logits(&q, &ids);
    // Dense path (training weights): dequantized Q4_1, the same values candle-transformers uses.
    let d = Decoder::load(&file, WeightMode::Dense, &Device::Cpu).unwrap();
    let dl = last_logits(&d, &ids);
    let argmax = |v: &[f32]| emorg_lm::generate::argmax(v);
    let dense_delta = max_abs_diff(&dl, &ref_logits);
    let quant_delta = max_abs_diff(&ql, &ref_logits);
    eprintln!("smollm2 max|delta logit| dense {dense_delta:.4} quantized(Q8_0) {quant_delta:.4}");
    assert_eq!(argmax(&dl), argmax(&ref_logits));
    assert!(
        dense_delta < 1.5,
        "dense vs candle-transformers: {dense_delta}"
    );
    assert!(
        quant_delta < 1.5,
        "quantized vs candle-transformers: {quant_delta}"
    );
}

#[test]
fn kv_cache_continuation_equals_full_forward() {
    let Some(path) = model_path("smollm2-135m-instruct") else {
        return;
    };
    let file = GgufFile::open(&path).unwrap();
    let tok = GgufTokenizer::from_gguf(&file).unwrap();
    let model = Decoder::load(&file, WeightMode::Dense, &Device::Cpu).unwrap();
    let ids = tok
        .encode("The quick brown fox jumps over the lazy dog because")
        .unwrap();
    let full = last_logits(&model, &ids);
    let mut cache = emorg_lm::KvCache::new(model.cfg.n_layers);
    let split = 5;
    let a = Tensor::new(&ids[..split], &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    model
        .forward_hidden(&a, Some(&mut cache), OpsMode::Infer)
        .unwrap();
    let b = Tensor::new(&ids[split..], &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let h = model
        .forward_hidden(&b, Some(&mut cache), OpsMode::Infer)
        .unwrap();
    let last = h.narrow(1, ids.len() - split - 1, 1).unwrap();
    let cached: Vec<f32> = model
        .logits(&last)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let delta = max_abs_diff(&full, &cached);
    assert!(delta < 1e-3, "cached continuation differs by {delta}");
    // Train-mode ops (differentiable) agree with the fast kernels.
    let t = Tensor::new(ids.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let h = model.forward_hidden(&t, None, OpsMode::Train).unwrap();
    let tl: Vec<f32> = model
        .logits(&h.narrow(1, ids.len() - 1, 1).unwrap())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert!(max_abs_diff(&full, &tl) < 1e-3);
}

#[test]
fn qwen_matches_candle_transformers_quantized_qwen2() {
    let Some(path) = model_path("qwen2.5-coder-1.5b-instruct") else {
        return;
    };
    let file = GgufFile::open(&path).unwrap();
    let tok = GgufTokenizer::from_gguf(&file).unwrap();
    let tmpl = ChatTemplate::from_gguf(&file, &tok).unwrap();
    let text = tmpl
        .render(&[Message::new("user", "Rate 0-100: is water wet?")], true)
        .unwrap();
    assert!(
        text.starts_with("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud."),
        "{text}"
    );
    let ids = tok.encode(&text).unwrap();
    let mut reader = std::fs::File::open(&path).unwrap();
    let content = candle_core::quantized::gguf_file::Content::read(&mut reader).unwrap();
    let mut reference = candle_transformers::models::quantized_qwen2::ModelWeights::from_gguf(
        content,
        &mut reader,
        &Device::Cpu,
    )
    .unwrap();
    let input = Tensor::new(ids.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let ref_logits: Vec<f32> = reference
        .forward(&input, 0)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let q = Decoder::load(&file, WeightMode::Quantized, &Device::Cpu).unwrap();
    let ql = last_logits(&q, &ids);
    let delta = max_abs_diff(&ql, &ref_logits);
    eprintln!("qwen2 max|delta logit| quantized {delta:.5}");
    assert_eq!(
        emorg_lm::generate::argmax(&ql),
        emorg_lm::generate::argmax(&ref_logits)
    );
    assert!(
        delta < 0.05,
        "quantized qwen2 vs candle-transformers: {delta}"
    );
    // Digits are single tokens in Qwen's tokenizer.
    let ids = tok.encode("85").unwrap();
    assert_eq!(ids.len(), 2);
}

// Token ids against llama.cpp and transformers: tests/tokenizer_parity.rs.
