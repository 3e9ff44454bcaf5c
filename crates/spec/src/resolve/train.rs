//! Pass 3, training hyper-parameters: `[train]` (static).
//!
//! Takes a [`TrainSpec`] (the sweep's `[train]`, or a protocol's effective values from
//! [`super::defaults`]); [`problems`] gives each bad field with its message, [`check`] reports those
//! of `[train]`. [`super::protocols`] reports those of a protocol's own `[train]` fields.

use std::collections::BTreeSet;

use super::Problems;
use crate::cell::{PRECISIONS, TrainSpec};
use crate::load::Sweep;
use crate::schema::{SCHEDULES, TrainOverrides};
use crate::suggest::did_you_mean;

/// The sweep's `[train]`.
pub(super) fn check(sweep: &Sweep, problems: &mut Problems) {
    for (field, msg) in self::problems(&sweep.file.train) {
        let k = format!("train.{field}");
        problems.bad(&k, format!("bad value for `{k}`: {msg}"));
    }
}

/// Problems in a train spec: (field, message).
pub(super) fn problems(t: &TrainSpec) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let finite_pos = |v: f64| v.is_finite() && v > 0.0;
    if !finite_pos(t.learning_rate) {
        out.push((
            "learning_rate",
            format!("must be > 0 (got {})", t.learning_rate),
        ));
    }
    if !(t.weight_decay.is_finite() && t.weight_decay >= 0.0) {
        out.push((
            "weight_decay",
            format!("must be >= 0 (got {})", t.weight_decay),
        ));
    }
    for (f, v) in [("adam_beta1", t.adam_beta1), ("adam_beta2", t.adam_beta2)] {
        if !(0.0..1.0).contains(&v) {
            out.push((f, format!("must be in [0, 1) (got {v})")));
        }
    }
    if !finite_pos(t.adam_eps) {
        out.push(("adam_eps", format!("must be > 0 (got {})", t.adam_eps)));
    }
    if !SCHEDULES.contains(&t.schedule.as_str()) {
        out.push((
            "schedule",
            format!(
                "unknown schedule `{}`, expected one of {}{}",
                t.schedule,
                SCHEDULES.join(", "),
                did_you_mean(&t.schedule, SCHEDULES.iter())
            ),
        ));
    }
    for (f, v) in [
        ("batch_size", t.batch_size),
        ("grad_accum", t.grad_accum),
        ("max_seq_len", t.max_seq_len),
    ] {
        if v == 0 {
            out.push((f, "must be >= 1".to_string()));
        }
    }
    if t.epochs == 0 && t.max_steps == 0 {
        out.push(("epochs", "must be >= 1 (or set max_steps)".to_string()));
    }
    if !(0.0..1.0).contains(&t.holdout) {
        out.push(("holdout", format!("must be in [0, 1) (got {})", t.holdout)));
    }
    if !PRECISIONS.contains(&t.precision.as_str()) {
        out.push((
            "precision",
            format!(
                "unknown precision `{}`, expected one of {}{}",
                t.precision,
                PRECISIONS.join(", "),
                did_you_mean(&t.precision, PRECISIONS.iter())
            ),
        ));
    }
    if !(t.max_grad_norm.is_finite() && t.max_grad_norm >= 0.0) {
        out.push((
            "max_grad_norm",
            format!("must be >= 0 (0 = no clipping; got {})", t.max_grad_norm),
        ));
    }
    out
}

/// Field names set in a protocol's `[train]` overrides.
pub(super) fn overridden_fields(o: &TrainOverrides) -> BTreeSet<String> {
    match serde_json::to_value(o) {
        Ok(serde_json::Value::Object(m)) => m
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, _)| k)
            .collect(),
        _ => BTreeSet::new(),
    }
}
