//! Hugging Face checkpoint directories, as `save_pretrained` writes them: `config.json`,
//! safetensors weights (one `model.safetensors` or shards listed in `model.safetensors.index.json`;
//! bf16, f16 or f32, used as f32), `tokenizer.json` with `tokenizer_config.json`, and the chat
//! template in `chat_template.jinja` or `tokenizer_config.json`.
//!
//! Tensors are served under the GGUF names the decoder uses ([`HF_NAMES`] maps them). HF layouts
//! need no q/k un-permutation; Gemma's norms are stored as `w` and applied as `1 + w`, so 1 is added
//! at load (llama.cpp's converter stores `1 + w`, which the GGUF path uses as is).

use crate::chat::ChatTemplate;
use crate::config::{Family, ModelConfig, ROPE_SCALINGS, RopeScaling};
use crate::error::{LmError, Result};
use crate::tokenizer::GgufTokenizer;
use crate::weights::{FrozenWeight, WeightMode, WeightSource};
use candle_core::safetensors::{Load as _, MmapedSafetensors};
use candle_core::{DType, Device, Tensor};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// GGUF tensor name (after `blk.{l}.` for layer tensors) -> HF name (after the layer prefix
/// `{prefix}layers.{l}.` or, for whole-model tensors, after `{prefix}`), and the families the row
/// applies to (`None`: all). `output.weight` is special: HF's `lm_head.weight` sits outside the
/// decoder prefix.
pub const HF_NAMES: &[(&str, &str, Option<Family>)] = &[
    ("token_embd.weight", "embed_tokens.weight", None),
    ("output_norm.weight", "norm.weight", None),
    ("attn_norm.weight", "input_layernorm.weight", None),
    (
        "ffn_norm.weight",
        "post_attention_layernorm.weight",
        Some(Family::Llama),
    ),
    (
        "ffn_norm.weight",
        "post_attention_layernorm.weight",
        Some(Family::Qwen2),
    ),
    (
        "ffn_norm.weight",
        "pre_feedforward_layernorm.weight",
        Some(Family::Gemma3),
    ),
    (
        "post_attention_norm.weight",
        "post_attention_layernorm.weight",
        Some(Family::Gemma3),
    ),
    (
        "post_ffw_norm.weight",
        "post_feedforward_layernorm.weight",
        Some(Family::Gemma3),
    ),
    ("attn_q_norm.weight", "self_attn.q_norm.weight", None),
    ("attn_k_norm.weight", "self_attn.k_norm.weight", None),
    ("attn_q.weight", "self_attn.q_proj.weight", None),
    ("attn_q.bias", "self_attn.q_proj.bias", None),
    ("attn_k.weight", "self_attn.k_proj.weight", None),
    ("attn_k.bias", "self_attn.k_proj.bias", None),
    ("attn_v.weight", "self_attn.v_proj.weight", None),
    ("attn_v.bias", "self_attn.v_proj.bias", None),
    ("attn_output.weight", "self_attn.o_proj.weight", None),
    ("attn_output.bias", "self_attn.o_proj.bias", None),
    ("ffn_gate.weight", "mlp.gate_proj.weight", None),
    ("ffn_gate.bias", "mlp.gate_proj.bias", None),
    ("ffn_up.weight", "mlp.up_proj.weight", None),
    ("ffn_up.bias", "mlp.up_proj.bias", None),
    ("ffn_down.weight", "mlp.down_proj.weight", None),
    ("ffn_down.bias", "mlp.down_proj.bias", None),
];

/// Where the decoder's tensors sit in the checkpoint: `model.` for `*ForCausalLM`, the language
/// model inside Gemma 3's multimodal checkpoints (transformers 5 and 4 spellings).
const DECODER_PREFIXES: &[&str] = &["model.", "model.language_model.", "language_model.model."];

/// The HF name of a GGUF-named tensor of `family` whose decoder tensors sit under `prefix`
/// (`model.` for `*ForCausalLM`), via [`HF_NAMES`]; `None` when HF has no such tensor.
pub fn hf_tensor_name(gguf_name: &str, family: Family, prefix: &str) -> Option<String> {
    if gguf_name == "output.weight" {
        return Some("lm_head.weight".to_string());
    }
    let (layer_prefix, rest) = match gguf_name.strip_prefix("blk.") {
        Some(tail) => {
            let (l, rest) = tail.split_once('.')?;
            (format!("{prefix}layers.{l}."), rest)
        }
        None => (prefix.to_string(), gguf_name),
    };
    HF_NAMES
        .iter()
        .find(|(g, _, fam)| *g == rest && fam.is_none_or(|f| f == family))
        .map(|(_, hf, _)| format!("{layer_prefix}{hf}"))
}

/// Whether `path` looks like an HF checkpoint directory (a directory with a config.json).
pub fn is_checkpoint_dir(path: &Path) -> bool {
    path.is_dir() && path.join("config.json").is_file()
}

fn file_err(path: &Path, reason: impl Into<String>) -> LmError {
    LmError::File {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|source| LmError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| file_err(path, format!("not valid JSON: {e}")))
}

fn read_json_if_present(path: &Path) -> Result<Option<Value>> {
    if path.is_file() {
        read_json(path).map(Some)
    } else {
        Ok(None)
    }
}

/// A JSON object's fields with the file it came from, for messages naming both.
#[derive(Clone)]
struct Fields<'a> {
    path: &'a Path,
    /// Key path prefix for messages (`text_config.` inside Gemma 3's multimodal config).
    scope: String,
    obj: &'a Value,
}

impl Fields<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    fn err(&self, key: &str, reason: &str) -> LmError {
        file_err(self.path, format!("`{}{key}` {reason}", self.scope))
    }

    fn usize(&self, key: &str) -> Result<usize> {
        self.usize_opt(key)?
            .ok_or_else(|| file_err(self.path, format!("missing `{}{key}`", self.scope)))
    }

    fn usize_opt(&self, key: &str) -> Result<Option<usize>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_u64().map(|v| Some(v as usize)).ok_or_else(|| {
                self.err(key, &format!("must be a non-negative integer, found {v}"))
            }),
        }
    }

    fn f64_opt(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.err(key, &format!("must be a number, found {v}"))),
        }
    }

    fn bool_opt(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.err(key, &format!("must be true or false, found {v}"))),
        }
    }

    fn str_opt(&self, key: &str) -> Result<Option<&str>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| self.err(key, &format!("must be a string, found {v}"))),
        }
    }
}

/// The rope base and scaling of a transformers `rope_parameters` / `rope_scaling` entry: plain
/// rope, `linear` and `llama3` are implemented; any other `rope_type` is refused by name rather
/// than silently run unscaled.
fn rope_entry(f: &Fields, key: &str, params: &Value) -> Result<(Option<f64>, Option<RopeScaling>)> {
    let kind = params
        .get("rope_type")
        .or_else(|| params.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    let num = |name: &str| -> Result<f64> {
        params.get(name).and_then(Value::as_f64).ok_or_else(|| {
            f.err(
                &format!("{key}.{name}"),
                &format!("is missing or not a number; rope_type `{kind}` needs it"),
            )
        })
    };
    let scaling = match kind {
        "default" => None,
        "linear" => Some(RopeScaling::Linear {
            factor: num("factor")?,
        }),
        "llama3" => Some(RopeScaling::Llama3 {
            factor: num("factor")?,
            low_freq_factor: num("low_freq_factor")?,
            high_freq_factor: num("high_freq_factor")?,
            original_context: num("original_max_position_embeddings")? as usize,
        }),
        other => {
            return Err(f.err(
                key,
                &format!(
                    "has rope_type `{other}`, which this decoder does not implement (it implements default, {ROPE_SCALINGS})"
                ),
            ));
        }
    };
    if let Some(RopeScaling::Linear { factor } | RopeScaling::Llama3 { factor, .. }) = &scaling
        && !(*factor >= 1.0 && factor.is_finite())
    {
        return Err(f.err(
            &format!("{key}.factor"),
            &format!("is {factor}; a rope scaling factor is a finite number >= 1"),
        ));
    }
    Ok((params.get("rope_theta").and_then(Value::as_f64), scaling))
}

/// `ModelConfig` from an HF `config.json`.
pub fn config_from_json(path: &Path, json: &Value) -> Result<ModelConfig> {
    let top = Fields {
        path,
        scope: String::new(),
        obj: json,
    };
    let model_type = top
        .str_opt("model_type")?
        .ok_or_else(|| file_err(path, "missing `model_type`"))?;
    let f = match model_type {
        "gemma3" => Fields {
            path,
            scope: "text_config.".to_string(),
            obj: top.get("text_config").ok_or_else(|| {
                file_err(
                    path,
                    "`model_type` is gemma3 but `text_config` is missing (the language model's settings)",
                )
            })?,
        },
        _ => top.clone(),
    };
    let family = match model_type {
        "llama" => Family::Llama,
        "qwen2" => Family::Qwen2,
        "gemma3" | "gemma3_text" => Family::Gemma3,
        other => {
            return Err(file_err(
                path,
                format!(
                    "`model_type` `{other}` is not supported (supported: llama, qwen2, gemma3_text, gemma3)"
                ),
            ));
        }
    };
    let gemma = family == Family::Gemma3;
    let d_model = f.usize("hidden_size")?;
    let n_heads = f.usize("num_attention_heads")?;
    let n_layers = f.usize("num_hidden_layers")?;
    let head_dim = f.usize_opt("head_dim")?.unwrap_or(d_model / n_heads.max(1));

    let act_key = if gemma {
        "hidden_activation"
    } else {
        "hidden_act"
    };
    let want_act = if gemma { "gelu_pytorch_tanh" } else { "silu" };
    if let Some(act) = f.str_opt(act_key)?
        && act != want_act
    {
        return Err(f.err(
            act_key,
            &format!("is `{act}`; this decoder implements `{want_act}` for {model_type}"),
        ));
    }
    if gemma {
        for key in ["final_logit_softcapping", "attn_logit_softcapping"] {
            if f.get(key).is_some() {
                return Err(f.err(key, "is set; logit soft-capping is not implemented"));
            }
        }
        if let Some(s) = f.f64_opt("query_pre_attn_scalar")?
            && s != head_dim as f64
        {
            return Err(f.err(
                "query_pre_attn_scalar",
                &format!("is {s}; only head_dim ({head_dim}) is implemented (scores scaled by 1/sqrt(head_dim))"),
            ));
        }
    }
    if family == Family::Qwen2 && f.bool_opt("use_sliding_window")? == Some(true) {
        return Err(f.err(
            "use_sliding_window",
            "is true; Qwen2 sliding windows are not implemented",
        ));
    }

    // Rope bases: transformers 5 writes `rope_parameters` (per layer type for Gemma 3), older
    // versions `rope_theta` (+ `rope_local_base_freq`) and `rope_scaling`.
    let default_theta = if gemma { 1_000_000.0 } else { 10_000.0 };
    let mut rope_base = f.f64_opt("rope_theta")?;
    let mut rope_base_local = f.f64_opt("rope_local_base_freq")?;
    // Scaling applies to the global layers (every layer but Gemma 3's sliding ones).
    let mut rope_scaling = None;
    let local_unscaled = |key: &str, scaling: &Option<RopeScaling>| -> Result<()> {
        match scaling {
            Some(_) => Err(f.err(
                key,
                "scales the rope of the sliding-window layers, which this decoder does not implement (only the global layers' rope is scaled)",
            )),
            None => Ok(()),
        }
    };
    if let Some(scaling) = f.get("rope_scaling").filter(|v| !v.is_null()) {
        rope_scaling = rope_entry(&f, "rope_scaling", scaling)?.1;
    }
    if let Some(params) = f.get("rope_parameters").filter(|v| !v.is_null()) {
        match (
            params.get("full_attention"),
            params.get("sliding_attention"),
        ) {
            (None, None) => {
                let (theta, scaling) = rope_entry(&f, "rope_parameters", params)?;
                rope_base = theta.or(rope_base);
                rope_scaling = scaling.or(rope_scaling);
            }
            (full, sliding) => {
                if let Some(p) = full {
                    let (theta, scaling) = rope_entry(&f, "rope_parameters.full_attention", p)?;
                    rope_base = theta.or(rope_base);
                    rope_scaling = scaling.or(rope_scaling);
                }
                if let Some(p) = sliding {
                    let key = "rope_parameters.sliding_attention";
                    let (theta, scaling) = rope_entry(&f, key, p)?;
                    local_unscaled(key, &scaling)?;
                    rope_base_local = theta.or(rope_base_local);
                }
            }
        }
    }
    let rope_base = rope_base.unwrap_or(default_theta);
    let rope_base_local = rope_base_local.unwrap_or(10_000.0);

    let (sliding_window, sliding_pattern) = if gemma {
        let window = f.usize_opt("sliding_window")?.unwrap_or(4096);
        let layer_types: Option<Vec<String>> = match f.get("layer_types") {
            None => None,
            Some(v) => Some(
                serde_json::from_value(v.clone())
                    .map_err(|_| f.err("layer_types", "must be a list of strings"))?,
            ),
        };
        let configured = f.usize_opt("sliding_window_pattern")?.unwrap_or(6);
        let pattern = match &layer_types {
            Some(types) => match types.iter().position(|t| t == "full_attention") {
                Some(i) => i + 1,
                None => configured.max(n_layers + 1),
            },
            None => configured,
        };
        if let Some(types) = &layer_types {
            if types.len() != n_layers {
                return Err(f.err(
                    "layer_types",
                    &format!(
                        "lists {} layers, num_hidden_layers is {n_layers}",
                        types.len()
                    ),
                ));
            }
            for (l, t) in types.iter().enumerate() {
                let local = !(l + 1).is_multiple_of(pattern);
                let want = if local {
                    "sliding_attention"
                } else {
                    "full_attention"
                };
                if t != want {
                    return Err(f.err(
                        "layer_types",
                        &format!(
                            "layer {l} is `{t}`; only a periodic pattern (every {pattern}th layer global) is implemented"
                        ),
                    ));
                }
            }
        }
        (Some(window), pattern)
    } else {
        (None, 6)
    };

    let tied_default = gemma;
    let tied = match top.bool_opt("tie_word_embeddings")? {
        Some(t) => t,
        None => f.bool_opt("tie_word_embeddings")?.unwrap_or(tied_default),
    };
    let context_default = match family {
        Family::Llama => 2048,
        Family::Qwen2 => 32768,
        Family::Gemma3 => 131072,
    };
    Ok(ModelConfig {
        family,
        n_layers,
        d_model,
        d_ff: f.usize("intermediate_size")?,
        n_heads,
        n_kv_heads: f.usize_opt("num_key_value_heads")?.unwrap_or(n_heads),
        head_dim,
        rope_base,
        rms_eps: f.f64_opt("rms_norm_eps")?.unwrap_or(1e-6),
        vocab_size: f.usize("vocab_size")?,
        context_length: f
            .usize_opt("max_position_embeddings")?
            .unwrap_or(context_default),
        tied_embeddings: tied,
        embed_scale: gemma.then(|| (d_model as f64).sqrt()),
        qk_norm: gemma,
        post_norms: gemma,
        gelu_mlp: gemma,
        sliding_window,
        sliding_pattern,
        rope_base_local,
        rope_scaling,
    })
}

/// One safetensors file of a checkpoint.
struct Shard {
    path: PathBuf,
    tensors: MmapedSafetensors,
}

/// The weights of an HF checkpoint directory, served under GGUF tensor names.
pub struct HfWeights {
    pub dir: PathBuf,
    pub config: ModelConfig,
    shards: Vec<Shard>,
    /// HF tensor name -> index into `shards`.
    located: HashMap<String, usize>,
    /// The shard file the index says holds a tensor (for messages about missing tensors).
    indexed: HashMap<String, String>,
    /// `model.` or the language-model prefix of a multimodal checkpoint.
    prefix: String,
}

impl HfWeights {
    pub fn open(dir: &Path) -> Result<Self> {
        let config_path = dir.join("config.json");
        let config = config_from_json(&config_path, &read_json(&config_path)?)?;
        let index_path = dir.join("model.safetensors.index.json");
        let single = dir.join("model.safetensors");
        let mut indexed = HashMap::new();
        let files: Vec<PathBuf> = if index_path.is_file() {
            let index = read_json(&index_path)?;
            let map = index
                .get("weight_map")
                .and_then(Value::as_object)
                .ok_or_else(|| file_err(&index_path, "missing `weight_map` (tensor -> file)"))?;
            let mut names: Vec<String> = Vec::new();
            for (tensor, file) in map {
                let file = file.as_str().ok_or_else(|| {
                    file_err(
                        &index_path,
                        format!("`weight_map.{tensor}` must be a file name"),
                    )
                })?;
                if !names.iter().any(|n| n == file) {
                    names.push(file.to_string());
                }
                indexed.insert(tensor.clone(), file.to_string());
            }
            names.sort();
            names.into_iter().map(|n| dir.join(n)).collect()
        } else if single.is_file() {
            vec![single]
        } else {
            return Err(file_err(
                dir,
                "no model.safetensors or model.safetensors.index.json (save the model with safe_serialization)",
            ));
        };
        let mut shards = Vec::with_capacity(files.len());
        let mut located = HashMap::new();
        for path in files {
            if !path.is_file() {
                return Err(file_err(
                    &index_path,
                    format!("lists shard `{}`, which does not exist", path.display()),
                ));
            }
            // SAFETY: the mapping is read-only; checkpoints are not rewritten while a worker runs.
            let tensors = unsafe { MmapedSafetensors::new(&path) }
                .map_err(|e| file_err(&path, format!("not a readable safetensors file: {e}")))?;
            for (name, _) in tensors.tensors() {
                located.insert(name, shards.len());
            }
            shards.push(Shard { path, tensors });
        }
        let prefix = DECODER_PREFIXES
            .iter()
            .find(|p| located.contains_key(&format!("{p}embed_tokens.weight")))
            .ok_or_else(|| {
                file_err(
                    &shards[0].path,
                    "no tensor `model.embed_tokens.weight` (nor a multimodal language model's)",
                )
            })?
            .to_string();
        Ok(HfWeights {
            dir: dir.to_path_buf(),
            config,
            shards,
            located,
            indexed,
            prefix,
        })
    }

    /// The HF name of a GGUF-named tensor, or `None` when the format has no such tensor.
    pub fn hf_name(&self, gguf_name: &str) -> Option<String> {
        hf_tensor_name(gguf_name, self.config.family, &self.prefix)
    }

    fn missing(&self, hf: &str) -> LmError {
        let path = match self.indexed.get(hf) {
            Some(file) => self.dir.join(file),
            None if self.shards.len() > 1 || !self.indexed.is_empty() => {
                self.dir.join("model.safetensors.index.json")
            }
            None => self.shards[0].path.clone(),
        };
        let hint = if hf == "lm_head.weight" {
            " (config.json says the head is not tied to the embeddings)"
        } else {
            ""
        };
        file_err(&path, format!("tensor `{hf}` missing{hint}"))
    }

    /// An HF tensor as f32 on `device`.
    fn load_hf(&self, hf: &str, device: &Device) -> Result<Tensor> {
        let shard = &self.shards[*self.located.get(hf).ok_or_else(|| self.missing(hf))?];
        let view = shard
            .tensors
            .get(hf)
            .map_err(|e| file_err(&shard.path, format!("tensor `{hf}`: {e}")))?;
        let t = view.load(device).map_err(|e| {
            file_err(
                &shard.path,
                format!("tensor `{hf}` ({:?}): {e}", view.dtype()),
            )
        })?;
        if !matches!(t.dtype(), DType::F32 | DType::BF16 | DType::F16) {
            return Err(file_err(
                &shard.path,
                format!(
                    "tensor `{hf}` is {:?}; supported dtypes are bf16, f16, f32",
                    t.dtype()
                ),
            ));
        }
        Ok(t.to_dtype(DType::F32)?)
    }
}

impl WeightSource for HfWeights {
    fn model_config(&self) -> Result<ModelConfig> {
        Ok(self.config.clone())
    }

    fn has_tensor(&self, name: &str) -> bool {
        self.hf_name(name)
            .is_some_and(|hf| self.located.contains_key(&hf))
    }

    fn dense(&self, name: &str, device: &Device) -> Result<Tensor> {
        let hf = self.hf_name(name).ok_or_else(|| LmError::Tensor {
            path: self.dir.clone(),
            name: name.to_string(),
            reason: "no Hugging Face equivalent".to_string(),
        })?;
        let t = self.load_hf(&hf, device)?;
        // Gemma's RMSNorm multiplies by (1 + w); the decoder multiplies by its weight.
        if self.config.family == Family::Gemma3 && name.ends_with("norm.weight") {
            Ok((t + 1.0)?)
        } else {
            Ok(t)
        }
    }

    fn frozen(
        &self,
        name: &str,
        mode: WeightMode,
        _unpermute_heads: Option<usize>,
        device: &Device,
    ) -> Result<FrozenWeight> {
        FrozenWeight::from_dense(self.dense(name, device)?, mode)
    }

    fn qk_rows_interleaved(&self, _cfg: &ModelConfig) -> bool {
        false
    }
}

/// A special token as `tokenizer_config.json` writes it: a string or `{"content": ...}`.
fn token_text(v: &Value) -> Option<&str> {
    v.as_str()
        .or_else(|| v.get("content").and_then(Value::as_str))
}

/// Token ids of a `*_token_id` field: one id or a list.
fn token_ids(v: Option<&Value>) -> Vec<u32> {
    match v {
        Some(Value::Number(n)) => n.as_u64().map(|i| vec![i as u32]).unwrap_or_default(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_u64())
            .map(|i| i as u32)
            .collect(),
        _ => Vec::new(),
    }
}

/// The tokenizer of an HF checkpoint directory: `tokenizer.json` as is; BOS/EOS from
/// `tokenizer_config.json`, then `config.json`, then `generation_config.json`; every EOS id those
/// list also stops generation.
pub fn tokenizer_from_dir(dir: &Path) -> Result<GgufTokenizer> {
    let tk_path = dir.join("tokenizer.json");
    if !tk_path.is_file() {
        return Err(file_err(
            &tk_path,
            "missing (save the tokenizer next to the model: tokenizer.save_pretrained(dir))",
        ));
    }
    let inner = tokenizers::Tokenizer::from_file(&tk_path)
        .map_err(|e| file_err(&tk_path, format!("not a readable tokenizer: {e}")))?;
    let tc_path = dir.join("tokenizer_config.json");
    let tc = read_json_if_present(&tc_path)?.unwrap_or(Value::Null);
    let config = read_json(&dir.join("config.json"))?;
    let text_config = config.get("text_config").unwrap_or(&Value::Null);
    let generation =
        read_json_if_present(&dir.join("generation_config.json"))?.unwrap_or(Value::Null);

    let by_name = |key: &str| -> Result<Option<u32>> {
        match tc.get(key).and_then(token_text) {
            None => Ok(None),
            Some(text) => inner.token_to_id(text).map(Some).ok_or_else(|| {
                file_err(
                    &tc_path,
                    format!("`{key}` is `{text}`, which is not in tokenizer.json's vocabulary"),
                )
            }),
        }
    };
    let ids_of = |key: &str| -> Vec<u32> {
        let mut ids = token_ids(config.get(key));
        ids.extend(token_ids(text_config.get(key)));
        ids.extend(token_ids(generation.get(key)));
        ids
    };
    let eos_ids = ids_of("eos_token_id");
    let eos_id = match by_name("eos_token")? {
        Some(id) => id,
        None => *eos_ids.first().ok_or_else(|| {
            file_err(
                &tc_path,
                "no `eos_token` (nor `eos_token_id` in config.json or generation_config.json)",
            )
        })?,
    };
    let bos_id = match by_name("bos_token")? {
        Some(id) => Some(id),
        None => ids_of("bos_token_id").first().copied(),
    };
    // `add_bos_token` where the config says; otherwise whether tokenizer.json's post-processor
    // puts BOS first (Llama 3 style), since the runtime encodes without special tokens.
    let add_bos = match tc.get("add_bos_token").and_then(Value::as_bool) {
        Some(b) => b,
        None => match bos_id {
            Some(bos) => {
                let with = inner
                    .encode("a", true)
                    .map_err(|e| file_err(&tk_path, e.to_string()))?;
                with.get_ids().first() == Some(&bos)
            }
            None => false,
        },
    };
    let mut stop_ids = vec![eos_id];
    let turn_ends = ["<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|endoftext|>"];
    let named = turn_ends.iter().filter_map(|n| inner.token_to_id(n));
    for id in eos_ids.into_iter().chain(named) {
        if !stop_ids.contains(&id) {
            stop_ids.push(id);
        }
    }
    let vocab = inner.get_vocab_size(true) as u32;
    let pieces = (0..vocab)
        .map(|id| inner.decode(&[id], false).unwrap_or_default())
        .collect();
    Ok(GgufTokenizer {
        inner,
        bos_id,
        eos_id,
        stop_ids,
        add_bos,
        pieces,
    })
}

/// The chat template of an HF checkpoint directory: `chat_template.jinja` (transformers' own
/// precedence), else `tokenizer_config.json`'s `chat_template` (a string, or a list of named
/// templates of which `default` is used), else the family's turn format
/// ([`crate::chat::family_default_template`]).
pub fn template_from_dir(
    dir: &Path,
    family: crate::Family,
    tokenizer: &GgufTokenizer,
) -> Result<ChatTemplate> {
    let jinja = dir.join("chat_template.jinja");
    let tc_path = dir.join("tokenizer_config.json");
    let source = if jinja.is_file() {
        std::fs::read_to_string(&jinja).map_err(|source| LmError::Io {
            path: jinja.clone(),
            source,
        })?
    } else {
        let tc = read_json_if_present(&tc_path)?.unwrap_or(Value::Null);
        match tc.get("chat_template") {
            None | Some(Value::Null) => {
                let architecture = match family {
                    crate::Family::Llama => "llama",
                    crate::Family::Qwen2 => "qwen2",
                    crate::Family::Gemma3 => "gemma3",
                };
                crate::chat::family_default_template(architecture, tokenizer).to_string()
            }
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(named)) => {
                let pick = named
                    .iter()
                    .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
                    .or_else(|| named.first())
                    .and_then(|t| t.get("template").and_then(Value::as_str));
                pick.ok_or_else(|| {
                    file_err(
                        &tc_path,
                        "`chat_template` is a list without a {name, template} entry",
                    )
                })?
                .to_string()
            }
            Some(other) => {
                return Err(file_err(
                    &tc_path,
                    format!("`chat_template` must be a string or a list, found {other}"),
                ));
            }
        }
    };
    let piece = |id: Option<u32>| {
        id.and_then(|i| tokenizer.inner.id_to_token(i))
            .unwrap_or_default()
    };
    ChatTemplate::new(
        &source,
        &piece(tokenizer.bos_id),
        &piece(Some(tokenizer.eos_id)),
    )
    .map_err(|e| {
        let from = if jinja.is_file() { jinja } else { tc_path };
        file_err(&from, e.to_string())
    })
}
