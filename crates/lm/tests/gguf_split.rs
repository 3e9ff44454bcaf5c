//! Split GGUF models: the real SmolLM2 GGUF split into parts by gguf-py (the llama.cpp project's
//! Python GGUF writer, `split_max_tensors`) opens through its first part and gives the very same
//! tokens and logits as the single file; wrong or missing parts are refused with the path.
//! Needs EMORG_TEST_PY (the reference venv's python: `eval $(infra/py-reference.sh env)`) and the
//! cached model; skips with the reason otherwise.

use emorg_lm::candle_core::{Device, Tensor};
use emorg_lm::{ModelFiles, OpsMode, WeightMode};
use std::path::{Path, PathBuf};
use std::process::Command;

fn smollm2() -> Option<PathBuf> {
    emorg_lm::testing::cached_model("smollm2-135m-instruct")
}

/// The model split into 4 parts, in a fresh directory; None (with the reason printed) to skip.
fn split_model(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let Some(py) = std::env::var_os("EMORG_TEST_PY") else {
        eprintln!("skipped: EMORG_TEST_PY is unset (eval $(infra/py-reference.sh env))");
        return None;
    };
    let single = smollm2()?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gguf_split/split_gguf.py");
    // SmolLM2 has 272 tensors: at most 80 per part gives 4 parts.
    let status = Command::new(py)
        .arg(&script)
        .arg(&single)
        .arg(dir.join("smol.gguf"))
        .arg("80")
        .status()
        .expect("running EMORG_TEST_PY");
    assert!(status.success(), "split_gguf.py failed: {status}");
    Some((single, dir.join("smol-00001-of-00004.gguf")))
}

fn last_logits(files: &ModelFiles, ids: &[u32]) -> Vec<f32> {
    let model = files.decoder(WeightMode::Dense, &Device::Cpu).unwrap();
    let x = Tensor::new(ids, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let h = model.forward_hidden(&x, None, OpsMode::Infer).unwrap();
    model
        .logits(&h)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
}

#[test]
fn split_gguf_equals_the_single_file_and_bad_parts_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((single, first)) = split_model(tmp.path()) else {
        return;
    };
    for i in 1..=4 {
        let part = tmp.path().join(format!("smol-{i:05}-of-00004.gguf"));
        assert!(part.is_file(), "gguf-py wrote no {}", part.display());
    }
    let a = ModelFiles::open(&single).unwrap();
    let b = ModelFiles::open(&first).unwrap();
    assert_eq!(a.config, b.config);
    let text = "Hello! What is 12345 + 678? Explain step by step.";
    let ids = a.tokenizer.encode(text).unwrap();
    assert_eq!(ids, b.tokenizer.encode(text).unwrap());
    let la = last_logits(&a, &ids);
    let lb = last_logits(&b, &ids);
    assert_eq!(la.len(), lb.len());
    // The same bytes of every tensor, read from another file: bit-identical logits.
    assert!(la.iter().zip(&lb).all(|(x, y)| x.to_bits() == y.to_bits()));

    // Opening a later part names what to open instead.
    let second = tmp.path().join("smol-00002-of-00004.gguf");
    let err = ModelFiles::open(&second)
        .err()
        .expect("part 2 must be refused")
        .to_string();
    assert!(
        err.contains("part 2 of 4") && err.contains("00001-of-00004"),
        "{err}"
    );
    // A missing part is named.
    let third = tmp.path().join("smol-00003-of-00004.gguf");
    std::fs::remove_file(&third).unwrap();
    let err = ModelFiles::open(&first)
        .err()
        .expect("a missing part must be refused")
        .to_string();
    assert!(
        err.contains("smol-00003-of-00004.gguf") && err.contains("missing"),
        "{err}"
    );
    // A renamed first part cannot find its siblings: the error says why.
    let renamed = tmp.path().join("renamed.gguf");
    std::fs::rename(&first, &renamed).unwrap();
    let err = ModelFiles::open(&renamed)
        .err()
        .expect("a renamed part must be refused")
        .to_string();
    assert!(err.contains("-00001-of-00004.gguf"), "{err}");
}
