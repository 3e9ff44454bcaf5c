//! Helpers of the worker's stage tests: a file store planted with a sweep's records (units,
//! variants, judgments) and inputs, as `emorg run` would leave it, and the worker binary on it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use emorg_spec::{Cell, LoadOptions, ModelInfo, Resolver, StageRef, Sweep, resolve_full};
use emorg_store::{Store, layout};

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
            n_params: e.arch.n_params,
        })
    }
    fn file_sha256(&self, path: &Path) -> Result<String, String> {
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        Ok(emorg_store::sha256_hex(&bytes))
    }
    fn dataset_rows(&self, path: &Path) -> Option<Result<usize, String>> {
        Some(
            std::fs::read_to_string(path)
                .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
                .map_err(|e| e.to_string()),
        )
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
    one_cell_sweep_judged_by(name, protocol, "qwen-judge", rest)
}

/// [`one_cell_sweep`] judged by `judge` (a `[models]` name: `smollm2` or `qwen-judge`).
pub fn one_cell_sweep_judged_by(name: &str, protocol: &str, judge: &str, rest: &str) -> String {
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
model = "{judge}"
{rest}"#
    )
}

/// The rows of a planted sweep; the first row's stages are what most tests run.
pub struct Planted {
    pub cells: Vec<Cell>,
}

impl Planted {
    /// The train stage of the first row's unit.
    pub fn train(&self) -> StageRef {
        StageRef::Train(self.cells[0].unit_key())
    }

    /// The sample stage of the first row's variant.
    pub fn sample(&self) -> StageRef {
        StageRef::Sample(self.cells[0].variant_key())
    }

    /// The judge stage of the first row's judgment.
    pub fn judge(&self) -> StageRef {
        StageRef::Judge(self.cells[0].judgment_key())
    }

    /// The first row whose axes satisfy `f`.
    pub fn row(&self, f: impl Fn(&emorg_spec::Axes) -> bool) -> &Cell {
        self.cells
            .iter()
            .find(|c| f(&c.axes))
            .expect("a row with those axes")
    }
}

/// The three records of a row, as `prepare` writes them (canonical JSON).
pub fn records(cell: &Cell) -> [(String, String); 3] {
    [
        (
            layout::unit_json(&cell.unit.key()),
            cell.unit.canonical_json(),
        ),
        (
            layout::variant_json(&cell.variant.key()),
            cell.variant.canonical_json(),
        ),
        (
            layout::judgment_json(&cell.judgment.key()),
            cell.judgment.canonical_json(),
        ),
    ]
}

/// A file store holding the records of every row of the sweep and its inputs, as `emorg run`
/// would leave it.
pub fn planted_store(dir: &Path, sweep_text: &str) -> (Store, Planted) {
    let opts = LoadOptions {
        env: vec![],
        sets: vec![],
        base_dir: Some(repo()),
    };
    let sweep = Sweep::from_text("resume.toml", sweep_text.to_string(), &opts).unwrap();
    let res = resolve_full(&sweep, &RegistryResolver).unwrap_or_else(|e| panic!("{e}"));
    let store = Store::open(&format!("file://{}", dir.display())).unwrap();
    store.ensure_layout().unwrap();
    for cell in &res.cells {
        for (key, json) in records(cell) {
            store.put(&key, json.into_bytes()).unwrap();
        }
    }
    for input in &res.inputs {
        let k = match input.kind {
            emorg_spec::InputKind::Dataset => layout::dataset(&input.sha256),
            emorg_spec::InputKind::Questions => layout::questions(&input.sha256),
        };
        store.put(&k, std::fs::read(&input.path).unwrap()).unwrap();
    }
    (store, Planted { cells: res.cells })
}

/// The worker on `stage` (`emorg-worker <stage> --key <owner key>`) with the file store in `dir`.
pub fn worker(stage: &StageRef, dir: &Path) -> Command {
    let mut c = Command::new(WORKER);
    c.args([
        stage.stage().as_str(),
        "--store",
        &format!("file://{}", dir.display()),
        "--key",
        stage.key(),
    ])
    .args(["--threads", "1"])
    .env("EMORG_MODELS", models_dir());
    c
}

/// Runs `stage` on the file store in `dir`, asserts it succeeded (its log in the message
/// otherwise), and returns the log.
pub fn run_stage(stage: &StageRef, dir: &Path) -> String {
    let out = worker(stage, dir).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stage} failed:\n{log}");
    log
}

/// The DONE.json of a stage, as JSON.
pub fn done_json(store: &Store, stage: &StageRef) -> serde_json::Value {
    store.get_json(&layout::done(stage)).unwrap()
}
