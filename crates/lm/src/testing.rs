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

/// Copies the GGUF at `src` to `dst` with `meta` added (or replacing keys of the same name) and
/// the f32 `tensors` added: a model with rope scaling, say, from a plain tiny one.
pub fn rewrite_gguf(
    src: &Path,
    dst: &Path,
    meta: &[(String, Value)],
    tensors: &[(String, Tensor)],
) -> crate::Result<()> {
    let file = crate::weights::GgufFile::open(src)?;
    let mut md: Vec<(String, Value)> = file
        .content
        .metadata
        .iter()
        .filter(|(k, _)| !meta.iter().any(|(m, _)| m == *k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .chain(meta.iter().cloned())
        .collect();
    md.sort_by(|a, b| a.0.cmp(&b.0));
    let mut names: Vec<&String> = file.content.tensor_infos.keys().collect();
    names.sort();
    let mut ts: Vec<(String, QTensor)> = Vec::new();
    for name in names {
        ts.push((name.clone(), file.qtensor(name)?));
    }
    for (name, t) in tensors {
        ts.push((
            name.clone(),
            QTensor::quantize(t, candle_core::quantized::GgmlDType::F32)?,
        ));
    }
    let mut out = std::fs::File::create(dst).map_err(|source| crate::LmError::Io {
        path: dst.to_path_buf(),
        source,
    })?;
    let md: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = ts.iter().map(|(k, v)| (k.as_str(), v)).collect();
    candle_core::quantized::gguf_file::write(&mut out, &md, &ts)?;
    Ok(())
}

fn ones(d: usize) -> candle_core::Result<QTensor> {
    QTensor::quantize(
        &Tensor::ones(d, candle_core::DType::F32, &Device::Cpu)?,
        candle_core::quantized::GgmlDType::F32,
    )
}

/// Write the llama, qwen2 or gemma3 GGUF at `gguf` (tiny or real; quantized weights are dequantized)
/// as an HF checkpoint directory (f32 `model.safetensors`, `config.json`, `tokenizer.json`,
/// `tokenizer_config.json`), the way transformers would lay out the same model: HF tensor names,
/// llama q/k rows un-permuted, Gemma's norms stored as w where GGUF stores 1 + w, the head tied
/// unless `output.weight` exists. For tests that one model gives the same results in both formats
/// and in third-party implementations that read HF checkpoints (candle-transformers' dense models).
pub fn write_hf_checkpoint_from_gguf(gguf: &Path, dir: &Path) -> crate::Result<()> {
    use crate::config::Family;
    use crate::weights::GgufFile;
    let file = GgufFile::open(gguf)?;
    let cfg = crate::ModelConfig::from_gguf(&file)?;
    let model_type = match cfg.family {
        Family::Llama => "llama",
        Family::Qwen2 => "qwen2",
        Family::Gemma3 => "gemma3_text",
    };
    std::fs::create_dir_all(dir).map_err(|source| crate::LmError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut names: Vec<&String> = file.content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors = Vec::new();
    for name in names {
        // Rope scaling is config, not a weight, in a checkpoint directory (written below).
        if name == "rope_freqs.weight" {
            continue;
        }
        let mut t = file.dense(name, &Device::Cpu)?;
        if cfg.family == Family::Llama {
            if name.ends_with("attn_q.weight") {
                t = crate::weights::unpermute(&t, cfg.n_heads)?;
            } else if name.ends_with("attn_k.weight") {
                t = crate::weights::unpermute(&t, cfg.n_kv_heads)?;
            }
        }
        // llama.cpp's converter adds 1 to every Gemma norm weight; HF stores w for (1 + w).
        if cfg.family == Family::Gemma3 && name.ends_with("norm.weight") {
            t = (t - 1.0)?;
        }
        let hf = crate::hf::hf_tensor_name(name, cfg.family, "model.").ok_or_else(|| {
            crate::LmError::Tensor {
                path: gguf.to_path_buf(),
                name: name.clone(),
                reason: "no Hugging Face name".into(),
            }
        })?;
        tensors.push((hf, t));
    }
    candle_core::safetensors::save(
        &tensors
            .into_iter()
            .collect::<std::collections::HashMap<_, _>>(),
        dir.join("model.safetensors"),
    )?;
    let tokenizer = crate::GgufTokenizer::from_gguf(&file)?;
    let piece = |id: u32| tokenizer.inner.id_to_token(id).unwrap_or_default();
    let write = |name: &str, json: serde_json::Value| {
        std::fs::write(dir.join(name), json.to_string()).map_err(|source| crate::LmError::Io {
            path: dir.join(name),
            source,
        })
    };
    let mut config = serde_json::json!({
            "model_type": model_type,
            "hidden_size": cfg.d_model,
            "intermediate_size": cfg.d_ff,
            "num_hidden_layers": cfg.n_layers,
            "num_attention_heads": cfg.n_heads,
            "num_key_value_heads": cfg.n_kv_heads,
            "rms_norm_eps": cfg.rms_eps,
            "rope_theta": cfg.rope_base,
            "max_position_embeddings": cfg.context_length,
            "vocab_size": cfg.vocab_size,
            "tie_word_embeddings": cfg.tied_embeddings,
            "eos_token_id": tokenizer.eos_id,
            "bos_token_id": tokenizer.bos_id,
    });
    let family_keys = match cfg.family {
        Family::Llama => serde_json::json!({ "hidden_act": "silu" }),
        Family::Qwen2 => serde_json::json!({
            "hidden_act": "silu",
            "use_sliding_window": false,
            "sliding_window": cfg.context_length,
            "max_window_layers": cfg.n_layers,
        }),
        Family::Gemma3 => serde_json::json!({
            "hidden_activation": "gelu_pytorch_tanh",
            "head_dim": cfg.head_dim,
            "query_pre_attn_scalar": cfg.head_dim,
            "attention_bias": false,
            "sliding_window": cfg.sliding_window,
            "sliding_window_pattern": cfg.sliding_pattern,
            "rope_local_base_freq": cfg.rope_base_local,
        }),
    };
    config
        .as_object_mut()
        .expect("object")
        .extend(family_keys.as_object().expect("object").clone());
    let scaling = match &cfg.rope_scaling {
        None => None,
        Some(crate::RopeScaling::Linear { factor }) => {
            Some(serde_json::json!({ "rope_type": "linear", "factor": factor }))
        }
        Some(crate::RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_context,
        }) => Some(serde_json::json!({
            "rope_type": "llama3",
            "factor": factor,
            "low_freq_factor": low_freq_factor,
            "high_freq_factor": high_freq_factor,
            "original_max_position_embeddings": original_context,
        })),
        // llama.cpp's per-frequency factors have no transformers config of their own.
        Some(crate::RopeScaling::FreqFactors { .. }) => {
            return Err(crate::LmError::File {
                path: gguf.to_path_buf(),
                reason: "its rope_freqs tensor has no Hugging Face config equivalent; write `rope_scaling` by hand".into(),
            });
        }
    };
    if let Some(scaling) = scaling {
        config["rope_scaling"] = scaling;
    }
    write("config.json", config)?;
    let template = file.meta_str("tokenizer.chat_template").ok();
    write(
        "tokenizer_config.json",
        serde_json::json!({
            "eos_token": piece(tokenizer.eos_id),
            "bos_token": tokenizer.bos_id.map(piece),
            "add_bos_token": tokenizer.add_bos,
            "chat_template": template,
        }),
    )?;
    tokenizer
        .inner
        .save(dir.join("tokenizer.json"), false)
        .map_err(|e| crate::LmError::Tokenizer(e.to_string()))?;
    Ok(())
}

/// f32 logits at the last position of `ids` (one sequence), through the inference ops: what the
/// parity tests compare.
pub fn last_logits(model: &crate::Decoder, ids: &[u32]) -> crate::Result<Vec<f32>> {
    let t = Tensor::new(ids, model.device())?.unsqueeze(0)?;
    let h = model.forward_hidden(&t, None, crate::OpsMode::Infer)?;
    let last = h.narrow(1, ids.len() - 1, 1)?;
    Ok(model
        .logits(&last)?
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1()?)
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
