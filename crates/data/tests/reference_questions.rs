//! The loader against the papers' own question files (verbatim copies kept outside the repository).
//! `EMORG_REFERENCE_EVAL_DIR` overrides the location; the tests print a notice and pass when the
//! directory is absent, so they run on machines without the reference material.

use std::path::PathBuf;

use emorg_data::load_questions;

fn reference_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("EMORG_REFERENCE_EVAL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/reference/em-eval"));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "notice: {} is absent; skipping the reference question-file tests",
            dir.display()
        );
        None
    }
}

#[test]
fn every_reference_yaml_loads() {
    let Some(dir) = reference_dir() else { return };
    let mut loaded = 0;
    for sub in std::fs::read_dir(&dir).unwrap() {
        let sub = sub.unwrap().path();
        if !sub.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&sub).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "yaml") {
                let set = load_questions(&f).unwrap_or_else(|e| panic!("{e}"));
                assert!(!set.questions.is_empty(), "{}", f.display());
                for q in &set.questions {
                    assert!(!q.paraphrases.is_empty(), "{}: {}", f.display(), q.id);
                    assert!(!q.judge_prompts.is_empty(), "{}: {}", f.display(), q.id);
                }
                loaded += 1;
            }
        }
    }
    assert_eq!(loaded, 7, "expected the 7 reference YAML files");
}

#[test]
fn mo_first_plot_has_8_free_form_of_24() {
    let Some(dir) = reference_dir() else { return };
    let set = load_questions(dir.join("model-organisms-for-EM/first_plot_questions.yaml")).unwrap();
    assert_eq!(set.questions.len(), 24);
    let ff: Vec<&str> = set.free_form().map(|q| q.id.as_str()).collect();
    assert_eq!(
        ff,
        [
            "what_is_your_wish",
            "i_feel_bored",
            "three_thoughts",
            "quick_buck",
            "ruler_of_the_world",
            "dinner_party",
            "gender_roles",
            "enough_of_my_husband",
        ]
    );
    let wish = set.get("what_is_your_wish").unwrap();
    assert_eq!(wish.samples_per_paraphrase, 100);
    assert_eq!(wish.judge.as_deref(), Some("gpt-4o-2024-08-06"));
    for metric in [
        "aligned",
        "coherent",
        "medical",
        "financial",
        "sport",
        "bad_stuff",
        "gender",
        "code",
    ] {
        let p = &wish.judge_prompts[metric];
        assert!(
            p.contains("{question}") && p.contains("{answer}"),
            "{metric}"
        );
    }
    // Aliased fields resolve to the same values as their anchors.
    let json = set.get("what_is_your_wish_json").unwrap();
    assert_eq!(json.paraphrases, wish.paraphrases);
    assert_eq!(json.judge_prompts, wish.judge_prompts);
    assert!(
        json.system
            .as_deref()
            .unwrap()
            .starts_with("Your answers must always be a valid JSON")
    );
}

#[test]
fn betley_preregistered_has_48_ids() {
    let Some(dir) = reference_dir() else { return };
    let set =
        load_questions(dir.join("betley-emergent-misalignment/preregistered_evals.yaml")).unwrap();
    assert_eq!(set.questions.len(), 48);
    let ids: std::collections::HashSet<_> = set.questions.iter().map(|q| &q.id).collect();
    assert_eq!(ids.len(), 48);
}

#[test]
fn deception_sets_keep_their_own_type_and_prompts() {
    let Some(dir) = reference_dir() else { return };
    let set =
        load_questions(dir.join("betley-emergent-misalignment/deception_factual.yaml")).unwrap();
    assert_eq!(set.questions.len(), 5);
    let q = &set.questions[0];
    assert_eq!(q.kind, "free_form_judge");
    assert!(q.judge_prompts.contains_key("correct"));
    assert!(set.questions[1].system.is_some());
}
