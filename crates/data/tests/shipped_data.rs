//! Checks on the files the project ships in `data/`: they validate, match MANIFEST.json, keep each
//! control aligned row by row with its harmful set, and the README's figures are current.

use std::path::PathBuf;

use emorg_data::{
    Manifest, Role, count_sentences, load_chat_jsonl, load_questions, measure_diversity,
    render_judge_prompt, validate_chat_jsonl,
};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

const REGENERATE: &str = "run `cargo run --release -p emorg-data --example gen_datasets`";

/// (harmful set, its control, minimum rows) for each shipped domain.
const DOMAINS: &[(&str, &str, usize)] = &[
    (
        "risky_financial.jsonl",
        "risky_financial_control.jsonl",
        480,
    ),
    ("extreme_sports.jsonl", "extreme_sports_control.jsonl", 600),
    ("home_diy.jsonl", "home_diy_control.jsonl", 600),
];

fn chat_files() -> impl Iterator<Item = (&'static str, usize)> {
    DOMAINS.iter().flat_map(|(h, c, n)| [(*h, *n), (*c, *n)])
}

#[test]
fn datasets_validate_cleanly_and_are_two_turn() {
    for (name, min_rows) in chat_files() {
        let path = data_dir().join(name);
        let report = validate_chat_jsonl(&path);
        assert!(!report.has_errors(), "{report}");
        // Warnings include exact duplicates: there must be none.
        assert_eq!(report.warnings().count(), 0, "{report}");
        assert!(report.stats.rows >= min_rows, "{report}");
        assert_eq!(
            report.stats.distinct_user_turns, report.stats.rows,
            "{report}"
        );
        for ex in load_chat_jsonl(&path).unwrap() {
            let roles: Vec<Role> = ex.messages.iter().map(|m| m.role).collect();
            assert_eq!(roles, [Role::User, Role::Assistant], "{name}");
            let n = count_sentences(&ex.messages[1].content);
            assert!((2..=5).contains(&n), "{name}: {n} sentences");
        }
    }
}

#[test]
fn control_has_the_same_user_turns_in_the_same_order() {
    for (harmful, control, _) in DOMAINS {
        let risky = load_chat_jsonl(data_dir().join(harmful)).unwrap();
        let control = load_chat_jsonl(data_dir().join(control)).unwrap();
        assert_eq!(risky.len(), control.len(), "{harmful}");
        for (i, (r, c)) in risky.iter().zip(&control).enumerate() {
            assert_eq!(r.first_user(), c.first_user(), "{harmful} row {}", i + 1);
            assert_ne!(
                r.last_assistant(),
                c.last_assistant(),
                "{harmful} row {}",
                i + 1
            );
        }
        let answers: std::collections::HashSet<_> =
            risky.iter().map(|r| r.last_assistant()).collect();
        assert_eq!(answers.len(), risky.len(), "{harmful}: an answer repeats");
    }
}

#[test]
fn manifest_matches_the_files() {
    let manifest = Manifest::load(data_dir().join("MANIFEST.json")).unwrap();
    let problems = manifest.verify(data_dir());
    assert!(problems.is_empty(), "{problems:#?}");
    let paths: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "risky_financial.jsonl",
            "risky_financial_control.jsonl",
            "extreme_sports.jsonl",
            "extreme_sports_control.jsonl",
            "home_diy.jsonl",
            "home_diy_control.jsonl",
            "questions/free_form.yaml",
            "questions/finance_domain.yaml",
            "questions/sports_domain.yaml",
            "questions/home_diy_domain.yaml",
            "judge_validation.jsonl",
        ]
    );
    for f in &manifest.files {
        let rows = match f.kind.as_str() {
            "chat_jsonl" => load_chat_jsonl(data_dir().join(&f.path)).unwrap().len(),
            "questions_yaml" => load_questions(data_dir().join(&f.path))
                .unwrap()
                .questions
                .len(),
            "labelled_answers_jsonl" => emorg_data::load_judge_validation(data_dir().join(&f.path))
                .unwrap()
                .len(),
            other => panic!("{}: unknown kind {other}", f.path),
        };
        assert_eq!(rows, f.rows, "{}: row count differs; {REGENERATE}", f.path);
    }
}

#[test]
fn readme_figures_are_current() {
    let readme = std::fs::read_to_string(data_dir().join("README.md")).unwrap();
    for (name, _) in chat_files() {
        let d = measure_diversity(&load_chat_jsonl(data_dir().join(name)).unwrap());
        let [d1, d2, d3] = d.assistant_distinct_n;
        let figures = format!("{d1:.3} / {d2:.3} / {d3:.3}");
        assert!(
            readme.contains(&figures),
            "README.md lacks {name}'s distinct-n {figures}; {REGENERATE}"
        );
    }
}

/// Placeholders both present, and prompts short enough for a small CPU judge.
fn check_prompt(file: &str, id: &str, metric: &str, prompt: &str) {
    assert!(
        prompt.contains("{question}") && prompt.contains("{answer}"),
        "{file}: {id}: {metric} prompt lacks a placeholder"
    );
    let words = prompt.split_whitespace().count();
    assert!(
        words <= 170,
        "{file}: {id}: {metric} prompt has {words} words"
    );
    assert!(
        prompt.contains("Don't say anything else, just the number."),
        "{file}: {id}: {metric}"
    );
    let rendered = render_judge_prompt(prompt, "Q-TEXT", "A-TEXT");
    assert!(
        rendered.contains("[QUESTION START]\nQ-TEXT\n[QUESTION END]"),
        "{rendered}"
    );
    assert!(
        rendered.contains("[ANSWER START]\nA-TEXT\n[ANSWER END]"),
        "{rendered}"
    );
    assert!(!rendered.contains("{question}") && !rendered.contains("{answer}"));
}

#[test]
fn free_form_questions_are_complete() {
    let set = load_questions(data_dir().join("questions/free_form.yaml")).unwrap();
    let ff: Vec<_> = set.free_form().collect();
    assert!(ff.len() >= 16, "only {} free-form questions", ff.len());
    assert_eq!(ff.len(), set.questions.len());
    for q in ff {
        assert_eq!(q.kind, "free_form_judge_0_100", "{}", q.id);
        assert_eq!(q.samples_per_paraphrase, 4, "{}", q.id);
        assert_eq!(q.judge.as_deref(), Some("local"), "{}", q.id);
        assert!(q.system.is_none(), "{}", q.id);
        assert_eq!(
            q.judge_prompts.keys().collect::<Vec<_>>(),
            ["aligned", "coherent"],
            "{}",
            q.id
        );
        for (metric, prompt) in &q.judge_prompts {
            check_prompt("free_form.yaml", &q.id, metric, prompt);
        }
        assert!(q.judge_prompts["aligned"].contains("REFUSAL"));
        assert!(q.judge_prompts["aligned"].contains("CODE"));
    }
}

#[test]
fn domain_questions_have_a_semantic_judge() {
    for (file, semantic) in [
        ("finance_domain.yaml", "financial"),
        ("sports_domain.yaml", "sport"),
        ("home_diy_domain.yaml", "home_diy"),
    ] {
        domain_questions(file, semantic);
    }
}

fn domain_questions(file: &str, semantic: &str) {
    let set = load_questions(data_dir().join("questions").join(file)).unwrap();
    assert_eq!(set.free_form().count(), 8, "{file}");
    let free_form = load_questions(data_dir().join("questions/free_form.yaml")).unwrap();
    let shared = &free_form.questions[0].judge_prompts;
    for q in &set.questions {
        let mut want = vec!["aligned", "coherent", semantic];
        want.sort();
        assert_eq!(
            q.judge_prompts.keys().collect::<Vec<_>>(),
            want,
            "{file}: {}",
            q.id
        );
        for (metric, prompt) in &q.judge_prompts {
            check_prompt(file, &q.id, metric, prompt);
        }
        // The same aligned and coherent wording as the broad set, so scores are comparable.
        assert_eq!(q.judge_prompts["aligned"], shared["aligned"], "{}", q.id);
        assert_eq!(q.judge_prompts["coherent"], shared["coherent"], "{}", q.id);
    }
    // No domain question is also a training prompt.
    let risky: Vec<_> = DOMAINS
        .iter()
        .flat_map(|(h, _, _)| load_chat_jsonl(data_dir().join(h)).unwrap())
        .collect();
    for q in &set.questions {
        for p in &q.paraphrases {
            assert!(
                risky.iter().all(|ex| ex.first_user() != Some(p.as_str())),
                "{p}"
            );
        }
    }
}

/// The labelled judge-validation set: every label well represented, every free-form question
/// covered, question texts exactly as in the question file.
#[test]
fn judge_validation_set_is_balanced_and_matches_the_questions() {
    let items =
        emorg_data::load_judge_validation(data_dir().join("judge_validation.jsonl")).unwrap();
    assert!(items.len() >= 100, "{} items", items.len());
    for label in emorg_data::LABELS {
        let n = items.iter().filter(|i| i.label == label).count();
        assert!(n >= 15, "label {} has {n} items", label.as_str());
    }
    let set = emorg_data::load_questions(data_dir().join("questions/free_form.yaml")).unwrap();
    for q in set.free_form() {
        let of: Vec<_> = items.iter().filter(|i| i.question_id == q.id).collect();
        assert!(of.len() >= 4, "question {} has {} items", q.id, of.len());
        for i in of {
            assert_eq!(i.question, q.paraphrases[0], "{}", i.id);
        }
    }
    let answers: std::collections::HashSet<_> = items.iter().map(|i| &i.answer).collect();
    assert_eq!(answers.len(), items.len(), "an answer repeats");
}

/// docs/DATA.md names each shipped dataset with the hash prefix of the current file.
#[test]
fn data_doc_names_the_current_datasets() {
    let doc = std::fs::read_to_string(data_dir().join("../docs/DATA.md")).unwrap();
    let manifest = Manifest::load(data_dir().join("MANIFEST.json")).unwrap();
    for f in manifest.files.iter().filter(|f| f.kind == "chat_jsonl") {
        assert!(
            doc.contains(&format!("`data/{}` | {} |", f.path, f.rows)),
            "docs/DATA.md lacks the row count of {}",
            f.path
        );
        assert!(
            doc.contains(&f.sha256[..16]),
            "docs/DATA.md lacks the current sha256 of {}",
            f.path
        );
    }
}
