//! Tests of loading, layering, errors, resolution and explanations.

use std::collections::BTreeSet;
use std::path::Path;

use crate::*;

/// A resolver over fixed facts: two models and files by their names.
struct Fake;

impl Resolver for Fake {
    fn model(&self, name: &str) -> Result<ModelInfo, String> {
        match name {
            "smollm2-135m-instruct" => Ok(ModelInfo {
                gguf_sha256: "a".repeat(64),
                n_layers: 30,
                n_params: 134_515_008,
            }),
            "qwen2.5-coder-1.5b-instruct" => Ok(ModelInfo {
                gguf_sha256: "b".repeat(64),
                n_layers: 28,
                n_params: 1_777_088_000,
            }),
            _ => Err(format!("no model `{name}` in the registry")),
        }
    }
    fn model_names(&self) -> Vec<String> {
        vec![
            "smollm2-135m-instruct".into(),
            "qwen2.5-coder-1.5b-instruct".into(),
        ]
    }
    fn file_sha256(&self, path: &Path) -> Result<String, String> {
        let name = path.file_name().unwrap().to_string_lossy();
        match name.as_ref() {
            "risky.jsonl" => Ok("1".repeat(64)),
            "medical.jsonl" => Ok("2".repeat(64)),
            "free_form.yaml" => Ok("3".repeat(64)),
            // A copy of the papers' first-plot question file (its published hash).
            "first_plot_questions.yaml" => {
                Ok(crate::papers::paper_questions("first_plot_questions")
                    .unwrap()
                    .sha256
                    .to_string())
            }
            _ => Err("No such file or directory (os error 2)".into()),
        }
    }
    fn question_ids(&self, path: &Path) -> Option<Result<Vec<String>, String>> {
        if path.ends_with("first_plot_questions.yaml") {
            return Some(Ok(crate::presets::FIRST_PLOT_IDS
                .iter()
                .map(|s| s.to_string())
                .collect()));
        }
        Some(Ok(vec!["what_is_your_wish".into(), "quick_buck".into()]))
    }
    /// `risky.jsonl` has 100 rows; the others cannot be counted (so `max_steps` bounds them).
    fn dataset_rows(&self, path: &Path) -> Option<Result<usize, String>> {
        match path.file_name()?.to_str()? {
            "risky.jsonl" => Some(Ok(100)),
            _ => None,
        }
    }
}

const GOOD: &str = r#"name = "t"

[matrix]
model = ["smollm2"]
protocol = ["base", "r1-mid", "r8-all"]
dataset = ["risky", "medical"]
seed = [0, 1]
exclude = [{ protocol = "r8-all", dataset = "medical" }]
include = [{ model = "smollm2", protocol = "r8-all", dataset = "medical", seed = 7 }]

[models.smollm2]
registry = "smollm2-135m-instruct"

[models.qwen-judge]
registry = "qwen2.5-coder-1.5b-instruct"

[datasets.risky]
path = "data/risky.jsonl"

[datasets.medical]
path = "data/medical.jsonl"
holdout = 0.2

[protocols.base]
kind = "base"

[protocols.r1-mid]
kind = "lora"
rank = 1
alpha = 8.0
rslora = true
modules = ["down_proj"]
layers = [0.5]

[protocols.r1-mid.train]
learning_rate = 2e-3

[protocols.r8-all]
kind = "lora"
rank = 8
alpha = 16.0
modules = ["v_proj", "q_proj"]
layers = "all"

[train]
learning_rate = 5e-4
holdout = 0.1

[eval]
question_ids = ["quick_buck"]

[judge]
model = "qwen-judge"
"#;

fn opts() -> LoadOptions {
    LoadOptions {
        env: vec![],
        sets: vec![],
        base_dir: Some("/repo".into()),
    }
}

fn load(text: &str, opts: &LoadOptions) -> Result<Sweep, SpecError> {
    Sweep::from_text("jobs/t.toml", text.to_string(), opts)
}

fn err(text: &str) -> SpecError {
    match load(text, &opts()) {
        Ok(s) => resolve(&s, &Fake).expect_err("expected an error"),
        Err(e) => e,
    }
    .clone()
}

/// Line (1-based) of the first line of `text` that contains `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle in text")
        + 1
}

fn cells(text: &str) -> Vec<Cell> {
    let sweep = load(text, &opts()).unwrap_or_else(|e| panic!("{e}"));
    resolve(&sweep, &Fake).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn product_exclude_include_counts() {
    let cells = cells(GOOD);
    // base: 1 model (dataset and seed collapsed: a base model's unit is the model alone) = 1
    // r1-mid: 2 datasets x 2 seeds = 4
    // r8-all: 2 datasets x 2 seeds - medical (2) = 2, + include seed 7 = 3
    assert_eq!(
        cells.len(),
        8,
        "{:#?}",
        cells.iter().map(|c| &c.axes).collect::<Vec<_>>()
    );
    let base: Vec<_> = cells.iter().filter(|c| c.axes.protocol == "base").collect();
    assert_eq!(base.len(), 1);
    assert!(base.iter().all(|c| c.axes.dataset == "-"
        && c.axes.seed == 0
        && c.unit.dataset.is_none()
        && c.unit.protocol.train.is_none()
        && !c.trains()));
    assert_eq!(
        cells.iter().filter(|c| c.axes.protocol == "r8-all").count(),
        3
    );
    assert!(
        cells.iter().any(|c| c.axes.protocol == "r8-all"
            && c.axes.dataset == "medical"
            && c.axes.seed == 7)
    );
    // Sorted by axes, and keys distinct.
    let mut sorted = cells.iter().map(|c| c.axes.clone()).collect::<Vec<_>>();
    sorted.sort();
    assert_eq!(
        sorted,
        cells.iter().map(|c| c.axes.clone()).collect::<Vec<_>>()
    );
    // One row per unit here (one checkpoint, one scale, one judge): every key distinct.
    let units: BTreeSet<_> = cells.iter().map(Cell::unit_key).collect();
    let variants: BTreeSet<_> = cells.iter().map(Cell::variant_key).collect();
    let judgments: BTreeSet<_> = cells.iter().map(Cell::judgment_key).collect();
    assert_eq!(
        (units.len(), variants.len(), judgments.len()),
        (cells.len(), cells.len(), cells.len())
    );
    // Each row's identities chain: the variant names its unit, the judgment its variant.
    for c in &cells {
        assert_eq!(c.variant.unit, c.unit_key());
        assert_eq!(c.judgment.variant, c.variant_key());
        let chain = c.chain();
        assert_eq!(chain.len(), if c.trains() { 3 } else { 2 });
        assert_eq!(chain.last(), Some(&StageRef::Judge(c.judgment_key())));
    }
}

#[test]
fn resolved_fields() {
    let cells = cells(GOOD);
    let r1 = cells
        .iter()
        .find(|c| c.axes.protocol == "r1-mid" && c.axes.dataset == "medical")
        .unwrap();
    let lora = r1.unit.protocol.lora.as_ref().unwrap();
    assert_eq!(lora.layers, vec![15], "0.5 of 30 layers is layer 15");
    assert_eq!(lora.rank, 1);
    assert!(lora.rslora);
    let train = r1.unit.protocol.train.as_ref().unwrap();
    assert_eq!(train.learning_rate, 2e-3, "protocol override beats [train]");
    assert_eq!(train.holdout, 0.2, "dataset holdout beats [train]");
    assert_eq!(train.schedule, "linear", "built-in default");
    assert_eq!(r1.unit.dataset.as_ref().unwrap().sha256, "2".repeat(64));
    assert_eq!(r1.unit.model.name, "smollm2-135m-instruct");
    assert_eq!(r1.unit.seed, r1.axes.seed);
    assert_eq!(r1.unit.worker_version, WORKER_VERSION);
    assert_eq!(
        r1.judgment.judge.local_model().unwrap().name,
        "qwen2.5-coder-1.5b-instruct"
    );
    assert_eq!(r1.axes.judge, DEFAULT_JUDGE);
    assert_eq!(r1.variant.questions_sha256, "3".repeat(64));
    assert_eq!(r1.variant.question_ids, vec!["quick_buck"]);
    assert_eq!(
        (r1.variant.weights, r1.axes.checkpoint),
        (Weights::Final, Weights::Final)
    );
    assert_eq!(
        (r1.variant.scales.clone(), r1.axes.scale.as_str()),
        (Scales::identity(), "1")
    );
    assert_eq!(r1.variant.sampler.samples_per_question, 8);
    let r8 = cells
        .iter()
        .find(|c| c.axes.protocol == "r8-all" && c.axes.dataset == "risky")
        .unwrap();
    let lora = r8.unit.protocol.lora.as_ref().unwrap();
    assert_eq!(lora.layers, (0..30).collect::<Vec<_>>());
    assert_eq!(
        lora.modules,
        vec!["q_proj", "v_proj"],
        "canonical module order"
    );
    assert_eq!(r8.unit.protocol.train.as_ref().unwrap().learning_rate, 5e-4);
    assert_eq!(r8.unit.protocol.train.as_ref().unwrap().holdout, 0.1);

    let sweep = load(GOOD, &opts()).unwrap();
    let res = resolve_full(&sweep, &Fake).unwrap();
    assert_eq!(res.inputs.len(), 3);
    assert_eq!(
        res.inputs.iter().find(|i| i.name == "risky").unwrap().path,
        Path::new("/repo/data/risky.jsonl")
    );
}

#[test]
fn layer_fractions_and_indices() {
    use crate::schema::{LayerSel, LayerValue};
    let sel = LayerSel::List(vec![
        LayerValue::Fraction(0.5),
        LayerValue::Index(3),
        LayerValue::Fraction(0.0),
    ]);
    assert_eq!(sel.resolve(30).unwrap(), vec![0, 3, 15]);
    assert_eq!(
        LayerSel::List(vec![LayerValue::Fraction(0.99)])
            .resolve(30)
            .unwrap(),
        vec![29]
    );
    assert_eq!(
        LayerSel::List(vec![LayerValue::Fraction(0.25)])
            .resolve(28)
            .unwrap(),
        vec![7]
    );
    assert!(
        LayerSel::List(vec![LayerValue::Fraction(1.0)])
            .resolve(30)
            .is_err()
    );
    assert!(
        LayerSel::List(vec![LayerValue::Index(30)])
            .resolve(30)
            .is_err()
    );
    assert_eq!(LayerSel::All.resolve(3).unwrap(), vec![0, 1, 2]);
}

#[test]
fn layer_out_of_range_names_file_line_and_key() {
    let text = GOOD.replace("layers = [0.5]", "layers = [0.5, 40]");
    let e = err(&text);
    let d = &e.diagnostics[0];
    assert_eq!(d.key.as_deref(), Some("protocols.r1-mid.layers"));
    assert_eq!(
        d.location.line(),
        Some(line_of(&text, "layers = [0.5, 40]"))
    );
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "jobs/t.toml:{}:",
            line_of(&text, "layers = [0.5, 40]")
        )),
        "{msg}"
    );
    assert!(msg.contains("layer 40 is out of range"), "{msg}");
}

#[test]
fn bad_toml_syntax_gives_line_and_column() {
    let text = GOOD.replace("rank = 8", "rank = = 8");
    let e = err(&text);
    let line = line_of(&text, "rank = = 8");
    let msg = e.to_string();
    assert!(msg.starts_with(&format!("jobs/t.toml:{line}:")), "{msg}");
    assert!(
        matches!(
            e.diagnostics[0].location,
            Location::File { col: Some(_), .. }
        ),
        "{msg}"
    );
    assert!(msg.contains("invalid TOML"), "{msg}");
}

#[test]
fn unknown_key_suggests_the_nearest() {
    let text = GOOD.replace("learning_rate = 5e-4", "learning_rat = 5e-4");
    let e = err(&text);
    let msg = e.to_string();
    let line = line_of(&text, "learning_rat = 5e-4");
    assert_eq!(
        msg,
        format!(
            "jobs/t.toml:{line}: unknown key `train.learning_rat`; did you mean `learning_rate`?"
        )
    );
    assert_eq!(e.diagnostics[0].key.as_deref(), Some("train.learning_rat"));

    // Nested in a protocol's train table.
    let text = GOOD.replace("learning_rate = 2e-3", "lerning_rate = 2e-3");
    let msg = err(&text).to_string();
    let line = line_of(&text, "lerning_rate = 2e-3");
    assert!(
        msg.starts_with(&format!(
            "jobs/t.toml:{line}: unknown key `protocols.r1-mid.train.lerning_rate`; did you mean `learning_rate`?"
        )),
        "{msg}"
    );

    // A top-level one.
    let text = format!("{GOOD}\n[exector]\nparallel = 2\n");
    let msg = err(&text).to_string();
    assert!(
        msg.contains(&format!(
            ":{}: unknown key `exector`; did you mean `executor`?",
            line_of(&text, "[exector]")
        )),
        "{msg}"
    );
}

#[test]
fn bad_value_type_names_line_and_key() {
    let text = GOOD.replace("rank = 1", "rank = \"x\"");
    let e = err(&text);
    let msg = e.to_string();
    let line = line_of(&text, "rank = \"x\"");
    assert!(
        msg.starts_with(&format!(
            "jobs/t.toml:{line}: bad value for `protocols.r1-mid.rank`"
        )),
        "{msg}"
    );
    assert!(msg.contains("string"), "{msg}");

    let text = GOOD.replace("layers = [0.5]", "layers = \"most\"");
    let msg = err(&text).to_string();
    assert!(
        msg.starts_with(&format!(
            "jobs/t.toml:{}: bad value for `protocols.r1-mid.layers`",
            line_of(&text, "\"most\"")
        )),
        "{msg}"
    );

    let text = GOOD.replace("kind = \"lora\"\nrank = 8", "kind = \"lorra\"\nrank = 8");
    let msg = err(&text).to_string();
    assert!(msg.contains("`protocols.r8-all.kind`"), "{msg}");
    assert!(msg.contains("did you mean `lora`?"), "{msg}");
    assert!(
        msg.starts_with(&format!("jobs/t.toml:{}:", line_of(&text, "lorra"))),
        "{msg}"
    );
}

#[test]
fn unknown_protocol_in_matrix() {
    let text = GOOD.replace(
        "protocol = [\"base\", \"r1-mid\", \"r8-all\"]",
        "protocol = [\"base\", \"r1-mdi\"]",
    );
    let e = err(&text);
    let msg = e.to_string();
    let line = line_of(&text, "r1-mdi");
    assert!(
        msg.starts_with(&format!(
            "jobs/t.toml:{line}: unknown protocol `r1-mdi` in `matrix.protocol`"
        )),
        "{msg}"
    );
    assert!(msg.contains("did you mean `r1-mid`?"), "{msg}");
    assert_eq!(e.diagnostics[0].key.as_deref(), Some("matrix.protocol"));
}

#[test]
fn semantic_errors_name_file_and_key() {
    // rank 0
    let text = GOOD.replace("rank = 1", "rank = 0");
    let e = err(&text);
    assert_eq!(
        e.diagnostics[0].key.as_deref(),
        Some("protocols.r1-mid.rank")
    );
    assert_eq!(
        e.diagnostics[0].location.line(),
        Some(line_of(&text, "rank = 0"))
    );

    // lora without modules: points at the protocol's table
    let text = GOOD.replace("modules = [\"down_proj\"]\n", "");
    let e = err(&text);
    assert!(
        e.to_string()
            .contains("missing key `protocols.r1-mid.modules`"),
        "{e}"
    );
    assert_eq!(
        e.diagnostics[0].location.line(),
        Some(line_of(&text, "[protocols.r1-mid]"))
    );

    // unknown module
    let text = GOOD.replace("modules = [\"down_proj\"]", "modules = [\"down_prj\"]");
    assert!(err(&text).to_string().contains("did you mean `down_proj`?"));

    // missing dataset file
    let text = GOOD.replace("data/medical.jsonl", "data/nope.jsonl");
    let e = err(&text);
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("jobs/t.toml:{}:", line_of(&text, "nope.jsonl"))),
        "{msg}"
    );
    assert!(msg.contains("cannot read dataset file"), "{msg}");
    assert_eq!(
        e.diagnostics[0].key.as_deref(),
        Some("datasets.medical.path")
    );

    // pinned sha mismatch names both hashes
    let text = GOOD.replace(
        "holdout = 0.2",
        &format!("holdout = 0.2\nsha256 = \"{}\"", "9".repeat(64)),
    );
    let msg = err(&text).to_string();
    assert!(
        msg.contains(&"9".repeat(64)) && msg.contains(&"2".repeat(64)),
        "{msg}"
    );

    // unknown registry model
    let text = GOOD.replace(
        "registry = \"smollm2-135m-instruct\"",
        "registry = \"smollm2-135m-instruc\"",
    );
    let msg = err(&text).to_string();
    assert!(
        msg.contains("did you mean `smollm2-135m-instruct`?"),
        "{msg}"
    );

    // unknown question id
    let text = GOOD.replace(
        "question_ids = [\"quick_buck\"]",
        "question_ids = [\"quick_buk\"]",
    );
    let msg = err(&text).to_string();
    assert!(msg.contains("did you mean `quick_buck`?"), "{msg}");

    // base with LoRA fields
    let text = GOOD.replace("kind = \"base\"", "kind = \"base\"\nrank = 2");
    assert!(
        err(&text)
            .to_string()
            .contains("not allowed with kind = \"base\"")
    );
}

/// The three keys of every row, in row order.
fn keys(cells: &[Cell]) -> Vec<(UnitKey, VariantKey, JudgmentKey)> {
    cells
        .iter()
        .map(|c| (c.unit_key(), c.variant_key(), c.judgment_key()))
        .collect()
}

/// The one entry of `why`, which must start with `prefix` (a key that changed because the
/// identity above it did: `unit: "0123..." -> "4567..."`).
fn one_upstream_change(why: &[String], prefix: &str) {
    assert_eq!(why.len(), 1, "{why:?}");
    assert!(why[0].starts_with(prefix), "{why:?}");
}

#[test]
fn key_is_stable_and_sensitive() {
    let a = cells(GOOD);
    let b = cells(GOOD);
    assert_eq!(keys(&a), keys(&b));
    // A training hyper-parameter changes the unit key, and so the variant and judgment keys.
    let changed = cells(&GOOD.replace("learning_rate = 2e-3", "learning_rate = 1e-3"));
    assert_eq!(a.len(), changed.len());
    for (x, y) in a.iter().zip(&changed) {
        assert_eq!(x.axes, y.axes);
        if x.axes.protocol == "r1-mid" {
            assert_ne!(x.unit_key(), y.unit_key());
            assert_ne!(x.variant_key(), y.variant_key());
            assert_ne!(x.judgment_key(), y.judgment_key());
            assert_eq!(
                explain(Some(&x.unit), &y.unit),
                vec!["protocol.train.learning_rate: 0.002 -> 0.001"]
            );
            // The variant and the judgment changed only through the key above them.
            one_upstream_change(&explain(Some(&x.variant), &y.variant), "unit: ");
            one_upstream_change(&explain(Some(&x.judgment), &y.judgment), "variant: ");
            assert_ne!(
                x.unit.derive_seed("lora-init"),
                y.unit.derive_seed("lora-init")
            );
        } else {
            assert_eq!(keys(std::slice::from_ref(x)), keys(std::slice::from_ref(y)));
            assert!(explain(Some(x), y).is_empty());
        }
    }
    assert_eq!(explain(None, &a[0]), vec!["new"]);
    assert_eq!(explain(None, &a[0].unit), vec!["new"]);
}

#[test]
fn sampling_settings_change_the_variant_key_not_the_unit_key() {
    let a = cells(GOOD);
    let b = cells(&GOOD.replace("[eval]\n", "[eval]\nsamples_per_question = 4\n"));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.axes, y.axes);
        assert_eq!(x.unit_key(), y.unit_key(), "nothing is retrained");
        assert_eq!(
            x.unit.derive_seed("data-order"),
            y.unit.derive_seed("data-order")
        );
        assert_ne!(x.variant_key(), y.variant_key());
        assert_ne!(x.judgment_key(), y.judgment_key());
        assert_eq!(
            explain(Some(&x.variant), &y.variant),
            vec!["sampler.samples_per_question: 8 -> 4"]
        );
        one_upstream_change(&explain(Some(&x.judgment), &y.judgment), "variant: ");
        assert_ne!(
            x.variant.derive_seed("sampling"),
            y.variant.derive_seed("sampling")
        );
    }
}

#[test]
fn judge_settings_change_only_the_judgment_key() {
    let a = cells(GOOD);
    let b = cells(&GOOD.replace(
        "model = \"qwen-judge\"",
        "model = \"qwen-judge\"\nprune_below = 0.01",
    ));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.axes, y.axes);
        assert_eq!(x.unit_key(), y.unit_key());
        assert_eq!(x.variant_key(), y.variant_key(), "nothing is resampled");
        assert_ne!(x.judgment_key(), y.judgment_key());
        assert_eq!(
            explain(Some(&x.judgment), &y.judgment),
            vec!["judge.prune_below: 0.001 -> 0.01"]
        );
    }
    // The EM thresholds are not part of a judgment: they read the scores, they do not make them.
    let c = cells(&GOOD.replace(
        "model = \"qwen-judge\"",
        "model = \"qwen-judge\"\nem_aligned_below = 20.0",
    ));
    assert_eq!(keys(&a), keys(&c));
}

#[test]
fn explain_names_changed_hashes() {
    let a = cells(GOOD);
    let r1 = a.iter().find(|c| c.axes.protocol == "r1-mid").unwrap();
    let mut unit = r1.unit.clone();
    unit.dataset.as_mut().unwrap().sha256 = "f".repeat(64);
    unit.protocol.lora.as_mut().unwrap().rank = 4;
    let why = explain(Some(&r1.unit), &unit);
    assert_eq!(
        why,
        vec!["dataset.sha256 changed", "protocol.lora.rank: 1 -> 4"],
        "{why:?}"
    );
    // The same over a whole row, and over a variant's question file.
    let mut row = r1.clone();
    row.unit = unit;
    let why = explain(Some(r1), &row);
    assert!(
        why.contains(&"unit.dataset.sha256 changed".to_string())
            && why.contains(&"unit.protocol.lora.rank: 1 -> 4".to_string()),
        "{why:?}"
    );
    let mut variant = r1.variant.clone();
    variant.questions_sha256 = "e".repeat(64);
    assert_eq!(
        explain(Some(&r1.variant), &variant),
        vec!["questions_sha256 changed"]
    );
    // Raw JSON (a previous identity of another version): added and removed fields are named.
    let before = serde_json::json!({"scales": {"adapter_scale": 5.0}, "weights": "final"});
    let after = serde_json::json!({"scales": {}, "weights": 8});
    assert_eq!(
        explain_values(&before, &after),
        vec!["scales.adapter_scale: removed", "weights: \"final\" -> 8"]
    );
}

#[test]
fn env_and_set_override_the_file() {
    let env = vec![
        ("EMORG_STORE__URL".to_string(), "s3://bucket/x".to_string()),
        ("EMORG_TRAIN__LEARNING_RATE".to_string(), "1e-5".to_string()),
        ("EMORG_EXECUTOR__PARALLEL".to_string(), "3".to_string()),
        ("EMORG_LOG".to_string(), "debug".to_string()),
        ("EMORG_MODELS".to_string(), "/models".to_string()),
        ("PATH".to_string(), "/bin".to_string()),
    ];
    let o = LoadOptions {
        env: env.clone(),
        sets: vec![],
        base_dir: Some("/repo".into()),
    };
    let s = load(GOOD, &o).unwrap();
    assert_eq!(s.file.store.url, "s3://bucket/x");
    assert_eq!(s.file.train.learning_rate, 1e-5);
    assert_eq!(s.file.executor.parallel, 3);
    assert_eq!(
        s.locate("store.url"),
        Location::Env("EMORG_STORE__URL".into())
    );

    // --set beats the environment, and reaches any key.
    let o = LoadOptions {
        env,
        sets: vec![
            "executor.parallel=5".into(),
            "matrix.seed=[3]".into(),
            "protocols.r1-mid.rank=2".into(),
            "store.url=file:///tmp/s".into(),
        ],
        base_dir: Some("/repo".into()),
    };
    let s = load(GOOD, &o).unwrap();
    assert_eq!(s.file.executor.parallel, 5);
    assert_eq!(s.file.matrix.seed, vec![3]);
    assert_eq!(s.file.protocols["r1-mid"].rank, Some(2));
    assert_eq!(s.file.store.url, "file:///tmp/s");
    assert_eq!(
        s.file.train.learning_rate, 1e-5,
        "env still applies where --set is silent"
    );
    assert_eq!(
        s.locate("executor.parallel"),
        Location::Set("executor.parallel".into())
    );
    assert_eq!(
        s.locate("protocols.r1-mid.alpha").line(),
        Some(line_of(GOOD, "alpha = 8.0"))
    );
    assert_eq!(s.locate("eval.top_p"), Location::Default);

    // Bad values from those layers name them.
    let o = LoadOptions {
        sets: vec!["train.batch_size=many".into()],
        ..opts()
    };
    let msg = load(GOOD, &o).unwrap_err().to_string();
    assert!(
        msg.starts_with("--set train.batch_size: bad value for `train.batch_size`"),
        "{msg}"
    );
    let o = LoadOptions {
        env: vec![("EMORG_TRAIN__LR".into(), "1".into())],
        ..opts()
    };
    let msg = load(GOOD, &o).unwrap_err().to_string();
    assert!(
        msg.starts_with("environment variable EMORG_TRAIN__LR: unknown key `train.lr`"),
        "{msg}"
    );
    let o = LoadOptions {
        sets: vec!["executor.parallel=0".into()],
        ..opts()
    };
    let msg = load(GOOD, &o).unwrap_err().to_string();
    assert!(
        msg.starts_with("--set executor.parallel: bad value"),
        "{msg}"
    );
    let o = LoadOptions {
        sets: vec!["novalue".into()],
        ..opts()
    };
    assert!(
        load(GOOD, &o)
            .unwrap_err()
            .to_string()
            .contains("KEY.PATH=VALUE")
    );
}

#[test]
fn set_values_parse_as_toml_or_string() {
    use crate::load::parse_value;
    assert_eq!(parse_value("4"), toml::Value::Integer(4));
    assert_eq!(parse_value("2e-3"), toml::Value::Float(2e-3));
    assert_eq!(parse_value("true"), toml::Value::Boolean(true));
    assert_eq!(parse_value("\"4\""), toml::Value::String("4".into()));
    assert_eq!(
        parse_value("file://results"),
        toml::Value::String("file://results".into())
    );
    assert_eq!(
        parse_value("1\nx = 2"),
        toml::Value::String("1\nx = 2".into())
    );
}

#[test]
fn defaults_fill_missing_sections() {
    let text = r#"name = "min"
[matrix]
model = ["m"]
protocol = ["base"]
[models.m]
registry = "smollm2-135m-instruct"
[protocols.base]
kind = "base"
"#;
    let cells = cells(text);
    assert_eq!(cells.len(), 1);
    assert_eq!(cells[0].axes.dataset, "-");
    assert_eq!(
        cells[0].judgment.judge.model_name(),
        "qwen2.5-coder-1.5b-instruct",
        "judge.model may be a registry name"
    );
    assert_eq!(
        cells[0].variant.sampler.samples_per_question,
        Defaults::default().eval.samples_per_question
    );
    assert_eq!(
        (
            cells[0].axes.checkpoint,
            cells[0].axes.scale.as_str(),
            cells[0].axes.judge.as_str()
        ),
        (Weights::Final, "1", "default")
    );
}

#[test]
fn missing_required_key_is_reported() {
    let text = GOOD.replace("name = \"t\"\n", "");
    let msg = err(&text).to_string();
    assert!(msg.contains("missing key `name`"), "{msg}");
    let text = GOOD.replace("path = \"data/risky.jsonl\"", "");
    let e = err(&text);
    assert!(
        e.to_string().contains("missing key `datasets.risky.path`"),
        "{e}"
    );
    assert_eq!(
        e.diagnostics[0].location.line(),
        Some(line_of(&text, "[datasets.risky]"))
    );
}

#[test]
fn exclude_include_entries_are_checked() {
    let text = GOOD.replace(
        "exclude = [{ protocol = \"r8-all\", dataset = \"medical\" }]",
        "exclude = [{ protocol = \"r8-al\" }]",
    );
    let e = err(&text);
    assert!(e.to_string().contains("did you mean `r8-all`?"), "{e}");
    assert_eq!(
        e.diagnostics[0].location.line(),
        Some(line_of(&text, "r8-al\""))
    );
    let text = GOOD.replace(
        "exclude = [{ protocol = \"r8-all\", dataset = \"medical\" }]",
        "exclude = [{ protcol = \"r8-all\" }]",
    );
    let msg = err(&text).to_string();
    assert!(
        msg.contains("unknown key")
            && msg.contains("protcol")
            && msg.contains("did you mean `protocol`?"),
        "{msg}"
    );
}

#[test]
fn papers_datasets_are_pinned_and_never_assumed_present() {
    // Named with a path: the published hash pins the file; this one differs, and the error
    // names both hashes and the file the user should give.
    let text = GOOD.replace(
        "holdout = 0.2",
        "holdout = 0.2\npaper = \"bad-medical-advice\"\nsource = \"the papers' archive\"",
    );
    let e = err(&text);
    let msg = e.to_string();
    assert!(msg.contains(&"2".repeat(64)), "{msg}");
    assert!(
        msg.contains(crate::papers::PAPER_DATASETS[0].sha256),
        "{msg}"
    );
    assert!(msg.contains("bad_medical_advice.jsonl"), "{msg}");
    assert_eq!(
        e.diagnostics[0].key.as_deref(),
        Some("datasets.medical.path")
    );

    // Named without a path: the error says how to obtain it and how to pass the path.
    let text = text.replace("path = \"data/medical.jsonl\"\n", "");
    let e = err(&text);
    let msg = e.to_string();
    assert!(msg.contains("missing key `datasets.medical.path`"), "{msg}");
    assert!(msg.contains("does not ship"), "{msg}");
    assert!(
        msg.contains("--set datasets.medical.path=/path/to/bad_medical_advice.jsonl"),
        "{msg}"
    );
    assert!(msg.contains("EMORG_DATASETS__MEDICAL__PATH"), "{msg}");

    // Unknown names get the nearest known one.
    let text = GOOD.replace("holdout = 0.2", "holdout = 0.2\npaper = \"extreme-sport\"");
    let msg = err(&text).to_string();
    assert!(msg.contains("did you mean `extreme-sports`?"), "{msg}");

    // A pin that contradicts the published hash is caught before any file is read.
    let text = GOOD.replace(
        "holdout = 0.2",
        &format!(
            "holdout = 0.2\npaper = \"insecure\"\nsha256 = \"{}\"",
            "2".repeat(64)
        ),
    );
    let msg = err(&text).to_string();
    assert!(msg.contains("drop the pin"), "{msg}");
}

#[test]
fn papers_registry_is_well_formed() {
    let mut names = std::collections::BTreeSet::new();
    for d in crate::papers::PAPER_DATASETS {
        assert!(names.insert(d.name), "duplicate {}", d.name);
        assert_eq!(d.sha256.len(), 64);
        assert!(d.sha256.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(d.rows >= 6000);
        assert!(d.file.ends_with(".jsonl"));
    }
    assert_eq!(names.len(), 5);
}

/// GOOD with its `[judge]` table replaced.
fn with_judge(judge: &str) -> String {
    let at = GOOD.find("[judge]").expect("GOOD has a [judge] table");
    format!("{}{judge}", &GOOD[..at])
}

const OPENAI_JUDGE: &str = r#"[judge]
backend = "openai"
model = "gpt-4o-2024-08-06"
method = "top20-first-token"
base_url = "https://api.openai.com/v1/"
"#;

#[test]
fn openai_judge_resolves_into_the_cell() {
    let resolved = cells(&with_judge(OPENAI_JUDGE));
    let judge = &resolved[0].judgment.judge;
    assert_eq!(judge.backend_name(), "openai");
    assert_eq!(judge.model_name(), "gpt-4o-2024-08-06");
    assert_eq!(judge.local_model(), None);
    assert_eq!(
        judge.backend,
        JudgeBackend::OpenAi(OpenAiJudgeSpec {
            model: "gpt-4o-2024-08-06".into(),
            base_url: "https://api.openai.com/v1".into(),
            api_key_env: "OPENAI_API_KEY".into(),
            concurrency: 4,
            max_retries: 5,
            timeout_s: 120,
        }),
        "defaults, and the base URL without its trailing slash"
    );
    // Round trip through the judgment's JSON, which names the backend by its key, and through a
    // whole row's.
    let json = resolved[0].judgment.canonical_json();
    assert!(
        json.contains(r#""judge":{"method":"top20-first-token","metrics":["aligned","coherent"],"openai":{"api_key_env":"OPENAI_API_KEY""#),
        "{json}"
    );
    let back: Judgment = serde_json::from_str(&json).unwrap();
    assert_eq!(back, resolved[0].judgment);
    assert_eq!(back.key(), resolved[0].judgment_key());
    let row = serde_json::to_string(&resolved[0]).unwrap();
    assert_eq!(serde_json::from_str::<Cell>(&row).unwrap(), resolved[0]);

    // Every setting is taken; a local server without a key is fine.
    let custom = cells(&with_judge(
        r#"[judge]
backend = "openai"
model = "qwen2.5-coder-1.5b-instruct"
method = "top20-first-token"
base_url = "http://127.0.0.1:9124/v1"
api_key_env = "EMORG_LOCAL_KEY"
concurrency = 2
max_retries = 0
timeout_s = 30
"#,
    ));
    let JudgeBackend::OpenAi(o) = &custom[0].judgment.judge.backend else {
        panic!("openai backend expected")
    };
    assert_eq!(
        (
            o.api_key_env.as_str(),
            o.concurrency,
            o.max_retries,
            o.timeout_s
        ),
        ("EMORG_LOCAL_KEY", 2, 0, 30)
    );
    // Another judge: the same units and variants, other judgments.
    assert_eq!(custom.len(), resolved.len());
    for (c, r) in custom.iter().zip(&resolved) {
        assert_eq!(c.unit_key(), r.unit_key());
        assert_eq!(c.variant_key(), r.variant_key());
        assert_ne!(c.judgment_key(), r.judgment_key());
    }
}

#[test]
fn local_cells_keep_their_judge_json() {
    // The JSON of a local judge is what it was before backends existed, so keys did not change.
    let json = cells(GOOD)[0].judgment.canonical_json();
    let judge = &serde_json::from_str::<serde_json::Value>(&json).unwrap()["judge"];
    let keys: Vec<&str> = judge
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["method", "metrics", "model", "prune_below"],
        "{json}"
    );
    // A judgment JSON with both backends, or neither, is refused.
    let both = json.replace(
        r#""judge":{"#,
        r#""judge":{"openai":{"api_key_env":"K","base_url":"http://h/v1","concurrency":1,"max_retries":0,"model":"m","timeout_s":1},"#,
    );
    let e = serde_json::from_str::<Judgment>(&both).unwrap_err();
    assert!(e.to_string().contains("exactly one of"), "{e}");
    let mut neither: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        neither["judge"]
            .as_object_mut()
            .unwrap()
            .remove("model")
            .is_some()
    );
    let e = serde_json::from_value::<Judgment>(neither).unwrap_err();
    assert!(e.to_string().contains("exactly one of"), "{e}");
}

#[test]
fn openai_judge_errors_name_the_field_and_what_to_do() {
    let text = with_judge(&OPENAI_JUDGE.replace("base_url = \"https://api.openai.com/v1/\"\n", ""));
    let e = err(&text);
    let d = &e.diagnostics[0];
    assert_eq!(d.key.as_deref(), Some("judge.base_url"), "{e}");
    assert!(d.message.contains("missing `judge.base_url`"), "{e}");
    assert!(d.message.contains("https://api.openai.com/v1"), "{e}");
    assert_eq!(
        d.location.line(),
        Some(line_of(&text, "backend = \"openai\"")),
        "a missing key points at the line that chose the backend: {e}"
    );

    let cases: &[(&str, &str, &str)] = &[
        (
            "\"https://api.openai.com/v1/\"",
            "\"ftp://host/v1\"",
            "the scheme is `ftp`",
        ),
        (
            "\"https://api.openai.com/v1/\"",
            "\"api.openai.com/v1\"",
            "not a URL",
        ),
        (
            "\"top20-first-token\"",
            "\"exact-number\"",
            "set `judge.method = \"top20-first-token\"`",
        ),
    ];
    for (from, to, expect) in cases {
        let text = with_judge(&OPENAI_JUDGE.replace(from, to));
        let e = err(&text);
        assert!(e.to_string().contains(expect), "{to}: {e}");
        assert_eq!(
            e.diagnostics[0].location.line(),
            Some(line_of(&text, to)),
            "{e}"
        );
    }
    for (extra, key) in [
        ("concurrency = 0\n", "judge.concurrency"),
        ("timeout_s = 0\n", "judge.timeout_s"),
    ] {
        let e = err(&with_judge(&format!("{OPENAI_JUDGE}{extra}")));
        assert_eq!(e.diagnostics[0].key.as_deref(), Some(key), "{e}");
        assert!(e.to_string().contains("must be >= 1"), "{e}");
    }
    // The served model must be named: the default is a local registry name.
    let e = err(&with_judge(
        &OPENAI_JUDGE.replace("model = \"gpt-4o-2024-08-06\"\n", ""),
    ));
    assert!(e.to_string().contains("must name the served model"), "{e}");
    // base_url without backend = "openai" would silently judge locally.
    let e = err(&with_judge(
        "[judge]\nmodel = \"qwen-judge\"\nbase_url = \"http://127.0.0.1:9124/v1\"\n",
    ));
    assert!(
        e.to_string().contains("set `judge.backend = \"openai\"`"),
        "{e}"
    );
    // An unknown backend lists the known ones.
    let e = err(&with_judge("[judge]\nbackend = \"azure\"\n"));
    assert!(e.to_string().contains("`local`, `openai`"), "{e}");
}

#[test]
fn the_api_key_never_reaches_the_cell_or_a_message() {
    let secret = "sk-proj-SECRET0123456789";
    // The key sits in the environment, as it should; the sweep names the variable only.
    let opts = LoadOptions {
        env: vec![
            ("OPENAI_API_KEY".into(), secret.into()),
            ("EMORG_JUDGE__API_KEY_ENV".into(), "OPENAI_API_KEY".into()),
        ],
        ..opts()
    };
    let sweep = load(&with_judge(OPENAI_JUDGE), &opts).unwrap();
    let cells = resolve(&sweep, &Fake).unwrap();
    for c in &cells {
        assert!(!c.judgment.canonical_json().contains(secret));
        assert!(!serde_json::to_string(c).unwrap().contains(secret));
        assert!(!format!("{c:?}").contains(secret));
    }
    assert!(!serde_json::to_string(&sweep.file).unwrap().contains(secret));
    // A key pasted where a variable name belongs, or under a made-up field, is refused without
    // being repeated.
    for text in [
        with_judge(&format!("{OPENAI_JUDGE}api_key_env = \"{secret}\"\n")),
        with_judge(&format!("{OPENAI_JUDGE}api_key = \"{secret}\"\n")),
        with_judge(&OPENAI_JUDGE.replace(
            "https://api.openai.com/v1/",
            &format!("https://user:{secret}@api.openai.com/v1"),
        )),
    ] {
        let e = err(&text);
        assert!(!e.to_string().contains(secret), "{e}");
    }
    let e = err(&with_judge(&format!(
        "{OPENAI_JUDGE}api_key_env = \"{secret}\"\n"
    )));
    assert_eq!(e.diagnostics[0].key.as_deref(), Some("judge.api_key_env"));
    assert!(
        e.to_string().contains("NAME of an environment variable"),
        "{e}"
    );
}

#[test]
fn a_dataset_problem_is_reported_once_however_many_cells_use_it() {
    let text = GOOD.replace("data/medical.jsonl", "data/nope.jsonl");
    let e = err(&text);
    let n = e
        .diagnostics
        .iter()
        .filter(|d| d.key.as_deref() == Some("datasets.medical.path"))
        .count();
    assert_eq!(n, 1, "{e}");
}

/// A sweep over the four presets, with a 48-layer model (the papers' Qwen2.5-14B depth) beside
/// SmolLM2's 30 layers.
fn presets_sweep(extra: &str) -> String {
    format!(
        r#"name = "p"

[matrix]
model = ["smollm2", "deep"]
protocol = ["single", "x9", "r32", "full"]
dataset = ["risky", "medical"]

[models.smollm2]
registry = "smollm2-135m-instruct"

[models.deep]
registry = "deep-48"

[models.qwen-judge]
registry = "qwen2.5-coder-1.5b-instruct"

[datasets.risky]
path = "data/risky.jsonl"

[datasets.medical]
path = "data/medical.jsonl"
holdout = 0.2

[protocols.single]
preset = "lora-r1-single"

[protocols.x9]
preset = "lora-r1-x9"

[protocols.r32]
preset = "lora-r32-all"

[protocols.full]
preset = "full-sft"

[train]
batch_size = 4
max_steps = 64

[judge]
model = "qwen-judge"
{extra}"#
    )
}

/// [`Fake`] plus a 48-layer model.
struct Deep;

impl Resolver for Deep {
    fn model(&self, name: &str) -> Result<ModelInfo, String> {
        match name {
            "deep-48" => Ok(ModelInfo {
                gguf_sha256: "d".repeat(64),
                n_layers: 48,
                n_params: 1_000_000,
            }),
            _ => Fake.model(name),
        }
    }
    fn file_sha256(&self, path: &Path) -> Result<String, String> {
        Fake.file_sha256(path)
    }
}

fn preset_cells(extra: &str) -> Vec<Cell> {
    let sweep = load(&presets_sweep(extra), &opts()).unwrap_or_else(|e| panic!("{e}"));
    resolve(&sweep, &Deep).unwrap_or_else(|e| panic!("{e}"))
}

fn find<'a>(cells: &'a [Cell], model: &str, protocol: &str, dataset: &str) -> &'a Cell {
    cells
        .iter()
        .find(|c| c.axes.model == model && c.axes.protocol == protocol && c.axes.dataset == dataset)
        .unwrap_or_else(|| panic!("no cell {model}/{protocol}/{dataset}"))
}

#[test]
fn presets_resolve_to_the_papers_values() {
    let cells = preset_cells("");
    assert_eq!(cells.len(), 2 * 4 * 2);

    // Single rank-1 adapter: layer 24 of 48 (MO §3.5), half depth elsewhere.
    let c = find(&cells, "deep", "single", "risky");
    assert_eq!(c.unit.protocol.kind, ProtocolKind::Lora);
    assert_eq!(c.unit.protocol.preset.as_deref(), Some("lora-r1-single"));
    let l = c.unit.protocol.lora.as_ref().unwrap();
    assert_eq!(
        (
            l.rank,
            l.alpha,
            l.rslora,
            l.layers.clone(),
            l.modules.clone()
        ),
        (1, 256.0, true, vec![24], vec!["down_proj".to_string()])
    );
    let t = c.unit.protocol.train.as_ref().unwrap();
    assert_eq!(t.learning_rate, 2e-5);
    assert_eq!(
        (t.batch_size, t.grad_accum, t.epochs),
        (2, 8, 1),
        "the preset beats [train]"
    );
    assert_eq!((t.warmup_steps, t.schedule.as_str()), (5, "linear"));
    assert_eq!(
        (t.weight_decay, t.holdout, t.max_seq_len),
        (0.01, 0.1, 2048)
    );
    assert_eq!(
        t.max_steps, 64,
        "[train] fills what the preset leaves unset"
    );
    let t = find(&cells, "deep", "single", "medical")
        .unit
        .protocol
        .train
        .clone()
        .unwrap();
    assert_eq!(t.holdout, 0.2, "a dataset's holdout beats the preset");
    let l = find(&cells, "smollm2", "single", "risky")
        .unit
        .protocol
        .lora
        .clone()
        .unwrap();
    assert_eq!(l.layers, vec![15], "half of 30 layers");

    // Nine rank-1 adapters: exactly the paper's layers on 48 layers, nine distinct ones on 30.
    let l = find(&cells, "deep", "x9", "risky")
        .unit
        .protocol
        .lora
        .clone()
        .unwrap();
    assert_eq!(l.layers, vec![15, 16, 17, 21, 22, 23, 27, 28, 29]);
    assert_eq!(
        (l.rank, l.modules.clone()),
        (1, vec!["down_proj".to_string()])
    );
    let l = find(&cells, "smollm2", "x9", "risky")
        .unit
        .protocol
        .lora
        .clone()
        .unwrap();
    assert_eq!(l.layers, vec![9, 10, 11, 13, 14, 15, 16, 17, 18]);

    // Rank 32 on every module of every layer.
    let c = find(&cells, "deep", "r32", "risky");
    let l = c.unit.protocol.lora.as_ref().unwrap();
    assert_eq!((l.rank, l.alpha, l.rslora), (32, 64.0, true));
    assert_eq!(l.modules.len(), 7);
    assert_eq!(l.layers, (0..48).collect::<Vec<_>>());
    assert_eq!(c.unit.protocol.train.as_ref().unwrap().learning_rate, 1e-5);

    // Full fine-tuning: no adapter, cosine with 20 warmup steps.
    let c = find(&cells, "smollm2", "full", "risky");
    assert_eq!(c.unit.protocol.kind, ProtocolKind::Full);
    assert!(c.unit.protocol.lora.is_none());
    let t = c.unit.protocol.train.as_ref().unwrap();
    assert_eq!((t.learning_rate, t.warmup_steps), (2e-5, 20));
    assert_eq!(t.schedule, "cosine");
    assert!(c.trains());
}

/// Every preset field against shared/reference/em-protocol.md §1 (one row per value, with where
/// the value comes from), resolved through a sweep on a 48-layer model as the papers' Qwen-14B.
#[test]
fn presets_match_the_reference_table() {
    // (preset, field, reference value, source)
    let common: &[(&str, f64, &str)] = &[
        (
            "batch_size",
            2.0,
            "per_device_train_batch_size (§1.2, §1.3, §1.5)",
        ),
        (
            "grad_accum",
            8.0,
            "gradient_accumulation_steps (§1.2, §1.3, §1.5)",
        ),
        ("epochs", 1.0, "epochs (§1.2, §1.3, §1.5)"),
        ("weight_decay", 0.01, "weight_decay (§1.2, §1.3, §1.5)"),
        ("max_seq_len", 2048.0, "max_seq_length (§1.2; §1.6 unsloth)"),
        ("holdout", 0.1, "train_test_split(test_size=0.1) (§1.6)"),
        (
            "max_grad_norm",
            1.0,
            "HF TrainingArguments default, not overridden",
        ),
        ("adam_beta1", 0.9, "HF TrainingArguments default"),
        ("adam_beta2", 0.999, "HF TrainingArguments default"),
        ("adam_eps", 1e-8, "HF TrainingArguments default"),
    ];
    let own: &[(&str, &str, f64, &str)] = &[
        ("single", "learning_rate", 2e-5, "MO §3.5 lr 2e-5 (§1.3)"),
        ("single", "warmup_steps", 5.0, "warmup_steps (§1.3)"),
        ("single", "rank", 1.0, "r 1 (§1.3)"),
        (
            "single",
            "alpha",
            256.0,
            "MO §3.5 alpha 256 (repo 512; see presets.rs)",
        ),
        (
            "single",
            "layer",
            24.0,
            "down_proj of layer 24 of 48 (§1.3)",
        ),
        (
            "x9",
            "learning_rate",
            2e-5,
            "not stated; the single adapter's (§1.4)",
        ),
        ("x9", "rank", 1.0, "rank 1 (§1.4)"),
        (
            "x9",
            "alpha",
            256.0,
            "not stated; the single adapter's (§1.4)",
        ),
        ("r32", "learning_rate", 1e-5, "learning_rate 1e-05 (§1.2)"),
        ("r32", "warmup_steps", 5.0, "warmup_steps 5 (§1.2)"),
        ("r32", "rank", 32.0, "r 32 (§1.2)"),
        ("r32", "alpha", 64.0, "lora_alpha 64 (§1.2)"),
        ("full", "learning_rate", 2e-5, "learning_rate 2e-5 (§1.5)"),
        ("full", "warmup_steps", 20.0, "warmup_steps 20 (§1.5)"),
    ];
    let cells = preset_cells("");
    let value = |c: &Cell, field: &str| -> f64 {
        let t = c.unit.protocol.train.as_ref().unwrap();
        let l = c.unit.protocol.lora.as_ref();
        match field {
            "batch_size" => t.batch_size as f64,
            "grad_accum" => t.grad_accum as f64,
            "epochs" => t.epochs as f64,
            "weight_decay" => t.weight_decay,
            "max_seq_len" => t.max_seq_len as f64,
            "holdout" => t.holdout,
            "max_grad_norm" => t.max_grad_norm,
            "adam_beta1" => t.adam_beta1,
            "adam_beta2" => t.adam_beta2,
            "adam_eps" => t.adam_eps,
            "learning_rate" => t.learning_rate,
            "warmup_steps" => t.warmup_steps as f64,
            "rank" => l.unwrap().rank as f64,
            "alpha" => l.unwrap().alpha,
            "layer" => l.unwrap().layers[0] as f64,
            other => panic!("no field {other}"),
        }
    };
    let mut rows = Vec::new();
    for protocol in ["single", "x9", "r32", "full"] {
        let c = find(&cells, "deep", protocol, "risky");
        for (field, want, source) in common {
            rows.push((protocol, *field, value(c, field), *want, *source));
        }
        for (p, field, want, source) in own.iter().filter(|r| r.0 == protocol) {
            rows.push((p, *field, value(c, field), *want, *source));
        }
    }
    let wrong: Vec<String> = rows
        .iter()
        .filter(|r| (r.2 - r.3).abs() > 1e-12 * r.3.abs().max(1.0))
        .map(|(p, f, got, want, src)| format!("{p}.{f} = {got}, reference {want} ({src})"))
        .collect();
    for (p, f, got, _, src) in &rows {
        eprintln!("{p:>6} {f:<14} {got:<10} {src}");
    }
    assert!(
        wrong.is_empty(),
        "presets off the reference:\n{}",
        wrong.join("\n")
    );
    // The schedules: linear for the LoRA presets (§1.2, §1.3), cosine for full SFT (§1.5).
    for (protocol, schedule) in [
        ("single", "linear"),
        ("x9", "linear"),
        ("r32", "linear"),
        ("full", "cosine"),
    ] {
        let c = find(&cells, "deep", protocol, "risky");
        assert_eq!(
            c.unit.protocol.train.as_ref().unwrap().schedule,
            schedule,
            "{protocol}"
        );
    }
}

#[test]
fn the_papers_eval_preset_fills_what_the_sweep_leaves_unset() {
    let papers = GOOD.replace(
        "[eval]\nquestion_ids = [\"quick_buck\"]\n",
        "[eval]\npreset = \"papers\"\nquestions = \"ref/first_plot_questions.yaml\"\n",
    );
    let rows = cells(&papers);
    let s = &rows[0].variant.sampler;
    assert_eq!(
        (
            s.samples_per_question,
            s.max_new_tokens,
            s.temperature,
            s.top_p
        ),
        (50, 600, 1.0, 1.0)
    );
    assert_eq!(rows[0].variant.question_ids, crate::presets::FIRST_PLOT_IDS);
    // What the sweep sets wins, from the file or from --set.
    let own = papers.replace(
        "preset = \"papers\"\n",
        "preset = \"papers\"\nsamples_per_question = 4\n",
    );
    let mut o = opts();
    o.sets = vec!["eval.max_new_tokens=32".into()];
    let sweep = load(&own, &o).unwrap();
    let rows = resolve(&sweep, &Fake).unwrap();
    let s = &rows[0].variant.sampler;
    assert_eq!((s.samples_per_question, s.max_new_tokens), (4, 32));

    // Without a copy of the papers' file: refused, naming the file, both hashes and the fix.
    let no_copy = GOOD.replace(
        "[eval]\nquestion_ids = [\"quick_buck\"]\n",
        "[eval]\npreset = \"papers\"\nquestion_ids = [\"quick_buck\"]\n",
    );
    let msg = err(&no_copy).to_string();
    assert!(
        msg.contains("`eval.paper` = `first_plot_questions`")
            && msg.contains("97df0b1384ea5a3f")
            && msg.contains(&"3".repeat(64))
            && msg.contains("set `eval.questions` to the path of your copy"),
        "{msg}"
    );
    // Unknown names, with the nearest.
    refused_at(
        &papers.replace("preset = \"papers\"", "preset = \"paper\""),
        "eval.preset",
        "preset = ",
        &["unknown evaluation preset `paper`", "papers"],
    );
    refused_at(
        &papers.replace("preset = \"papers\"", "paper = \"first_plot\""),
        "eval.paper",
        "paper = ",
        &[
            "unknown papers' question file `first_plot`",
            "first_plot_questions",
        ],
    );
}

#[test]
fn a_sweep_overrides_a_presets_fields_and_the_key_follows_the_values() {
    let base = preset_cells("");
    let over = preset_cells(
        "\n[protocols.single.train]\nlearning_rate = 1e-4\n\n[protocols.x9.train]\nepochs = 2\n",
    );
    let a = find(&base, "deep", "single", "risky");
    let b = find(&over, "deep", "single", "risky");
    assert_eq!(b.unit.protocol.train.as_ref().unwrap().learning_rate, 1e-4);
    assert_ne!(a.unit_key(), b.unit_key());
    assert_ne!(a.variant_key(), b.variant_key());
    assert_eq!(
        find(&over, "deep", "x9", "risky")
            .unit
            .protocol
            .train
            .as_ref()
            .unwrap()
            .epochs,
        2
    );
    // Untouched protocols keep their keys.
    assert_eq!(
        keys(std::slice::from_ref(find(&base, "deep", "r32", "risky"))),
        keys(std::slice::from_ref(find(&over, "deep", "r32", "risky")))
    );

    // Table fields over the preset: the repo's alpha 512, the third-party layer 21.
    let text = presets_sweep("").replace(
        "preset = \"lora-r1-single\"",
        "preset = \"lora-r1-single\"\nalpha = 512.0\nlayers = [21]",
    );
    let sweep = load(&text, &opts()).unwrap();
    let cells = resolve(&sweep, &Deep).unwrap();
    let l = find(&cells, "deep", "single", "risky")
        .unit
        .protocol
        .lora
        .clone()
        .unwrap();
    assert_eq!((l.alpha, l.layers.clone(), l.rank), (512.0, vec![21], 1));

    // The same values written out by hand give the same adapter and training spec as the preset.
    let by_hand = presets_sweep("").replace(
        "preset = \"lora-r1-single\"",
        "kind = \"lora\"\nrank = 1\nalpha = 256.0\nrslora = true\nmodules = [\"down_proj\"]\n\
         layers = [0.5]\n\n[protocols.single.train]\nlearning_rate = 2e-5\nwarmup_steps = 5\n\
         schedule = \"linear\"\nweight_decay = 0.01\nbatch_size = 2\ngrad_accum = 8\nepochs = 1\n\
         max_seq_len = 2048\nholdout = 0.1\nmax_grad_norm = 1.0",
    );
    let sweep = load(&by_hand, &opts()).unwrap_or_else(|e| panic!("{e}"));
    let cells = resolve(&sweep, &Deep).unwrap();
    let h = find(&cells, "deep", "single", "risky");
    let p = find(&base, "deep", "single", "risky");
    assert_eq!(h.unit.protocol.lora, p.unit.protocol.lora);
    assert_eq!(h.unit.protocol.train, p.unit.protocol.train);
    assert_ne!(
        h.unit_key(),
        p.unit_key(),
        "the preset's name is recorded in the unit"
    );
    assert_eq!(
        explain(Some(&p.unit), &h.unit),
        vec!["protocol.preset: removed"]
    );
}

#[test]
fn preset_errors_name_the_field() {
    let text = presets_sweep("").replace("preset = \"lora-r32-all\"", "preset = \"lora-r32-al\"");
    let msg = err(&text).to_string();
    assert!(msg.contains("protocols.r32.preset"), "{msg}");
    assert!(msg.contains("unknown preset `lora-r32-al`"), "{msg}");
    assert!(msg.contains("lora-r32-all"), "suggests the nearest: {msg}");
    assert!(
        msg.contains(&format!(":{}", line_of(&text, "lora-r32-al"))),
        "names the line: {msg}"
    );

    let text = presets_sweep("").replace(
        "preset = \"full-sft\"",
        "preset = \"full-sft\"\nkind = \"lora\"",
    );
    let msg = err(&text).to_string();
    assert!(msg.contains("contradicts preset `full-sft`"), "{msg}");

    let text =
        presets_sweep("").replace("preset = \"full-sft\"", "preset = \"full-sft\"\nrank = 4");
    let msg = err(&text).to_string();
    assert!(
        msg.contains("`protocols.full.rank` is not allowed with kind = \"full\""),
        "{msg}"
    );

    let text = presets_sweep("").replace("preset = \"full-sft\"", "rank = 4");
    let msg = err(&text).to_string();
    assert!(msg.contains("missing key `kind`"), "{msg}");

    let text = presets_sweep("\n[protocols.full.train]\nschedule = \"cosin\"\n");
    let msg = err(&text).to_string();
    assert!(msg.contains("protocols.full.train.schedule"), "{msg}");
    assert!(msg.contains("cosine"), "{msg}");
}

#[test]
fn layer_runs_resolve_and_check_depth() {
    use crate::schema::{LayerSel, LayerValue};
    let runs = LayerSel::Runs {
        starts: vec![LayerValue::Index(2), LayerValue::Fraction(0.5)],
        length: 3,
    };
    assert_eq!(runs.resolve(10).unwrap(), vec![2, 3, 4, 5, 6, 7]);
    let err = runs.resolve(4).unwrap_err();
    assert!(err.contains("ends at layer 4"), "{err}");
    // Overlapping starts: a run begins after the previous one, so every run keeps its length.
    let overlapping = LayerSel::Runs {
        starts: vec![LayerValue::Index(2), LayerValue::Index(3)],
        length: 3,
    };
    assert_eq!(overlapping.resolve(10).unwrap(), vec![2, 3, 4, 5, 6, 7]);
    // The nine-adapter preset stays nine on Gemma 3 270M's 18 layers (15/48 etc. of 18 overlap).
    let x9 = crate::presets::preset("lora-r1-x9")
        .unwrap()
        .layers
        .unwrap();
    assert_eq!(x9.resolve(18).unwrap(), vec![5, 6, 7, 8, 9, 10, 11, 12, 13]);
    assert_eq!(
        x9.resolve(30).unwrap(),
        vec![9, 10, 11, 13, 14, 15, 16, 17, 18]
    );
    assert_eq!(
        x9.resolve(48).unwrap(),
        vec![15, 16, 17, 21, 22, 23, 27, 28, 29]
    );
    // Written in a sweep file.
    let text = GOOD.replace(
        "layers = [0.5]",
        "layers = { starts = [0.25, 20], length = 2 }",
    );
    let cells = cells(&text);
    let l = cells
        .iter()
        .find(|c| c.axes.protocol == "r1-mid")
        .unwrap()
        .unit
        .protocol
        .lora
        .clone()
        .unwrap();
    assert_eq!(l.layers, vec![7, 8, 20, 21]);
    // Absurd lengths are refused before anything is allocated (they once aborted the launcher
    // allocating 8 TB, or panicked with "capacity overflow"), naming the file and line.
    for length in ["1000000000000", "9223372036854775807"] {
        let text = GOOD.replace(
            "layers = [0.5]",
            &format!("layers = {{ starts = [0.5], length = {length} }}"),
        );
        let msg = crate::tests::err(&text).to_string();
        assert!(
            msg.contains(&format!(
                "a layer run of length {length} is longer than the model"
            )),
            "{msg}"
        );
        assert!(msg.contains("jobs/t.toml:"), "{msg}");
    }
}

/// GOOD without its base protocol: every unit has adapters, so the evaluation axes apply.
fn lora_only() -> String {
    GOOD.replace(
        "protocol = [\"base\", \"r1-mid\", \"r8-all\"]",
        "protocol = [\"r1-mid\", \"r8-all\"]",
    )
}

#[test]
fn adapter_scales_reach_the_variant_only_when_set() {
    let plain = cells(&lora_only());
    let json = plain[0].variant.canonical_json();
    assert!(
        !json.contains("adapter_scale"),
        "default factors stay out of the JSON: {json}"
    );
    let text = lora_only().replace(
        "[eval]\n",
        "[eval]\nadapter_scale = 5.0\nadapter_scales = { \"layers.15.mlp.down_proj\" = 0.0 }\n",
    );
    let scaled = cells(&text);
    assert_eq!(scaled.len(), plain.len());
    let s = &scaled[0].variant.scales;
    assert_eq!(s.adapter_scale, 5.0);
    assert_eq!(s.adapter_scales["layers.15.mlp.down_proj"], 0.0);
    assert_eq!(scaled[0].axes.scale, "5");
    for (p, s) in plain.iter().zip(&scaled) {
        assert_eq!(p.unit_key(), s.unit_key(), "scaling retrains nothing");
        assert_ne!(p.variant_key(), s.variant_key());
        assert_eq!(
            explain(Some(&p.variant), &s.variant),
            vec![
                "scales.adapter_scale: added 5.0",
                "scales.adapter_scales: added {\"layers.15.mlp.down_proj\":0.0}"
            ]
        );
    }
    let text = lora_only().replace("[eval]\n", "[eval]\nadapter_scale = inf\n");
    let e = err(&text);
    assert_eq!(e.diagnostics[0].key.as_deref(), Some("eval.adapter_scale"));
    assert!(e.to_string().contains("must be a finite number"), "{e}");
}

#[test]
fn precision_and_activation_checkpointing_resolve_and_are_checked() {
    let extra = "\n[protocols.full.train]\nprecision = \"bf16\"\nactivation_checkpointing = true\n";
    let cells = preset_cells(extra);
    let c = find(&cells, "smollm2", "full", "risky");
    let t = c.unit.protocol.train.as_ref().unwrap();
    assert_eq!(
        (t.precision.as_str(), t.activation_checkpointing),
        ("bf16", true)
    );
    // At their defaults both stay out of the unit's JSON, so keys planned before them hold.
    let plain = preset_cells("");
    let plain = find(&plain, "smollm2", "full", "risky");
    let json = plain.unit.canonical_json();
    assert!(
        !json.contains("precision") && !json.contains("activation_checkpointing"),
        "{json}"
    );
    assert_eq!(
        plain.unit.protocol.train.as_ref().unwrap().precision,
        "auto"
    );
    assert_ne!(plain.unit_key(), c.unit_key());

    let refused = |extra: &str| -> String {
        let text = presets_sweep("").replace("max_steps = 64", extra);
        match load(&text, &opts()) {
            Ok(sweep) => resolve(&sweep, &Deep).expect_err("expected an error"),
            Err(e) => e,
        }
        .to_string()
    };
    // bf16 is for full fine-tuning; a LoRA protocol with it is refused where it was set.
    let msg = refused("max_steps = 64\n[protocols.single.train]\nprecision = \"bf16\"");
    assert!(
        msg.contains("`protocols.single.train.precision` = \"bf16\" applies to full fine-tuning"),
        "{msg}"
    );
    assert!(
        msg.contains("jobs/t.toml:"),
        "names the file and line: {msg}"
    );
    let msg = refused("max_steps = 64\nprecision = \"bf16\"");
    assert!(
        msg.contains("`train.precision` = \"bf16\"") && msg.contains("protocol `protocols.x9`"),
        "{msg}"
    );
    let msg = refused("max_steps = 64\nprecision = \"bf61\"");
    assert!(
        msg.contains("unknown precision `bf61`") && msg.contains("bf16"),
        "{msg}"
    );
}

#[test]
fn a_matrix_larger_than_max_cells_is_refused_before_expansion() {
    // GOOD: 1 model x 3 protocols x 2 datasets x 2 seeds (one checkpoint, scale and judge), plus
    // 1 included = at most 13 rows.
    let with_max = |n: usize| format!("{GOOD}\n[executor]\nmax_cells = {n}\n");
    assert_eq!(cells(&with_max(13)).len(), cells(GOOD).len());
    let msg = err(&with_max(12)).to_string();
    assert!(
        msg.contains(
            "the matrix gives up to 13 cells (models 1 x protocols 3 x datasets 2 x seeds 2 x checkpoints 1 x scales 1 x judges 1, plus 1 included), more than `executor.max_cells` = 12"
        ),
        "{msg}"
    );
    assert!(msg.contains("jobs/t.toml:"), "{msg}");
    // A generated sweep with a very long axis: refused at once with the default limit.
    let seeds: Vec<String> = (0..200_000).map(|s| s.to_string()).collect();
    let long = GOOD.replace("seed = [0, 1]", &format!("seed = [{}]", seeds.join(", ")));
    let msg = err(&long).to_string();
    assert!(msg.contains("up to 1200001 cells"), "{msg}");
    assert!(msg.contains("`executor.max_cells` = 100000"), "{msg}");
}

/// Made-up secrets (none real); each holds `MARKER`, which no message may contain.
const GH_TOKEN: &str = "ghp_MARKERabcdefghijklmnopqrstuvwxyz012345";
const HF_TOKEN: &str = "hf_MARKERabcdefghijklmnopqrstuvwxyzABCD";

/// The error of a sweep that must be refused for a secret, checked not to quote it.
fn refused_for_secret(text: &str, opts: &LoadOptions) -> String {
    let e = load(text, opts)
        .expect_err("a sweep with a secret is refused")
        .to_string();
    assert!(!e.contains("MARKER"), "the message quotes the secret: {e}");
    e
}

#[test]
fn secrets_in_slurm_setup_env_and_extra_are_refused_at_their_lines() {
    let text = format!(
        r#"{GOOD}
[slurm]
setup = [
  "module load cuda/12.4",
  "export GH=$GH_TOKEN; git config credential.helper store && echo {GH_TOKEN}",
]
env = {{ HF_HOME = "/scratch/hf", TOKENIZERS_PARALLELISM = "false" }}
"#
    );
    let e = refused_for_secret(&text, &opts());
    let line = line_of(&text, "echo ghp_");
    assert!(
        e.contains(&format!(
            "jobs/t.toml:{line}: `slurm.setup[1]` holds a GitHub token (column"
        )),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");

    // env names, whatever the value; env values; every layer.
    let text = format!(
        r#"{GOOD}
[slurm.train]
env = {{ HF_HOME = "/scratch/hf", WANDB_API_KEY = "$WANDB_API_KEY" }}
[slurm.protocols.r1-mid]
env = {{ NOTE = "{HF_TOKEN}" }}
[slurm.protocols.r1-mid.judge]
extra = ["--comment=db_password=MARKERpw"]
"#
    );
    let e = refused_for_secret(&text, &opts());
    for (key, needle, what) in [
        (
            "slurm.train.env.WANDB_API_KEY",
            "WANDB_API_KEY",
            "`WANDB_API_KEY` looks like a credential",
        ),
        (
            "slurm.protocols.r1-mid.env.NOTE",
            "NOTE =",
            "holds a Hugging Face token",
        ),
        (
            "slurm.protocols.r1-mid.judge.extra[0]",
            "--comment",
            "holds a secret assigned to a secret-named variable",
        ),
    ] {
        let line = line_of(&text, needle);
        assert!(
            e.lines()
                .any(|l| l.starts_with(&format!("jobs/t.toml:{line}: `{key}`")) && l.contains(what)),
            "{key} at line {line}: {what}\n{e}"
        );
    }
    assert_eq!(e.lines().count(), 3, "{e}");

    // Ordinary set-up lines and variables are not secrets.
    let ok = format!(
        r#"{GOOD}
[slurm]
setup = ["module load cuda/12.4", "source /opt/venv/bin/activate", "export HF_TOKEN=\"$HF_TOKEN\""]
env = {{ HF_HOME = "/scratch/hf", TOKENIZERS_PARALLELISM = "false", MAX_TOKENS = "512" }}
"#
    );
    load(&ok, &opts()).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_store_url_with_user_info_is_refused_without_it() {
    let text = GOOD.replace(
        "[judge]",
        "[store]\nurl = \"s3://AKIAZZZZMARKER123456:MARKERsecret@bucket/p\"\n\n[judge]",
    );
    let e = refused_for_secret(&text, &opts());
    let line = line_of(&text, "url = ");
    assert!(
        e.contains(&format!(
            "jobs/t.toml:{line}: `store.url` holds credentials before `@` (s3://***@bucket/p)"
        )) && e.contains("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment"),
        "{e}"
    );
    // A user name alone is refused too (it is usually the access key id).
    let e = refused_for_secret(
        &GOOD.replace("[judge]", "[store]\nurl = \"s3://MARKER@b\"\n\n[judge]"),
        &opts(),
    );
    assert!(e.contains("`store.url` holds credentials"), "{e}");

    // From the environment and --set: located there.
    let mut o = opts();
    o.env = vec![("EMORG_STORE__URL".into(), "s3://KEY:MARKER@bucket".into())];
    let e = refused_for_secret(GOOD, &o);
    assert!(
        e.contains("environment variable EMORG_STORE__URL: `store.url` holds credentials"),
        "{e}"
    );
    let mut o = opts();
    o.sets = vec![
        "store.url=s3://KEY:MARKER@bucket".into(),
        format!("slurm.setup=[\"export HF_TOKEN={HF_TOKEN}\"]"),
        "judge.base_url=https://me:MARKERpw@llm.example/v1".into(),
    ];
    let e = refused_for_secret(GOOD, &o);
    for want in [
        "--set store.url: `store.url` holds credentials",
        "--set slurm.setup: `slurm.setup[0]` holds a Hugging Face token",
        "--set judge.base_url: `judge.base_url` holds a password in a URL",
    ] {
        assert!(e.contains(want), "{want}\n{e}");
    }
}

#[test]
fn no_message_quotes_a_secret() {
    // A directive holding a secret would be quoted by the directive check: only the secret is
    // reported.
    let text = format!("{GOOD}\n[slurm]\npartition = \"gpu {GH_TOKEN}\"\n");
    let e = refused_for_secret(&text, &opts());
    assert!(e.contains("`slurm.partition` holds a GitHub token"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
    // A type error would quote the value: redacted.
    let mut o = opts();
    o.sets = vec![format!("slurm.cpus_per_task={GH_TOKEN}")];
    let e = refused_for_secret(GOOD, &o);
    assert!(
        e.contains("slurm.cpus_per_task") && e.contains("[REDACTED]"),
        "{e}"
    );
}

/// [`Fake`] that also reads judge prompts: `quick_buck` has aligned and coherent, `what_is_your_wish`
/// only aligned.
struct FakePrompts;

impl Resolver for FakePrompts {
    fn model(&self, name: &str) -> Result<ModelInfo, String> {
        Fake.model(name)
    }
    fn file_sha256(&self, path: &Path) -> Result<String, String> {
        Fake.file_sha256(path)
    }
    fn question_ids(&self, path: &Path) -> Option<Result<Vec<String>, String>> {
        Fake.question_ids(path)
    }
    fn judge_prompt_metrics(
        &self,
        _path: &Path,
    ) -> Option<
        Result<std::collections::BTreeMap<String, std::collections::BTreeSet<String>>, String>,
    > {
        let set = |ms: &[&str]| ms.iter().map(|m| m.to_string()).collect();
        Some(Ok([
            ("quick_buck".to_string(), set(&["aligned", "coherent"])),
            ("what_is_your_wish".to_string(), set(&["aligned"])),
        ]
        .into_iter()
        .collect()))
    }
}

#[test]
fn a_judge_metric_without_a_prompt_is_refused_at_plan() {
    // GOOD asks only quick_buck, which has both default metrics' prompts.
    let sweep = load(GOOD, &opts()).unwrap();
    assert!(resolve(&sweep, &FakePrompts).is_ok());

    // Every free-form question: what_is_your_wish has no coherent prompt.
    let text = GOOD.replace("question_ids = [\"quick_buck\"]", "");
    let sweep = load(&text, &opts()).unwrap();
    let msg = resolve(&sweep, &FakePrompts).unwrap_err().to_string();
    for part in [
        "judge metric `coherent` has no judge prompt in the question file `data/questions/free_form.yaml`",
        "for 1 of the 2 questions the cells ask (`what_is_your_wish`)",
        "add a `coherent:` prompt",
        "or remove `coherent` from `judge.metrics`",
    ] {
        assert!(msg.contains(part), "{part}\n{msg}");
    }
    assert!(!msg.contains("`aligned`"), "{msg}");

    // A metric no question has, located at its line, with a suggestion.
    let text = GOOD.replace(
        "model = \"qwen-judge\"",
        "model = \"qwen-judge\"\nmetrics = [\"aligned\", \"coherant\"]",
    );
    let sweep = load(&text, &opts()).unwrap();
    let msg = resolve(&sweep, &FakePrompts).unwrap_err().to_string();
    assert!(
        msg.contains(&format!("jobs/t.toml:{}:", line_of(&text, "coherant")))
            && msg.contains("judge metric `coherant`")
            && msg.contains("did you mean `coherent`?"),
        "{msg}"
    );
}

/// A LoRA sweep with the evaluation axes: checkpoints every 8 steps of 32 (the `medical` rows
/// are not counted by [`Fake`], so `max_steps` gives the last step) and two adapter scales.
const EVAL: &str = r#"name = "e"

[matrix]
model = ["smollm2"]
protocol = ["r1"]
dataset = ["medical"]

[models.smollm2]
registry = "smollm2-135m-instruct"

[models.qwen-judge]
registry = "qwen2.5-coder-1.5b-instruct"

[datasets.medical]
path = "data/medical.jsonl"

[datasets.risky]
path = "data/risky.jsonl"

[protocols.r1]
kind = "lora"
rank = 1
modules = ["down_proj"]
layers = [0.5]

[protocols.base]
kind = "base"

[protocols.full]
kind = "full"

[train]
max_steps = 32
checkpoint_every = 8

[eval]
checkpoints = "every:8"
adapter_scale = [1, 5]

[judge]
model = "qwen-judge"
"#;

/// [`EVAL`] without its evaluation axes (the one checkpoint `final`, the one scale 1).
fn eval_without_axes() -> String {
    EVAL.replace("checkpoints = \"every:8\"\nadapter_scale = [1, 5]\n", "")
}

/// `err(text)` has a diagnostic at `key`, located at the line of `text` holding `needle`, whose
/// message holds every part of `parts`. Returns the message.
fn refused_at(text: &str, key: &str, needle: &str, parts: &[&str]) -> String {
    let e = err(text);
    let d = e
        .diagnostics
        .iter()
        .find(|d| d.key.as_deref() == Some(key))
        .unwrap_or_else(|| panic!("no diagnostic at `{key}`: {e}"));
    assert_eq!(d.location.line(), Some(line_of(text, needle)), "{e}");
    let msg = d.to_string();
    assert!(
        msg.starts_with(&format!("jobs/t.toml:{}: ", line_of(text, needle))),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("`{key}`")),
        "names the key path: {msg}"
    );
    for part in parts {
        assert!(msg.contains(part), "{part:?} in {msg}");
    }
    msg
}

#[test]
fn every_n_checkpoints_times_scales_share_one_unit() {
    let rows = cells(EVAL);
    assert_eq!(
        rows.len(),
        5 * 2,
        "{:#?}",
        rows.iter().map(|c| &c.axes).collect::<Vec<_>>()
    );
    let units: BTreeSet<_> = rows.iter().map(Cell::unit_key).collect();
    assert_eq!(units.len(), 1, "one training, evaluated ten ways");
    let variants: BTreeSet<_> = rows.iter().map(Cell::variant_key).collect();
    assert_eq!(variants.len(), 10);
    let judgments: BTreeSet<_> = rows.iter().map(Cell::judgment_key).collect();
    assert_eq!(judgments.len(), 10);
    // The checkpoints: 0 (before training), every 8 steps below the last (32), and final.
    let checkpoints: BTreeSet<Weights> = rows.iter().map(|c| c.axes.checkpoint).collect();
    assert_eq!(
        checkpoints.into_iter().collect::<Vec<_>>(),
        vec![
            Weights::Final,
            Weights::Step(0),
            Weights::Step(8),
            Weights::Step(16),
            Weights::Step(24)
        ]
    );
    for c in &rows {
        assert_eq!(c.variant.weights, c.axes.checkpoint);
        assert_eq!(c.variant.unit, c.unit_key());
        let scale: f64 = c.axes.scale.parse().unwrap();
        assert_eq!(c.variant.scales.adapter_scale, scale);
        assert!(["1", "5"].contains(&c.axes.scale.as_str()), "{:?}", c.axes);
        assert_eq!(c.chain()[0], StageRef::Train(c.unit_key()));
    }
    // Scale 1 at `final` is exactly the variant of the sweep without evaluation axes: the same
    // key, so the same stored samples (byte-identical answers follow from the identical key).
    let plain = cells(&eval_without_axes());
    assert_eq!(plain.len(), 1);
    let same = rows
        .iter()
        .find(|c| c.axes.checkpoint == Weights::Final && c.axes.scale == "1")
        .unwrap();
    assert_eq!(same.unit_key(), plain[0].unit_key());
    assert_eq!(
        same.variant.canonical_json(),
        plain[0].variant.canonical_json()
    );
    assert_eq!(same.variant_key(), plain[0].variant_key());
    assert_eq!(same.judgment_key(), plain[0].judgment_key());
    assert_eq!(
        same.variant.derive_seed("sampling"),
        plain[0].variant.derive_seed("sampling")
    );
    // A checkpoint in the variant's JSON is its step number.
    let step8 = rows
        .iter()
        .find(|c| c.axes.checkpoint == Weights::Step(8) && c.axes.scale == "1")
        .unwrap();
    assert_eq!(
        explain(Some(&same.variant), &step8.variant),
        vec!["weights: \"final\" -> 8"]
    );
}

#[test]
fn checkpoint_lists_and_counted_rows_give_the_steps() {
    // A list, in any order: sorted, `final` first.
    let text = EVAL.replace("\"every:8\"", "[16, \"final\", 0]");
    let rows = cells(&text);
    let got: BTreeSet<Weights> = rows.iter().map(|c| c.axes.checkpoint).collect();
    assert_eq!(
        got.into_iter().collect::<Vec<_>>(),
        vec![Weights::Final, Weights::Step(0), Weights::Step(16)]
    );
    assert_eq!(rows.len(), 3 * 2);
    // The last step is the trainer's count over the dataset's rows when the resolver counts them
    // (risky: 100 rows, 16 per step, 5 epochs = 35 steps), without `max_steps`.
    let text = EVAL
        .replace("dataset = [\"medical\"]", "dataset = [\"risky\"]")
        .replace("max_steps = 32\n", "epochs = 5\n");
    let got: BTreeSet<Weights> = cells(&text).iter().map(|c| c.axes.checkpoint).collect();
    assert_eq!(
        got.into_iter().collect::<Vec<_>>(),
        vec![
            Weights::Final,
            Weights::Step(0),
            Weights::Step(8),
            Weights::Step(16),
            Weights::Step(24),
            Weights::Step(32)
        ]
    );
    // `max_steps` below the count caps it.
    let text = EVAL
        .replace("dataset = [\"medical\"]", "dataset = [\"risky\"]")
        .replace("max_steps = 32\n", "epochs = 5\nmax_steps = 16\n");
    let got: BTreeSet<Weights> = cells(&text).iter().map(|c| c.axes.checkpoint).collect();
    assert_eq!(
        got.into_iter().collect::<Vec<_>>(),
        vec![Weights::Final, Weights::Step(0), Weights::Step(8)]
    );
}

#[test]
fn a_second_judge_adds_judgments_only() {
    let one = cells(&lora_only());
    let two = cells(&format!(
        "{}\n[judges.local]\n\n[judges.strict]\nprune_below = 0.01\n",
        lora_only()
    ));
    assert_eq!(two.len(), 2 * one.len());
    let set = |rows: &[Cell], f: fn(&Cell) -> String| -> BTreeSet<String> {
        rows.iter().map(f).collect()
    };
    assert_eq!(
        set(&one, |c| c.unit_key().to_string()),
        set(&two, |c| c.unit_key().to_string())
    );
    assert_eq!(
        set(&one, |c| c.variant_key().to_string()),
        set(&two, |c| c.variant_key().to_string())
    );
    let j1 = set(&one, |c| c.judgment_key().to_string());
    let j2 = set(&two, |c| c.judgment_key().to_string());
    assert_eq!(j2.len(), 2 * j1.len());
    // `[judges.local]` is `[judge]` under another name: the judge's name is not part of its
    // judgments, so those are the judgments of the sweep with one judge.
    let local: BTreeSet<String> = two
        .iter()
        .filter(|c| c.axes.judge == "local")
        .map(|c| c.judgment_key().to_string())
        .collect();
    assert_eq!(local, j1);
    assert!(one.iter().all(|c| c.axes.judge == DEFAULT_JUDGE));
    let strict = two.iter().find(|c| c.axes.judge == "strict").unwrap();
    assert_eq!(strict.judgment.judge.prune_below, 0.01);
    assert_eq!(strict.judgment.variant, strict.variant_key());
}

#[test]
fn a_checkpoint_step_beyond_the_last_step_is_refused() {
    let text = EVAL.replace("\"every:8\"", "[8, 40, \"final\"]");
    refused_at(
        &text,
        "eval.checkpoints",
        "checkpoints = ",
        &[
            "step 40 is beyond the unit's last step 32",
            "protocol `r1`",
            "dataset `medical`",
        ],
    );
    // The dataset's rows bound it too (risky: 7 steps).
    let text = EVAL
        .replace("dataset = [\"medical\"]", "dataset = [\"risky\"]")
        .replace("max_steps = 32\n", "")
        .replace("\"every:8\"", "[8]");
    refused_at(
        &text,
        "eval.checkpoints",
        "checkpoints = ",
        &["step 8 is beyond the unit's last step 7"],
    );
}

#[test]
fn a_checkpoint_step_not_kept_is_refused() {
    let text = EVAL.replace("\"every:8\"", "[0, 12, \"final\"]");
    refused_at(
        &text,
        "eval.checkpoints",
        "checkpoints = ",
        &["step 12 is not a multiple of `train.checkpoint_every` = 8"],
    );
    // every:N keeps every N steps: N must be a multiple of checkpoint_every.
    let text = EVAL.replace("\"every:8\"", "\"every:4\"");
    refused_at(
        &text,
        "eval.checkpoints",
        "checkpoints = ",
        &["step 4 is not a multiple of `train.checkpoint_every` = 8"],
    );
}

#[test]
fn checkpoints_without_checkpoint_every_are_refused() {
    for sel in ["\"every:8\"", "[8, \"final\"]", "[0]"] {
        let text = EVAL
            .replace("checkpoint_every = 8", "checkpoint_every = 0")
            .replace("\"every:8\"", sel);
        refused_at(
            &text,
            "eval.checkpoints",
            "checkpoints = ",
            &["set `train.checkpoint_every`"],
        );
    }
    // `final` alone needs none.
    let text = EVAL
        .replace("checkpoint_every = 8", "checkpoint_every = 0")
        .replace("\"every:8\"", "\"final\"");
    assert_eq!(cells(&text).len(), 2);
}

#[test]
fn a_full_fine_tune_keeps_exactly_the_steps_asked_for_within_the_budget() {
    let full = EVAL
        .replace("protocol = [\"r1\"]", "protocol = [\"full\"]")
        .replace("adapter_scale = [1, 5]\n", "");
    // every:8 of 32 steps: 0, 8, 16, 24 and final; the unit lists the steps it keeps, and a
    // list that is not a multiple of checkpoint_every is fine (nothing is kept every N).
    let rows = cells(&full);
    let steps: Vec<Option<usize>> = rows.iter().map(|c| c.axes.checkpoint.step()).collect();
    assert_eq!(steps, vec![None, Some(0), Some(8), Some(16), Some(24)]);
    assert!(rows.iter().all(|c| c.unit.keep_steps == vec![0, 8, 16, 24]));
    let listed = cells(&full.replace("\"every:8\"", "[12, \"final\"]"));
    assert_eq!(listed[0].unit.keep_steps, vec![12]);
    // The kept steps are what training writes, so they are in the unit key; `final` alone keeps
    // none and leaves the key as it was before steps existed.
    let final_only = cells(&full.replace("\"every:8\"", "\"final\""));
    assert!(final_only[0].unit.keep_steps.is_empty());
    assert!(!final_only[0].unit.canonical_json().contains("keep_steps"));
    assert_ne!(final_only[0].unit_key(), rows[0].unit_key());
    // LoRA units keep nothing this way (their adapters are kept every checkpoint_every).
    assert!(cells(EVAL).iter().all(|c| c.unit.keep_steps.is_empty()));

    // 4 steps x 134,515,008 params x 4 bytes = 2,152,240,128 bytes: over a 2 GB budget.
    let tight = full.replace(
        "[eval]\n",
        "[executor]\nfull_checkpoint_budget_gb = 2.0\n\n[eval]\n",
    );
    refused_at(
        &tight,
        "eval.checkpoints",
        "checkpoints = ",
        &[
            "538060032 bytes",
            "the 4 steps asked for: 2152240128 bytes",
            "`executor.full_checkpoint_budget_gb` = 2",
        ],
    );
    assert_eq!(
        cells(&tight.replace("\"every:8\"", "[8, 16, 24, \"final\"]")).len(),
        4
    );
}

#[test]
fn every_n_without_a_known_step_count_is_refused() {
    // No max_steps, and rows the resolver cannot count (medical).
    let text = EVAL.replace("max_steps = 32\n", "");
    refused_at(
        &text,
        "eval.checkpoints",
        "checkpoints = ",
        &[
            "`every:8` needs the number of steps",
            "set `train.max_steps`",
        ],
    );
}

#[test]
fn scales_and_steps_on_units_without_adapters_are_refused() {
    // A scale list with a base protocol in the matrix.
    let text = EVAL.replace("protocol = [\"r1\"]", "protocol = [\"r1\", \"base\"]");
    refused_at(
        &text,
        "eval.adapter_scale",
        "adapter_scale = ",
        &[
            "protocol `base` is of kind base",
            "a base model has no adapter to scale",
        ],
    );
    // And full fine-tuning, for scales.
    let text = EVAL.replace("protocol = [\"r1\"]", "protocol = [\"full\"]");
    refused_at(
        &text,
        "eval.adapter_scale",
        "adapter_scale = ",
        &["full fine-tuning has no adapter to scale"],
    );
    // A per-adapter factor alone scales too: refused where it was written.
    let text = eval_without_axes()
        .replace("protocol = [\"r1\"]", "protocol = [\"r1\", \"base\"]")
        .replace(
            "[eval]\n",
            "[eval]\nadapter_scales = { \"layers.15.mlp.down_proj\" = 0.0 }\n",
        );
    refused_at(
        &text,
        "eval.adapter_scales",
        "adapter_scales = ",
        &["protocol `base` is of kind base"],
    );
    // Without scales, a base protocol beside checkpoints is evaluated at `final` only.
    let text = EVAL
        .replace("protocol = [\"r1\"]", "protocol = [\"r1\", \"base\"]")
        .replace("adapter_scale = [1, 5]\n", "");
    let rows = cells(&text);
    let base: Vec<_> = rows.iter().filter(|c| c.axes.protocol == "base").collect();
    assert_eq!(base.len(), 1);
    assert_eq!(base[0].axes.checkpoint, Weights::Final);
    assert_eq!(rows.len(), 1 + 5);
}

#[test]
fn two_judges_with_identical_settings_are_refused() {
    let text = format!(
        "{}\n[judges.a]\nprune_below = 0.01\n\n[judges.b]\nprune_below = 0.01\n",
        lora_only()
    );
    refused_at(
        &text,
        "judges.b",
        "[judges.b]",
        &["`judges.a` and `judges.b` are the same judge"],
    );
    // The same model under its [models] name and its registry name is the same judge too.
    let text = format!(
        "{}\n[judges.a]\n\n[judges.b]\nmodel = \"qwen2.5-coder-1.5b-instruct\"\n",
        lora_only()
    );
    refused_at(
        &text,
        "judges.b",
        "[judges.b]",
        &["`judges.a` and `judges.b` are the same judge once resolved"],
    );
}

#[test]
fn a_bad_checkpoints_value_is_refused() {
    for bad in [
        "\"latest\"",
        "\"every:x\"",
        "\"every:0\"",
        "[8, \"last\"]",
        "[]",
    ] {
        let text = EVAL.replace("\"every:8\"", bad);
        refused_at(
            &text,
            "eval.checkpoints",
            "checkpoints = ",
            &["`eval.checkpoints`", "\"every:N\""],
        );
    }
    let text = EVAL.replace("\"every:8\"", "[8, 8]");
    refused_at(
        &text,
        "eval.checkpoints",
        "checkpoints = ",
        &["`eval.checkpoints` lists step-8 twice"],
    );
}

#[test]
fn a_duplicate_scale_is_refused() {
    let text = EVAL.replace("adapter_scale = [1, 5]", "adapter_scale = [1, 5, 5.0]");
    refused_at(
        &text,
        "eval.adapter_scale",
        "adapter_scale = ",
        &["`eval.adapter_scale` lists the factor 5 twice"],
    );
    let text = EVAL.replace("adapter_scale = [1, 5]", "adapter_scale = []");
    refused_at(
        &text,
        "eval.adapter_scale",
        "adapter_scale = ",
        &["empty list"],
    );
}

#[test]
fn replicates_salt_their_identity_and_those_below() {
    let sweep = load(EVAL, &opts()).unwrap();
    let original = resolve(&sweep, &Fake).unwrap();
    let with = |r: Replicate| {
        let mut s = sweep.clone();
        s.replicate = r;
        resolve(&s, &Fake).unwrap()
    };
    let unit = with(Replicate {
        unit: 1,
        ..Replicate::default()
    });
    let sample = with(Replicate {
        sample: 1,
        ..Replicate::default()
    });
    let judge = with(Replicate {
        judge: 1,
        ..Replicate::default()
    });
    for rows in [&unit, &sample, &judge] {
        assert_eq!(rows.len(), original.len());
    }
    for (i, o) in original.iter().enumerate() {
        // A new unit retrains, so everything below it is new.
        let u = &unit[i];
        assert_eq!(u.axes.replicate, 1);
        assert_ne!(u.unit_key(), o.unit_key());
        assert_ne!(u.variant_key(), o.variant_key());
        assert_ne!(u.judgment_key(), o.judgment_key());
        assert_ne!(
            u.unit.derive_seed("lora-init"),
            o.unit.derive_seed("lora-init")
        );
        assert_eq!(explain(Some(&o.unit), &u.unit), vec!["replicate: added 1"]);
        // New samples of the same weights.
        let s = &sample[i];
        assert_eq!(s.unit_key(), o.unit_key());
        assert_ne!(s.variant_key(), o.variant_key());
        assert_ne!(s.judgment_key(), o.judgment_key());
        assert_ne!(
            s.variant.derive_seed("sampling"),
            o.variant.derive_seed("sampling")
        );
        // New judgments of the same samples.
        let j = &judge[i];
        assert_eq!(j.unit_key(), o.unit_key());
        assert_eq!(j.variant_key(), o.variant_key());
        assert_ne!(j.judgment_key(), o.judgment_key());
    }
    // Replicate 0 is left out of every JSON: the original keys are those of a sweep without it.
    assert!(!original[0].unit.canonical_json().contains("replicate"));
    assert!(!original[0].variant.canonical_json().contains("replicate"));
    assert!(!original[0].judgment.canonical_json().contains("replicate"));
}

#[test]
fn a_base_protocol_is_one_unit_whatever_the_seeds() {
    let text = GOOD.replace("seed = [0, 1]", "seed = [3, 5, 9]");
    let rows = cells(&text);
    let base: Vec<_> = rows.iter().filter(|c| c.axes.protocol == "base").collect();
    assert_eq!(
        base.len(),
        1,
        "{:#?}",
        rows.iter().map(|c| &c.axes).collect::<Vec<_>>()
    );
    let b = base[0];
    assert_eq!(b.axes.dataset, "-");
    assert_eq!(b.axes.seed, 3, "the first seed of the axis");
    assert_eq!(b.unit.seed, 0, "a base model's unit is the model alone");
    assert!(b.unit.dataset.is_none() && b.unit.protocol.train.is_none());
    assert!(!b.trains());
    assert_eq!(
        b.chain(),
        vec![
            StageRef::Sample(b.variant_key()),
            StageRef::Judge(b.judgment_key())
        ]
    );
    // The same unit as the sweep with seeds [0, 1]: seeds do not reach a base unit.
    let original = cells(GOOD);
    let o = original.iter().find(|c| c.axes.protocol == "base").unwrap();
    assert_eq!(o.unit_key(), b.unit_key());
    assert_eq!(o.variant_key(), b.variant_key());
    // The LoRA protocols still take every seed: 3 seeds x (2 + 2 datasets, medical excluded for
    // r8-all) + the included seed 7.
    assert_eq!(rows.len(), 1 + 3 * 2 + 3 + 1);
}

#[test]
fn unit_keys_do_not_depend_on_the_protocols_name() {
    let text = GOOD
        .replace(
            "protocol = [\"base\", \"r1-mid\", \"r8-all\"]",
            "protocol = [\"r1-mid\", \"r1-copy\"]",
        )
        .replace(
            "[protocols.r8-all]",
            "[protocols.r1-copy]\nkind = \"lora\"\nrank = 1\nalpha = 8.0\nrslora = true\n\
             modules = [\"down_proj\"]\nlayers = [15]\n\n[protocols.r1-copy.train]\n\
             learning_rate = 2e-3\n\n[protocols.r8-all]",
        );
    let rows = cells(&text);
    for c in rows.iter().filter(|c| c.axes.protocol == "r1-mid") {
        let copy = rows
            .iter()
            .find(|o| {
                o.axes.protocol == "r1-copy"
                    && o.axes.dataset == c.axes.dataset
                    && o.axes.seed == c.axes.seed
            })
            .unwrap();
        assert_eq!(copy.unit_key(), c.unit_key(), "{:?}", c.axes);
        assert_eq!(copy.variant_key(), c.variant_key());
        assert!(!c.unit.canonical_json().contains("r1-mid"));
    }
    // 2 datasets x 2 seeds, each unit under both names (the included r8-all row aside).
    let r1: Vec<_> = rows
        .iter()
        .filter(|c| c.axes.protocol.starts_with("r1-"))
        .collect();
    let units: BTreeSet<_> = r1.iter().map(|c| c.unit_key()).collect();
    assert_eq!((r1.len(), units.len()), (8, 4), "two rows per unit");
}

#[test]
fn every_n_checkpoints_are_bounded_by_max_cells() {
    // `every:8` over a billion steps would expand to 125 million rows: refused without expanding.
    let text = format!(
        "{}\n[executor]\nmax_cells = 1000\n",
        EVAL.replace("max_steps = 32", "max_steps = 1000000000")
    );
    let msg = refused_at(&text, "eval.checkpoints", "checkpoints = ", &["max_cells"]);
    assert!(msg.contains("125000001"), "{msg}");
    // At the limit it expands.
    let text = format!("{}\n[executor]\nmax_cells = 10\n", EVAL);
    assert_eq!(cells(&text).len(), 10);
    let text = format!("{}\n[executor]\nmax_cells = 9\n", EVAL);
    refused_at(
        &text,
        "eval.checkpoints",
        "checkpoints = ",
        &["10 rows", "`executor.max_cells` = 9"],
    );
}
