//! One entry point for a model on disk, whatever its format: a `.gguf` file or a Hugging Face
//! checkpoint directory. Callers get the architecture, tokenizer, chat template and weights
//! without knowing which it was.

use crate::chat::ChatTemplate;
use crate::config::ModelConfig;
use crate::error::{LmError, Result};
use crate::hf::{self, HfWeights};
use crate::model::Decoder;
use crate::tokenizer::GgufTokenizer;
use crate::weights::{FrozenWeight, GgufFile, WeightMode, WeightSource};
use candle_core::{Device, Tensor};
use std::path::{Path, PathBuf};

/// The weights of an open model, in either format.
pub enum ModelWeights {
    Gguf(GgufFile),
    Hf(HfWeights),
}

impl ModelWeights {
    fn source(&self) -> &dyn WeightSource {
        match self {
            ModelWeights::Gguf(f) => f,
            ModelWeights::Hf(h) => h,
        }
    }
}

impl WeightSource for ModelWeights {
    fn model_config(&self) -> Result<ModelConfig> {
        self.source().model_config()
    }
    fn has_tensor(&self, name: &str) -> bool {
        self.source().has_tensor(name)
    }
    fn dense(&self, name: &str, device: &Device) -> Result<Tensor> {
        self.source().dense(name, device)
    }
    fn frozen(
        &self,
        name: &str,
        mode: WeightMode,
        unpermute_heads: Option<usize>,
        device: &Device,
    ) -> Result<FrozenWeight> {
        self.source().frozen(name, mode, unpermute_heads, device)
    }
    fn qk_rows_interleaved(&self, cfg: &ModelConfig) -> bool {
        self.source().qk_rows_interleaved(cfg)
    }
}

/// A model opened from disk: what every stage needs before building a decoder.
pub struct ModelFiles {
    pub path: PathBuf,
    pub config: ModelConfig,
    pub tokenizer: GgufTokenizer,
    pub template: ChatTemplate,
    pub weights: ModelWeights,
}

impl ModelFiles {
    /// Open a `.gguf` file or an HF checkpoint directory (one with a `config.json`).
    pub fn open(path: &Path) -> Result<Self> {
        if path.is_dir() {
            if !hf::is_checkpoint_dir(path) {
                return Err(LmError::File {
                    path: path.to_path_buf(),
                    reason: "a directory without config.json; a model is a .gguf file or a Hugging Face checkpoint directory (config.json, safetensors, tokenizer.json)".to_string(),
                });
            }
            let weights = HfWeights::open(path)?;
            let tokenizer = hf::tokenizer_from_dir(path)?;
            let template = hf::template_from_dir(path, weights.config.family, &tokenizer)?;
            Ok(ModelFiles {
                path: path.to_path_buf(),
                config: weights.config.clone(),
                tokenizer,
                template,
                weights: ModelWeights::Hf(weights),
            })
        } else {
            let file = GgufFile::open(path)?;
            let config = ModelConfig::from_gguf(&file)?;
            let tokenizer = GgufTokenizer::from_gguf(&file)?;
            let template = ChatTemplate::from_gguf(&file, &tokenizer)?;
            Ok(ModelFiles {
                path: path.to_path_buf(),
                config,
                tokenizer,
                template,
                weights: ModelWeights::Gguf(file),
            })
        }
    }

    /// The decoder over these weights.
    pub fn decoder(&self, mode: WeightMode, device: &Device) -> Result<Decoder> {
        Decoder::load(&self.weights, mode, device)
    }
}
