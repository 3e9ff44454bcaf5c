//! Rope scaling from GGUF metadata: llama.cpp's `rope_freqs` tensor (what its converter writes for
//! Llama 3.1's llama3 scaling) and `rope.scaling.type = linear` give the same logits as the same
//! weights in a Hugging Face directory whose config.json asks for that scaling (which
//! hf_checkpoint.rs holds against transformers itself); any other scaling type is refused by name.
//! No Python: the models are tiny GGUFs written here.

use emorg_lm::candle_core::quantized::gguf_file::Value;
use emorg_lm::candle_core::{Device, Tensor};
use emorg_lm::testing::{TinySpec, rewrite_gguf, write_hf_checkpoint_from_gguf, write_tiny_gguf};
use emorg_lm::{ModelFiles, OpsMode, RopeScaling, WeightMode};
use std::path::Path;

/// Tiny llama: head size 8, rope base 10000, so the four frequencies have wavelengths 6.3, 63, 628
/// and 6283 positions. With an original context of 64 and low/high factors 1/4 the first is high
/// (kept), the second in the smoothed band, the last two low (divided by the factor).
const FACTOR: f32 = 8.0;
const ORIGINAL_CONTEXT: f32 = 64.0;
const LOW: f32 = 1.0;
const HIGH: f32 = 4.0;
/// Positions run past the original context.
const N_TOKENS: usize = 100;

fn logits(path: &Path) -> Vec<Vec<f32>> {
    let files = ModelFiles::open(path).unwrap();
    let model = files.decoder(WeightMode::Dense, &Device::Cpu).unwrap();
    let ids: Vec<u32> = (0..N_TOKENS as u32).map(|i| (i * 37 + 11) % 256).collect();
    let ids = Tensor::new(ids.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let hidden = model.forward_hidden(&ids, None, OpsMode::Infer).unwrap();
    model
        .logits(&hidden)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_vec2()
        .unwrap()
}

fn max_delta(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f32::max)
}

/// llama.cpp's convert_hf_to_gguf.py for llama3 scaling: per frequency, 1 (high), the factor
/// (low), or 1 / ((1 - smooth) / factor + smooth) in between.
fn llama_cpp_rope_freqs(head_dim: usize, base: f32) -> Vec<f32> {
    let (low_wavelen, high_wavelen) = (ORIGINAL_CONTEXT / LOW, ORIGINAL_CONTEXT / HIGH);
    (0..head_dim / 2)
        .map(|i| {
            let freq = 1.0 / base.powf(2.0 * i as f32 / head_dim as f32);
            let wavelen = 2.0 * std::f32::consts::PI / freq;
            if wavelen < high_wavelen {
                1.0
            } else if wavelen > low_wavelen {
                FACTOR
            } else {
                let smooth = (ORIGINAL_CONTEXT / wavelen - LOW) / (HIGH - LOW);
                1.0 / ((1.0 - smooth) / FACTOR + smooth)
            }
        })
        .collect()
}

fn set_config(dir: &Path, key: &str, value: serde_json::Value) {
    let path = dir.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config[key] = value;
    std::fs::write(&path, config.to_string()).unwrap();
}

#[test]
fn llama3_rope_freqs_in_a_gguf_match_llama3_in_a_config() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain.gguf");
    write_tiny_gguf(&plain, TinySpec::default()).unwrap();
    let factors = llama_cpp_rope_freqs(8, 10_000.0);
    assert_eq!(factors[0], 1.0);
    assert!(factors[1] > 1.0 && factors[1] < FACTOR, "{factors:?}");
    assert_eq!(&factors[2..], &[FACTOR, FACTOR]);
    let scaled = tmp.path().join("llama3.gguf");
    let tensor = Tensor::new(factors.as_slice(), &Device::Cpu).unwrap();
    rewrite_gguf(
        &plain,
        &scaled,
        &[],
        &[("rope_freqs.weight".to_string(), tensor)],
    )
    .unwrap();
    let files = ModelFiles::open(&scaled).unwrap();
    assert_eq!(
        files.config.rope_scaling,
        Some(RopeScaling::FreqFactors {
            factors: factors.clone()
        })
    );

    // The same weights as a checkpoint directory asking for llama3 scaling.
    let dir = tmp.path().join("hf");
    write_hf_checkpoint_from_gguf(&plain, &dir).unwrap();
    set_config(
        &dir,
        "rope_scaling",
        serde_json::json!({
            "rope_type": "llama3",
            "factor": FACTOR,
            "low_freq_factor": LOW,
            "high_freq_factor": HIGH,
            "original_max_position_embeddings": ORIGINAL_CONTEXT as usize,
        }),
    );
    let (gguf, hf, unscaled) = (logits(&scaled), logits(&dir), logits(&plain));
    let same = max_delta(&gguf, &hf);
    let changed = max_delta(&gguf, &unscaled);
    eprintln!("llama3: GGUF rope_freqs vs config {same:.2e}; vs unscaled {changed:.2e}");
    assert!(same < 1e-4, "rope_freqs and llama3 config differ by {same}");
    assert!(changed > 1e-2, "the scaling changed nothing ({changed})");
    // Position 0 is not rotated, so it is the same with or without scaling.
    assert!(max_delta(&gguf[..1], &unscaled[..1]) < 1e-5);
}

#[test]
fn linear_rope_scaling_from_gguf_metadata_matches_its_config() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain.gguf");
    write_tiny_gguf(&plain, TinySpec::default()).unwrap();
    let scaled = tmp.path().join("linear.gguf");
    rewrite_gguf(
        &plain,
        &scaled,
        &[
            (
                "llama.rope.scaling.type".into(),
                Value::String("linear".into()),
            ),
            ("llama.rope.scaling.factor".into(), Value::F32(4.0)),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(
        ModelFiles::open(&scaled).unwrap().config.rope_scaling,
        Some(RopeScaling::Linear { factor: 4.0 })
    );
    // Written out, the checkpoint's config.json carries `rope_scaling: linear` and reads back.
    let dir = tmp.path().join("hf");
    write_hf_checkpoint_from_gguf(&scaled, &dir).unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["rope_scaling"]["rope_type"], "linear");
    let (gguf, hf, unscaled) = (logits(&scaled), logits(&dir), logits(&plain));
    assert!(max_delta(&gguf, &hf) < 1e-4);
    assert!(max_delta(&gguf, &unscaled) > 1e-2);
}

/// A file name, the metadata it adds, and what the refusal must say.
type Case = (&'static str, Vec<(String, Value)>, &'static [&'static str]);

#[test]
fn unknown_or_incomplete_rope_scaling_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain.gguf");
    write_tiny_gguf(&plain, TinySpec::default()).unwrap();
    let cases: [Case; 3] = [
        (
            "yarn.gguf",
            vec![(
                "llama.rope.scaling.type".into(),
                Value::String("yarn".into()),
            )],
            &["`llama.rope.scaling.type`", "is `yarn`", "linear, llama3"],
        ),
        (
            "nofactor.gguf",
            vec![(
                "llama.rope.scaling.type".into(),
                Value::String("linear".into()),
            )],
            &["`llama.rope.scaling.factor`", "is missing"],
        ),
        (
            "shrink.gguf",
            vec![
                (
                    "llama.rope.scaling.type".into(),
                    Value::String("linear".into()),
                ),
                ("llama.rope.scaling.factor".into(), Value::F32(0.5)),
            ],
            &["`llama.rope.scaling.factor`", "is 0.5"],
        ),
    ];
    for (name, meta, says) in cases {
        let path = tmp.path().join(name);
        rewrite_gguf(&plain, &path, &meta, &[]).unwrap();
        let err = ModelFiles::open(&path).err().expect("refused").to_string();
        assert!(err.contains(name), "names the file: {err}");
        for s in says {
            assert!(err.contains(s), "{name}: {s:?} in {err}");
        }
    }
    // A rope_freqs tensor of the wrong length.
    let path = tmp.path().join("short.gguf");
    let short = Tensor::new(&[1f32, 2.0][..], &Device::Cpu).unwrap();
    rewrite_gguf(&plain, &path, &[], &[("rope_freqs.weight".into(), short)]).unwrap();
    let err = ModelFiles::open(&path).err().expect("refused").to_string();
    assert!(
        err.contains("rope_freqs.weight")
            && err.contains("has 2 factors")
            && err.contains("4 frequencies"),
        "{err}"
    );

    // In a config.json: the key path, the type and what is implemented.
    let dir = tmp.path().join("hf");
    write_hf_checkpoint_from_gguf(&plain, &dir).unwrap();
    set_config(
        &dir,
        "rope_scaling",
        serde_json::json!({ "rope_type": "dynamic", "factor": 2.0 }),
    );
    let err = ModelFiles::open(&dir).err().expect("refused").to_string();
    assert!(
        err.contains("config.json")
            && err.contains("rope_scaling")
            && err.contains("`dynamic`")
            && err.contains("linear, llama3"),
        "{err}"
    );
    set_config(
        &dir,
        "rope_scaling",
        serde_json::json!({ "rope_type": "llama3", "factor": 8.0 }),
    );
    let err = ModelFiles::open(&dir).err().expect("refused").to_string();
    assert!(
        err.contains("rope_scaling.low_freq_factor") && err.contains("llama3"),
        "{err}"
    );
}
