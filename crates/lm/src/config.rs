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
    /// Frequency scaling of the global layers' rope (local, sliding-window layers are never
    /// scaled, as in transformers and llama.cpp); `None` for plain rope.
    #[serde(default)]
    pub rope_scaling: Option<RopeScaling>,
}

/// How a model stretches its rope beyond the context it was trained at. Only these are
/// implemented; a model asking for another kind is refused by name, never run unscaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum RopeScaling {
    /// Every frequency divided by `factor` (positions interpolated): transformers' `linear`,
    /// llama.cpp's `rope.scaling.type = linear` (Gemma 3 >= 4B's global layers, factor 8).
    Linear { factor: f64 },
    /// Llama 3.1's rescaling: low frequencies (wavelength above `original_context /
    /// low_freq_factor`) divided by `factor`, high ones (below `original_context /
    /// high_freq_factor`) kept, the band between interpolated smoothly.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_context: usize,
    },
    /// llama.cpp's `rope_freqs` tensor (what its converter writes for llama3 scaling): frequency
    /// `i` divided by `factors[i]`.
    FreqFactors { factors: Vec<f32> },
}

/// The names of the rope scaling kinds this decoder implements, for error messages.
pub const ROPE_SCALINGS: &str = "linear, llama3 (and llama.cpp's rope_freqs tensor)";

impl RopeScaling {
    /// `inv` (one inverse frequency per pair of head dimensions, `1 / base^(2i/d)`) scaled.
    /// `FreqFactors` has one factor per frequency (checked when the file is read).
    pub fn apply(&self, inv: &mut [f32]) {
        match self {
            RopeScaling::Linear { factor } => {
                for f in inv.iter_mut() {
                    *f /= *factor as f32;
                }
            }
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_context,
            } => {
                // transformers' `_compute_llama3_parameters`, in f32 as it computes.
                let (factor, low, high) = (
                    *factor as f32,
                    *low_freq_factor as f32,
                    *high_freq_factor as f32,
                );
                let old = *original_context as f32;
                let (low_wavelen, high_wavelen) = (old / low, old / high);
                for f in inv.iter_mut() {
                    let wavelen = 2.0 * std::f32::consts::PI / *f;
                    if wavelen > low_wavelen {
                        *f /= factor;
                    } else if wavelen >= high_wavelen {
                        let smooth = (old / wavelen - low) / (high - low);
                        *f = (1.0 - smooth) * *f / factor + smooth * *f;
                    }
                }
            }
            RopeScaling::FreqFactors { factors } => {
                for (f, k) in inv.iter_mut().zip(factors) {
                    *f /= *k;
                }
            }
        }
    }
}

impl ModelConfig {
    /// Whether layer `l` uses the sliding window (and the local rope base).
    pub fn is_local_layer(&self, l: usize) -> bool {
        self.sliding_window.is_some() && !(l + 1).is_multiple_of(self.sliding_pattern.max(1))
    }
}

/// The rope frequency scaling of a GGUF's global layers, from `<arch>.rope.scaling.type` (`none`,
/// or `linear` with `<arch>.rope.scaling.factor`; the legacy `<arch>.rope.scale_linear`) and
/// llama.cpp's `rope_freqs.weight` tensor (llama3 scaling, as its converter writes it). Any other
/// type (yarn, longrope, ...) is refused by name: run unscaled it would be wrong beyond the
/// original context, and silently so.
fn rope_scaling_from_gguf(
    file: &GgufFile,
    arch: &str,
    head_dim: usize,
) -> Result<Option<RopeScaling>> {
    let key = |k: &str| format!("{arch}.{k}");
    let bad = |k: &str, reason: String| LmError::Metadata {
        path: file.path.clone(),
        key: key(k),
        reason,
    };
    let linear = match file.meta_str(&key("rope.scaling.type")).ok().as_deref() {
        None | Some("none") => match file.meta_f64(&key("rope.scale_linear")) {
            Ok(f) if f != 1.0 => Some(f),
            _ => None,
        },
        Some("linear") => Some(file.meta_f64(&key("rope.scaling.factor")).map_err(|_| {
            bad(
                "rope.scaling.factor",
                "is missing; `rope.scaling.type` linear needs it".into(),
            )
        })?),
        Some(other) => {
            return Err(bad(
                "rope.scaling.type",
                format!(
                    "is `{other}`, which this decoder does not implement (it implements none, {ROPE_SCALINGS})"
                ),
            ));
        }
    };
    if let Some(f) = linear
        && !(f >= 1.0 && f.is_finite())
    {
        return Err(bad(
            "rope.scaling.factor",
            format!("is {f}; a rope scaling factor is a finite number >= 1"),
        ));
    }
    let freqs = if file.has_tensor("rope_freqs.weight") {
        let factors = file
            .dense("rope_freqs.weight", &candle_core::Device::Cpu)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let reason = if factors.len() != head_dim / 2 {
            Some(format!(
                "has {} factors, but the heads (size {head_dim}) have {} frequencies",
                factors.len(),
                head_dim / 2
            ))
        } else if factors.iter().any(|f| !(f.is_finite() && *f > 0.0)) {
            Some("has a factor that is not a positive number".into())
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(LmError::Tensor {
                path: file.path.clone(),
                name: "rope_freqs.weight".into(),
                reason,
            });
        }
        Some(factors)
    } else {
        None
    };
    match (linear, freqs) {
        (None, None) => Ok(None),
        (Some(factor), None) => Ok(Some(RopeScaling::Linear { factor })),
        (None, Some(factors)) => Ok(Some(RopeScaling::FreqFactors { factors })),
        (Some(_), Some(_)) => Err(bad(
            "rope.scaling.type",
            "is linear and the file also has a `rope_freqs.weight` tensor; the two together are not implemented".into(),
        )),
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
        let rope_scaling = rope_scaling_from_gguf(file, &arch, head_dim)?;
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
            rope_scaling,
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
