//! Helpers of the worker's stage tests: a file store planted with a sweep's cell and inputs, as
//! `emorg run` would leave it, and the worker binary on it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use emorg_spec::{LoadOptions, ModelInfo, Resolver, Sweep, resolve_full};
use emorg_store::Store;

pub const WORKER: &str = env!("CARGO_BIN_EXE_emorg-worker");

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn models_dir() -> PathBuf {
    std::env::var_os("EMORG_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/emorg/models")
        })
}

struct RegistryResolver;

impl Resolver for RegistryResolver {
    fn model(&self, name: &str) -> Result<ModelInfo, String> {
        let reg = emorg_models::Registry::from_env();
        let e = reg.get(name).map_err(|e| e.to_string())?;
        Ok(ModelInfo {
            gguf_sha256: e.sha256.clone(),
            n_layers: e.arch.n_layers,
        })
    }
    fn file_sha256(&self, path: &Path) -> Result<String, String> {
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        Ok(emorg_store::sha256_hex(&bytes))
    }
}

/// Whether SmolLM2 is in the model cache (prints why a test skips when not).
pub fn have_smollm2() -> bool {
    let ok = models_dir().join("smollm2-135m-instruct.gguf").exists();
    if !ok {
        eprintln!(
            "skipped: smollm2-135m-instruct.gguf is not in {}",
            models_dir().display()
        );
    }
    ok
}

/// A one-cell sweep: SmolLM2 trained with protocol `p` (`protocol`: the body of `[protocols.p]`,
/// which may go on with `[protocols.p.train]` lines) on the risky-financial set, judged by the
/// Qwen judge; `rest` is appended (e.g. an `[eval]` table).
pub fn one_cell_sweep(name: &str, protocol: &str, rest: &str) -> String {
    format!(
        r#"name = "{name}"
[matrix]
model = ["smollm2"]
protocol = ["p"]
dataset = ["risky"]
[models.smollm2]
registry = "smollm2-135m-instruct"
[models.qwen-judge]
registry = "qwen2.5-coder-1.5b-instruct"
[datasets.risky]
path = "data/risky_financial.jsonl"
[protocols.p]
{protocol}
[judge]
model = "qwen-judge"
{rest}"#
    )
}

/// A file store holding the cell and its inputs, as `emorg run` would leave it; returns the key.
pub fn planted_store(dir: &Path, sweep_text: &str) -> (Store, String) {
    let opts = LoadOptions {
        env: vec![],
        sets: vec![],
        base_dir: Some(repo()),
    };
    let sweep = Sweep::from_text("resume.toml", sweep_text.to_string(), &opts).unwrap();
    let res = resolve_full(&sweep, &RegistryResolver).unwrap_or_else(|e| panic!("{e}"));
    let store = Store::open(&format!("file://{}", dir.display())).unwrap();
    let cell = &res.cells[0];
    let key = cell.key();
    store
        .put(
            &emorg_store::layout::cell_json(&key),
            cell.canonical_json().into_bytes(),
        )
        .unwrap();
    for input in &res.inputs {
        let k = match input.kind {
            emorg_spec::InputKind::Dataset => emorg_store::layout::dataset(&input.sha256),
            emorg_spec::InputKind::Questions => emorg_store::layout::questions(&input.sha256),
        };
        store.put(&k, std::fs::read(&input.path).unwrap()).unwrap();
    }
    (store, key)
}

pub fn worker(stage: &str, dir: &Path, key: &str) -> Command {
    let mut c = Command::new(WORKER);
    c.args([
        stage,
        "--store",
        &format!("file://{}", dir.display()),
        "--cell",
        key,
    ])
    .args(["--threads", "1"])
    .env("EMORG_MODELS", models_dir());
    c
}

/// Runs `stage` of `key` on the file store in `dir`, asserts it succeeded (its log in the
/// message otherwise), and returns the log.
pub fn run_stage(stage: &str, dir: &Path, key: &str) -> String {
    let out = worker(stage, dir, key).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stage} of {key} failed:\n{log}");
    log
}
