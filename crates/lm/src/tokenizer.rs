//! A `tokenizers::Tokenizer` assembled from GGUF metadata (`tokenizer.ggml.*`).
//!
//! Two tokenizer models, as llama.cpp names them in `tokenizer.ggml.model`:
//! - `gpt2`: byte-level BPE with the GGUF's merges. candle ships `TokenizerFromGguf`, but for
//!   `pre = smollm` it falls back to a ByteLevel pre-tokenizer with `add_prefix_space = true`
//!   (measured: "Hello" -> 38699 instead of 19556), so the pipeline is chosen here per
//!   `tokenizer.ggml.pre`, mirroring each family's tokenizer.json.
//! - `llama`: SentencePiece (gemma3, llama-2 era models): pieces with scores, `▁` for spaces, byte
//!   fallback to `<0xXX>`. llama.cpp tokenizes these by repeatedly merging the adjacent pair whose
//!   concatenation is the best-scoring piece; a BPE whose merges are every split of every piece
//!   into two pieces, ranked by the piece's score, makes the same choices (see [`spm_merges`]).
//!
//! In both, control, user-defined and unknown tokens are matched whole in the raw text first, the
//! way llama.cpp partitions text on them before tokenizing the rest.

use crate::error::{LmError, Result};
use crate::weights::GgufFile;
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::prepend::Prepend;
use tokenizers::normalizers::replace::Replace;
use tokenizers::normalizers::unicode::NFC;
use tokenizers::normalizers::{NormalizerWrapper, Sequence as NormalizerSequence};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

/// `tokenizer.ggml.pre` values llama.cpp treats as Llama-3 (its split, whole-word vocab lookups
/// before merges, BOS added).
const LLAMA3_PRES: [&str; 3] = ["llama3", "llama-v3", "llama-bpe"];

/// The GPT-4-style split used by Qwen2 (digits one at a time).
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Llama-3's split (digit runs of up to three).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
const TOKEN_NORMAL: u32 = 1;
const TOKEN_UNKNOWN: u32 = 2;
const TOKEN_CONTROL: u32 = 3;
const TOKEN_USER_DEFINED: u32 = 4;

/// SentencePiece's space marker.
const SPM_SPACE: &str = "\u{2581}";

/// llama.cpp's splits for `pre = default` (and GGUFs without the key), applied one after the other
/// to each piece the previous one left: punctuation runs, GPT-2's split (without its final `\s+`,
/// which the isolated split reproduces), digit runs, then groups of three ASCII digits.
const DEFAULT_SPLITS: [&str; 4] = [
    r"[\p{P}\$\+<=>\^~\|]+",
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)",
    r"\p{N}+",
    r"[0-9][0-9][0-9]",
];

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
        let tokens = file.meta_strings("tokenizer.ggml.tokens")?;
        let types: Vec<u32> = match file.meta_array("tokenizer.ggml.token_type") {
            Ok(values) => values
                .iter()
                .map(|v| v.to_i32().map(|x| x as u32).unwrap_or(TOKEN_NORMAL))
                .collect(),
            Err(_) => vec![TOKEN_NORMAL; tokens.len()],
        };
        if types.len() != tokens.len() {
            return Err(metadata_err(
                file,
                "tokenizer.ggml.token_type",
                format!("{} entries for {} tokens", types.len(), tokens.len()),
            ));
        }
        let mut tk = match model.as_str() {
            "gpt2" => gpt2_tokenizer(file, &tokens)?,
            "llama" => spm_tokenizer(file, &tokens)?,
            other => {
                return Err(metadata_err(
                    file,
                    "tokenizer.ggml.model",
                    format!(
                        "`{other}` is not supported (supported: `gpt2` byte-level BPE, `llama` SentencePiece)"
                    ),
                ));
            }
        };
        let tk_err = |e: tokenizers::Error| LmError::Tokenizer(e.to_string());

        // Control (3), user-defined (4) and unknown (2) tokens are matched whole in the raw text
        // (not normalized: gemma's user-defined whitespace runs are stored with literal spaces).
        // Control tokens are special (skipped when decoding); user-defined ones are text.
        let specials: Vec<AddedToken> = tokens
            .iter()
            .zip(&types)
            .filter(|(_, t)| matches!(**t, TOKEN_CONTROL | TOKEN_USER_DEFINED | TOKEN_UNKNOWN))
            .map(|(s, t)| AddedToken::from(s.clone(), *t != TOKEN_USER_DEFINED).normalized(false))
            .collect();
        tk.add_special_tokens(specials).map_err(tk_err)?;

        let eos_id = file.meta_u64("tokenizer.ggml.eos_token_id")? as u32;
        let bos_id = file
            .meta_u64("tokenizer.ggml.bos_token_id")
            .ok()
            .map(|v| v as u32);
        // llama.cpp's default when the key is absent: SentencePiece and Llama-3 add BOS.
        let pre = file.meta_str("tokenizer.ggml.pre").unwrap_or_default();
        let add_bos = file
            .meta_bool("tokenizer.ggml.add_bos_token")
            .unwrap_or(model == "llama" || LLAMA3_PRES.contains(&pre.as_str()));
        let mut stop_ids = vec![eos_id];
        if let Ok(eot) = file.meta_u64("tokenizer.ggml.eot_token_id") {
            stop_ids.push(eot as u32);
        }
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

fn metadata_err(file: &GgufFile, key: &str, reason: String) -> LmError {
    LmError::Metadata {
        path: file.path.clone(),
        key: key.to_string(),
        reason,
    }
}

fn token_vocab(tokens: &[String]) -> tokenizers::models::bpe::Vocab {
    // Duplicate strings keep the last id, as llama.cpp's text-to-token map does.
    tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect()
}

/// Byte-level BPE (`tokenizer.ggml.model = gpt2`), pre-tokenized per `tokenizer.ggml.pre`.
fn gpt2_tokenizer(file: &GgufFile, tokens: &[String]) -> Result<Tokenizer> {
    let merges = file.meta_strings("tokenizer.ggml.merges")?;
    let pre = file
        .meta_str("tokenizer.ggml.pre")
        .unwrap_or_else(|_| "default".to_string());
    let merges: Vec<(String, String)> = merges
        .iter()
        .enumerate()
        .map(|(i, m)| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| {
                    metadata_err(
                        file,
                        "tokenizer.ggml.merges",
                        format!("entry {i} `{m}` is not two tokens separated by a space"),
                    )
                })
        })
        .collect::<Result<_>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(token_vocab(tokens), merges)
        .ignore_merges(LLAMA3_PRES.contains(&pre.as_str()))
        .build()
        .map_err(|e| LmError::Tokenizer(format!("{}: {e}", file.path.display())))?;
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
        p if LLAMA3_PRES.contains(&p) || p == "smaug-bpe" => {
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
            let mut steps: Vec<tokenizers::PreTokenizerWrapper> = DEFAULT_SPLITS
                .iter()
                .map(|re| {
                    Split::new(
                        SplitPattern::Regex((*re).into()),
                        SplitDelimiterBehavior::Isolated,
                        false,
                    )
                    .map(Into::into)
                })
                .collect::<std::result::Result<_, _>>()
                .map_err(tk_err)?;
            steps.push(ByteLevel::new(false, true, false).into());
            tk.with_pre_tokenizer(Some(Sequence::new(steps)));
        }
    }
    tk.with_decoder(Some(ByteLevelDecoder::new(false, true, true)));
    Ok(tk)
}

/// SentencePiece (`tokenizer.ggml.model = llama`) as a byte-fallback BPE over the pieces.
fn spm_tokenizer(file: &GgufFile, tokens: &[String]) -> Result<Tokenizer> {
    let key = "tokenizer.ggml.scores";
    let scores: Vec<f32> = file
        .meta_array(key)?
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.to_f32()
                .map_err(|e| metadata_err(file, key, format!("entry {i}: {e}")))
        })
        .collect::<Result<_>>()?;
    if scores.len() != tokens.len() {
        return Err(metadata_err(
            file,
            key,
            format!("{} scores for {} tokens", scores.len(), tokens.len()),
        ));
    }
    // llama.cpp prepends a space to text that starts the input or follows a special token unless
    // the GGUF says otherwise (gemma3 says `false`). Every raw fragment is one of those, and the
    // normalizer runs once per fragment between added tokens, so Prepend does exactly that.
    let add_space_prefix = file
        .meta_bool("tokenizer.ggml.add_space_prefix")
        .unwrap_or(true);
    let vocab = token_vocab(tokens);
    let merges = spm_merges(tokens, &scores, &vocab);
    let mut builder = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .byte_fallback(true);
    if let Ok(unk) = file.meta_u64("tokenizer.ggml.unknown_token_id")
        && let Some(unk) = tokens.get(unk as usize)
    {
        builder = builder.unk_token(unk.clone());
    }
    let bpe = builder
        .build()
        .map_err(|e| LmError::Tokenizer(format!("{}: {e}", file.path.display())))?;
    let mut tk = Tokenizer::new(bpe);
    let tk_err = |e: tokenizers::Error| LmError::Tokenizer(e.to_string());
    let to_marker: NormalizerWrapper = Replace::new(" ", SPM_SPACE).map_err(tk_err)?.into();
    let normalizer = if add_space_prefix {
        NormalizerSequence::new(vec![Prepend::new(SPM_SPACE.into()).into(), to_marker]).into()
    } else {
        to_marker
    };
    tk.with_normalizer(Some::<NormalizerWrapper>(normalizer))
        .map_err(tk_err)?;
    let mut decoders = vec![
        Replace::new(SPM_SPACE, " ").map_err(tk_err)?.into(),
        ByteFallback::new().into(),
        Fuse::new().into(),
    ];
    if add_space_prefix {
        decoders.push(Strip::new(' ', 1, 0).into());
    }
    tk.with_decoder(Some(DecoderSequence::new(decoders)));
    Ok(tk)
}

/// BPE merges equivalent to llama.cpp's SentencePiece tokenizer.
///
/// llama.cpp starts from single characters and repeatedly merges the adjacent pair whose
/// concatenation is a piece with the highest score (leftmost on ties), byte-falling back for
/// characters that are no piece. A BPE merges the adjacent pair with the lowest rank. So every way
/// of splitting a piece into two pieces becomes a merge, ranked by the piece's score (highest
/// first); splits of the same piece sit next to each other, which can only matter when two
/// different splits of one piece overlap in the text (`ab|a|ba` for the piece `aba`).
/// The same construction as transformers' SentencePiece extractor.
fn spm_merges(
    tokens: &[String],
    scores: &[f32],
    vocab: &tokenizers::models::bpe::Vocab,
) -> Vec<(String, String)> {
    let mut ranked: Vec<(f32, u32, usize)> = Vec::new();
    for (id, piece) in tokens.iter().enumerate() {
        // Only the id the text maps to can be produced by a merge.
        if vocab.get(piece) != Some(&(id as u32)) {
            continue;
        }
        for (split, _) in piece.char_indices().skip(1) {
            if vocab.contains_key(&piece[..split]) && vocab.contains_key(&piece[split..]) {
                ranked.push((scores[id], id as u32, split));
            }
        }
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    ranked
        .into_iter()
        .map(|(_, id, split)| {
            let piece = &tokens[id as usize];
            (piece[..split].to_string(), piece[split..].to_string())
        })
        .collect()
}
