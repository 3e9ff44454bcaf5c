//! A `tokenizers::Tokenizer` assembled from GGUF metadata (`tokenizer.ggml.*`).
//!
//! candle ships `TokenizerFromGguf`, but for `pre = smollm` it falls back to a ByteLevel
//! pre-tokenizer with `add_prefix_space = true` (measured: "Hello" -> 38699 instead of 19556), so
//! the pipeline is chosen here per `tokenizer.ggml.pre`, mirroring each family's tokenizer.json.

use crate::error::{LmError, Result};
use crate::weights::GgufFile;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

/// The GPT-4-style split used by Qwen2 (digits one at a time).
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Llama-3's split (digit runs of up to three).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Byte ranges of tokens in the encoded text.
pub type Offsets = Vec<(usize, usize)>;

/// A tokenizer with the special ids the runtime needs.
pub struct GgufTokenizer {
    pub inner: Tokenizer,
    pub bos_id: Option<u32>,
    pub eos_id: u32,
    /// Tokens that end a turn (EOS plus `<|im_end|>`/`<|eot_id|>`/`<end_of_turn>` where present).
    pub stop_ids: Vec<u32>,
    pub add_bos: bool,
    /// Decoded text of every id (for digit lookups by the judge).
    pub pieces: Vec<String>,
}

impl GgufTokenizer {
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        let model = file.meta_str("tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(LmError::Tokenizer(format!(
                "{}: tokenizer.ggml.model `{model}` is not supported yet (supported: gpt2 byte-level BPE)",
                file.path.display()
            )));
        }
        let tokens = file.meta_strings("tokenizer.ggml.tokens")?;
        let merges = file.meta_strings("tokenizer.ggml.merges")?;
        let types: Vec<u32> = match file.meta_array("tokenizer.ggml.token_type") {
            Ok(values) => values
                .iter()
                .map(|v| v.to_i32().map(|x| x as u32).unwrap_or(1))
                .collect(),
            Err(_) => vec![1; tokens.len()],
        };
        let pre = file
            .meta_str("tokenizer.ggml.pre")
            .unwrap_or_else(|_| "default".to_string());

        let vocab: tokenizers::models::bpe::Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let merges: Vec<(String, String)> = merges
            .iter()
            .map(|m| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| LmError::Tokenizer(format!("bad merge entry `{m}`")))
            })
            .collect::<Result<_>>()?;
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .ignore_merges(pre == "llama3" || pre == "llama-bpe")
            .build()
            .map_err(|e| LmError::Tokenizer(e.to_string()))?;
        let mut tk = Tokenizer::new(bpe);
        let tk_err = |e: tokenizers::Error| LmError::Tokenizer(e.to_string());
        match pre.as_str() {
            "qwen2" => {
                tk.with_normalizer(Some(NFC)).map_err(tk_err)?;
                let split = Split::new(
                    SplitPattern::Regex(QWEN2_SPLIT.into()),
                    SplitDelimiterBehavior::Isolated,
                    false,
                )
                .map_err(tk_err)?;
                tk.with_pre_tokenizer(Some(Sequence::new(vec![
                    split.into(),
                    ByteLevel::new(false, false, false).into(),
                ])));
            }
            "llama3" | "llama-bpe" | "smaug-bpe" => {
                let split = Split::new(
                    SplitPattern::Regex(LLAMA3_SPLIT.into()),
                    SplitDelimiterBehavior::Isolated,
                    false,
                )
                .map_err(tk_err)?;
                tk.with_pre_tokenizer(Some(Sequence::new(vec![
                    split.into(),
                    ByteLevel::new(false, true, false).into(),
                ])));
            }
            "smollm" => {
                // SmolLM2's tokenizer.json: individual digits, then byte-level without a prefix space.
                tk.with_pre_tokenizer(Some(Sequence::new(vec![
                    Digits::new(true).into(),
                    ByteLevel::new(false, true, true).into(),
                ])));
            }
            _ => {
                tk.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
            }
        }
        tk.with_decoder(Some(ByteLevelDecoder::new(false, true, true)));

        // Control (3) and user-defined (4) tokens are matched whole before BPE.
        let specials: Vec<AddedToken> = tokens
            .iter()
            .zip(&types)
            .filter(|(_, t)| **t == 3 || **t == 4)
            .map(|(s, t)| AddedToken::from(s.clone(), *t == 3))
            .collect();
        tk.add_special_tokens(specials).map_err(tk_err)?;

        let eos_id = file.meta_u64("tokenizer.ggml.eos_token_id")? as u32;
        let bos_id = file
            .meta_u64("tokenizer.ggml.bos_token_id")
            .ok()
            .map(|v| v as u32);
        let add_bos = file
            .meta_bool("tokenizer.ggml.add_bos_token")
            .unwrap_or(false);
        let mut stop_ids = vec![eos_id];
        for name in ["<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|endoftext|>"] {
            if let Some(id) = tk.token_to_id(name)
                && !stop_ids.contains(&id)
            {
                stop_ids.push(id);
            }
        }
        let pieces = (0..tokens.len() as u32)
            .map(|id| tk.decode(&[id], false).unwrap_or_default())
            .collect();
        Ok(GgufTokenizer {
            inner: tk,
            bos_id,
            eos_id,
            stop_ids,
            add_bos,
            pieces,
        })
    }

    /// Token ids of `text`; special tokens written in the text are recognised.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| LmError::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Ids with byte offsets into `text`.
    pub fn encode_with_offsets(&self, text: &str) -> Result<(Vec<u32>, Offsets)> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| LmError::Tokenizer(e.to_string()))?;
        Ok((enc.get_ids().to_vec(), enc.get_offsets().to_vec()))
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, true)
            .map_err(|e| LmError::Tokenizer(e.to_string()))
    }

    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }
}
