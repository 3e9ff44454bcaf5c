//! Dense parity against candle-transformers' own (non-quantized) model for each family, on the
//! same weights: the GGUF is dequantized to f32 and written as an HF checkpoint
//! (`emorg_lm::testing::write_hf_checkpoint_from_gguf`), candle-transformers' `llama`, `qwen2` or
//! `gemma3` model reads that checkpoint through its own VarBuilder, and its last-position logits
//! are compared with emorg's dense decoder run on the GGUF itself. Both sides compute in f32, so
//! the bound is float rounding (1e-3 on logits spanning tens), not quantization error.
//!
//! Real files: SmolLM2-135M (llama) and gemma-3-270m (gemma3), skipped with a notice when absent
//! from the model cache. qwen2 runs on a tiny random qwen2 GGUF written by the test (biases, untied
//! head): the real 1.5B model would be a 6 GB f32 checkpoint; it is checked exactly against
//! `quantized_qwen2` in real_models.rs instead. The emorg HF loader reading the written checkpoint
//! is checked too, so each family's three paths (GGUF, HF directory, candle-transformers) agree.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use emorg_lm::{Decoder, GgufFile, HfWeights, WeightMode};
use std::path::Path;

/// Texts of ordinary length (under the 512-token Gemma window: candle-transformers' sliding mask
/// keeps one more position than transformers' and llama.cpp's, so longer inputs would differ by
/// design, not by a bug on either side).
const TEXTS: &[&str] = &[
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "fn main() {\n    let x: Vec<u32> = (0..10).collect();\n    println!(\"{x:?}\");\n}\n",
    "Prices rose 12.5% in 2024; café ümlaut 🚀 and 1234567890 digits.",
];

fn last_logits(model: &Decoder, ids: &[u32]) -> Vec<f32> {
    emorg_lm::testing::last_logits(model, ids).unwrap()
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "vocabulary sizes differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn argmax(v: &[f32]) -> usize {
    emorg_lm::generate::argmax(v) as usize
}

/// candle-transformers' model for one family, behind one call: ids -> last-position logits.
type Reference = Box<dyn FnMut(&[u32]) -> Vec<f32>>;

fn reference(family: emorg_lm::Family, dir: &Path) -> Reference {
    use candle_transformers::models::{gemma3, llama, qwen2};
    let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
    // SAFETY: the test wrote the file and nothing modifies it while mapped.
    let vb = unsafe {
        VarBuilder::from_mmaped_safetensors(
            &[dir.join("model.safetensors")],
            DType::F32,
            &Device::Cpu,
        )
    }
    .unwrap();
    let input = |ids: &[u32]| {
        Tensor::new(ids, &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap()
    };
    match family {
        emorg_lm::Family::Llama => {
            let cfg: llama::LlamaConfig = serde_json::from_str(&config).unwrap();
            let cfg = cfg.into_config(false);
            let model = llama::Llama::load(vb, &cfg).unwrap();
            Box::new(move |ids| {
                // A fresh cache per text: candle's llama keeps keys across calls otherwise.
                let mut cache = llama::Cache::new(false, DType::F32, &cfg, &Device::Cpu).unwrap();
                flat(&model.forward(&input(ids), 0, &mut cache).unwrap())
            })
        }
        emorg_lm::Family::Qwen2 => {
            let cfg: qwen2::Config = serde_json::from_str(&config).unwrap();
            let mut model = qwen2::ModelForCausalLM::new(&cfg, vb).unwrap();
            Box::new(move |ids| {
                model.clear_kv_cache();
                flat(&model.forward(&input(ids), 0).unwrap())
            })
        }
        emorg_lm::Family::Gemma3 => {
            let cfg: gemma3::Config = serde_json::from_str(&config).unwrap();
            let mut model = gemma3::Model::new(false, &cfg, vb).unwrap();
            Box::new(move |ids| {
                model.clear_kv_cache();
                flat(&model.forward(&input(ids), 0).unwrap())
            })
        }
    }
}

/// Max |delta logit| of emorg's dense decoder (GGUF and HF directory) against candle-transformers
/// over `texts`; asserts argmax equality on every text.
fn parity(gguf: &Path, texts: &[Vec<u32>]) -> (f32, f32) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hf");
    emorg_lm::testing::write_hf_checkpoint_from_gguf(gguf, &dir).unwrap();
    let file = GgufFile::open(gguf).unwrap();
    let ours = Decoder::load(&file, WeightMode::Dense, &Device::Cpu).unwrap();
    let family = ours.cfg.family;
    let (mut vs_reference, mut vs_hf) = (0.0f32, 0.0f32);
    {
        let hf = HfWeights::open(&dir).unwrap();
        let from_hf = Decoder::load(&hf, WeightMode::Dense, &Device::Cpu).unwrap();
        for ids in texts {
            vs_hf = vs_hf.max(max_abs_diff(
                &last_logits(&ours, ids),
                &last_logits(&from_hf, ids),
            ));
        }
    }
    let mut theirs = reference(family, &dir);
    for ids in texts {
        let (a, b) = (last_logits(&ours, ids), theirs(ids));
        assert_eq!(
            argmax(&a),
            argmax(&b),
            "{family:?}: argmax differs on {ids:?}"
        );
        vs_reference = vs_reference.max(max_abs_diff(&a, &b));
    }
    eprintln!(
        "{family:?} dense: max|delta logit| vs candle-transformers {vs_reference:.2e}, GGUF vs HF dir {vs_hf:.2e} over {} texts",
        texts.len()
    );
    (vs_reference, vs_hf)
}

fn real_texts(gguf: &Path) -> Vec<Vec<u32>> {
    let file = GgufFile::open(gguf).unwrap();
    let tok = emorg_lm::GgufTokenizer::from_gguf(&file).unwrap();
    TEXTS.iter().map(|t| tok.encode(t).unwrap()).collect()
}

#[test]
fn smollm2_dense_matches_candle_transformers_llama() {
    let Some(path) = emorg_lm::testing::cached_model("smollm2-135m-instruct") else {
        return;
    };
    let (vs_reference, vs_hf) = parity(&path, &real_texts(&path));
    assert!(
        vs_reference < 1e-3,
        "llama vs candle-transformers: {vs_reference}"
    );
    assert!(vs_hf < 1e-4, "llama GGUF vs HF directory: {vs_hf}");
}

#[test]
fn gemma3_dense_matches_candle_transformers_gemma3() {
    let Some(path) = emorg_lm::testing::cached_model("gemma-3-270m") else {
        return;
    };
    let texts = real_texts(&path);
    assert!(
        texts.iter().all(|t| t.len() < 512),
        "texts stay inside the window"
    );
    let (vs_reference, vs_hf) = parity(&path, &texts);
    assert!(
        vs_reference < 1e-3,
        "gemma3 vs candle-transformers: {vs_reference}"
    );
    assert!(vs_hf < 1e-4, "gemma3 GGUF vs HF directory: {vs_hf}");
}

#[test]
fn tiny_qwen2_and_llama_dense_match_candle_transformers() {
    let tmp = tempfile::tempdir().unwrap();
    // Byte-level ids, long enough for attention to mix positions.
    let texts: Vec<Vec<u32>> = TEXTS
        .iter()
        .map(|t| t.bytes().map(u32::from).collect())
        .collect();
    for qwen2 in [true, false] {
        let gguf = tmp.path().join(format!("tiny-{qwen2}.gguf"));
        let spec = emorg_lm::testing::TinySpec {
            qwen2,
            n_layers: 3,
            d_model: 64,
            d_ff: 128,
            n_heads: 4,
            n_kv_heads: 2,
            seed: 7,
        };
        emorg_lm::testing::write_tiny_gguf(&gguf, spec).unwrap();
        let (vs_reference, vs_hf) = parity(&gguf, &texts);
        assert!(
            vs_reference < 1e-4,
            "tiny (qwen2 {qwen2}) vs candle-transformers: {vs_reference}"
        );
        assert!(
            vs_hf < 1e-5,
            "tiny (qwen2 {qwen2}) GGUF vs HF directory: {vs_hf}"
        );
    }
}
