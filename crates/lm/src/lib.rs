//! The worker's model runtime: GGUF files or Hugging Face checkpoint directories (weights,
//! tokenizer, chat template), one decoder for the supported families with LoRA adapters as a
//! first-class part, and sampling.
//!
//! - [`files`]: `ModelFiles::open`, the one entry point for either format.
//! - [`hf`]: Hugging Face directories (config.json, safetensors, tokenizer.json).
//! - [`config`]: per-family architecture facts read from GGUF metadata.
//! - [`weights`]: the `WeightSource` both formats implement; GGUF tensors, dense (for training) or
//!   quantized (fast inference).
//! - [`tokenizer`]: a `tokenizers::Tokenizer` assembled from GGUF metadata.
//! - [`chat`]: the model's own chat template (minijinja) and assistant-span masks.
//! - [`lora`]: where a LoRA is applied (`LoraLinear`), its init and scale.
//! - [`model`]: the decoder (llama, qwen2), its KV cache.
//! - [`generate`]: batched sampling with per-sample seeds.

pub mod chat;
pub mod config;
pub mod error;
pub mod files;
pub mod generate;
pub mod hf;
pub mod lora;
pub mod model;
pub mod testing;
pub mod tokenizer;
pub mod weights;

pub use chat::{ChatTemplate, Message, RenderedChat};
pub use config::{Family, ModelConfig, RopeScaling};
pub use error::{LmError, Result};
pub use files::{ModelFiles, ModelWeights};
pub use hf::HfWeights;
pub use lora::{LoraConfig, LoraSet, Module};
pub use model::{Decoder, KvCache, OpsMode, Positions};
pub use tokenizer::GgufTokenizer;
pub use weights::{GgufFile, WeightMode, WeightSource};

pub use candle_core;
