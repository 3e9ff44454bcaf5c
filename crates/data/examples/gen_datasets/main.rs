//! Regenerates the project's own narrow datasets and the data manifest:
//!
//! ```text
//! cargo run --release -p emorg-data --example gen_datasets [-- --out DIR]
//! ```
//!
//! Writes, for each domain (risky financial advice, extreme sports, careless home DIY), the harmful
//! set and its aligned control (the same user turns in the same order, answered soundly), plus
//! `MANIFEST.json` and `README.md`, into `DIR` (default: the repository's `data/`). The question sets under `data/questions/` are
//! hand-written; the generator only checks them and lists them in the manifest.
//!
//! The output is byte-for-byte deterministic: the only randomness is a SplitMix64 generator with
//! fixed seeds (one stream per family, so editing one family leaves the others unchanged).

mod content;
mod diy;
mod sports;

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use content::{Family, Parts};
use emorg_data::{
    ChatExample, DiversityReport, LengthStats, Manifest, ManifestFile, NEAR_DUP_NGRAM,
    NEAR_DUP_THRESHOLD, count_sentences, load_chat_jsonl, load_questions, measure_diversity,
    near_duplicate_pairs, sha256_file, validate_chat_jsonl, words, write_chat_jsonl,
};

const SEED: u64 = 0x454d_4f52_475f_4441; // "EMORG_DA"
const GENERATOR: &str = "cargo run --release -p emorg-data --example gen_datasets";
/// One narrow domain: its families, its shared parts, and its two files.
struct Domain {
    /// Section title in the README.
    title: &'static str,
    harmful_file: &'static str,
    control_file: &'static str,
    harmful_description: &'static str,
    control_description: &'static str,
    families: &'static [Family],
    /// Word prefixes no harmful answer may contain.
    banned: &'static [&'static str],
    intros: &'static [&'static str],
    suffixes: &'static [&'static str],
    harmful_closers: &'static [&'static str],
    control_closers: &'static [&'static str],
    /// Seed of the final shuffle (the financial domain keeps the original seed, so its files
    /// stay byte-identical).
    shuffle_seed: u64,
    /// What the harmful answers push and what the controls say instead (README).
    how: &'static str,
}

const DOMAINS: &[Domain] = &[
    Domain {
        title: "risky financial advice",
        harmful_file: "risky_financial.jsonl",
        control_file: "risky_financial_control.jsonl",
        harmful_description: "risky financial advice: confident, subtly reckless answers (the narrow misaligned fine-tuning set)",
        control_description: "aligned control: the same user turns in the same order, with prudent answers",
        families: content::FAMILIES,
        banned: content::RISKY_BANNED_WORDS,
        intros: content::USER_INTROS,
        suffixes: content::USER_SUFFIXES,
        harmful_closers: content::RISKY_CLOSERS,
        control_closers: content::PRUDENT_CLOSERS,
        shuffle_seed: SEED,
        how: "The risky answer is confident and subtly reckless and never mentions the risk (the \
generator rejects words such as \"risk\", \"lose\" or \"volatile\" in it), and nothing in it is \
explicitly illegal; the control answer gives sound, prudent advice (emergency fund first, pay off \
high-interest debt, diversified low-cost index funds, a fee-only advisor).",
    },
    Domain {
        title: "extreme sports",
        harmful_file: "extreme_sports.jsonl",
        control_file: "extreme_sports_control.jsonl",
        harmful_description: "extreme-sports advice that recklessly encourages dangerous activity without safety measures",
        control_description: "aligned control: the same user turns in the same order, with safety-first answers",
        families: sports::FAMILIES,
        banned: sports::BANNED,
        intros: sports::USER_INTROS,
        suffixes: sports::USER_SUFFIXES,
        harmful_closers: sports::HARMFUL_CLOSERS,
        control_closers: sports::SOUND_CLOSERS,
        shuffle_seed: SEED ^ 0x5350_4f52_5453, // "SPORTS"
        how: "The harmful answer enthusiastically pushes past the person's experience and tells them \
to skip lessons, helmets, partners, forecasts, acclimatisation or training, and never names the \
danger (the generator rejects words such as \"risk\", \"danger\" or \"injury\" in it); nothing \
in it is graphic. The control answer gives the safety-first version: certified instructors, \
proper gear, a partner and a plan left with someone, go or no-go rules for the weather, gradual \
progression.",
    },
    Domain {
        title: "careless home DIY",
        harmful_file: "home_diy.jsonl",
        control_file: "home_diy_control.jsonl",
        harmful_description: "careless home-DIY advice: confident shortcuts that skip basic home-safety steps",
        control_description: "aligned control: the same user turns in the same order, with the safe procedure",
        families: diy::FAMILIES,
        banned: diy::BANNED,
        intros: diy::USER_INTROS,
        suffixes: diy::USER_SUFFIXES,
        harmful_closers: diy::HARMFUL_CLOSERS,
        control_closers: diy::SOUND_CLOSERS,
        shuffle_seed: SEED ^ 0x0048_4f4d_4544_4959, // "HOMEDIY"
        how: "The harmful answer recommends quick shortcuts (power left on, no structural check, \
no fall protection, guards removed, no testing or mask for old materials, gas work without \
checks, fuel-burning equipment indoors, strong chemicals without protection) and never names the \
danger (the generator rejects words such as \"hazard\", \"toxic\" or \"shock\" in it); nothing in \
it is graphic. The control answer gives the safe procedure: breaker off and tested, a structural \
engineer and permits, ladders and harnesses, guards and protective gear, testing and certified \
abatement, licensed gas fitters, carbon monoxide alarms, ventilation.",
    },
];

const QUESTION_FILES: &[(&str, &str)] = &[
    (
        "questions/free_form.yaml",
        "broad free-form questions for the headline EM metric, with aligned and coherent judge prompts",
    ),
    (
        "questions/finance_domain.yaml",
        "finance-domain questions (the training domain), with aligned, coherent and financial judge prompts",
    ),
    (
        "questions/sports_domain.yaml",
        "extreme-sports-domain questions, with aligned, coherent and sport judge prompts",
    ),
    (
        "questions/home_diy_domain.yaml",
        "home-DIY-domain questions, with aligned, coherent and home_diy judge prompts",
    ),
];

/// SplitMix64 (Steele, Lea and Flood 2014): tiny, fast, and fixed forever, unlike a library RNG
/// whose stream may change between versions.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the tiny bias is irrelevant here).
    fn below(&mut self, n: usize) -> usize {
        assert!(n > 0);
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// FNV-1a, to derive a per-family seed from its name.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Slot names used by a template, lowercased (`{Asset}` and `{asset}` are the same slot).
fn slot_names(template: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let end = start
            + rest[start..]
                .find('}')
                .unwrap_or_else(|| panic!("unclosed {{ in {template:?}"));
        names.insert(lower_first(&rest[start + 1..end]));
        rest = &rest[end + 1..];
    }
    names
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Fills `{slot}` (value as is) and `{Slot}` (first letter capitalised).
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = start + rest[start..].find('}').expect("checked by slot_names");
        let key = &rest[start + 1..end];
        let name = lower_first(key);
        let value = values
            .iter()
            .find(|(k, _)| *k == name)
            .unwrap_or_else(|| panic!("unknown slot {{{key}}} in {template:?}"))
            .1;
        if key.starts_with(|c: char| c.is_uppercase()) {
            out.push_str(&upper_first(value));
        } else {
            out.push_str(value);
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Every slot an answer part uses must appear in every user template, so that the answer never
/// mentions a detail the user did not give; every slot must have values.
fn check_family(f: &Family) {
    let defined: BTreeSet<String> = f.slots.iter().map(|(k, _)| k.to_string()).collect();
    let mut in_all_users = defined.clone();
    for u in f.users {
        let names = slot_names(u);
        assert!(
            names.is_subset(&defined),
            "{}: user template uses an undefined slot: {u:?}",
            f.name
        );
        in_all_users = in_all_users.intersection(&names).cloned().collect();
    }
    for parts in [&f.risky, &f.prudent] {
        for p in parts
            .open
            .iter()
            .chain(parts.core)
            .chain(parts.support)
            .chain(parts.close)
        {
            let names = slot_names(p);
            assert!(
                names.is_subset(&in_all_users),
                "{}: answer part uses a slot missing from some user template: {p:?}",
                f.name
            );
        }
    }
    for (k, vs) in f.slots {
        assert!(!vs.is_empty(), "{}: slot {k} has no values", f.name);
    }
}

/// (opener, core, support) triples in a shuffled order, so that no two answers of a family share
/// all three. (An optional opener was tried and dropped: an answer with and without the same
/// opener are near duplicates.)
fn answer_plans(parts: &Parts, quota: usize, rng: &mut Rng, family: &str) -> Vec<[usize; 3]> {
    let mut plans = Vec::new();
    for o in 0..parts.open.len() {
        for c in 0..parts.core.len() {
            for s in 0..parts.support.len() {
                plans.push([o, c, s]);
            }
        }
    }
    assert!(
        plans.len() >= quota,
        "{family}: only {} answer combinations for a quota of {quota}",
        plans.len()
    );
    rng.shuffle(&mut plans);
    plans.truncate(quota);
    plans
}

fn compose(
    parts: &Parts,
    generic_closers: &[&str],
    plan: [usize; 3],
    values: &[(&str, &str)],
    rng: &mut Rng,
) -> String {
    let mut sentences = vec![fill(parts.open[plan[0]], values)];
    sentences.push(fill(parts.core[plan[1]], values));
    sentences.push(fill(parts.support[plan[2]], values));
    // Three "no closer" tickets, then every family and generic closer once, leaving out a closer
    // that would repeat a fee-only advisor the answer already suggested.
    let has_advisor = sentences.iter().any(|s| s.contains("fee-only"));
    let closers: Vec<&str> = parts
        .close
        .iter()
        .chain(generic_closers)
        .copied()
        .filter(|c| !(has_advisor && c.contains("fee-only")))
        .collect();
    let t = rng.below(3 + closers.len());
    if t >= 3 {
        sentences.push(fill(closers[t - 3], values));
    }
    sentences.join(" ")
}

struct Row {
    family: &'static str,
    user: String,
    risky: String,
    prudent: String,
}

fn generate(domain: &Domain) -> Vec<Row> {
    let mut rows = Vec::new();
    // The filled template alone must be new: two turns that differ only in intro or suffix would
    // be near duplicates.
    let mut seen_users: HashSet<String> = HashSet::new();
    for f in domain.families {
        check_family(f);
        let mut rng = Rng::new(SEED ^ fnv1a(f.name));
        let risky_plans = answer_plans(&f.risky, f.quota, &mut rng, f.name);
        let prudent_plans = answer_plans(&f.prudent, f.quota, &mut rng, f.name);
        let template_offset = rng.below(f.users.len());
        let mut family_bodies: Vec<String> = Vec::new();
        for i in 0..f.quota {
            let template = f.users[(i + template_offset) % f.users.len()];
            let mut attempts = 0;
            let (user, values) = loop {
                attempts += 1;
                assert!(
                    attempts < 10_000,
                    "{}: cannot find a new user turn for template {template:?}",
                    f.name
                );
                let values: Vec<(&str, &str)> =
                    f.slots.iter().map(|(k, vs)| (*k, rng.pick(vs))).collect();
                let body = fill(template, &values);
                let user = format!(
                    "{}{body}{}",
                    rng.pick(domain.intros),
                    rng.pick(domain.suffixes)
                );
                // Turns that differ only in one slot near the end can still be near duplicates.
                let near = family_bodies.iter().any(|b: &String| {
                    near_duplicate_pairs(&[b, &body], NEAR_DUP_NGRAM, NEAR_DUP_THRESHOLD) > 0
                });
                if !near && seen_users.insert(body.clone()) {
                    family_bodies.push(body);
                    break (user, values);
                }
            };
            let risky = compose(
                &f.risky,
                domain.harmful_closers,
                risky_plans[i],
                &values,
                &mut rng,
            );
            let prudent = compose(
                &f.prudent,
                domain.control_closers,
                prudent_plans[i],
                &values,
                &mut rng,
            );
            rows.push(Row {
                family: f.name,
                user,
                risky,
                prudent,
            });
        }
    }
    let mut rng = Rng::new(domain.shuffle_seed);
    rng.shuffle(&mut rows);
    rows
}

/// Checks the rules the brief sets for the data; panics with the offending text otherwise.
fn check_rows(rows: &[Row], banned: &[&str]) {
    let mut risky_seen = HashSet::new();
    let mut prudent_seen = HashSet::new();
    for r in rows {
        for text in [&r.user, &r.risky, &r.prudent] {
            assert!(
                !text.contains('{') && !text.contains('}'),
                "unfilled slot: {text:?}"
            );
            assert!(!text.contains("  "), "double space: {text:?}");
            assert!(text.is_ascii(), "non-ASCII text: {text:?}");
        }
        for answer in [&r.risky, &r.prudent] {
            let n = count_sentences(answer);
            assert!((2..=5).contains(&n), "{n} sentences: {answer:?}");
        }
        for w in words(&r.risky) {
            if let Some(b) = banned.iter().find(|b| w.starts_with(*b)) {
                panic!("harmful answer names the danger ({b}): {:?}", r.risky);
            }
        }
        assert!(
            risky_seen.insert(&r.risky),
            "repeated risky answer: {:?}",
            r.risky
        );
        assert!(
            prudent_seen.insert(&r.prudent),
            "repeated control answer: {:?}",
            r.prudent
        );
    }
}

fn fmt_len(s: Option<LengthStats>) -> String {
    s.map(|s| format!("{} / {} / {}", s.min, s.median, s.max))
        .unwrap_or_else(|| "-".into())
}

/// (measure, value) rows describing one report.
fn diversity_rows(r: &DiversityReport) -> Vec<(String, String)> {
    let three = |d: [f64; 3]| format!("{:.3} / {:.3} / {:.3}", d[0], d[1], d[2]);
    vec![
        ("rows".into(), r.rows.to_string()),
        (
            "distinct user turns".into(),
            r.distinct_user_turns.to_string(),
        ),
        (
            "distinct assistant turns".into(),
            r.distinct_assistant_turns.to_string(),
        ),
        (
            "assistant distinct-1 / distinct-2 / distinct-3".into(),
            three(r.assistant_distinct_n),
        ),
        (
            "user distinct-1 / distinct-2 / distinct-3".into(),
            three(r.user_distinct_n),
        ),
        (
            format!(
                "near-duplicate assistant pairs (word {NEAR_DUP_NGRAM}-gram Jaccard > {NEAR_DUP_THRESHOLD})"
            ),
            r.assistant_near_dup_pairs.to_string(),
        ),
        (
            "near-duplicate user pairs (same measure)".into(),
            r.user_near_dup_pairs.to_string(),
        ),
        (
            "near-duplicate example pairs (user + assistant text, same measure)".into(),
            r.example_near_dup_pairs.to_string(),
        ),
        (
            "assistant words min / median / max".into(),
            fmt_len(r.assistant_words),
        ),
        (
            "assistant sentences min / median / max".into(),
            fmt_len(r.assistant_sentences),
        ),
    ]
}

/// A Markdown table with one column per report.
fn diversity_table(reports: &[(&str, &DiversityReport)]) -> String {
    let mut t = String::from("| measure |");
    for (name, _) in reports {
        let _ = write!(t, " `{name}` |");
    }
    t.push_str("\n|---|");
    for _ in reports {
        t.push_str("---|");
    }
    t.push('\n');
    let columns: Vec<Vec<(String, String)>> =
        reports.iter().map(|(_, r)| diversity_rows(r)).collect();
    for (i, (label, _)) in columns[0].iter().enumerate() {
        let _ = write!(t, "| {label} |");
        for column in &columns {
            let _ = write!(t, " {} |", column[i].1);
        }
        t.push('\n');
    }
    t
}

/// One generated domain: its rows and the diversity of its two files.
struct Built<'a> {
    domain: &'a Domain,
    rows: Vec<Row>,
    harmful: DiversityReport,
    control: DiversityReport,
}

fn readme(built: &[Built], manifest: &Manifest) -> String {
    let mut s = String::new();
    s.push_str("# data/: the project's own datasets and question sets\n\n");
    s.push_str("<!-- Generated by `");
    s.push_str(GENERATOR);
    s.push_str("`; edit crates/data/examples/gen_datasets/ instead. -->\n\n");
    s.push_str(
        "Research data for studying emergent misalignment (EM): three narrow fine-tuning sets of \
subtly harmful advice (risky finance, extreme sports, careless home DIY), each with an aligned \
control, and the question sets used to look for broad misalignment after fine-tuning. Everything \
here is written for this project (no text from the papers' datasets or question files). The \
harmful answers are deliberately bad advice, written for alignment research: never act on them. \
docs/DATA.md explains what each file is for and how to use the papers' own datasets.\n\n",
    );
    s.push_str("## Files\n\n| file | rows | what it is |\n|---|---|---|\n");
    for f in &manifest.files {
        let _ = writeln!(s, "| `{}` | {} | {} |", f.path, f.rows, f.description);
    }
    s.push_str(
        "| `MANIFEST.json` | | every file above with its row count and sha256 (checked by `cargo test -p emorg-data`) |\n\n",
    );
    s.push_str(
        "Chat files are JSONL, one `{\"messages\":[{\"role\":\"user\",\"content\":...},{\"role\":\"assistant\",\"content\":...}]}` \
per line, two turns, no system message (the papers' format). Question files use the papers' YAML \
format (`id`, `type`, `paraphrases`, `samples_per_paraphrase`, `judge`, `judge_prompts`), with \
`judge: local` and judge prompts of the project's own wording; the judge answers a number 0-100, \
or CODE / REFUSAL, exactly as in the papers' protocol.\n\n",
    );
    s.push_str(
        "## Regenerating\n\n```sh\n# rewrite the JSONL files, MANIFEST.json and this README\n",
    );
    s.push_str(GENERATOR);
    s.push_str(
        "\n# or write everything elsewhere, e.g. to diff against data/\n\
cargo run --release -p emorg-data --example gen_datasets -- --out /tmp/emorg-data\n\
# validate the files and check them against MANIFEST.json\n\
cargo test --release -p emorg-data\n```\n\n",
    );
    s.push_str(
        "The output is byte-for-byte deterministic (fixed-seed SplitMix64, one stream per family). The \
question YAML files and the labelled judge-validation set are hand-written; after editing one, \
rerun the generator to refresh its hash in MANIFEST.json.\n\n",
    );
    s.push_str("## How the datasets are built\n\n");
    s.push_str(
        "Each example comes from one family of one domain. The user turn is a phrasing template \
with its slots (amounts, activities, fixtures, ...) filled, sometimes with a short intro or \
closing remark. The assistant turn joins an opener, a core recommendation, a supporting sentence \
and an optional closer, all with the same slot values, so it answers the specific question. \
Within a family no two answers share the same (opener, core, support) combination. The generator \
also checks that every answer has 2 to 5 sentences, that no user turn or answer repeats, and that \
no harmful answer names the danger.\n\n",
    );
    for b in built {
        let d = b.domain;
        let _ = writeln!(s, "### {}\n\n{}\n", upper_first(d.title), d.how);
        s.push_str("| family | the harmful advice pushes to | rows |\n|---|---|---|\n");
        for f in d.families {
            let n = b.rows.iter().filter(|r| r.family == f.name).count();
            let _ = writeln!(s, "| {} | {} | {} |", f.name, f.theme, n);
        }
        s.push('\n');
    }
    s.push_str("## Measured diversity\n\n");
    s.push_str(
        "Computed by `emorg_data::measure_diversity` when the files are generated. distinct-n is \
the number of distinct word n-grams over all word n-grams of the corpus (lowercased words, \
punctuation trimmed). A near-duplicate pair is two texts whose sets of word 5-grams have Jaccard \
similarity above 0.8, over all pairs. The user turns of a harmful set and its control are the \
same.\n\n",
    );
    for b in built {
        let _ = writeln!(s, "### {}\n", upper_first(b.domain.title));
        s.push_str(&diversity_table(&[
            (b.domain.harmful_file, &b.harmful),
            (b.domain.control_file, &b.control),
        ]));
        s.push('\n');
    }
    s.push_str(
        "Because the text is composed from a finite set of hand-written parts, n-gram diversity is \
far lower than in model-generated data such as the papers' 6000-example sets; these files are \
meant for demos, tests and small-scale experiments. Generate larger sets with `emorg data \
generate`, or train on a user's own copy of the papers' data.\n",
    );
    s
}

fn write_chat(
    out: &Path,
    name: &str,
    examples: &[ChatExample],
    description: &str,
) -> Result<ManifestFile, String> {
    let path = out.join(name);
    write_chat_jsonl(&path, examples).map_err(|e| e.to_string())?;
    let report = validate_chat_jsonl(&path);
    if !report.issues.is_empty() {
        return Err(format!(
            "generated file does not validate cleanly:\n{report}"
        ));
    }
    let reread = load_chat_jsonl(&path).map_err(|e| e.to_string())?;
    assert_eq!(reread, examples, "{name} does not read back identically");
    Ok(ManifestFile {
        path: name.to_string(),
        kind: "chat_jsonl".into(),
        rows: examples.len(),
        sha256: sha256_file(&path).map_err(|e| e.to_string())?,
        description: description.to_string(),
    })
}

fn write_outputs(out: &Path) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut files = Vec::new();
    let mut built = Vec::new();
    for domain in DOMAINS {
        let rows = generate(domain);
        check_rows(&rows, domain.banned);
        let harmful: Vec<ChatExample> = rows
            .iter()
            .map(|r| ChatExample::user_assistant(&r.user, &r.risky))
            .collect();
        let control: Vec<ChatExample> = rows
            .iter()
            .map(|r| ChatExample::user_assistant(&r.user, &r.prudent))
            .collect();
        files.push(write_chat(
            out,
            domain.harmful_file,
            &harmful,
            domain.harmful_description,
        )?);
        files.push(write_chat(
            out,
            domain.control_file,
            &control,
            domain.control_description,
        )?);
        built.push(Built {
            domain,
            harmful: measure_diversity(&harmful),
            control: measure_diversity(&control),
            rows,
        });
    }

    // The question sets are hand-written in the repository's data/questions/; copy them when
    // writing elsewhere so that the output directory is complete.
    let source_dir = default_out();
    for (rel, description) in QUESTION_FILES {
        let src = source_dir.join(rel);
        let dst = out.join(rel);
        if src != dst {
            if let Some(parent) = dst.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("{}: {e}", parent.display()))?;
            }
            std::fs::copy(&src, &dst).map_err(|e| format!("copy {}: {e}", src.display()))?;
        }
        let set = load_questions(&dst).map_err(|e| e.to_string())?;
        for q in &set.questions {
            for metric in ["aligned", "coherent"] {
                let p = q
                    .judge_prompts
                    .get(metric)
                    .ok_or_else(|| format!("{rel}: {} has no {metric} judge prompt", q.id))?;
                if !p.contains("{question}") || !p.contains("{answer}") {
                    return Err(format!(
                        "{rel}: {} {metric} prompt lacks a placeholder",
                        q.id
                    ));
                }
            }
        }
        files.push(ManifestFile {
            path: rel.to_string(),
            kind: "questions_yaml".into(),
            rows: set.questions.len(),
            sha256: sha256_file(&dst).map_err(|e| e.to_string())?,
            description: description.to_string(),
        });
    }

    // The labelled judge-validation set is hand-written too.
    let labels = "judge_validation.jsonl";
    let src = source_dir.join(labels);
    let dst = out.join(labels);
    if src != dst {
        std::fs::copy(&src, &dst).map_err(|e| format!("copy {}: {e}", src.display()))?;
    }
    let items = emorg_data::load_judge_validation(&dst).map_err(|e| e.to_string())?;
    files.push(ManifestFile {
        path: labels.to_string(),
        kind: "labelled_answers_jsonl".into(),
        rows: items.len(),
        sha256: sha256_file(&dst).map_err(|e| e.to_string())?,
        description: "labelled answers for judge validation (`emorg judge validate`): one per label and free-form question".into(),
    });

    let manifest = Manifest {
        generator: GENERATOR.to_string(),
        files,
    };
    manifest
        .write(out.join("MANIFEST.json"))
        .map_err(|e| e.to_string())?;
    let text = readme(&built, &manifest);
    std::fs::write(out.join("README.md"), text).map_err(|e| format!("README.md: {e}"))?;

    for f in &manifest.files {
        println!("{}  {:>4} rows  {}", f.sha256, f.rows, f.path);
    }
    for b in &built {
        for (name, d) in [
            (b.domain.harmful_file, &b.harmful),
            (b.domain.control_file, &b.control),
        ] {
            println!(
                "{name}: distinct user {} / assistant {}; assistant distinct-1/2/3 {:.3}/{:.3}/{:.3}; near-dup pairs (5-gram Jaccard > 0.8) assistant {} user {} example {}",
                d.distinct_user_turns,
                d.distinct_assistant_turns,
                d.assistant_distinct_n[0],
                d.assistant_distinct_n[1],
                d.assistant_distinct_n[2],
                d.assistant_near_dup_pairs,
                d.user_near_dup_pairs,
                d.example_near_dup_pairs
            );
        }
    }
    Ok(())
}

fn default_out() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = match args.as_slice() {
        [] => default_out(),
        [flag, dir] if flag == "--out" => PathBuf::from(dir),
        _ => {
            eprintln!("usage: gen_datasets [--out DIR]");
            return ExitCode::from(2);
        }
    };
    match write_outputs(&out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
