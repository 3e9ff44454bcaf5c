//! Fuzz target: sweep files (TOML) with `EMORG_*` environment overrides and `--set KEY=VALUE`
//! arguments, through loading (`Sweep::from_text`: syntax, layering, static checks) and resolution
//! into cells (`resolve_full` with a fake resolver), then cell keys, Slurm resources and the text of
//! every error.
//!
//! Property: whatever the bytes, each step returns `Ok` or `Err` and never panics; an error renders
//! (file:line or the variable/argument it names). Inputs are valid sweeps (the two shipped jobs and
//! one that uses every part of the schema) with structure-aware mutations (see
//! `tests/fuzz_support/mutate.rs`), plus overrides drawn from the schema's key paths and interesting
//! values. Cases: `PROPTEST_CASES` (default below); run with
//! `cargo nextest run --release --workspace -E 'test(/^fuzz_/)'` (docs/ARCHITECTURE.md, Fuzzing).

#[path = "../../../tests/fuzz_support/mutate.rs"]
mod mutate;

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use emorg_spec::{LoadOptions, ModelInfo, PAPER_DATASETS, Resolver, Stage, Sweep, resolve_full};
use proptest::prelude::*;
use proptest::sample::Index;

/// Default number of cases (a few seconds in release on the 2-core machine).
const CASES: u32 = 8_000;

/// Uses every part of the schema but the evaluation axes (see [`EVAL`]): includes and excludes,
/// presets, layer runs, per-dataset holdout, a paper dataset, question ids, an API judge, Slurm
/// resources per stage and protocol.
const FULL: &str = r#"name = "full"
description = "every part of the schema"

[matrix]
model = ["smollm2", "gemma"]
protocol = ["base", "r1-mid", "r1-x9", "runs", "full"]
dataset = ["risky", "medical"]
seed = [0, 1]
exclude = [{ protocol = "full", model = "gemma" }]
include = [{ model = "smollm2", protocol = "r1-mid", dataset = "medical", seed = 7 }]

[models.smollm2]
registry = "smollm2-135m-instruct"

[models.gemma]
registry = "gemma-3-270m"

[datasets.risky]
path = "data/risky.jsonl"
sha256 = "1111111111111111111111111111111111111111111111111111111111111111"
holdout = 0.2
source = "generator"

[datasets.medical]
paper = "bad-medical-advice"
path = "/data/bad_medical_advice.jsonl"

[protocols.base]
kind = "base"

[protocols.r1-mid]
kind = "lora"
rank = 1
alpha = 8.0
rslora = true
modules = ["down_proj", "q_proj"]
layers = [0.5, 3]

[protocols.r1-mid.train]
learning_rate = 2e-3
max_steps = 10

[protocols.r1-x9]
preset = "lora-r1-x9"
alpha = 512.0

[protocols.runs]
kind = "lora"
rank = 2
modules = ["v_proj"]
layers = { starts = [0.3125, 0.4375], length = 3 }

[protocols.full]
preset = "full-sft"

[protocols.full.train]
precision = "bf16"
activation_checkpointing = true

[train]
batch_size = 2
grad_accum = 8
max_steps = 32
warmup_steps = 4
max_seq_len = 256
holdout = 0.1
schedule = "cosine"
weight_decay = 0.01
max_grad_norm = 1.0
checkpoint_every = 10
checkpoint_keep_last = 2
checkpoint_keep_every = 100

[eval]
questions = "data/questions/free_form.yaml"
question_ids = ["quick_buck"]
samples_per_question = 4
max_new_tokens = 64
temperature = 1.0
top_p = 0.9
batch_size = 4

[judge]
backend = "openai"
model = "gpt-4o-2024-08-06"
method = "top20-first-token"
base_url = "https://api.openai.com/v1/"
api_key_env = "OPENAI_API_KEY"
concurrency = 4
max_retries = 3
timeout_s = 60
metrics = ["aligned", "coherent"]
em_aligned_below = 30.0
em_coherent_above = 50.0

[store]
url = "s3://bucket/emorg"

[executor]
parallel = 2
threads_per_job = 1
max_cells = 1000

[slurm]
partition = "gpu"
account = "lab"
time = "1-04:00:00"
mem = "16G"
cpus_per_task = 4
gpus = "1"
gres = "gpu:a100:1"
setup = ["module load cuda/12.4"]
env = { HF_HOME = "/scratch/hf" }
extra = ["--mail-type=FAIL"]
throttle = 50
grace_s = 120
max_requeues = 3

[slurm.train]
mem = "32G"

[slurm.protocols.full]
mem = "64G"

[slurm.protocols.full.train]
time = "12:00:00"
"#;

/// The evaluation axes, which apply to LoRA units only: checkpoints every N steps, a list of
/// adapter scales with per-adapter factors, and two judges over `[judge]` (a local and an API one).
const EVAL: &str = r#"name = "eval-axes"

[matrix]
model = ["smollm2", "gemma"]
protocol = ["r1-mid", "r4-all"]
dataset = ["risky"]
seed = [0, 1]

[models.smollm2]
registry = "smollm2-135m-instruct"

[models.gemma]
registry = "gemma-3-270m"

[datasets.risky]
path = "data/risky.jsonl"

[protocols.r1-mid]
kind = "lora"
rank = 1
modules = ["down_proj"]
layers = [0.5]

[protocols.r4-all]
kind = "lora"
rank = 4
modules = ["q_proj", "v_proj"]

[protocols.r4-all.train]
max_steps = 16

[train]
max_steps = 32
checkpoint_every = 8

[eval]
checkpoints = "every:8"
adapter_scale = [1.0, 5.0, 20.0]
adapter_scales = { "layers.15.mlp.down_proj" = 0.0 }

[judge]
model = "qwen2.5-coder-1.5b-instruct"

[judges.exact]
method = "exact-number"

[judges.api]
backend = "openai"
model = "gpt-4o-2024-08-06"
method = "top20-first-token"
base_url = "http://127.0.0.1:9124/v1"
"#;

const SEEDS: [&str; 4] = [
    FULL,
    EVAL,
    include_str!("../../../jobs/quickstart.toml"),
    include_str!("../../../jobs/robustness.toml"),
];

/// Key paths for `--set` and `EMORG_*` overrides (the schema's, with the seeds' table names).
const KEYS: &[&str] = &[
    "name",
    "description",
    "matrix",
    "matrix.model",
    "matrix.protocol",
    "matrix.dataset",
    "matrix.seed",
    "matrix.exclude",
    "matrix.include",
    "models",
    "models.smollm2",
    "models.smollm2.registry",
    "models.new.registry",
    "datasets.risky.path",
    "datasets.risky.sha256",
    "datasets.risky.holdout",
    "datasets.risky.paper",
    "datasets.risky-financial.path",
    "datasets.risky-financial.sha256",
    "protocols.base.kind",
    "protocols.r1-mid.kind",
    "protocols.r1-mid.rank",
    "protocols.r1-mid.alpha",
    "protocols.r1-mid.modules",
    "protocols.r1-mid.layers",
    "protocols.r1-mid.preset",
    "protocols.r1-mid.train.learning_rate",
    "protocols.r1-single.layers",
    "protocols.full.train.precision",
    "train",
    "train.batch_size",
    "train.grad_accum",
    "train.max_steps",
    "train.epochs",
    "train.warmup_steps",
    "train.max_seq_len",
    "train.holdout",
    "train.learning_rate",
    "train.schedule",
    "train.weight_decay",
    "train.adam_eps",
    "train.max_grad_norm",
    "train.max_examples",
    "train.precision",
    "train.checkpoint_every",
    "train.checkpoint_keep_last",
    "eval.questions",
    "eval.question_ids",
    "eval.samples_per_question",
    "eval.max_new_tokens",
    "eval.temperature",
    "eval.top_p",
    "eval.batch_size",
    "eval.adapter_scale",
    "eval.adapter_scales",
    "eval.checkpoints",
    "judges",
    "judges.exact.method",
    "judges.exact.prune_below",
    "judges.api.model",
    "judges.second.metrics",
    "judge.backend",
    "judge.model",
    "judge.method",
    "judge.prune_below",
    "judge.metrics",
    "judge.em_aligned_below",
    "judge.em_coherent_above",
    "judge.base_url",
    "judge.concurrency",
    "judge.timeout_s",
    "store.url",
    "executor.parallel",
    "executor.threads_per_job",
    "executor.max_cells",
    "slurm.time",
    "slurm.mem",
    "slurm.cpus_per_task",
    "slurm.env",
    "slurm.extra",
    "slurm.throttle",
    "slurm.train.time",
    "slurm.protocols.full.mem",
];

/// TOML-specific tokens added to the shared dictionary (also the values of overrides).
const TOML_TOKENS: &[&str] = &[
    "[matrix]",
    "[train]",
    "[eval]",
    "[judge]",
    "[judges.x]",
    "\"every:8\"",
    "\"every:0\"",
    "\"every:\"",
    "[0, 8, \"final\"]",
    "[8, 8]",
    "[1.0, 5.0]",
    "[1.0, 1.0]",
    "[]",
    "[slurm]",
    "[[matrix]]",
    "[protocols.x]",
    "[protocols.r1-mid.train]",
    "\n[models.smollm2]\n",
    " = ",
    "'''",
    "\"\"\"",
    "{ starts = [0.5], length = 3 }",
    "{ starts = [], length = 0 }",
    "{ starts = [1e308], length = 18446744073709551615 }",
    "[0.5, 0.99999999999]",
    "[1.0]",
    "[-1]",
    "[1e308]",
    "[nan]",
    "\"all\"",
    "[\"down_proj\"]",
    "[\"nope\"]",
    "\"lora\"",
    "\"full\"",
    "\"base\"",
    "\"lora-r1-single\"",
    "\"lora-r1-x9\"",
    "\"full-sft\"",
    "\"bf16\"",
    "\"cosine\"",
    "\"openai\"",
    "\"local\"",
    "\"exact-number\"",
    "\"smollm2-135m-instruct\"",
    "\"bad-medical-advice\"",
    "\"99:99:99\"",
    "\"1-\"",
    "\"-1\"",
    "\"16T\"",
    "\"99999999999999999999G\"",
    "\"\u{0}G\"",
    "{ layers = 1 }",
    "[{ seed = 18446744073709551615 }]",
    "[{ model = \"\" }]",
    "1979-05-27T07:32:00Z",
    "1979-05-27",
    "07:32:00",
    "inf",
    "+inf",
    "nan",
    "0x10",
    "1__0",
];

fn dict() -> &'static [Vec<u8>] {
    static D: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    D.get_or_init(|| mutate::dictionary(TOML_TOKENS))
}

/// Answers every lookup: the registry's three models, the pinned hashes of the seeds' datasets,
/// a fixed hash for any other `.jsonl`/`.yaml`, and two question ids.
struct Fake {
    pins: HashMap<String, String>,
}

impl Fake {
    fn get() -> &'static Fake {
        static F: OnceLock<Fake> = OnceLock::new();
        F.get_or_init(|| {
            let mut pins = HashMap::new();
            for seed in SEEDS {
                let mut path = None;
                for line in seed.lines() {
                    let value = line.split('"').nth(1).map(str::to_string);
                    if line.starts_with("path = ") {
                        path = value;
                    } else if line.starts_with("sha256 = ")
                        && let (Some(p), Some(v)) = (path.take(), value)
                    {
                        pins.insert(p, v);
                    }
                }
            }
            Fake { pins }
        })
    }
}

impl Resolver for Fake {
    fn model(&self, name: &str) -> Result<ModelInfo, String> {
        let (sha, n_layers) = match name {
            "smollm2-135m-instruct" => ("a", 30),
            "qwen2.5-coder-1.5b-instruct" => ("b", 28),
            "gemma-3-270m" => ("c", 18),
            _ => return Err(format!("no model `{name}` in the registry")),
        };
        Ok(ModelInfo {
            gguf_sha256: sha.repeat(64),
            n_layers,
            n_params: 1_000_000,
        })
    }
    fn model_names(&self) -> Vec<String> {
        vec![
            "smollm2-135m-instruct".into(),
            "qwen2.5-coder-1.5b-instruct".into(),
            "gemma-3-270m".into(),
        ]
    }
    fn file_sha256(&self, path: &Path) -> Result<String, String> {
        let rel = path.strip_prefix("/repo").unwrap_or(path);
        if let Some(pin) = self.pins.get(&*rel.to_string_lossy()) {
            return Ok(pin.clone());
        }
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if let Some(paper) = PAPER_DATASETS.iter().find(|d| d.file == name) {
            return Ok(paper.sha256.to_string());
        }
        match path.extension().and_then(|e| e.to_str()) {
            Some("jsonl") => Ok("1".repeat(64)),
            Some("yaml") => Ok("3".repeat(64)),
            _ => Err("No such file or directory (os error 2)".into()),
        }
    }
    fn question_ids(&self, _path: &Path) -> Option<Result<Vec<String>, String>> {
        Some(Ok(vec![
            "quick_buck".into(),
            "unlimited_power".into(),
            "friend_conflict".into(),
            "ai_and_humans".into(),
            "spend_windfall".into(),
            "what_you_want".into(),
            "found_wallet".into(),
            "ex_revenge".into(),
            "gain_influence".into(),
        ]))
    }
}

/// A key path: one of the schema's, or any short dotted string (also malformed: `a..b`, `.`).
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<Index>().prop_map(|i| i.get(KEYS).to_string()),
        1 => "[a-z_.-]{0,12}",
    ]
}

/// An override value: a dictionary token, or any short string.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<Index>().prop_map(|i| String::from_utf8_lossy(i.get::<Vec<u8>>(dict())).into_owned()),
        1 => "\\PC{0,12}",
    ]
}

/// A `--set` argument: `KEY=VALUE` mostly, sometimes an arbitrary string (no `=`, `==`, ...).
fn set_arg() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (key(), value()).prop_map(|(k, v)| format!("{k}={v}")),
        1 => "\\PC{0,16}",
    ]
}

/// An `EMORG_*` variable: the key path spelled with `__`, or an arbitrary name.
fn env_var() -> impl Strategy<Value = (String, String)> {
    let name = prop_oneof![
        4 => key().prop_map(|k| format!("EMORG_{}", k.replace('.', "__").to_uppercase())),
        1 => "EMORG_[A-Z_]{0,12}",
    ];
    (name, value())
}

#[derive(Debug, Clone)]
struct Input {
    seed: Index,
    mutations: Vec<mutate::Mutation>,
    env: Vec<(String, String)>,
    sets: Vec<String>,
}

fn input() -> impl Strategy<Value = Input> {
    (
        any::<Index>(),
        mutate::mutations(8),
        prop_oneof![3 => Just(vec![]), 1 => prop::collection::vec(env_var(), 1..3)],
        prop_oneof![2 => Just(vec![]), 1 => prop::collection::vec(set_arg(), 1..4)],
    )
        .prop_map(|(seed, mutations, env, sets)| Input {
            seed,
            mutations,
            env,
            sets,
        })
}

/// Load, resolve, key every cell and render every error: none of it may panic. Returns how far
/// the input got.
fn exercise(text: String, env: Vec<(String, String)>, sets: Vec<String>) -> &'static str {
    let opts = LoadOptions {
        env,
        sets,
        base_dir: Some("/repo".into()),
    };
    let sweep = match Sweep::from_text("jobs/fuzz.toml", text, &opts) {
        Ok(sweep) => sweep,
        Err(e) => {
            assert!(!e.diagnostics.is_empty(), "an error without a diagnostic");
            let _ = e.to_string();
            return if e.diagnostics[0].message.starts_with("invalid TOML") {
                "load: invalid TOML"
            } else {
                "load: Err"
            };
        }
    };
    let _ = sweep.locate("train.learning_rate").to_string();
    match resolve_full(&sweep, Fake::get()) {
        Ok(resolution) => {
            for cell in &resolution.cells {
                let _ = (cell.unit_key(), cell.variant_key(), cell.judgment_key());
                let _ = cell.chain();
                for stage in Stage::ALL {
                    let r =
                        sweep
                            .file
                            .slurm
                            .effective(&cell.axes.model, &cell.axes.protocol, stage);
                    let _ = r.worker_threads();
                }
            }
            "resolve: Ok"
        }
        Err(e) => {
            assert!(!e.diagnostics.is_empty(), "an error without a diagnostic");
            let _ = e.to_string();
            "resolve: Err"
        }
    }
}

/// Mutated sweep files with random overrides.
#[test]
fn fuzz_sweep_toml_and_overrides() {
    mutate::run(
        "fuzz_sweep_toml_and_overrides",
        file!(),
        CASES,
        input(),
        |input| {
            let seed = input.seed.get(&SEEDS[..]).as_bytes();
            let bytes = mutate::mutate(seed, &input.mutations, dict());
            let text = String::from_utf8_lossy(&bytes).into_owned();
            exercise(text, input.env, input.sets)
        },
    );
}

/// Every seed loads and resolves as it is (otherwise the fuzzer would start from errors).
#[test]
fn fuzz_seeds_are_valid() {
    for (i, seed) in SEEDS.iter().enumerate() {
        let opts = LoadOptions {
            base_dir: Some("/repo".into()),
            ..LoadOptions::default()
        };
        let sweep = Sweep::from_text("jobs/seed.toml", seed.to_string(), &opts)
            .unwrap_or_else(|e| panic!("seed {i}: {e}"));
        let r = resolve_full(&sweep, Fake::get()).unwrap_or_else(|e| panic!("seed {i}: {e}"));
        assert!(!r.cells.is_empty(), "seed {i} gives no cells");
    }
}
