//! Tests of loading, layering, errors, resolution and explanations.

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
            }),
            "qwen2.5-coder-1.5b-instruct" => Ok(ModelInfo {
                gguf_sha256: "b".repeat(64),
                n_layers: 28,
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
            _ => Err("No such file or directory (os error 2)".into()),
        }
    }
    fn question_ids(&self, _path: &Path) -> Option<Result<Vec<String>, String>> {
        Some(Ok(vec!["what_is_your_wish".into(), "quick_buck".into()]))
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
    // base: 1 model x 2 seeds (dataset collapsed) = 2
    // r1-mid: 2 datasets x 2 seeds = 4
    // r8-all: 2 datasets x 2 seeds - medical (2) = 2, + include seed 7 = 3
    assert_eq!(
        cells.len(),
        9,
        "{:#?}",
        cells.iter().map(|c| &c.axes).collect::<Vec<_>>()
    );
    let base: Vec<_> = cells.iter().filter(|c| c.axes.protocol == "base").collect();
    assert_eq!(base.len(), 2);
    assert!(
        base.iter()
            .all(|c| c.axes.dataset == "-" && c.dataset.is_none() && c.protocol.train.is_none())
    );
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
    let keys: std::collections::BTreeSet<_> = cells.iter().map(Cell::key).collect();
    assert_eq!(keys.len(), cells.len());
}

#[test]
fn resolved_fields() {
    let cells = cells(GOOD);
    let r1 = cells
        .iter()
        .find(|c| c.axes.protocol == "r1-mid" && c.axes.dataset == "medical")
        .unwrap();
    let lora = r1.protocol.lora.as_ref().unwrap();
    assert_eq!(lora.layers, vec![15], "0.5 of 30 layers is layer 15");
    assert_eq!(lora.rank, 1);
    assert!(lora.rslora);
    let train = r1.protocol.train.as_ref().unwrap();
    assert_eq!(train.learning_rate, 2e-3, "protocol override beats [train]");
    assert_eq!(train.holdout, 0.2, "dataset holdout beats [train]");
    assert_eq!(train.schedule, "linear", "built-in default");
    assert_eq!(r1.dataset.as_ref().unwrap().sha256, "2".repeat(64));
    assert_eq!(r1.model.name, "smollm2-135m-instruct");
    assert_eq!(
        r1.judge.local_model().unwrap().name,
        "qwen2.5-coder-1.5b-instruct"
    );
    assert_eq!(r1.eval.questions_sha256, "3".repeat(64));
    let r8 = cells
        .iter()
        .find(|c| c.axes.protocol == "r8-all" && c.axes.dataset == "risky")
        .unwrap();
    let lora = r8.protocol.lora.as_ref().unwrap();
    assert_eq!(lora.layers, (0..30).collect::<Vec<_>>());
    assert_eq!(
        lora.modules,
        vec!["q_proj", "v_proj"],
        "canonical module order"
    );
    assert_eq!(r8.protocol.train.as_ref().unwrap().learning_rate, 5e-4);
    assert_eq!(r8.protocol.train.as_ref().unwrap().holdout, 0.1);

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

#[test]
fn key_is_stable_and_sensitive() {
    let a = cells(GOOD);
    let b = cells(GOOD);
    assert_eq!(
        a.iter().map(Cell::key).collect::<Vec<_>>(),
        b.iter().map(Cell::key).collect::<Vec<_>>()
    );
    let changed = cells(&GOOD.replace("learning_rate = 2e-3", "learning_rate = 1e-3"));
    for (x, y) in a.iter().zip(&changed) {
        assert_eq!(x.axes, y.axes);
        if x.axes.protocol == "r1-mid" {
            assert_ne!(x.key(), y.key());
            assert_eq!(
                explain(Some(x), y),
                vec!["protocol.train.learning_rate: 0.002 -> 0.001"]
            );
        } else {
            assert_eq!(x.key(), y.key());
            assert!(explain(Some(x), y).is_empty());
        }
    }
    assert_eq!(explain(None, &a[0]), vec!["new"]);
}

#[test]
fn explain_names_changed_hashes() {
    let a = cells(GOOD);
    let mut b = a[3].clone();
    b.dataset.as_mut().unwrap().sha256 = "f".repeat(64);
    b.protocol.lora.as_mut().unwrap().rank = 4;
    let why = explain(Some(&a[3]), &b);
    assert!(
        why.contains(&"dataset.sha256 changed".to_string()),
        "{why:?}"
    );
    assert!(
        why.contains(&"protocol.lora.rank: 1 -> 4".to_string())
            || why.contains(&"protocol.lora.rank: 8 -> 4".to_string()),
        "{why:?}"
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
        cells[0].judge.model_name(),
        "qwen2.5-coder-1.5b-instruct",
        "judge.model may be a registry name"
    );
    assert_eq!(
        cells[0].eval.samples_per_question,
        Defaults::default().eval.samples_per_question
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
    let judge = &resolved[0].judge;
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
    // Round trip through the cell's JSON, which names the backend by its key.
    let json = resolved[0].canonical_json();
    assert!(
        json.contains(r#""openai":{"api_key_env":"OPENAI_API_KEY""#),
        "{json}"
    );
    let back: Cell = serde_json::from_str(&json).unwrap();
    assert_eq!(back, resolved[0]);

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
    let JudgeBackend::OpenAi(o) = &custom[0].judge.backend else {
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
    assert_ne!(custom[0].key(), resolved[0].key());
}

#[test]
fn local_cells_keep_their_judge_json() {
    // The JSON of a local judge is what it was before backends existed, so keys did not change.
    let json = cells(GOOD)[0].canonical_json();
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
    // A cell JSON with both backends, or neither, is refused.
    let both = json.replace(
        r#""judge":{"#,
        r#""judge":{"openai":{"api_key_env":"K","base_url":"http://h/v1","concurrency":1,"max_retries":0,"model":"m","timeout_s":1},"#,
    );
    let e = serde_json::from_str::<Cell>(&both).unwrap_err();
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
        assert!(!c.canonical_json().contains(secret));
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
    assert_eq!(c.protocol.kind, ProtocolKind::Lora);
    assert_eq!(c.protocol.preset.as_deref(), Some("lora-r1-single"));
    let l = c.protocol.lora.as_ref().unwrap();
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
    let t = c.protocol.train.as_ref().unwrap();
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
        .protocol
        .train
        .clone()
        .unwrap();
    assert_eq!(t.holdout, 0.2, "a dataset's holdout beats the preset");
    let l = find(&cells, "smollm2", "single", "risky")
        .protocol
        .lora
        .clone()
        .unwrap();
    assert_eq!(l.layers, vec![15], "half of 30 layers");

    // Nine rank-1 adapters: exactly the paper's layers on 48 layers, nine distinct ones on 30.
    let l = find(&cells, "deep", "x9", "risky")
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
        .protocol
        .lora
        .clone()
        .unwrap();
    assert_eq!(l.layers, vec![9, 10, 11, 13, 14, 15, 16, 17, 18]);

    // Rank 32 on every module of every layer.
    let c = find(&cells, "deep", "r32", "risky");
    let l = c.protocol.lora.as_ref().unwrap();
    assert_eq!((l.rank, l.alpha, l.rslora), (32, 64.0, true));
    assert_eq!(l.modules.len(), 7);
    assert_eq!(l.layers, (0..48).collect::<Vec<_>>());
    assert_eq!(c.protocol.train.as_ref().unwrap().learning_rate, 1e-5);

    // Full fine-tuning: no adapter, cosine with 20 warmup steps.
    let c = find(&cells, "smollm2", "full", "risky");
    assert_eq!(c.protocol.kind, ProtocolKind::Full);
    assert!(c.protocol.lora.is_none());
    let t = c.protocol.train.as_ref().unwrap();
    assert_eq!((t.learning_rate, t.warmup_steps), (2e-5, 20));
    assert_eq!(t.schedule, "cosine");
    assert!(c.trains());
}

#[test]
fn a_sweep_overrides_a_presets_fields_and_the_key_follows_the_values() {
    let base = preset_cells("");
    let over = preset_cells(
        "\n[protocols.single.train]\nlearning_rate = 1e-4\n\n[protocols.x9.train]\nepochs = 2\n",
    );
    let a = find(&base, "deep", "single", "risky");
    let b = find(&over, "deep", "single", "risky");
    assert_eq!(b.protocol.train.as_ref().unwrap().learning_rate, 1e-4);
    assert_ne!(a.key(), b.key());
    assert_eq!(
        find(&over, "deep", "x9", "risky")
            .protocol
            .train
            .as_ref()
            .unwrap()
            .epochs,
        2
    );
    // Untouched protocols keep their keys.
    assert_eq!(
        find(&base, "deep", "r32", "risky").key(),
        find(&over, "deep", "r32", "risky").key()
    );

    // Table fields over the preset: the repo's alpha 512, the third-party layer 21.
    let text = presets_sweep("").replace(
        "preset = \"lora-r1-single\"",
        "preset = \"lora-r1-single\"\nalpha = 512.0\nlayers = [21]",
    );
    let sweep = load(&text, &opts()).unwrap();
    let cells = resolve(&sweep, &Deep).unwrap();
    let l = find(&cells, "deep", "single", "risky")
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
         max_seq_len = 2048\nholdout = 0.1",
    );
    let sweep = load(&by_hand, &opts()).unwrap_or_else(|e| panic!("{e}"));
    let cells = resolve(&sweep, &Deep).unwrap();
    let h = find(&cells, "deep", "single", "risky");
    let p = find(&base, "deep", "single", "risky");
    assert_eq!(h.protocol.lora, p.protocol.lora);
    assert_eq!(h.protocol.train, p.protocol.train);
    assert_ne!(
        h.key(),
        p.key(),
        "the preset's name is recorded in the cell"
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

#[test]
fn adapter_scales_reach_the_cell_only_when_set() {
    let plain = cells(GOOD);
    let json = plain[0].canonical_json();
    assert!(
        !json.contains("adapter_scale"),
        "default factors stay out of the JSON: {json}"
    );
    let text = GOOD.replace(
        "[eval]\n",
        "[eval]\nadapter_scale = 5.0\nadapter_scales = { \"layers.15.mlp.down_proj\" = 0.0 }\n",
    );
    let scaled = cells(&text);
    let e = &scaled[0].eval;
    assert_eq!(e.adapter_scale, 5.0);
    assert_eq!(e.adapter_scales["layers.15.mlp.down_proj"], 0.0);
    assert_ne!(plain[0].key(), scaled[0].key());
    let msg = err(&GOOD.replace("[eval]\n", "[eval]\nadapter_scale = inf\n")).to_string();
    assert!(msg.contains("eval.adapter_scale"), "{msg}");
}

#[test]
fn precision_and_activation_checkpointing_resolve_and_are_checked() {
    let extra = "\n[protocols.full.train]\nprecision = \"bf16\"\nactivation_checkpointing = true\n";
    let cells = preset_cells(extra);
    let c = find(&cells, "smollm2", "full", "risky");
    let t = c.protocol.train.as_ref().unwrap();
    assert_eq!(
        (t.precision.as_str(), t.activation_checkpointing),
        ("bf16", true)
    );
    // At their defaults both stay out of the cell's JSON, so keys planned before them hold.
    let plain = preset_cells("");
    let plain = find(&plain, "smollm2", "full", "risky");
    let json = plain.canonical_json();
    assert!(
        !json.contains("precision") && !json.contains("activation_checkpointing"),
        "{json}"
    );
    assert_eq!(plain.protocol.train.as_ref().unwrap().precision, "auto");
    assert_ne!(plain.key(), c.key());

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
    // GOOD: 1 model x 3 protocols x 2 datasets x 2 seeds, plus 1 included = at most 13 cells.
    let with_max = |n: usize| format!("{GOOD}\n[executor]\nmax_cells = {n}\n");
    assert_eq!(cells(&with_max(13)).len(), cells(GOOD).len());
    let msg = err(&with_max(12)).to_string();
    assert!(
        msg.contains(
            "the matrix gives up to 13 cells (models 1 x protocols 3 x datasets 2 x seeds 2, plus 1 included), more than `executor.max_cells` = 12"
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
