//! Pass 4, cell expansion.
//!
//! [`axes`] takes the checked sweep and gives its axis tuples: the product of the `[matrix]` axes,
//! minus `exclude`, plus `include`, sorted and deduplicated; protocols that do not train take
//! dataset `"-"` whatever the dataset axis says. [`cells`] takes those and what pass 3 found
//! ([`Found`]) and gives one fully resolved [`Cell`] per tuple, in the same order. Nothing here can
//! fail: every problem was reported by an earlier pass.

use std::collections::BTreeSet;

use super::datasets::Datasets;
use super::defaults::{cell_train, lora_spec, trains};
use super::models::Models;
use super::protocols::Layers;
use crate::cell::{Axes, Cell, EvalSpec, JudgeSpec, Protocol, ProtocolKind, WORKER_VERSION};
use crate::load::Sweep;

/// What the lookups of pass 3 found, for the cells.
pub(super) struct Found<'a> {
    pub(super) models: Models<'a>,
    pub(super) datasets: Datasets<'a>,
    pub(super) layers: Layers<'a>,
    pub(super) eval: EvalSpec,
    pub(super) judge: JudgeSpec,
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

/// The axis tuples of the sweep: product, then exclude, then include; sorted and deduplicated.
pub(super) fn axes(sweep: &Sweep) -> BTreeSet<Axes> {
    let f = &sweep.file;
    let m = &f.matrix;
    let mut cells = BTreeSet::new();
    for model in &m.model {
        for protocol in &m.protocol {
            let datasets: Vec<String> = if trains(f, protocol) {
                m.dataset.clone()
            } else {
                vec!["-".to_string()]
            };
            for dataset in datasets {
                for &seed in &m.seed {
                    cells.insert(Axes {
                        model: model.clone(),
                        protocol: protocol.clone(),
                        dataset: dataset.clone(),
                        seed,
                    });
                }
            }
        }
    }
    cells.retain(|a| {
        !m.exclude.iter().any(|e| {
            e.model.as_ref().is_none_or(|v| *v == a.model)
                && e.protocol.as_ref().is_none_or(|v| *v == a.protocol)
                && e.dataset.as_ref().is_none_or(|v| *v == a.dataset)
                && e.seed.is_none_or(|v| v == a.seed)
        })
    });
    for c in &m.include {
        let dataset = if trains(f, &c.protocol) {
            c.dataset.clone().unwrap_or_default()
        } else {
            "-".to_string()
        };
        cells.insert(Axes {
            model: c.model.clone(),
            protocol: c.protocol.clone(),
            dataset,
            seed: c.seed,
        });
    }
    cells
}

/// One cell per axis tuple.
pub(super) fn cells(sweep: &Sweep, axes: &BTreeSet<Axes>, found: &Found) -> Vec<Cell> {
    axes.iter().map(|a| cell(sweep, a, found)).collect()
}

/// The cell of one axis tuple.
fn cell(sweep: &Sweep, a: &Axes, found: &Found) -> Cell {
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
    Cell {
        protocol: Protocol {
            name: a.protocol.clone(),
            kind,
            preset: p.preset.clone(),
            lora,
            train,
        },
        model,
        dataset,
        eval: found.eval.clone(),
        judge: found.judge.clone(),
        seed: a.seed,
        worker_version: WORKER_VERSION.to_string(),
        axes: a.clone(),
    }
}
