use std::path::PathBuf;

/// Errors of the model runtime. Each names the file, tensor or metadata key involved.
#[derive(Debug, thiserror::Error)]
pub enum LmError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a readable GGUF file: {source}")]
    Gguf {
        path: PathBuf,
        source: candle_core::Error,
    },
    #[error("{path}: GGUF metadata key `{key}`: {reason}")]
    Metadata {
        path: PathBuf,
        key: String,
        reason: String,
    },
    #[error("{path}: tensor `{name}`: {reason}")]
    Tensor {
        path: PathBuf,
        name: String,
        reason: String,
    },
    /// A problem in one file of a checkpoint directory (config.json, a safetensors shard, ...).
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("unsupported architecture `{0}` (supported: llama, qwen2, gemma3)")]
    UnsupportedArch(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("chat template: {0}")]
    Template(String),
    #[error("LoRA: {0}")]
    Lora(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

pub type Result<T, E = LmError> = std::result::Result<T, E>;
