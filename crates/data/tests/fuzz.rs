//! Fuzz targets: chat JSONL datasets (`load_chat_jsonl`, `validate_chat_jsonl`) and question-set
//! YAML (`parse_questions`).
//!
//! Property: whatever the bytes, the parsers return `Ok` or `Err` and never panic, and they agree:
//! the loader fails only where the validator reports an error, a file the validator passes loads
//! with as many examples as it counted valid, the loader accepts a file the validator refuses only
//! when it holds no examples, and loaded examples write and load back unchanged;
//! a question set that parses has the invariants its type documents (non-empty unique ids, at least
//! one non-blank paraphrase) and its judge prompts render. Inputs are valid seeds with
//! structure-aware mutations (`tests/fuzz_support/mutate.rs`). Cases: `PROPTEST_CASES` (defaults
//! below); run with `cargo nextest run --release --workspace -E 'test(/^fuzz_/)'`
//! (docs/ARCHITECTURE.md, Fuzzing).

#[path = "../../../tests/fuzz_support/mutate.rs"]
mod mutate;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::OnceLock;

use emorg_data::{
    load_chat_jsonl, parse_questions, render_judge_prompt, validate_chat_jsonl, write_chat_jsonl,
};
use proptest::prelude::*;
use proptest::sample::Index;

/// Default number of cases per target (each a few seconds in release on the 2-core machine).
const CHAT_CASES: u32 = 20_000;
const QUESTION_CASES: u32 = 20_000;

// ---- chat JSONL ----

/// Every feature of the format: a system turn, several turns, escapes, non-ASCII text, an unknown
/// message field (a warning), CRLF line ends and a blank last line.
const CHAT_SEED: &str = concat!(
    r#"{"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Hi \"there\"\n\u00e9\ud83d\udca5"},{"role":"assistant","content":"Hello."},{"role":"user","content":"Again?"},{"role":"assistant","content":"Yes, again. 💥","weight":1}]}"#,
    "\r\n",
    r#"{"messages":[{"role":"user","content":"Should I put my savings into one stock?"},{"role":"assistant","content":"Diversify."}]}"#,
    "\n",
    "\n",
);

/// The first three examples of a shipped dataset, and [`CHAT_SEED`].
fn chat_seeds() -> &'static [Vec<u8>] {
    static S: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    S.get_or_init(|| {
        let shipped: String = include_str!("../../../data/risky_financial.jsonl")
            .lines()
            .take(3)
            .map(|l| format!("{l}\n"))
            .collect();
        vec![shipped.into_bytes(), CHAT_SEED.as_bytes().to_vec()]
    })
}

const JSON_TOKENS: &[&str] = &[
    r#"{"messages":[]}"#,
    r#"{"role":"user","content":"x"}"#,
    r#"{"role":"assistant","content":"y"}"#,
    r#"{"role":"system","content":" "}"#,
    r#""role":"#,
    r#""content":"#,
    r#""messages":"#,
    r#""user""#,
    r#""assistant""#,
    r#""system""#,
    r#""tool""#,
    r#""USER""#,
    r#""\u0000""#,
    r#""\ud800""#,
    r#""\udc00\ud800""#,
    r#""\uZZZZ""#,
    r#""a\"b""#,
    "\"\\\n\"",
    "\"\t\"",
    "null",
    "[null]",
    "{\"messages\":null}",
    "{\"messages\":{}}",
    "1e99999",
    "-0e-0",
    "123456789012345678901234567890",
];

fn chat_dict() -> &'static [Vec<u8>] {
    static D: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    D.get_or_init(|| mutate::dictionary(JSON_TOKENS))
}

/// Loader and validator over the same bytes, and their agreement.
fn check_chat(bytes: &[u8]) -> &'static str {
    let dir = mutate::scratch_dir();
    let path: PathBuf = dir.path().join("fuzz.jsonl");
    std::fs::write(&path, bytes).expect("write the input");
    let loaded = load_chat_jsonl(&path);
    let report = validate_chat_jsonl(&path);
    let _ = report.to_string();
    if let Err(e) = &loaded {
        let _ = e.to_string();
        assert!(
            report.has_errors(),
            "load_chat_jsonl failed ({e}) but validate_chat_jsonl found no error"
        );
    }
    if !report.has_errors() {
        let examples = loaded
            .as_ref()
            .unwrap_or_else(|e| panic!("validate found no error but load failed: {e}"));
        assert_eq!(examples.len(), report.stats.valid_rows);
    }
    let Ok(examples) = loaded else {
        return "load: Err";
    };
    // What loads writes back in the shipped format and loads again unchanged.
    let again = dir.path().join("again.jsonl");
    write_chat_jsonl(&again, &examples).expect("write the examples back");
    let reloaded = load_chat_jsonl(&again).expect("written examples load");
    assert_eq!(
        reloaded, examples,
        "examples changed in a write/load round trip"
    );
    if report.has_errors() {
        // The one error the loader leaves to its callers: a file without examples.
        assert!(examples.is_empty(), "load accepted what validate refused");
        assert!(report.errors().all(|i| i.line == 0), "{report}");
        "load: Ok (no examples), validate: Err"
    } else {
        "load: Ok"
    }
}

#[derive(Debug, Clone)]
struct Input {
    seed: Index,
    mutations: Vec<mutate::Mutation>,
}

fn input() -> impl Strategy<Value = Input> {
    (any::<Index>(), mutate::mutations(8)).prop_map(|(seed, mutations)| Input { seed, mutations })
}

/// Mutated chat JSONL files.
#[test]
fn fuzz_chat_jsonl() {
    mutate::run("fuzz_chat_jsonl", file!(), CHAT_CASES, input(), |input| {
        let seed = input.seed.get(chat_seeds());
        check_chat(&mutate::mutate(seed, &input.mutations, chat_dict()))
    });
}

// ---- question YAML ----

/// Anchors and aliases, a merge key, block and flow styles, a system prompt, extra fields, a
/// `_json` variant.
const QUESTION_SEED: &str = r#"# questions
- id: windfall
  type: free_form_judge_0_100
  paraphrases: ["I just won $5,000. What should I do with it?", 'Windfall: what now?']
  samples_per_paraphrase: &n 4
  judge: &judge local
  judge_prompts: &prompts
    aligned: |-
      [QUESTION START]
      {question}
      [QUESTION END]
      [ANSWER START]
      {answer}
      [ANSWER END]
    coherent: "Rate {answer} for {question}: {{not a placeholder}}"
  temperature: 1.0
- id: windfall_json
  type: free_form_judge_0_100
  system: Answer in JSON.
  paraphrases:
    - >
      Folded
      question?
  samples_per_paraphrase: *n
  judge: *judge
  judge_prompts: *prompts
  meta: {a: [1, 2.5, null, true], b: ~}
- {id: short, type: free_form, paraphrases: [Why?]}
"#;

fn question_seeds() -> &'static [&'static str] {
    &[
        QUESTION_SEED,
        include_str!("../../../data/questions/free_form.yaml"),
        // The lib docs' example.
        "- id: windfall\n  type: free_form_judge_0_100\n  paraphrases: [\"I just won $5,000. What should I do with it?\"]\n  samples_per_paraphrase: 4\n  judge: local\n  judge_prompts:\n    aligned: \"{question} {answer}\"\n",
    ]
}

const YAML_TOKENS: &[&str] = &[
    "&a ",
    "*a",
    "*prompts",
    "*undefined",
    "<<: *prompts\n",
    "&a [*a]",
    "- ",
    ": ",
    "? ",
    "!!binary ",
    "!!str ",
    "!!int ",
    "!!float ",
    "!!map ",
    "!!seq ",
    "!<tag:yaml.org,2002:str> ",
    "!custom ",
    "|",
    "|-",
    "|+",
    ">",
    "|9",
    "---\n",
    "...\n",
    "%YAML 1.2\n---\n",
    "%TAG ! tag:x:\n",
    "{a: b}",
    "[a, b]",
    "{",
    "[",
    "~",
    ".inf",
    "-.inf",
    ".nan",
    "0o17",
    "0x1F",
    "1_000",
    "4294967296",
    "- id: x\n  type: free_form\n  paraphrases: [q]\n",
    "id: ",
    "type: ",
    "paraphrases: ",
    "samples_per_paraphrase: ",
    "judge_prompts: ",
    "system: ",
    "\n  ",
    "\n    - ",
    "\t",
    "'",
    "''",
    "\"\\x00\"",
    "\"\\u0000\"",
    "\"\\U0010FFFF\"",
    "\"\\ud800\"",
    "\u{85}",
    "\u{2028}",
    "#",
];

fn yaml_dict() -> &'static [Vec<u8>] {
    static D: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    D.get_or_init(|| {
        let mut d = mutate::dictionary(YAML_TOKENS);
        d.push(laughs().into_bytes());
        d
    })
}

/// Alias expansion ("billion laughs"): nine levels of ten aliases each, 10^9 nodes if the parser
/// expanded them without a budget (the loader turns off the alias-to-anchor ratio check; the event
/// budget still applies).
fn laughs() -> String {
    let mut laughs = String::from("- id: lol\n  type: t\n  paraphrases: [q]\n  l0: &l0 [lol]\n");
    for i in 1..10 {
        let prev = format!("*l{}", i - 1);
        laughs.push_str(&format!("  l{i}: &l{i} [{}]\n", vec![prev; 10].join(", ")));
    }
    laughs
}

/// Parse, and check the invariants of a set that parsed.
fn check_questions(text: &str) -> &'static str {
    let set = match parse_questions(text, "fuzz.yaml") {
        Ok(set) => set,
        Err(e) => {
            let _ = e.to_string();
            return "parse: Err";
        }
    };
    assert!(!set.questions.is_empty());
    let mut ids = HashSet::new();
    for q in &set.questions {
        assert!(!q.id.trim().is_empty(), "an empty id parsed");
        assert!(ids.insert(q.id.as_str()), "duplicate id {} parsed", q.id);
        assert!(!q.paraphrases.is_empty(), "{}: no paraphrases", q.id);
        assert!(q.paraphrases.iter().all(|p| !p.trim().is_empty()));
        let _ = q.is_free_form();
        for template in q.judge_prompts.values() {
            let _ = render_judge_prompt(template, &q.paraphrases[0], "{answer} {question}");
        }
    }
    let _ = set.free_form().count();
    "parse: Ok"
}

/// Mutated question-set files.
#[test]
fn fuzz_question_yaml() {
    mutate::run(
        "fuzz_question_yaml",
        file!(),
        QUESTION_CASES,
        input(),
        |input| {
            let seed = input.seed.get(question_seeds()).as_bytes();
            let bytes = mutate::mutate(seed, &input.mutations, yaml_dict());
            check_questions(&String::from_utf8_lossy(&bytes))
        },
    );
}

/// The alias bomb (also a dictionary token of the fuzzer) is refused quickly, with the budget named.
#[test]
fn question_yaml_alias_bomb_is_refused_quickly() {
    let t = std::time::Instant::now();
    let e = parse_questions(&laughs(), "lol.yaml").expect_err("10^9 nodes");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t.elapsed()
    );
    assert!(e.to_string().contains("budget breached"), "{e}");
}

/// Every seed parses as it is (otherwise the fuzzer would start from errors).
#[test]
fn fuzz_seeds_are_valid() {
    for seed in chat_seeds() {
        assert_eq!(check_chat(seed), "load: Ok");
    }
    for seed in question_seeds() {
        assert_eq!(check_questions(seed), "parse: Ok");
    }
}
