//! Why work would rerun: the inputs that changed against a previous version of it.
//!
//! Generic over any serialisable value, so a launcher can diff a row's training unit, sample
//! variant and judgment separately (each has its own key) and say which identity changed.

use serde::Serialize;
use serde_json::Value;

/// The changed JSON paths between a previous value with the same axes and the current one, e.g.
/// `protocol.train.learning_rate: 0.002 -> 0.001` or `dataset.sha256 changed` (a
/// [`TrainingUnit`](crate::TrainingUnit), a [`SampleVariant`](crate::SampleVariant), a
/// [`Judgment`](crate::Judgment) or a whole [`Cell`](crate::Cell)). `["new"]` when there is no
/// previous value; empty when nothing changed.
pub fn explain<T: Serialize + ?Sized>(previous: Option<&T>, current: &T) -> Vec<String> {
    let Some(previous) = previous else {
        return vec!["new".to_string()];
    };
    let a = serde_json::to_value(previous).expect("an identity always serialises");
    let b = serde_json::to_value(current).expect("an identity always serialises");
    explain_values(&a, &b)
}

/// Like [`explain`] over raw JSON (a previous identity written by another version may not parse
/// as the current type any more).
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
