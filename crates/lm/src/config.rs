//! Architecture facts of a model, read from its GGUF metadata (`<arch>.block_count`, ...).

use crate::error::{LmError, Result};
use crate::weights::GgufFile;
use serde::{Deserialize, Serialize};

/// Model families one decoder covers. Their differences are data, not separate code paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Llama, SmolLM2: no biases, llama.cpp stores q/k permuted for interleaved rope.
    Llama,
    /// Qwen2 / Qwen2.5: q/k/v biases, separate lm_head unless tied.
    Qwen2,
    /// Gemma 3: q/k RMS norms, pre- and post- norms around attention and MLP, gelu-tanh MLP,
    /// embeddings scaled by sqrt(d_model), sliding-window local layers (their own rope base)
    /// interleaved with global ones, tied head. llama.cpp's converter stores the norm weights with
    /// Gemma's `1 + w` already applied, so they are used as stored.
    Gemma3,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub family: Family,
    pub n_layers: usize,
    pub d_model: usize,
    pub d_ff: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub rope_base: f64,
    pub rms_eps: f64,
    pub vocab_size: usize,
    pub context_length: usize,
    /// No `output.weight`: the embedding matrix is the head.
    pub tied_embeddings: bool,
    /// Embeddings are multiplied by this before the first layer (gemma: sqrt(d_model)).
    pub embed_scale: Option<f64>,
    /// RMS norms on each head of q and k before rope (gemma3).
    pub qk_norm: bool,
    /// Norms on the attention and MLP outputs before the residual add (gemma3).
    pub post_norms: bool,
    /// gelu (tanh approximation) instead of silu in the gated MLP (gemma).
    pub gelu_mlp: bool,
    /// Local layers attend to at most this many previous positions (gemma3).
    pub sliding_window: Option<usize>,
    /// Layer `l` is global when `(l + 1) % sliding_pattern == 0`, local otherwise.
    pub sliding_pattern: usize,
    /// Rope base of the local layers.
    pub rope_base_local: f64,
}

impl ModelConfig {
    /// Whether layer `l` uses the sliding window (and the local rope base).
    pub fn is_local_layer(&self, l: usize) -> bool {
        self.sliding_window.is_some() && !(l + 1).is_multiple_of(self.sliding_pattern.max(1))
    }
}

impl ModelConfig {
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        let arch = file.meta_str("general.architecture")?;
        let family = match arch.as_str() {
            "llama" => Family::Llama,
            "qwen2" => Family::Qwen2,
            "gemma3" => Family::Gemma3,
            other => return Err(LmError::UnsupportedArch(other.to_string())),
        };
        let key = |k: &str| format!("{arch}.{k}");
        let bad = |k: &str, reason: String| LmError::Metadata {
            path: file.path.clone(),
            key: key(k),
            reason,
        };
        let gemma = family == Family::Gemma3;
        let d_model = file.meta_u64(&key("embedding_length"))? as usize;
        let n_heads = file.meta_u64(&key("attention.head_count"))? as usize;
        if n_heads == 0 {
            return Err(bad(
                "attention.head_count",
                "is 0; a model has at least one attention head".into(),
            ));
        }
        // Checked before anything is sized by it: the decoder reserves one entry per layer.
        let n_layers = file.meta_u64(&key("block_count"))?;
        if n_layers == 0 {
            return Err(bad(
                "block_count",
                "is 0; a model has at least one layer".into(),
            ));
        }
        if !file.has_tensor(&format!("blk.{}.attn_norm.weight", n_layers - 1)) {
            return Err(bad(
                "block_count",
                format!(
                    "is {n_layers}, but the file has no tensor `blk.{}.attn_norm.weight`",
                    n_layers - 1
                ),
            ));
        }
        let n_kv_heads = file
            .meta_u64(&key("attention.head_count_kv"))
            .unwrap_or(n_heads as u64) as usize;
        if n_kv_heads == 0 || !n_heads.is_multiple_of(n_kv_heads) {
            return Err(bad(
                "attention.head_count_kv",
                format!("is {n_kv_heads}; it must divide the {n_heads} attention heads"),
            ));
        }
        let head_dim_key = "attention.key_length";
        let head_dim = file
            .meta_u64(&key(head_dim_key))
            .map(|v| v as usize)
            .unwrap_or(d_model / n_heads);
        let d_ff = file.meta_u64(&key("feed_forward_length"))? as usize;
        // The sizes the decoder allocates from (rope tables from the head size, activations from
        // the widths) must agree with the first layer's tensors, whose sizes the file bounds.
        let head_dim_key = if file.meta(&key(head_dim_key)).is_ok() {
            head_dim_key
        } else {
            "attention.head_count"
        };
        for (tensor, rows, rows_key) in [
            ("attn_q", n_heads.checked_mul(head_dim), head_dim_key),
            (
                "attn_k",
                n_kv_heads.checked_mul(head_dim),
                "attention.head_count_kv",
            ),
            ("ffn_up", Some(d_ff), "feed_forward_length"),
        ] {
            let name = format!("blk.0.{tensor}.weight");
            let Some(dims) = file.tensor_dims(&name) else {
                return Err(LmError::Tensor {
                    path: file.path.clone(),
                    name,
                    reason: "missing".into(),
                });
            };
            let &[r, c] = dims else {
                return Err(LmError::Tensor {
                    path: file.path.clone(),
                    name,
                    reason: format!("shape {dims:?}, expected a matrix"),
                });
            };
            if c != d_model {
                return Err(bad(
                    "embedding_length",
                    format!("is {d_model}, but tensor `{name}` has {c} columns"),
                ));
            }
            if rows != Some(r) {
                return Err(bad(
                    rows_key,
                    format!(
                        "gives {} rows for tensor `{name}` ({n_heads} heads, {n_kv_heads} KV heads, head size {head_dim}, FFN width {d_ff}), but it has {r}",
                        rows.map_or("too many".to_string(), |n| n.to_string())
                    ),
                ));
            }
        }
        let vocab_size = match file.meta_u64(&key("vocab_size")) {
            Ok(v) => v as usize,
            Err(_) => file.meta_array_len("tokenizer.ggml.tokens")?,
        };
        Ok(ModelConfig {
            family,
            n_layers: n_layers as usize,
            d_model,
            d_ff,
            n_heads,
            n_kv_heads,
            head_dim,
            rope_base: file.meta_f64(&key("rope.freq_base")).unwrap_or(10_000.0),
            rms_eps: file.meta_f64(&key("attention.layer_norm_rms_epsilon"))?,
            vocab_size,
            context_length: file.meta_u64(&key("context_length")).unwrap_or(4096) as usize,
            tied_embeddings: !file.has_tensor("output.weight"),
            embed_scale: gemma.then(|| (d_model as f64).sqrt()),
            qk_norm: gemma,
            post_norms: gemma,
            gelu_mlp: gemma,
            sliding_window: if gemma {
                file.meta_u64(&key("attention.sliding_window"))
                    .ok()
                    .map(|w| w as usize)
            } else {
                None
            },
            sliding_pattern: file
                .meta_u64(&key("attention.sliding_window_type"))
                .map(|v| v as usize)
                .unwrap_or(6),
            rope_base_local: file
                .meta_f64(&key("rope.local_freq_base"))
                .unwrap_or(10_000.0),
        })
    }

    /// Input and output width of a projection module.
    pub fn module_dims(&self, module: crate::lora::Module) -> (usize, usize) {
        use crate::lora::Module::*;
        let q = self.n_heads * self.head_dim;
        let kv = self.n_kv_heads * self.head_dim;
        match module {
            QProj => (self.d_model, q),
            KProj | VProj => (self.d_model, kv),
            OProj => (q, self.d_model),
            GateProj | UpProj => (self.d_model, self.d_ff),
            DownProj => (self.d_ff, self.d_model),
        }
    }
}
