//! Why a cell would rerun: the inputs that changed against a previous version of it.

use serde_json::Value;

use crate::cell::Cell;

/// The changed JSON paths between a previous cell with the same axes and the current one, e.g.
/// `protocol.train.learning_rate: 0.002 -> 0.001` or `dataset.sha256 changed`. `["new"]` when there
/// is no previous cell; empty when nothing changed.
pub fn explain(previous: Option<&Cell>, current: &Cell) -> Vec<String> {
    let Some(previous) = previous else {
        return vec!["new".to_string()];
    };
    let a = serde_json::to_value(previous).expect("a cell always serialises");
    let b = serde_json::to_value(current).expect("a cell always serialises");
    let mut out = Vec::new();
    diff("", &a, &b, &mut out);
    out
}

/// Like [`explain`] over raw JSON (a previous cell written by another version may not parse as a
/// [`Cell`] any more).
pub fn explain_values(previous: &Value, current: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff("", previous, current, &mut out);
    out
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(57).collect::<String>())
    } else {
        s
    }
}

fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    if a == b {
        return;
    }
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (a, b) {
        (Value::Object(ma), Value::Object(mb)) => {
            for (k, va) in ma {
                match mb.get(k) {
                    Some(vb) => diff(&join(k), va, vb, out),
                    None => out.push(format!("{}: removed", join(k))),
                }
            }
            for (k, vb) in mb {
                if !ma.contains_key(k) {
                    out.push(format!("{}: added {}", join(k), short(vb)));
                }
            }
        }
        (Value::Null, Value::Object(_)) => out.push(format!("{path}: added")),
        (Value::Object(_), Value::Null) => out.push(format!("{path}: removed")),
        _ if path.ends_with("sha256") => out.push(format!("{path} changed")),
        _ => out.push(format!("{path}: {} -> {}", short(a), short(b))),
    }
}
