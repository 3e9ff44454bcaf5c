//! Pass 4, expansion.
//!
//! [`points`] takes the checked sweep and gives its training points: the product of the `[matrix]`
//! axes, minus `exclude`, plus `include`, sorted and deduplicated; protocols that do not train take
//! dataset `"-"` and the first seed whatever those axes say (a base model's unit is the model
//! alone). [`cells`] takes those and what pass 3 found ([`Found`]) and gives, per point, one
//! training unit and one row per (checkpoint, scale, judge) of the evaluation axes. Nothing here
//! can fail: every problem was reported by an earlier pass.

use std::collections::BTreeSet;

use super::datasets::Datasets;
use super::defaults::{cell_train, lora_spec, trains};
use super::models::Models;
use super::protocols::Layers;
use crate::cell::{
    Axes, Cell, JudgeSpec, Judgment, Protocol, ProtocolKind, SampleVariant, SamplerSpec, Scales,
    TrainingUnit, WORKER_VERSION, Weights,
};
use crate::load::Sweep;

/// One point of the `[matrix]`: what a training unit is trained from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Point {
    pub(crate) model: String,
    pub(crate) protocol: String,
    /// `"-"` when the protocol does not train.
    pub(crate) dataset: String,
    pub(crate) seed: u64,
}

/// What the lookups of pass 3 found, for the cells.
pub(super) struct Found<'a> {
    pub(super) models: Models<'a>,
    pub(super) datasets: Datasets<'a>,
    pub(super) layers: Layers<'a>,
    /// Sampling settings, question file and question ids: the variants' part that no axis varies.
    pub(super) sampler: SamplerSpec,
    pub(super) questions_sha256: String,
    /// The scale axis (factors as written, deduplicated) with the per-adapter table.
    pub(super) scales: Vec<(String, Scales)>,
    /// The checkpoints each training point's unit is evaluated at (pass 3, `eval::weights`).
    pub(super) weights: std::collections::BTreeMap<Point, Vec<Weights>>,
    /// (name, spec) of every judge, sorted by name.
    pub(super) judges: Vec<(String, JudgeSpec)>,
}

/// Refuses a matrix whose product (plus `include`) exceeds `executor.max_cells`, before anything
/// is expanded; the message gives the factors.
pub(super) fn check_size(sweep: &Sweep, problems: &mut super::Problems) -> bool {
    let f = &sweep.file;
    let m = &f.matrix;
    let factors = [
        ("models", m.model.len()),
        ("protocols", m.protocol.len()),
        ("datasets", m.dataset.len().max(1)),
        ("seeds", m.seed.len()),
        ("checkpoints", f.eval.checkpoints.bound()),
        ("scales", f.eval.adapter_scale.values().len()),
        ("judges", f.judges.len().max(1)),
    ];
    let bound = factors
        .iter()
        .fold(1u128, |acc, (_, n)| acc.saturating_mul(*n as u128))
        .saturating_add(m.include.len() as u128);
    if bound <= f.executor.max_cells as u128 {
        return true;
    }
    let shown: Vec<String> = factors.iter().map(|(k, n)| format!("{k} {n}")).collect();
    problems.bad(
        "matrix",
        format!(
            "the matrix gives up to {bound} cells ({}, plus {} included), more than \
             `executor.max_cells` = {}: split the sweep, or raise `executor.max_cells`",
            shown.join(" x "),
            m.include.len(),
            f.executor.max_cells
        ),
    );
    false
}

/// The training points of the sweep: product, then exclude, then include; sorted and
/// deduplicated.
pub(super) fn points(sweep: &Sweep) -> BTreeSet<Point> {
    let f = &sweep.file;
    let m = &f.matrix;
    let first_seed = m.seed.iter().copied().min().unwrap_or(0);
    let point = |model: &str, protocol: &str, dataset: &str, seed: u64| {
        if trains(f, protocol) {
            Point {
                model: model.into(),
                protocol: protocol.into(),
                dataset: dataset.into(),
                seed,
            }
        } else {
            Point {
                model: model.into(),
                protocol: protocol.into(),
                dataset: "-".into(),
                seed: first_seed,
            }
        }
    };
    let mut points = BTreeSet::new();
    for model in &m.model {
        for protocol in &m.protocol {
            let datasets: Vec<&str> = if trains(f, protocol) {
                m.dataset.iter().map(String::as_str).collect()
            } else {
                vec!["-"]
            };
            for dataset in datasets {
                for &seed in &m.seed {
                    points.insert(point(model, protocol, dataset, seed));
                }
            }
        }
    }
    points.retain(|a| {
        !m.exclude.iter().any(|e| {
            e.model.as_ref().is_none_or(|v| *v == a.model)
                && e.protocol.as_ref().is_none_or(|v| *v == a.protocol)
                && e.dataset.as_ref().is_none_or(|v| *v == a.dataset)
                && e.seed.is_none_or(|v| v == a.seed)
        })
    });
    for c in &m.include {
        let dataset = c.dataset.clone().unwrap_or_default();
        points.insert(point(&c.model, &c.protocol, &dataset, c.seed));
    }
    points
}

/// The rows of the sweep: per training point, one per (checkpoint, scale, judge), sorted by axes.
pub(super) fn cells(sweep: &Sweep, points: &BTreeSet<Point>, found: &Found) -> Vec<Cell> {
    let mut cells = Vec::new();
    for p in points {
        let unit = unit(sweep, p, found);
        let unit_key = unit.key();
        let adapters = unit.protocol.kind == ProtocolKind::Lora;
        for weights in &found.weights[p] {
            for (label, scales) in &found.scales {
                // Only adapters scale: other units have the one scale the checks allowed.
                let scales = if adapters {
                    scales.clone()
                } else {
                    Scales::identity()
                };
                let variant = SampleVariant {
                    unit: unit_key.clone(),
                    weights: *weights,
                    scales,
                    intervention: None,
                    sampler: found.sampler.clone(),
                    questions_sha256: found.questions_sha256.clone(),
                    question_ids: sweep.file.eval.question_ids.clone(),
                    replicate: sweep.replicate.sample,
                };
                let variant_key = variant.key();
                for (judge, spec) in &found.judges {
                    cells.push(Cell {
                        axes: Axes {
                            model: p.model.clone(),
                            protocol: p.protocol.clone(),
                            dataset: p.dataset.clone(),
                            seed: p.seed,
                            checkpoint: *weights,
                            scale: label.clone(),
                            judge: judge.clone(),
                            replicate: sweep.replicate.unit,
                        },
                        unit: unit.clone(),
                        variant: variant.clone(),
                        judgment: Judgment {
                            variant: variant_key.clone(),
                            judge: spec.clone(),
                            replicate: sweep.replicate.judge,
                        },
                    });
                }
            }
        }
    }
    cells.sort_by(|a, b| a.axes.cmp(&b.axes));
    cells.dedup_by(|a, b| a.axes == b.axes);
    cells
}

/// The training unit of one point.
fn unit(sweep: &Sweep, a: &Point, found: &Found) -> TrainingUnit {
    let f = &sweep.file;
    let (p, preset_train) = f.protocols[&a.protocol]
        .expanded()
        .expect("protocols were checked by check_static");
    let (model, _) = found.models[a.model.as_str()].clone();
    let kind = p.kind.expect("expanded() always gives a kind");
    let (dataset, lora, train) = match kind {
        ProtocolKind::Base => (None, None, None),
        ProtocolKind::Full => (
            Some(found.datasets[a.dataset.as_str()].clone()),
            None,
            Some(cell_train(f, &p, &preset_train, &a.dataset)),
        ),
        ProtocolKind::Lora => {
            let layers = found.layers[&(a.model.as_str(), a.protocol.as_str())].clone();
            (
                Some(found.datasets[a.dataset.as_str()].clone()),
                Some(lora_spec(&p, layers)),
                Some(cell_train(f, &p, &preset_train, &a.dataset)),
            )
        }
    };
    TrainingUnit {
        protocol: Protocol {
            kind,
            preset: p.preset.clone(),
            lora,
            train,
        },
        model,
        dataset,
        seed: if kind == ProtocolKind::Base {
            0
        } else {
            a.seed
        },
        replicate: sweep.replicate.unit,
        keep_steps: if kind == ProtocolKind::Full {
            found.weights[a].iter().filter_map(|w| w.step()).collect()
        } else {
            Vec::new()
        },
        worker_version: WORKER_VERSION.to_string(),
    }
}
