//! Chat JSONL datasets: one `{"messages":[{"role":...,"content":...}, ...]}` object per line, the
//! format of the papers' training sets and of the project's own `data/*.jsonl`.
//!
//! [`load_chat_jsonl`] is strict and stops at the first bad line; [`validate_chat_jsonl`] reads the
//! whole file and reports every problem with its line, for `emorg data validate`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::DataError;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions placed before the conversation (the papers' training sets have none).
    System,
    /// The person asking.
    User,
    /// The model's answer; the training target.
    Assistant,
}

impl Role {
    /// The role as spelled in the file: `system`, `user` or `assistant`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        match s {
            "system" => Some(Role::System),
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// The text, never empty in a validated file.
    pub content: String,
}

/// One training example: a conversation that ends with the assistant's answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChatExample {
    /// The turns, in order.
    pub messages: Vec<Message>,
}

impl ChatExample {
    /// A two-turn example (user question, assistant answer), the shape of every shipped dataset.
    pub fn user_assistant(user: impl Into<String>, assistant: impl Into<String>) -> Self {
        ChatExample {
            messages: vec![
                Message {
                    role: Role::User,
                    content: user.into(),
                },
                Message {
                    role: Role::Assistant,
                    content: assistant.into(),
                },
            ],
        }
    }

    /// The first user turn's text.
    pub fn first_user(&self) -> Option<&str> {
        self.messages
            .iter()
            .find(|m| m.role == Role::User)
            .map(|m| m.content.as_str())
    }

    /// The last assistant turn's text (the training target).
    pub fn last_assistant(&self) -> Option<&str> {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == Role::Assistant)
            .map(|m| m.content.as_str())
    }

    /// The example as one compact JSON line (no trailing newline), fields in the order
    /// `messages`, `role`, `content`: the byte format of the shipped datasets.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("a ChatExample always serializes")
    }
}

/// Reads a chat JSONL file, stopping at the first invalid line.
///
/// Blank lines are skipped. Duplicates and other warnings of [`validate_chat_jsonl`] are not
/// errors here. The error names the file and line and says what to fix.
pub fn load_chat_jsonl(path: impl AsRef<Path>) -> Result<Vec<ChatExample>, DataError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let mut out = Vec::new();
    for (line, text) in split_lines(&bytes) {
        let text = match text {
            Ok(t) => t,
            Err(message) => {
                return Err(DataError::ChatLine {
                    path: path.to_path_buf(),
                    line,
                    message,
                });
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        let checked = check_line(text);
        if let Some((_, message)) = checked
            .problems
            .into_iter()
            .find(|(s, _)| *s == Severity::Error)
        {
            return Err(DataError::ChatLine {
                path: path.to_path_buf(),
                line,
                message,
            });
        }
        out.push(checked.example.expect("no errors means an example"));
    }
    Ok(out)
}

/// Writes examples as chat JSONL, one [`ChatExample::to_json_line`] per line, each ending in `\n`.
pub fn write_chat_jsonl(path: impl AsRef<Path>, examples: &[ChatExample]) -> Result<(), DataError> {
    let path = path.as_ref();
    let mut text = String::new();
    for ex in examples {
        text.push_str(&ex.to_json_line());
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|e| DataError::io(path, e))
}

/// How serious a validation finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The example cannot be used as training data as it stands.
    Error,
    /// The example can be used, but probably not as intended (a duplicate, an ignored field).
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One finding of [`validate_chat_jsonl`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// 1-based line number; 0 for a problem with the whole file (it could not be read).
    pub line: usize,
    /// Error or warning.
    pub severity: Severity,
    /// Names the field (`messages[1].role`) and says what to do.
    pub message: String,
}

/// Minimum, median and maximum of a set of lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LengthStats {
    /// Shortest.
    pub min: usize,
    /// Median (the lower middle value for an even count).
    pub median: usize,
    /// Longest.
    pub max: usize,
}

impl LengthStats {
    /// `None` for an empty set.
    pub fn of(mut lengths: Vec<usize>) -> Option<Self> {
        if lengths.is_empty() {
            return None;
        }
        lengths.sort_unstable();
        Some(LengthStats {
            min: lengths[0],
            median: lengths[(lengths.len() - 1) / 2],
            max: lengths[lengths.len() - 1],
        })
    }
}

/// Summary figures of a chat JSONL file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatStats {
    /// Non-blank lines.
    pub rows: usize,
    /// Lines that parsed into an example without errors.
    pub valid_rows: usize,
    /// Distinct texts among all user turns of the valid rows.
    pub distinct_user_turns: usize,
    /// Length in characters (Unicode scalar values) of the valid rows' assistant turns.
    pub assistant_chars: Option<LengthStats>,
}

/// Everything [`validate_chat_jsonl`] found, in line order.
#[derive(Debug, Clone)]
pub struct ValidationReport {
    /// The file checked.
    pub path: PathBuf,
    /// Findings in line order.
    pub issues: Vec<Issue>,
    /// Summary figures.
    pub stats: ChatStats,
}

impl ValidationReport {
    /// True when any finding is an [`Severity::Error`].
    pub fn has_errors(&self) -> bool {
        self.issues.iter().any(|i| i.severity == Severity::Error)
    }

    /// The findings that are errors.
    pub fn errors(&self) -> impl Iterator<Item = &Issue> {
        self.issues.iter().filter(|i| i.severity == Severity::Error)
    }

    /// The findings that are warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Issue> {
        self.issues
            .iter()
            .filter(|i| i.severity == Severity::Warning)
    }
}

/// One `path:line: severity: message` line per finding, then a summary line.
impl fmt::Display for ValidationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        for issue in &self.issues {
            if issue.line == 0 {
                writeln!(f, "{path}: {}: {}", issue.severity, issue.message)?;
            } else {
                writeln!(
                    f,
                    "{path}:{}: {}: {}",
                    issue.line, issue.severity, issue.message
                )?;
            }
        }
        let s = &self.stats;
        write!(
            f,
            "{path}: {} rows ({} valid), {} distinct user turns",
            s.rows, s.valid_rows, s.distinct_user_turns
        )?;
        if let Some(a) = s.assistant_chars {
            write!(
                f,
                ", assistant turn chars min/median/max {}/{}/{}",
                a.min, a.median, a.max
            )?;
        }
        write!(
            f,
            "; {} errors, {} warnings",
            self.errors().count(),
            self.warnings().count()
        )
    }
}

/// Checks every line of a chat JSONL file and never stops early.
///
/// Errors: invalid UTF-8 or JSON; not an object with exactly one field, `messages`; `messages` not a
/// non-empty array; a message that is not an object; a `role` other than `system`, `user`,
/// `assistant`; a `content` that is not a string or is empty; no user or no assistant turn; a last
/// turn that is not the assistant's; a file that cannot be read (reported at line 0).
///
/// Warnings: an exact duplicate of an earlier example (naming the line of its first occurrence),
/// unknown fields inside a message (ignored by the loader), a system message after other turns,
/// two consecutive turns with the same role, blank lines between examples.
pub fn validate_chat_jsonl(path: impl AsRef<Path>) -> ValidationReport {
    let path = path.as_ref();
    match std::fs::read(path) {
        Ok(bytes) => validate_lines(path, split_lines(&bytes)),
        Err(e) => ValidationReport {
            path: path.to_path_buf(),
            issues: vec![Issue {
                line: 0,
                severity: Severity::Error,
                message: format!("cannot read the file: {e}"),
            }],
            stats: ChatStats::default(),
        },
    }
}

/// [`validate_chat_jsonl`] on text already in memory; `path` only names it in the report.
pub fn validate_chat_str(text: &str, path: impl Into<PathBuf>) -> ValidationReport {
    validate_lines(&path.into(), split_lines(text.as_bytes()))
}

/// Splits on `\n` (dropping a `\r` before it), numbering lines from 1. A final newline does not
/// start another line.
fn split_lines(bytes: &[u8]) -> Vec<(usize, Result<&str, String>)> {
    let mut pieces: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    if pieces.last().is_some_and(|p| p.is_empty()) {
        pieces.pop();
    }
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let p = p.strip_suffix(b"\r").unwrap_or(p);
            let text = std::str::from_utf8(p).map_err(|e| {
                format!(
                    "the line is not valid UTF-8 (at byte {}): save the file as UTF-8",
                    e.valid_up_to()
                )
            });
            (i + 1, text)
        })
        .collect()
}

fn validate_lines(path: &Path, lines: Vec<(usize, Result<&str, String>)>) -> ValidationReport {
    let mut issues = Vec::new();
    let mut stats = ChatStats::default();
    let mut first_seen: HashMap<String, usize> = HashMap::new();
    let mut users: HashSet<&str> = HashSet::new();
    let mut valid: Vec<(usize, ChatExample)> = Vec::new();
    let last_line = lines.len();

    for (line, text) in lines {
        let text = match text {
            Ok(t) => t,
            Err(message) => {
                stats.rows += 1;
                issues.push(Issue {
                    line,
                    severity: Severity::Error,
                    message,
                });
                continue;
            }
        };
        if text.trim().is_empty() {
            if line != last_line {
                issues.push(Issue {
                    line,
                    severity: Severity::Warning,
                    message: "blank line: remove it (each line should hold one example)".into(),
                });
            }
            continue;
        }
        stats.rows += 1;
        let checked = check_line(text);
        for (severity, message) in checked.problems {
            issues.push(Issue {
                line,
                severity,
                message,
            });
        }
        if let Some(ex) = checked.example {
            let key = ex.to_json_line();
            match first_seen.get(&key) {
                Some(&first) => issues.push(Issue {
                    line,
                    severity: Severity::Warning,
                    message: format!(
                        "messages duplicate line {first} exactly: remove one of the two copies"
                    ),
                }),
                None => {
                    first_seen.insert(key, line);
                }
            }
            valid.push((line, ex));
        }
    }

    stats.valid_rows = valid.len();
    if stats.rows == 0 {
        // An empty set would pass every per-line check and fail only after the model loads.
        issues.push(Issue {
            line: 0,
            severity: Severity::Error,
            message: "the file holds no examples: write at least one chat example, one JSON \
                      object per line ({\"messages\": [...]})"
                .to_string(),
        });
    }
    for (_, ex) in &valid {
        for m in &ex.messages {
            if m.role == Role::User {
                users.insert(m.content.as_str());
            }
        }
    }
    stats.distinct_user_turns = users.len();
    stats.assistant_chars = LengthStats::of(
        valid
            .iter()
            .flat_map(|(_, ex)| ex.messages.iter())
            .filter(|m| m.role == Role::Assistant)
            .map(|m| m.content.chars().count())
            .collect(),
    );
    ValidationReport {
        path: path.to_path_buf(),
        issues,
        stats,
    }
}

fn push_error(problems: &mut Vec<(Severity, String)>, message: String) {
    problems.push((Severity::Error, message));
}

struct CheckedLine {
    /// Present when no problem is an error.
    example: Option<ChatExample>,
    problems: Vec<(Severity, String)>,
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

const ROLES: &str = "system, user, assistant";

/// Checks one non-blank line.
fn check_line(text: &str) -> CheckedLine {
    let mut problems: Vec<(Severity, String)> = Vec::new();

    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            push_error(
                &mut problems,
                format!(
                    "invalid JSON ({e}): write each example as one JSON object on a single line"
                ),
            );
            return CheckedLine {
                example: None,
                problems,
            };
        }
    };
    let Value::Object(obj) = value else {
        push_error(
            &mut problems,
            format!(
                "the line is {}: expected an object like {{\"messages\":[...]}}",
                json_kind(&value)
            ),
        );
        return CheckedLine {
            example: None,
            problems,
        };
    };
    for key in obj.keys().filter(|k| *k != "messages") {
        push_error(
            &mut problems,
            format!(
                "unexpected field {key:?}: an example has exactly one field, \"messages\"; remove {key:?}"
            ),
        );
    }
    let Some(messages) = obj.get("messages") else {
        push_error(&mut problems, "missing field \"messages\": add the conversation as \"messages\":[{\"role\":...,\"content\":...}, ...]".into());
        return CheckedLine {
            example: None,
            problems,
        };
    };
    let Value::Array(items) = messages else {
        push_error(
            &mut problems,
            format!(
                "messages is {}: expected an array of {{\"role\",\"content\"}} objects",
                json_kind(messages)
            ),
        );
        return CheckedLine {
            example: None,
            problems,
        };
    };
    if items.is_empty() {
        push_error(
            &mut problems,
            "messages is empty: add a user turn and an assistant turn".into(),
        );
    }

    let mut out: Vec<Message> = Vec::with_capacity(items.len());
    let mut all_ok = true;
    for (i, item) in items.iter().enumerate() {
        let Value::Object(m) = item else {
            push_error(
                &mut problems,
                format!(
                    "messages[{i}] is {}: expected an object with \"role\" and \"content\"",
                    json_kind(item)
                ),
            );
            all_ok = false;
            continue;
        };
        let role = match m.get("role") {
            None => {
                push_error(
                    &mut problems,
                    format!("messages[{i}].role is missing: add \"role\", one of {ROLES}"),
                );
                None
            }
            Some(Value::String(s)) => {
                let r = Role::parse(s);
                if r.is_none() {
                    push_error(
                        &mut problems,
                        format!("messages[{i}].role is {s:?}: expected one of {ROLES}"),
                    );
                }
                r
            }
            Some(other) => {
                push_error(
                    &mut problems,
                    format!(
                        "messages[{i}].role is {}: expected a string, one of {ROLES}",
                        json_kind(other)
                    ),
                );
                None
            }
        };
        let content = match m.get("content") {
            None => {
                push_error(
                    &mut problems,
                    format!(
                        "messages[{i}].content is missing: add the message text as \"content\""
                    ),
                );
                None
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                push_error(
                    &mut problems,
                    format!(
                        "messages[{i}].content is empty: write the message text or remove the message"
                    ),
                );
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                push_error(
                    &mut problems,
                    format!(
                        "messages[{i}].content is {}: expected the message text as a string",
                        json_kind(other)
                    ),
                );
                None
            }
        };
        for key in m.keys().filter(|k| *k != "role" && *k != "content") {
            problems.push((
                Severity::Warning,
                format!("messages[{i}] has an unknown field {key:?}, which is ignored"),
            ));
        }
        match (role, content) {
            (Some(role), Some(content)) => out.push(Message { role, content }),
            _ => all_ok = false,
        }
    }

    if all_ok && !out.is_empty() {
        if !out.iter().any(|m| m.role == Role::User) {
            problems.push((
                Severity::Error,
                "messages has no user turn: an example needs at least one user and one assistant message".into(),
            ));
        }
        if !out.iter().any(|m| m.role == Role::Assistant) {
            problems.push((
                Severity::Error,
                "messages has no assistant turn: add the answer as a final {\"role\":\"assistant\"} message".into(),
            ));
        }
        let last = out.len() - 1;
        if out[last].role != Role::Assistant {
            problems.push((
                Severity::Error,
                format!(
                    "messages[{last}].role is \"{}\" but the last turn is the training target: end the example with an assistant turn",
                    out[last].role
                ),
            ));
        }
        for (i, m) in out.iter().enumerate().skip(1) {
            if m.role == Role::System {
                problems.push((
                    Severity::Warning,
                    format!(
                        "messages[{i}].role is \"system\" after other turns: put the system message first"
                    ),
                ));
            } else if m.role == out[i - 1].role {
                problems.push((
                    Severity::Warning,
                    format!(
                        "messages[{}] and messages[{i}] are both \"{}\": turns should alternate between user and assistant",
                        i - 1,
                        m.role
                    ),
                ));
            }
        }
    }

    let has_error = problems.iter().any(|(s, _)| *s == Severity::Error);
    CheckedLine {
        example: (!has_error).then_some(ChatExample { messages: out }),
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str =
        r#"{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello."}]}"#;

    fn errors_at(report: &ValidationReport) -> Vec<usize> {
        report.errors().map(|i| i.line).collect()
    }

    #[test]
    fn good_file_has_no_issues_and_stats() {
        let text = format!(
            "{GOOD}\n{}\n",
            r#"{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Q2"},{"role":"assistant","content":"A longer answer."}]}"#
        );
        let r = validate_chat_str(&text, "t.jsonl");
        assert!(r.issues.is_empty(), "{r}");
        assert_eq!(r.stats.rows, 2);
        assert_eq!(r.stats.valid_rows, 2);
        assert_eq!(r.stats.distinct_user_turns, 2);
        assert_eq!(
            r.stats.assistant_chars,
            Some(LengthStats {
                min: 6,
                median: 6,
                max: 16
            })
        );
    }

    #[test]
    fn wrong_role_names_field_and_choices() {
        let line =
            r#"{"messages":[{"role":"user","content":"Hi"},{"role":"assitant","content":"x"}]}"#;
        let r = validate_chat_str(&format!("{GOOD}\n{line}\n"), "t.jsonl");
        assert_eq!(errors_at(&r), vec![2]);
        assert_eq!(
            r.issues[0].message,
            "messages[1].role is \"assitant\": expected one of system, user, assistant"
        );
        assert!(
            r.to_string()
                .starts_with("t.jsonl:2: error: messages[1].role is \"assitant\"")
        );
    }

    #[test]
    fn structure_errors() {
        let cases = [
            (r#"[1,2]"#, "the line is an array"),
            (r#"{"msgs":[]}"#, "unexpected field \"msgs\""),
            (r#"{"messages":"hi"}"#, "messages is a string"),
            (r#"{"messages":[]}"#, "messages is empty"),
            (
                r#"{"messages":[{"role":"user","content":"a"}]}"#,
                "no assistant turn",
            ),
            (
                r#"{"messages":[{"role":"assistant","content":"a"},{"role":"user","content":"b"}]}"#,
                "messages[1].role is \"user\" but the last turn",
            ),
            (
                r#"{"messages":[{"role":"user","content":5},{"role":"assistant","content":"a"}]}"#,
                "messages[0].content is a number",
            ),
            (
                r#"{"messages":[{"content":"q"},{"role":"assistant","content":"a"}]}"#,
                "messages[0].role is missing",
            ),
        ];
        for (line, want) in cases {
            let r = validate_chat_str(line, "t.jsonl");
            assert!(r.has_errors(), "{line}");
            assert!(
                r.errors().any(|i| i.message.contains(want) && i.line == 1),
                "{line}: wanted {want:?}, got {r}"
            );
        }
    }

    #[test]
    fn duplicates_are_warnings_naming_the_first_line() {
        let other =
            r#"{"messages":[{"role":"user","content":"Q"},{"role":"assistant","content":"A"}]}"#;
        // Same example with different key order and spacing is still a duplicate.
        let reordered = r#"{ "messages": [ {"content":"Hi","role":"user"}, {"content":"Hello.","role":"assistant"} ] }"#;
        let r = validate_chat_str(&format!("{GOOD}\n{other}\n{reordered}\n"), "t.jsonl");
        assert!(!r.has_errors());
        let w: Vec<_> = r.warnings().collect();
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].line, 3);
        assert!(
            w[0].message.contains("duplicate line 1"),
            "{}",
            w[0].message
        );
        assert_eq!(r.stats.distinct_user_turns, 2);
    }

    #[test]
    fn warnings_for_extra_fields_and_order() {
        let line = r#"{"messages":[{"role":"user","content":"a","weight":1},{"role":"user","content":"b"},{"role":"assistant","content":"c"}]}"#;
        let r = validate_chat_str(line, "t.jsonl");
        assert!(!r.has_errors(), "{r}");
        assert_eq!(r.warnings().count(), 2, "{r}");
    }

    #[test]
    fn crlf_blank_lines_and_missing_files() {
        let r = validate_chat_str(&format!("{GOOD}\r\n\r\n{GOOD}x\r\n"), "t.jsonl");
        assert_eq!(errors_at(&r), vec![3]);
        assert_eq!(r.warnings().map(|i| i.line).collect::<Vec<_>>(), vec![2]);
        let r = validate_chat_jsonl("/nonexistent/emorg/x.jsonl");
        assert!(r.has_errors());
        assert!(
            r.to_string()
                .starts_with("/nonexistent/emorg/x.jsonl: error: cannot read")
        );
    }

    #[test]
    fn load_round_trips_and_names_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let exs = vec![
            ChatExample::user_assistant("q1", "a1"),
            ChatExample::user_assistant("q2 \"quoted\"", "a2\nnext line"),
        ];
        write_chat_jsonl(&path, &exs).unwrap();
        assert_eq!(load_chat_jsonl(&path).unwrap(), exs);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(
            r#"{"messages":[{"role":"user","content":"q1"},{"role":"assistant","content":"a1"}]}"#
        ));

        std::fs::write(&path, format!("{GOOD}\n{{\"messages\":[]}}\n")).unwrap();
        let e = load_chat_jsonl(&path).unwrap_err().to_string();
        assert!(
            e.ends_with("a.jsonl:2: messages is empty: add a user turn and an assistant turn"),
            "{e}"
        );
    }
}
