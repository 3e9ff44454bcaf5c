//! Pass 2: defaults and presets.
//!
//! Takes one protocol table of the parsed sweep (whose `[train]`, `[eval]`, `[judge]`, `[store]` and
//! `[executor]` already hold the built-in defaults under the file's values: pass 1 layers
//! [`Defaults`](crate::Defaults) below the file) and gives its effective values:
//! - its kind, from the table or from its preset ([`ProtocolDef::effective_kind`]), and the table
//!   with the preset's values wherever the table leaves a field unset
//!   ([`ProtocolDef::expanded`], over the presets of [`crate::presets`]);
//! - the LoRA adapter set of a cell, unset fields defaulted ([`lora_spec`]);
//! - the training hyper-parameters, lowest first: `[train]` < the preset < `[datasets.X].holdout` <
//!   `[protocols.X.train]` ([`protocol_train`] without a dataset, as the checks see them;
//!   [`cell_train`] for a cell).

use crate::cell::{LoraSpec, ProtocolKind, TrainSpec};
use crate::schema::{LORA_MODULES, ProtocolDef, SweepFile, TrainOverrides};

/// Whether the protocol named `protocol` trains (it exists and its kind, from the table or its
/// preset, is not `base`).
pub(super) fn trains(f: &SweepFile, protocol: &str) -> bool {
    f.protocols
        .get(protocol)
        .is_some_and(|d| d.effective_kind().is_some_and(|k| k != ProtocolKind::Base))
}

/// A protocol's training values before any dataset's holdout: `[train]` < the preset
/// (`preset_train`) < the protocol's own `[train]` (`own`).
pub(super) fn protocol_train(
    f: &SweepFile,
    own: Option<&TrainOverrides>,
    preset_train: &TrainOverrides,
) -> TrainSpec {
    own.cloned()
        .unwrap_or_default()
        .over(preset_train)
        .apply(&f.train)
}

/// The training values of a cell of the (expanded) protocol `p` on `dataset`:
/// `[train]` < the preset < `[datasets.X].holdout` < `[protocols.X.train]`.
pub(super) fn cell_train(
    f: &SweepFile,
    p: &ProtocolDef,
    preset_train: &TrainOverrides,
    dataset: &str,
) -> TrainSpec {
    let mut train = preset_train.apply(&f.train);
    if let Some(h) = f.datasets[dataset].holdout {
        train.holdout = h;
    }
    if let Some(o) = &p.train {
        train = o.apply(&train);
    }
    train
}

/// The adapter set of an (expanded) LoRA protocol on a model where its layers resolved to
/// `layers`: rank 1, alpha = rank and no rsLoRA where unset; modules in canonical order (the
/// registry's), so that a reordering is not a new cell.
pub(super) fn lora_spec(p: &ProtocolDef, layers: Vec<usize>) -> LoraSpec {
    let rank = p.rank.unwrap_or(1);
    LoraSpec {
        rank,
        alpha: p.alpha.unwrap_or(rank as f64),
        rslora: p.rslora.unwrap_or(false),
        modules: LORA_MODULES
            .iter()
            .filter(|m| {
                p.modules
                    .as_ref()
                    .is_some_and(|ms| ms.iter().any(|x| x == *m))
            })
            .map(|m| m.to_string())
            .collect(),
        layers,
    }
}
