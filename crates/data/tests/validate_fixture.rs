//! `validate_chat_jsonl` on a bad file written to a temporary directory: errors land on exactly the
//! broken lines, and each message names the field.

use emorg_data::{Severity, load_chat_jsonl, validate_chat_jsonl};

const GOOD_1: &str =
    r#"{"messages":[{"role":"user","content":"Q1"},{"role":"assistant","content":"A1"}]}"#;
const GOOD_2: &str =
    r#"{"messages":[{"role":"user","content":"Q2"},{"role":"assistant","content":"A2"}]}"#;
const WRONG_ROLE: &str =
    r#"{"messages":[{"role":"user","content":"Q3"},{"role":"assitant","content":"A3"}]}"#;
const GOOD_4: &str =
    r#"{"messages":[{"role":"user","content":"Q4"},{"role":"assistant","content":"A4"}]}"#;
const EMPTY_CONTENT: &str =
    r#"{"messages":[{"role":"user","content":""},{"role":"assistant","content":"A5"}]}"#;
const GOOD_6: &str =
    r#"{"messages":[{"role":"user","content":"Q6"},{"role":"assistant","content":"A6"}]}"#;
const BAD_JSON: &str =
    r#"{"messages":[{"role":"user","content":"Q7"},{"role":"assistant","content":"A7"}]"#;

#[test]
fn errors_at_exactly_the_broken_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    let lines = [
        GOOD_1,
        GOOD_2,
        WRONG_ROLE,
        GOOD_4,
        EMPTY_CONTENT,
        GOOD_6,
        BAD_JSON,
        GOOD_1, // an exact duplicate of line 1: a warning, not an error
    ];
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();

    let report = validate_chat_jsonl(&path);
    assert!(report.has_errors());
    let errors: Vec<_> = report.errors().collect();
    assert_eq!(
        errors.iter().map(|i| i.line).collect::<Vec<_>>(),
        [3, 5, 7],
        "{report}"
    );
    assert_eq!(
        errors[0].message,
        "messages[1].role is \"assitant\": expected one of system, user, assistant"
    );
    assert!(
        errors[1]
            .message
            .starts_with("messages[0].content is empty"),
        "{}",
        errors[1].message
    );
    assert!(
        errors[2].message.starts_with("invalid JSON"),
        "{}",
        errors[2].message
    );

    let warnings: Vec<_> = report.warnings().collect();
    assert_eq!(warnings.len(), 1, "{report}");
    assert_eq!(warnings[0].line, 8);
    assert_eq!(warnings[0].severity, Severity::Warning);
    assert!(
        warnings[0].message.contains("line 1"),
        "{}",
        warnings[0].message
    );

    assert_eq!(report.stats.rows, 8);
    assert_eq!(report.stats.valid_rows, 5);
    assert_eq!(report.stats.distinct_user_turns, 4);

    let shown = report.to_string();
    let p = path.display();
    assert!(
        shown.contains(&format!("{p}:3: error: messages[1].role is \"assitant\"")),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("{p}:5: error: messages[0].content is empty")),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("{p}:7: error: invalid JSON")),
        "{shown}"
    );
    assert!(shown.contains(&format!("{p}:8: warning: ")), "{shown}");

    // The strict loader stops at the first broken line.
    let e = load_chat_jsonl(&path).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{p}:3: messages[1].role")), "{e}");
}
