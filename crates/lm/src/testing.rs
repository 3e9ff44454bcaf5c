//! Tiny GGUF models written on the fly, for tests that need a real file but not real weights.
//!
//! The tokenizer is byte-level BPE with no merges (every byte is one token) plus ChatML specials,
//! so any text round-trips.

use candle_core::quantized::{QTensor, gguf_file::Value};
use candle_core::{Device, Tensor};
use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};
use std::path::Path;

/// Sizes of a tiny model.
#[derive(Debug, Clone, Copy)]
pub struct TinySpec {
    pub qwen2: bool,
    pub n_layers: usize,
    pub d_model: usize,
    pub d_ff: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub seed: u64,
}

impl Default for TinySpec {
    fn default() -> Self {
        TinySpec {
            qwen2: false,
            n_layers: 2,
            d_model: 32,
            d_ff: 64,
            n_heads: 4,
            n_kv_heads: 2,
            seed: 0,
        }
    }
}

/// GPT-2's byte-to-unicode table: printable bytes map to themselves, the rest to U+0100 onwards.
pub fn byte_level_alphabet() -> Vec<String> {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut chars: Vec<u32> = printable.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + n);
            n += 1;
        }
    }
    let mut table: Vec<(u32, u32)> = printable.into_iter().zip(chars).collect();
    table.sort();
    table
        .into_iter()
        .map(|(_, c)| char::from_u32(c).expect("valid char").to_string())
        .collect()
}

/// Write a tiny llama- or qwen2-architecture GGUF with random f32 weights.
pub fn write_tiny_gguf(path: &Path, spec: TinySpec) -> candle_core::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mut tokens = byte_level_alphabet();
    tokens.extend([
        "<|im_start|>".to_string(),
        "<|im_end|>".to_string(),
        "<|endoftext|>".to_string(),
    ]);
    let vocab = tokens.len();
    let types: Vec<Value> = (0..vocab)
        .map(|i| Value::I32(if i >= 256 { 3 } else { 1 }))
        .collect();
    let arch = if spec.qwen2 { "qwen2" } else { "llama" };
    let hd = spec.d_model / spec.n_heads;
    let mut metadata: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String(arch.into())),
        (
            format!("{arch}.block_count"),
            Value::U32(spec.n_layers as u32),
        ),
        (
            format!("{arch}.embedding_length"),
            Value::U32(spec.d_model as u32),
        ),
        (
            format!("{arch}.feed_forward_length"),
            Value::U32(spec.d_ff as u32),
        ),
        (
            format!("{arch}.attention.head_count"),
            Value::U32(spec.n_heads as u32),
        ),
        (
            format!("{arch}.attention.head_count_kv"),
            Value::U32(spec.n_kv_heads as u32),
        ),
        (format!("{arch}.rope.freq_base"), Value::F32(10000.0)),
        (
            format!("{arch}.attention.layer_norm_rms_epsilon"),
            Value::F32(1e-5),
        ),
        (format!("{arch}.context_length"), Value::U32(512)),
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), Value::String("default".into())),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(tokens.iter().map(|t| Value::String(t.clone())).collect()),
        ),
        ("tokenizer.ggml.merges".into(), Value::Array(vec![])),
        ("tokenizer.ggml.token_type".into(), Value::Array(types)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(257)),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(258)),
    ];
    metadata.sort_by(|a, b| a.0.cmp(&b.0));
    let mut rand_t = |shape: &[usize], scale: f32| -> candle_core::Result<QTensor> {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| rng.random_range(-1.0f32..1.0) * scale)
            .collect();
        QTensor::quantize(
            &Tensor::from_vec(v, shape, &Device::Cpu)?,
            candle_core::quantized::GgmlDType::F32,
        )
    };
    let (d, f, kv) = (spec.d_model, spec.d_ff, spec.n_kv_heads * hd);
    let mut tensors: Vec<(String, QTensor)> = vec![
        ("token_embd.weight".into(), rand_t(&[vocab, d], 0.5)?),
        (
            "output_norm.weight".into(),
            rand_t(&[d], 0.1).and_then(|_| ones(d))?,
        ),
    ];
    if spec.qwen2 {
        tensors.push(("output.weight".into(), rand_t(&[vocab, d], 0.3)?));
    }
    let s = 1.0 / (d as f32).sqrt();
    for l in 0..spec.n_layers {
        let p = |n: &str| format!("blk.{l}.{n}");
        tensors.push((p("attn_norm.weight"), ones(d)?));
        tensors.push((p("ffn_norm.weight"), ones(d)?));
        tensors.push((p("attn_q.weight"), rand_t(&[d, d], s)?));
        tensors.push((p("attn_k.weight"), rand_t(&[kv, d], s)?));
        tensors.push((p("attn_v.weight"), rand_t(&[kv, d], s)?));
        tensors.push((p("attn_output.weight"), rand_t(&[d, d], s)?));
        tensors.push((p("ffn_gate.weight"), rand_t(&[f, d], s)?));
        tensors.push((p("ffn_up.weight"), rand_t(&[f, d], s)?));
        tensors.push((
            p("ffn_down.weight"),
            rand_t(&[d, f], 1.0 / (f as f32).sqrt())?,
        ));
        if spec.qwen2 {
            tensors.push((p("attn_q.bias"), rand_t(&[d], 0.1)?));
            tensors.push((p("attn_k.bias"), rand_t(&[kv], 0.1)?));
            tensors.push((p("attn_v.bias"), rand_t(&[kv], 0.1)?));
        }
    }
    let mut file = std::fs::File::create(path)?;
    let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    candle_core::quantized::gguf_file::write(&mut file, &md, &ts)
}

fn ones(d: usize) -> candle_core::Result<QTensor> {
    QTensor::quantize(
        &Tensor::ones(d, candle_core::DType::F32, &Device::Cpu)?,
        candle_core::quantized::GgmlDType::F32,
    )
}

/// A real model from the model cache (`EMORG_MODELS`, else `~/.cache/emorg/models`), for tests that
/// need real weights. `None`, with a notice naming the fetch command, when it is absent: the CI
/// script fetches every model first, so there these tests always run.
pub fn cached_model(name: &str) -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("EMORG_MODELS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| {
                    std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default())
                        .join(".cache")
                });
            cache.join("emorg").join("models")
        });
    let path = dir.join(format!("{name}.gguf"));
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "skipping: {} not present (run `emorg models fetch {name}`)",
            path.display()
        );
        None
    }
}
