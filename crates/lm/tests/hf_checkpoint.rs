//! Hugging Face checkpoint directories against transformers itself.
//!
//! `hf_checkpoint/make_checkpoints.py` (run with the reference venv's python, `EMORG_TEST_PY`) has
//! transformers build small random Llama, Qwen2 and Gemma 3 models, save them with
//! `save_pretrained` (one f32 and sharded, one f16 with biases and an untied head, one bf16 Gemma 3
//! with a sliding window shorter than the input, one f32 Gemma 3, a Llama with llama3 rope scaling
//! and a Gemma 3 with linear scaling of its global layers, both run past their original
//! context), save a BPE tokenizer trained with
//! the `tokenizers` library through `PreTrainedTokenizerFast`, and record transformers' float32
//! logits and token ids. emorg loads each directory through `ModelFiles::open` and must agree.
//!
//! Tolerances: bf16/f16 checkpoints are upcast exactly to f32 on both sides and both compute in f32,
//! so every dtype gets the f32 bound (1e-3; measured deltas are ~1e-6, float summation order). The
//! Q8_0 matmuls of `WeightMode::Quantized` round weights and activations to 8 bits per 32-value
//! block, so their bound is looser: 0.3 on logits spanning about -3..3 (measured 0.09 to 0.16), and
//! a few argmax swaps between near-tied logits are allowed.
//!
//! The error-message tests write their own safetensors directories and need no Python.

use emorg_lm::candle_core::{Device, Tensor};
use emorg_lm::{Family, HfWeights, ModelFiles, OpsMode, RopeScaling, WeightMode, WeightSource};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const SCRIPT: &str = include_str!("hf_checkpoint/make_checkpoints.py");
const MODELS: &[&str] = &[
    "llama-f32-sharded",
    "qwen2-f16-untied",
    "gemma3-bf16-sliding",
    "gemma3-f32",
    "llama3-rope-scaled",
    "gemma3-rope-linear",
];
const DENSE_TOLERANCE: f32 = 1e-3;
const Q8_TOLERANCE: f32 = 0.3;
/// Q8_0 may swap near-tied top logits of these random models (measured: at most 2 of 24).
const Q8_MAX_ARGMAX_FLIPS: usize = 4;
#[derive(serde::Deserialize)]
struct TextCase {
    text: String,
    ids: Vec<u32>,
    ids_with_specials: Vec<u32>,
}

#[derive(serde::Deserialize)]
struct Reference {
    dtype: String,
    input_ids: Vec<u32>,
    logits: Vec<Vec<f32>>,
    texts: Vec<TextCase>,
    messages: Vec<emorg_lm::Message>,
    chat: String,
}

/// The checkpoints, made once per script version (shared by the tests of this file through a
/// lock, since nextest runs each test in its own process). `None` with a printed reason when the
/// reference venv is not configured.
fn checkpoints() -> Option<PathBuf> {
    made_by_python("models", "make_checkpoints.py", SCRIPT, &[])
}

/// `OUT` made by `script` (in tests/hf_checkpoint/, text `source`) run as `script ARGS.. OUT` with
/// EMORG_TEST_PY, under CARGO_TARGET_TMPDIR/hf-checkpoints/`name`, remade when the script changes.
fn made_by_python(name: &str, script: &str, source: &str, args: &[&Path]) -> Option<PathBuf> {
    let Some(py) = std::env::var_os("EMORG_TEST_PY") else {
        eprintln!(
            "skipped: EMORG_TEST_PY is unset (the reference venv's python: `eval $(infra/py-reference.sh env)`)"
        );
        return None;
    };
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hf-checkpoints");
    std::fs::create_dir_all(&root).unwrap();
    let lock = std::fs::File::create(root.join(format!(".{name}.lock"))).unwrap();
    lock.lock().unwrap();
    let out = root.join(name);
    let stamp = out.join(script);
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(source) {
        let _ = std::fs::remove_dir_all(&out);
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/hf_checkpoint")
            .join(script);
        let status = Command::new(&py)
            .arg(&path)
            .args(args)
            .arg(&out)
            .env("HF_HUB_OFFLINE", "1")
            .status()
            .expect("running EMORG_TEST_PY");
        assert!(status.success(), "{script} failed: {status}");
        std::fs::write(&stamp, source).unwrap();
    }
    lock.unlock().unwrap();
    Some(out)
}

fn reference(dir: &Path) -> Reference {
    serde_json::from_slice(&std::fs::read(dir.join("reference.json")).unwrap()).unwrap()
}

/// Largest |emorg - transformers| over every position and vocabulary entry, and the positions
/// whose argmax differs.
fn logit_deltas(files: &ModelFiles, reference: &Reference, mode: WeightMode) -> (f32, Vec<usize>) {
    let model = files.decoder(mode, &Device::Cpu).unwrap();
    let ids = Tensor::new(reference.input_ids.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let hidden = model.forward_hidden(&ids, None, OpsMode::Infer).unwrap();
    let logits: Vec<Vec<f32>> = model
        .logits(&hidden)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_vec2()
        .unwrap();
    assert_eq!(logits.len(), reference.logits.len());
    let argmax = |row: &[f32]| {
        row.iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0
    };
    let mut max_delta = 0f32;
    let mut flips = Vec::new();
    for (pos, (ours, theirs)) in logits.iter().zip(&reference.logits).enumerate() {
        assert_eq!(ours.len(), theirs.len(), "vocabulary size");
        for (a, b) in ours.iter().zip(theirs) {
            max_delta = max_delta.max((a - b).abs());
        }
        if argmax(ours) != argmax(theirs) {
            flips.push(pos);
        }
    }
    (max_delta, flips)
}

#[test]
fn hf_checkpoints_give_transformers_logits() {
    let Some(root) = checkpoints() else { return };
    for name in MODELS {
        let dir = root.join(name);
        let reference = reference(&dir);
        let files = ModelFiles::open(&dir).unwrap();
        let (dense, flips) = logit_deltas(&files, &reference, WeightMode::Dense);
        eprintln!(
            "{name} ({}): dense max |delta logit| = {dense:.2e}",
            reference.dtype
        );
        assert!(
            dense <= DENSE_TOLERANCE,
            "{name}: dense max |delta logit| {dense}"
        );
        assert!(
            flips.is_empty(),
            "{name}: argmax differs at positions {flips:?}"
        );
        let (q8, q8_flips) = logit_deltas(&files, &reference, WeightMode::Quantized);
        eprintln!(
            "{name}: Q8_0 max |delta logit| = {q8:.2e}, argmax differs at {} of {} positions",
            q8_flips.len(),
            reference.input_ids.len()
        );
        assert!(q8 <= Q8_TOLERANCE, "{name}: Q8_0 max |delta logit| {q8}");
        assert!(
            q8_flips.len() <= Q8_MAX_ARGMAX_FLIPS,
            "{name}: Q8_0 argmax differs at positions {q8_flips:?}"
        );
    }
}

#[test]
fn hf_checkpoint_layouts_are_read_as_saved() {
    let Some(root) = checkpoints() else { return };
    let llama = ModelFiles::open(&root.join("llama-f32-sharded")).unwrap();
    assert_eq!(llama.config.family, Family::Llama);
    assert!(llama.config.tied_embeddings);
    assert!(!llama.weights.has_tensor("output.weight"));
    assert!(
        std::fs::read_dir(root.join("llama-f32-sharded"))
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".safetensors"))
            .count()
            > 1,
        "the llama checkpoint is meant to be sharded"
    );
    let qwen = ModelFiles::open(&root.join("qwen2-f16-untied")).unwrap();
    assert_eq!(qwen.config.family, Family::Qwen2);
    assert!(!qwen.config.tied_embeddings);
    assert!(qwen.weights.has_tensor("blk.0.attn_q.bias"));
    assert!(!qwen.weights.has_tensor("blk.0.attn_output.bias"));
    let gemma = ModelFiles::open(&root.join("gemma3-bf16-sliding")).unwrap();
    assert_eq!(gemma.config.family, Family::Gemma3);
    assert_eq!(gemma.config.sliding_window, Some(8));
    assert_eq!(
        (0..4)
            .map(|l| gemma.config.is_local_layer(l))
            .collect::<Vec<_>>(),
        [true, false, true, false]
    );
    assert_eq!(
        (gemma.config.rope_base, gemma.config.rope_base_local),
        (1e6, 1e4)
    );
    // Gemma stores w and applies 1 + w; the decoder gets 1 + w.
    let stored = {
        let st = unsafe {
            emorg_lm::candle_core::safetensors::MmapedSafetensors::new(
                root.join("gemma3-bf16-sliding/model.safetensors"),
            )
        }
        .unwrap();
        st.load("model.norm.weight", &Device::Cpu)
            .unwrap()
            .to_dtype(emorg_lm::candle_core::DType::F32)
            .unwrap()
    };
    let served = gemma
        .weights
        .dense("output_norm.weight", &Device::Cpu)
        .unwrap();
    let diff: Vec<f32> = (served - stored).unwrap().to_vec1().unwrap();
    assert!(diff.iter().all(|d| (d - 1.0).abs() < 1e-6), "{diff:?}");
}

/// The two scaled checkpoints are read with their scaling, and it matters: without it the logits
/// past the first position are far outside the parity bound (so the parity above has teeth).
#[test]
fn rope_scaling_is_read_from_config_and_changes_the_logits() {
    let Some(root) = checkpoints() else { return };
    let llama = ModelFiles::open(&root.join("llama3-rope-scaled")).unwrap();
    assert_eq!(
        llama.config.rope_scaling,
        Some(RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_context: 32
        })
    );
    let gemma = ModelFiles::open(&root.join("gemma3-rope-linear")).unwrap();
    assert_eq!(
        gemma.config.rope_scaling,
        Some(RopeScaling::Linear { factor: 8.0 })
    );
    assert_eq!(
        (gemma.config.rope_base, gemma.config.rope_base_local),
        (1e6, 1e4)
    );
    for name in ["llama3-rope-scaled", "gemma3-rope-linear"] {
        let reference = reference(&root.join(name));
        assert!(reference.input_ids.len() > 32, "past the original context");
        // The same checkpoint with plain rope (same bases) in its config.json.
        let tmp = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(root.join(name)).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, tmp.path().join(path.file_name().unwrap())).unwrap();
        }
        let config_path = tmp.path().join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
        let params = &mut config["rope_parameters"];
        let scaled = if params.get("full_attention").is_some() {
            &mut params["full_attention"]
        } else {
            params
        };
        let theta = scaled["rope_theta"].clone();
        *scaled = serde_json::json!({ "rope_type": "default", "rope_theta": theta });
        std::fs::write(&config_path, config.to_string()).unwrap();
        let files = ModelFiles::open(tmp.path()).unwrap();
        assert_eq!(files.config.rope_scaling, None);
        let (unscaled, _) = logit_deltas(&files, &reference, WeightMode::Dense);
        eprintln!("{name} without its rope scaling: max |delta logit| = {unscaled:.2e}");
        assert!(
            unscaled > 100.0 * DENSE_TOLERANCE,
            "{name}: unscaled rope is as close as {unscaled}"
        );
    }
}

#[test]
fn hf_tokenizer_and_template_match_transformers() {
    let Some(root) = checkpoints() else { return };
    for name in MODELS {
        let dir = root.join(name);
        let reference = reference(&dir);
        let files = ModelFiles::open(&dir).unwrap();
        let tok = &files.tokenizer;
        for case in &reference.texts {
            let ids = tok.encode(&case.text).unwrap();
            assert_eq!(ids, case.ids, "{name}: {:?}", case.text);
            let mut with_specials = Vec::new();
            if tok.add_bos {
                with_specials.push(tok.bos_id.unwrap());
            }
            with_specials.extend(&ids);
            assert_eq!(
                with_specials, case.ids_with_specials,
                "{name}: {:?} with BOS",
                case.text
            );
            // Special tokens kept, so the chat-marked text round-trips too.
            assert_eq!(
                tok.inner.decode(&ids, false).unwrap(),
                case.text,
                "{name}: round trip"
            );
        }
        assert_eq!(
            files.template.render(&reference.messages, true).unwrap(),
            reference.chat,
            "{name}: chat template"
        );
        assert_eq!(tok.eos_id, tok.inner.token_to_id("<|im_end|>").unwrap());
    }
}

/// Gemma 3's multimodal layout: `model_type: gemma3` with the language model's settings under
/// `text_config` and its tensors under `model.language_model.` (what transformers 5 writes for
/// Gemma3ForConditionalGeneration), made from the text-only checkpoint by moving both.
#[test]
fn gemma3_multimodal_layout_loads_the_language_model() {
    let Some(root) = checkpoints() else { return };
    let src = root.join("gemma3-f32");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for f in [
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "generation_config.json",
    ] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let text_config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("config.json")).unwrap()).unwrap();
    let wrapped = serde_json::json!({
        "model_type": "gemma3",
        "architectures": ["Gemma3ForConditionalGeneration"],
        "text_config": text_config,
        "vision_config": {"model_type": "siglip_vision_model"},
        "tie_word_embeddings": true,
    });
    std::fs::write(dir.join("config.json"), wrapped.to_string()).unwrap();
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let renamed: Vec<(String, safetensors::tensor::TensorView)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n.replacen("model.", "model.language_model.", 1), v))
        .collect();
    safetensors::serialize_to_file(renamed, None, &dir.join("model.safetensors")).unwrap();

    let reference = reference(&src);
    let files = ModelFiles::open(dir).unwrap();
    assert_eq!(files.config.family, Family::Gemma3);
    let (dense, flips) = logit_deltas(&files, &reference, WeightMode::Dense);
    assert!(dense <= DENSE_TOLERANCE, "max |delta logit| {dense}");
    assert!(flips.is_empty());
}

// --- error messages (no Python needed) ---

fn llama_config() -> serde_json::Value {
    serde_json::json!({
        "model_type": "llama",
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 16,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": true,
    })
}

/// Every tensor of the 1-layer llama above, f32 zeros.
fn llama_tensors() -> Vec<(String, Vec<usize>)> {
    let mut t = vec![
        ("model.embed_tokens.weight".to_string(), vec![16, 32]),
        ("model.norm.weight".to_string(), vec![32]),
    ];
    let l = "model.layers.0";
    for (name, shape) in [
        ("input_layernorm.weight", vec![32]),
        ("post_attention_layernorm.weight", vec![32]),
        ("self_attn.q_proj.weight", vec![32, 32]),
        ("self_attn.k_proj.weight", vec![16, 32]),
        ("self_attn.v_proj.weight", vec![16, 32]),
        ("self_attn.o_proj.weight", vec![32, 32]),
        ("mlp.gate_proj.weight", vec![64, 32]),
        ("mlp.up_proj.weight", vec![64, 32]),
        ("mlp.down_proj.weight", vec![32, 64]),
    ] {
        t.push((format!("{l}.{name}"), shape));
    }
    t
}

/// Write `tensors` as two shards with an index that lists every tensor of `index_lists`.
fn write_sharded(
    dir: &Path,
    tensors: &[(String, Vec<usize>)],
    index_lists: &[(String, Vec<usize>)],
) {
    let half = tensors.len() / 2;
    let files = [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ];
    let mut weight_map = serde_json::Map::new();
    for (i, part) in [&tensors[..half], &tensors[half..]].into_iter().enumerate() {
        let data: Vec<(String, Vec<u8>, Vec<usize>)> = part
            .iter()
            .map(|(n, s)| {
                (
                    n.clone(),
                    vec![0u8; 4 * s.iter().product::<usize>()],
                    s.clone(),
                )
            })
            .collect();
        let views: HashMap<String, safetensors::tensor::TensorView> = data
            .iter()
            .map(|(n, b, s)| {
                (
                    n.clone(),
                    safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                        .unwrap(),
                )
            })
            .collect();
        safetensors::serialize_to_file(views, None, &dir.join(files[i])).unwrap();
    }
    for (i, (n, _)) in index_lists.iter().enumerate() {
        let file = if i < half { files[0] } else { files[1] };
        weight_map.insert(n.clone(), file.into());
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
}

#[test]
fn missing_config_key_names_file_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = llama_config();
    cfg.as_object_mut().unwrap().remove("num_attention_heads");
    std::fs::write(tmp.path().join("config.json"), cfg.to_string()).unwrap();
    let err = HfWeights::open(tmp.path())
        .err()
        .expect("must fail")
        .to_string();
    assert!(
        err.ends_with("config.json: missing `num_attention_heads`"),
        "{err}"
    );
    let mut cfg = llama_config();
    cfg["model_type"] = "mistral".into();
    std::fs::write(tmp.path().join("config.json"), cfg.to_string()).unwrap();
    let err = HfWeights::open(tmp.path())
        .err()
        .expect("must fail")
        .to_string();
    assert!(
        err.contains("config.json: `model_type` `mistral` is not supported"),
        "{err}"
    );
    let mut cfg = llama_config();
    cfg["rope_scaling"] = serde_json::json!({"rope_type": "yarn", "factor": 32.0});
    std::fs::write(tmp.path().join("config.json"), cfg.to_string()).unwrap();
    let err = HfWeights::open(tmp.path())
        .err()
        .expect("must fail")
        .to_string();
    assert!(
        err.contains("`rope_scaling` has rope_type `yarn`, which this decoder does not implement"),
        "{err}"
    );
}

#[test]
fn tensor_missing_from_its_shard_names_the_shard() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("config.json"), llama_config().to_string()).unwrap();
    let all = llama_tensors();
    // The index promises mlp.up_proj in shard 2, which lacks it.
    let without: Vec<_> = all
        .iter()
        .filter(|(n, _)| n != "model.layers.0.mlp.up_proj.weight")
        .cloned()
        .collect();
    write_sharded(tmp.path(), &without, &all);
    // Keep the index's file assignment consistent with where tensors were written.
    let index_path = tmp.path().join("model.safetensors.index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    index["weight_map"]["model.layers.0.mlp.up_proj.weight"] =
        "model-00002-of-00002.safetensors".into();
    std::fs::write(&index_path, index.to_string()).unwrap();

    let weights = HfWeights::open(tmp.path()).unwrap();
    let err = emorg_lm::Decoder::load(&weights, WeightMode::Dense, &Device::Cpu)
        .err()
        .expect("must fail")
        .to_string();
    assert!(
        err.ends_with(
            "model-00002-of-00002.safetensors: tensor `model.layers.0.mlp.up_proj.weight` missing"
        ),
        "{err}"
    );

    // With every tensor present the same directory loads and runs.
    write_sharded(tmp.path(), &all, &all);
    let weights = HfWeights::open(tmp.path()).unwrap();
    let model = emorg_lm::Decoder::load(&weights, WeightMode::Dense, &Device::Cpu).unwrap();
    let ids = Tensor::new(&[[1u32, 2, 3]], &Device::Cpu).unwrap();
    let hidden = model.forward_hidden(&ids, None, OpsMode::Infer).unwrap();
    assert_eq!(model.logits(&hidden).unwrap().dims(), [1, 3, 16]);
}

/// The real SmolLM2-135M-Instruct, converted from its GGUF by transformers' own GGUF reader and
/// saved as a bf16 HF checkpoint (`convert_gguf.py`): emorg on that directory against transformers
/// on it. Measured max |delta logit| 6.1e-5 over a vocabulary of 49152 with logits in -28..16.
#[test]
fn real_smollm2_checkpoint_written_by_transformers_matches_its_logits() {
    let Some(gguf) = emorg_lm::testing::cached_model("smollm2-135m-instruct") else {
        return;
    };
    let models = gguf.parent().unwrap();
    let name = Path::new(gguf.file_name().unwrap());
    let Some(dir) = made_by_python(
        "smollm2",
        "convert_gguf.py",
        include_str!("hf_checkpoint/convert_gguf.py"),
        &[models, name],
    ) else {
        return;
    };
    #[derive(serde::Deserialize)]
    struct Real {
        text: String,
        ids: Vec<u32>,
        last_logits: Vec<f32>,
        argmax: Vec<u32>,
    }
    let real: Real = serde_json::from_slice(&std::fs::read(dir.join("ref.json")).unwrap()).unwrap();
    let files = ModelFiles::open(&dir).unwrap();
    assert_eq!(files.tokenizer.encode(&real.text).unwrap(), real.ids);
    let model = files.decoder(WeightMode::Dense, &Device::Cpu).unwrap();
    let ids = Tensor::new(real.ids.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let hidden = model.forward_hidden(&ids, None, OpsMode::Infer).unwrap();
    let logits = model.logits(&hidden).unwrap().squeeze(0).unwrap();
    let argmax: Vec<u32> = logits.argmax(1).unwrap().to_vec1().unwrap();
    assert_eq!(argmax, real.argmax);
    let last: Vec<f32> = logits.get(real.ids.len() - 1).unwrap().to_vec1().unwrap();
    let max = last
        .iter()
        .zip(&real.last_logits)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    eprintln!("smollm2 (HF, bf16): max |delta logit| = {max:.2e}");
    assert!(max <= DENSE_TOLERANCE, "max |delta logit| {max}");
}
