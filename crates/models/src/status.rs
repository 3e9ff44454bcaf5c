//! `list`: per-model cache status and memory estimates.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cache::CacheState;
use crate::registry::{Arch, Family, Registry};

/// Shape of a LoRA training run, for [`Arch::memory_estimate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainShape {
    /// LoRA rank, adapters on all seven linear projections of every layer.
    pub lora_rank: usize,
    pub seq_len: usize,
    pub batch: usize,
}

impl Default for TrainShape {
    /// Rank 16, 512 tokens, batch 1.
    fn default() -> Self {
        TrainShape {
            lora_rank: 16,
            seq_len: 512,
            batch: 1,
        }
    }
}

/// Rough memory needs, in bytes, for one model and one [`TrainShape`].
///
/// Rough on purpose: they exclude allocator overhead and framework temporaries, which can add tens
/// of percent. Byte counts per parameter: f32 training holds weight + gradient + two AdamW moments
/// (16 B); bf16 training on a GPU holds a bf16 weight and gradient plus an f32 master weight and two
/// f32 moments (2 + 2 + 4 + 8 = 16 B); LoRA parameters are always kept in f32 with their gradient
/// and moments (16 B); frozen weights cost 4 B (f32) or 2 B (bf16) each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryEstimate {
    /// All GGUF tensors dequantized to f32: `n_params * 4`.
    pub f32_weights: u64,
    /// Number of trainable LoRA parameters.
    pub lora_params: u64,
    /// LoRA training with f32 frozen weights (the CPU path): weights + LoRA state + saved f32
    /// activations for one step + logits, their softmax and gradient.
    pub lora_train: u64,
    /// LoRA training with bf16 frozen weights and bf16 activations (the GPU path).
    pub lora_train_bf16: u64,
    /// Full fine-tuning in f32 (every weight trainable; the CPU path).
    pub full_train: u64,
    /// Full fine-tuning in bf16 with f32 master weights and optimizer state (the GPU path).
    pub full_train_bf16: u64,
    /// Sampling or judging with the weights quantized as stored (the GGUF file size) plus an f32
    /// KV cache for `batch` sequences of `seq_len` tokens and one row of logits per sequence.
    pub inference: u64,
}

impl Arch {
    /// Trainable parameters of LoRA adapters of rank `r` on q, k, v, o, gate, up, down.
    pub fn lora_params(&self, r: usize) -> u64 {
        let d = self.d_model;
        let hq = self.n_heads * self.head_dim;
        let hkv = self.n_kv_heads * self.head_dim;
        let ff = self.d_ff;
        let per_layer = (d + hq) + 2 * (d + hkv) + (hq + d) + 2 * (d + ff) + (ff + d);
        (r * per_layer * self.n_layers) as u64
    }

    /// Floats saved for the backward pass of one step: per token per layer, residuals and norm
    /// outputs, q/k/v, attention output, gate/up/activation of the MLP, plus one row of attention
    /// probabilities per head.
    fn activation_floats(&self, shape: &TrainShape) -> u64 {
        let tokens = (shape.seq_len * shape.batch) as u64;
        let d = self.d_model as u64;
        let hq = (self.n_heads * self.head_dim) as u64;
        let hkv = (self.n_kv_heads * self.head_dim) as u64;
        let ff = self.d_ff as u64;
        let per_token_layer =
            6 * d + 2 * hq + 2 * hkv + 3 * ff + (self.n_heads * shape.seq_len) as u64;
        tokens * per_token_layer * self.n_layers as u64
    }

    /// Rough memory needed to hold f32 weights, to train with `shape` (LoRA of rank
    /// `shape.lora_rank` on every module, or full fine-tuning) and to sample `shape.batch`
    /// sequences of `shape.seq_len` tokens. `file_bytes` is the size of the quantized weights.
    pub fn memory_estimate(&self, shape: &TrainShape, file_bytes: u64) -> MemoryEstimate {
        let f32_weights = self.n_params * 4;
        let lora_params = self.lora_params(shape.lora_rank);
        let tokens = (shape.seq_len * shape.batch) as u64;
        let activations = self.activation_floats(shape);
        // Logits, their softmax and the gradient (f32 in both paths: the loss is computed in f32).
        let logits = 3 * 4 * tokens * self.vocab as u64;
        let kv = 2 * 4 * tokens * (self.n_layers * self.n_kv_heads * self.head_dim) as u64;
        MemoryEstimate {
            f32_weights,
            lora_params,
            lora_train: f32_weights + 16 * lora_params + 4 * activations + logits,
            lora_train_bf16: self.n_params * 2 + 16 * lora_params + 2 * activations + logits,
            full_train: 16 * self.n_params + 4 * activations + logits,
            full_train_bf16: 16 * self.n_params + 2 * activations + logits,
            inference: file_bytes + kv + 4 * shape.batch as u64 * self.vocab as u64,
        }
    }
}

/// One line of [`Registry::list`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelStatus {
    pub name: String,
    pub family: Family,
    pub instruct: bool,
    pub path: PathBuf,
    /// Judged without hashing: see [`CacheState`]. `verified` needs a fresh `.sha256` sidecar.
    pub state: CacheState,
    /// Expected size of the GGUF file.
    pub size_bytes: u64,
    pub n_params: u64,
    /// Estimates for the default [`TrainShape`] (rank 16, 512 tokens, batch 1).
    pub memory: MemoryEstimate,
}

impl ModelStatus {
    pub fn present(&self) -> bool {
        self.state != CacheState::Missing
    }
    pub fn verified(&self) -> bool {
        self.state == CacheState::Verified
    }

    /// Column headings matching the `Display` layout.
    pub fn header() -> String {
        format!(
            "{:<28} {:<6} {:<8} {:>8} {:<10} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "NAME",
            "FAMILY",
            "KIND",
            "SIZE",
            "STATE",
            "PARAMS",
            "INFER",
            "LORA-F32",
            "LORA-BF16",
            "FULL-F32",
            "FULL-BF16"
        )
    }
}

impl fmt::Display for ModelStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<28} {:<6} {:<8} {:>8} {:<10} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
            self.name,
            self.family.as_str(),
            if self.instruct { "instruct" } else { "base" },
            human_bytes(self.size_bytes),
            self.state.to_string(),
            human_count(self.n_params),
            human_bytes(self.memory.inference),
            human_bytes(self.memory.lora_train),
            human_bytes(self.memory.lora_train_bf16),
            human_bytes(self.memory.full_train),
            human_bytes(self.memory.full_train_bf16),
        )
    }
}

/// Header plus one line per model, and a legend of the memory columns.
pub fn render_table(statuses: &[ModelStatus]) -> String {
    let shape = TrainShape::default();
    let mut s = ModelStatus::header();
    for st in statuses {
        s.push('\n');
        s.push_str(&st.to_string());
    }
    s.push_str(&format!(
        "\nmemory (rough, excluding allocator overhead): INFER = quantized weights + KV cache of {} tokens; \
         LORA = rank {} on every module, {} tokens x batch {}, frozen weights in f32 (CPU) or bf16 (GPU); \
         FULL = every weight trainable with AdamW (f32 on CPU; bf16 with f32 master weights on GPU)",
        shape.seq_len, shape.lora_rank, shape.seq_len, shape.batch
    ));
    s
}

impl Registry {
    /// Status of every registered model, cheaply (no hashing; uses the `.sha256` sidecars).
    pub fn list(&self) -> Vec<ModelStatus> {
        self.models
            .iter()
            .map(|m| ModelStatus {
                name: m.name.clone(),
                family: m.family,
                instruct: m.instruct,
                path: self.file_path(m),
                state: self.cache_state(m),
                size_bytes: m.size_bytes,
                n_params: m.arch.n_params,
                memory: m.arch.memory_estimate(&TrainShape::default(), m.size_bytes),
            })
            .collect()
    }
}

/// Decimal units, one decimal: `98.4 MB`, `1.1 GB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `134.5M`, `1.78B`.
pub fn human_count(n: u64) -> String {
    let v = n as f64;
    if v >= 1e9 {
        format!("{:.2}B", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::builtin_models;

    #[test]
    fn formatting() {
        assert_eq!(human_bytes(98_362_432), "98.4 MB");
        assert_eq!(human_bytes(1_117_320_768), "1.1 GB");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_count(134_515_008), "134.5M");
        assert_eq!(human_count(1_777_088_000), "1.78B");
    }

    #[test]
    fn memory_estimates_are_sane() {
        let models = builtin_models();
        let smol = models[0]
            .arch
            .memory_estimate(&TrainShape::default(), models[0].size_bytes);
        assert_eq!(smol.f32_weights, 134_515_008 * 4);
        // rank 16 on all projections of SmolLM2: 30 layers * 16 * (1152+768+768+1152+2112*3)
        assert_eq!(
            smol.lora_params,
            30 * 16 * (1152 + 768 + 768 + 1152 + 3 * 2112)
        );
        assert!(smol.lora_train > smol.f32_weights);
        // 538 MB weights + ~80 MB LoRA state + ~0.87 GB activations + ~0.3 GB logits.
        assert!(
            smol.lora_train > 1_500_000_000 && smol.lora_train < 2_500_000_000,
            "{smol:?}"
        );
        // Full fine-tuning holds 16 bytes per parameter before activations.
        assert!(smol.full_train > 16 * 134_515_008 && smol.full_train > smol.lora_train);
        // bf16 halves the frozen weights and activations of LoRA training, not the LoRA state.
        assert!(smol.lora_train_bf16 < smol.lora_train);
        assert!(smol.lora_train_bf16 > 134_515_008 * 2 + 16 * smol.lora_params);
        assert!(smol.full_train_bf16 < smol.full_train);
        // Inference: the quantized file plus a small KV cache (30 layers x 3 kv heads x 64 x 512 x 2 x 4 B).
        assert_eq!(
            smol.inference,
            models[0].size_bytes + 30 * 3 * 64 * 512 * 2 * 4 + 4 * 49152
        );
        let qwen = models[1]
            .arch
            .memory_estimate(&TrainShape::default(), models[1].size_bytes);
        assert!(qwen.f32_weights > 7_000_000_000 && qwen.f32_weights < 7_200_000_000);
        assert!(qwen.lora_train > qwen.f32_weights);
        assert!(qwen.full_train > 28_000_000_000, "{qwen:?}");
        assert!(qwen.inference < 2_000_000_000, "{qwen:?}");
    }

    #[test]
    fn list_of_empty_cache_is_all_missing_and_prints() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::builtin(crate::ModelsConfig::new(dir.path()));
        let list = reg.list();
        assert_eq!(list.len(), 3);
        assert!(list.iter().all(|s| !s.present() && !s.verified()));
        let table = render_table(&list);
        assert!(table.starts_with("NAME"));
        assert!(table.contains("smollm2-135m-instruct"));
        assert!(table.contains("missing"));
        assert!(table.contains("98.4 MB"));
        assert!(
            table.contains("LORA-BF16") && table.contains("FULL-F32"),
            "{table}"
        );
        assert!(table.contains("memory (rough"), "{table}");
    }
}
