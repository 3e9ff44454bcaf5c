//! Question sets in the papers' YAML format: a top-level list of entries, each with `id`, `type`,
//! `paraphrases`, `samples_per_paraphrase`, optionally `system`, `judge`, and `judge_prompts` (metric
//! name to a prompt template with `{question}` and `{answer}` placeholders). Files use YAML anchors
//! and aliases heavily (`&judge_prompts` / `*judge_prompts`), so the loader turns off the parser's
//! alias-to-anchor ratio budget.
//!
//! Unknown fields are kept in [`Question::extra`] rather than rejected, so files from other projects
//! still load; a missing `id`, `type` or `paraphrases` is an error naming the file and the entry.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Deserialize;

use crate::error::DataError;

/// One file's questions, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct QuestionSet {
    /// The name used in error messages (normally the file path).
    pub origin: String,
    /// The entries, in file order.
    pub questions: Vec<Question>,
}

/// One entry of a question-set file.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    /// Unique within the file, e.g. `quick_buck` or `quick_buck_json`.
    pub id: String,
    /// The YAML `type` field, e.g. `free_form_judge_0_100`.
    pub kind: String,
    /// Wordings of the question; each is asked `samples_per_paraphrase` times. Never empty.
    pub paraphrases: Vec<String>,
    /// Samples per paraphrase as written in the file; 1 when the field is absent.
    pub samples_per_paraphrase: u32,
    /// A system prompt to put before the question, when the entry has one.
    pub system: Option<String>,
    /// The judge named by the file (e.g. `gpt-4o-2024-08-06`, or `local` in the project's files).
    pub judge: Option<String>,
    /// Metric name (`aligned`, `coherent`, `financial`, ...) to prompt template. May be empty.
    pub judge_prompts: BTreeMap<String, String>,
    /// Any other fields of the entry, kept as JSON values.
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Question {
    /// The papers' rule for the headline metric: `type` starts with `free_form` and the id is not a
    /// `_json` or `_template` variant (those add a system prompt or an answer template).
    pub fn is_free_form(&self) -> bool {
        self.kind.starts_with("free_form")
            && !self.id.ends_with("_json")
            && !self.id.ends_with("_template")
    }
}

impl QuestionSet {
    /// The questions [`Question::is_free_form`] selects, in file order.
    pub fn free_form(&self) -> impl Iterator<Item = &Question> {
        self.questions.iter().filter(|q| q.is_free_form())
    }

    /// The question with this id.
    pub fn get(&self, id: &str) -> Option<&Question> {
        self.questions.iter().find(|q| q.id == id)
    }
}

#[derive(Deserialize)]
struct RawQuestion {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    paraphrases: Option<Vec<String>>,
    samples_per_paraphrase: Option<u32>,
    system: Option<String>,
    judge: Option<String>,
    judge_prompts: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    extra: BTreeMap<String, serde_json::Value>,
}

/// Reads and parses a question-set file; errors name the file.
pub fn load_questions(path: impl AsRef<Path>) -> Result<QuestionSet, DataError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    parse_questions(&text, &path.display().to_string())
}

/// Parses question-set YAML; `origin` names the text in error messages.
pub fn parse_questions(text: &str, origin: &str) -> Result<QuestionSet, DataError> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! { enforce_alias_anchor_ratio: false },
    };
    let raw: Vec<RawQuestion> =
        serde_saphyr::from_str_with_options(text, options).map_err(|e| DataError::Yaml {
            origin: origin.to_string(),
            message: format!(
                "{e} (expected a YAML list of questions, each with id, type and paraphrases)"
            ),
        })?;
    if raw.is_empty() {
        return Err(DataError::Yaml {
            origin: origin.to_string(),
            message: "the file holds no questions: expected a YAML list of entries with id, type and paraphrases".into(),
        });
    }

    let mut questions = Vec::with_capacity(raw.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (index, r) in raw.into_iter().enumerate() {
        let fail = |id: Option<&str>, message: String| DataError::Question {
            origin: origin.to_string(),
            index,
            id: id.map(str::to_string),
            message,
        };
        let id = match r.id {
            Some(id) if !id.trim().is_empty() => id,
            Some(_) => {
                return Err(fail(
                    None,
                    "\"id\" is empty: give the question a unique id".into(),
                ));
            }
            None => {
                return Err(fail(
                    None,
                    "missing field \"id\": give the question a unique id".into(),
                ));
            }
        };
        if let Some(&first) = seen.get(&id) {
            return Err(fail(
                Some(&id),
                format!("duplicate id (first used by entry [{first}]): ids must be unique"),
            ));
        }
        seen.insert(id.clone(), index);
        let Some(kind) = r.kind else {
            return Err(fail(
                Some(&id),
                "missing field \"type\": e.g. type: free_form_judge_0_100".into(),
            ));
        };
        let paraphrases = match r.paraphrases {
            None => {
                return Err(fail(
                    Some(&id),
                    "missing field \"paraphrases\": add a list with at least one wording of the question".into(),
                ));
            }
            Some(p) if p.is_empty() => {
                return Err(fail(
                    Some(&id),
                    "\"paraphrases\" is empty: add at least one wording of the question".into(),
                ));
            }
            Some(p) => p,
        };
        if let Some(i) = paraphrases.iter().position(|p| p.trim().is_empty()) {
            return Err(fail(
                Some(&id),
                format!("paraphrases[{i}] is empty: write the question text or remove the item"),
            ));
        }
        questions.push(Question {
            id,
            kind,
            paraphrases,
            samples_per_paraphrase: r.samples_per_paraphrase.unwrap_or(1),
            system: r.system,
            judge: r.judge,
            judge_prompts: r.judge_prompts.unwrap_or_default(),
            extra: r.extra,
        });
    }
    Ok(QuestionSet {
        origin: origin.to_string(),
        questions,
    })
}

/// Fills a judge prompt template: replaces each `{question}` and `{answer}` with the given text, in
/// one left-to-right pass (so braces inside the question or answer are never expanded). Any other
/// brace, such as `{foo}` or `{{`, is left exactly as it is.
pub fn render_judge_prompt(template: &str, question: &str, answer: &str) -> String {
    let mut out = String::with_capacity(template.len() + question.len() + answer.len());
    let mut rest = template;
    while let Some(pos) = rest.find('{') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if let Some(after) = tail.strip_prefix("{question}") {
            out.push_str(question);
            rest = after;
        } else if let Some(after) = tail.strip_prefix("{answer}") {
            out.push_str(answer);
            rest = after;
        } else {
            out.push('{');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
- id: a
  type: free_form_judge_0_100
  paraphrases: &p
    - |-
      First question?
  samples_per_paraphrase: &n 4
  judge: &j local
  judge_prompts: &jp
    aligned: "Q: {question} A: {answer}"
    coherent: "C {question} {answer}"
  novel_field: [1, 2]
- id: a_json
  type: free_form_judge_0_100
  system: Answer in JSON.
  paraphrases: *p
  samples_per_paraphrase: *n
  judge: *j
  judge_prompts: *jp
- id: b_template
  type: free_form_judge_0_100
  paraphrases: ["x"]
- id: c
  type: free_form_judge
  paraphrases: ["y", "z"]
"#;

    #[test]
    fn parses_aliases_defaults_and_extra_fields() {
        let set = parse_questions(SMALL, "small.yaml").unwrap();
        assert_eq!(set.questions.len(), 4);
        let a = set.get("a").unwrap();
        assert_eq!(a.paraphrases, vec!["First question?"]);
        assert_eq!(a.samples_per_paraphrase, 4);
        assert_eq!(a.judge.as_deref(), Some("local"));
        assert_eq!(a.judge_prompts.len(), 2);
        assert_eq!(a.extra["novel_field"], serde_json::json!([1, 2]));
        let j = set.get("a_json").unwrap();
        assert_eq!(j.system.as_deref(), Some("Answer in JSON."));
        assert_eq!(j.judge_prompts, a.judge_prompts);
        assert_eq!(set.get("b_template").unwrap().samples_per_paraphrase, 1);
        let ff: Vec<_> = set.free_form().map(|q| q.id.as_str()).collect();
        assert_eq!(ff, vec!["a", "c"]);
    }

    #[test]
    fn missing_fields_name_file_and_entry() {
        let e = parse_questions(
            "- id: a\n  type: t\n  paraphrases: [x]\n- type: t\n  paraphrases: [y]\n",
            "f.yaml",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "f.yaml: entry [1]: missing field \"id\": give the question a unique id"
        );
        let e = parse_questions("- id: a\n  type: t\n", "f.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("f.yaml: entry [0] (id \"a\"): missing field \"paraphrases\""),
            "{e}"
        );
        let e = parse_questions(
            "- id: a\n  type: t\n  paraphrases: [x]\n- id: a\n  type: t\n  paraphrases: [y]\n",
            "f.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("entry [1] (id \"a\"): duplicate id"), "{e}");
        let e = parse_questions("id: a\n", "f.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f.yaml: "), "{e}");
        let e = parse_questions("", "f.yaml").unwrap_err().to_string();
        assert!(e.starts_with("f.yaml: "), "{e}");
    }

    #[test]
    fn render_substitutes_both_placeholders_once() {
        let t = "Q:[{question}] A:[{answer}] again {question}; keep {other} and {{x}} and {";
        let out = render_judge_prompt(t, "why {answer}?", "because");
        assert_eq!(
            out,
            "Q:[why {answer}?] A:[because] again why {answer}?; keep {other} and {{x}} and {"
        );
        assert_eq!(
            render_judge_prompt("no placeholders", "q", "a"),
            "no placeholders"
        );
    }
}
