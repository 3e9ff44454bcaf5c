//! Pass 3, protocols: `[protocols.X]` (static) and their layers on each model (with the registry's
//! depths).
//!
//! Takes the parsed sweep, each protocol seen through its preset ([`super::defaults`]). Reports, by
//! kind: adapter fields where there are no adapters, a LoRA protocol's missing or bad rank, alpha
//! and modules, bf16 for LoRA, and bad values among a protocol's own `[train]` fields (as
//! [`super::train::problems`] finds them in the effective values). [`lookup_layers`] gives the
//! layer indices of each LoRA protocol on each model of the matrix, reporting a selection the
//! model's depth cannot satisfy.

use std::collections::{BTreeMap, BTreeSet};

use super::defaults::protocol_train;
use super::expand::Point;
use super::models::Models;
use super::{Problems, train};
use crate::cell::ProtocolKind;
use crate::load::Sweep;
use crate::schema::{LORA_MODULES, LayerSel, ProtocolDef, TrainOverrides};
use crate::suggest::did_you_mean;

/// Layer indices by (model, protocol) table names, for the LoRA protocols of the matrix.
pub(super) type Layers<'a> = BTreeMap<(&'a str, &'a str), Vec<usize>>;

/// Every protocol table, in name order.
pub(super) fn check(sweep: &Sweep, problems: &mut Problems) {
    for (name, p) in &sweep.file.protocols {
        let key = format!("protocols.{name}");
        let (expanded, preset_train) = match p.expanded() {
            Ok(e) => e,
            Err((field, msg)) => {
                if field == "kind" && p.kind.is_none() {
                    problems.bad(&key, format!("`{key}`: {msg}"));
                } else {
                    let k = format!("{key}.{field}");
                    problems.bad(&k, format!("bad value for `{k}`: {msg}"));
                }
                continue;
            }
        };
        let protocol = Expanded {
            sweep,
            key: &key,
            def: &expanded,
            preset_train: &preset_train,
        };
        match expanded.kind.expect("expanded() always gives a kind") {
            ProtocolKind::Full => {
                protocol.forbid(
                    problems,
                    "full",
                    &[],
                    "every weight is trained; use kind = \"lora\" for adapters",
                );
                protocol.check_train(problems);
            }
            ProtocolKind::Base => {
                let train = [("train", expanded.train.is_some())];
                protocol.forbid(problems, "base", &train, "it does not train");
            }
            ProtocolKind::Lora => {
                protocol.check_adapters(problems);
                protocol.check_lora_precision(problems);
                protocol.check_train(problems);
            }
        }
    }
}

/// One protocol table with its preset applied.
struct Expanded<'a> {
    sweep: &'a Sweep,
    /// `protocols.X`.
    key: &'a str,
    def: &'a ProtocolDef,
    /// The preset's training values (empty without a preset).
    preset_train: &'a TrainOverrides,
}

impl Expanded<'_> {
    /// The LoRA fields (and `more`) set in a protocol whose kind has no adapters.
    fn forbid(&self, problems: &mut Problems, kind: &str, more: &[(&str, bool)], why: &str) {
        let key = self.key;
        let d = self.def;
        let lora = [
            ("rank", d.rank.is_some()),
            ("alpha", d.alpha.is_some()),
            ("rslora", d.rslora.is_some()),
            ("modules", d.modules.is_some()),
            ("layers", d.layers.is_some()),
        ];
        for (field, set) in lora.iter().chain(more) {
            if *set {
                problems.bad(
                    &format!("{key}.{field}"),
                    format!("`{key}.{field}` is not allowed with kind = \"{kind}\" ({why})"),
                );
            }
        }
    }

    /// A LoRA protocol's rank, alpha and modules.
    fn check_adapters(&self, problems: &mut Problems) {
        let key = self.key;
        match self.def.rank {
            None => problems.bad(
                key,
                format!("missing key `{key}.rank`: kind = \"lora\" needs a rank >= 1"),
            ),
            Some(0) => problems.bad(
                &format!("{key}.rank"),
                format!("bad value for `{key}.rank`: rank must be >= 1"),
            ),
            Some(_) => {}
        }
        if let Some(a) = self.def.alpha
            && !(a.is_finite() && a > 0.0)
        {
            problems.bad(
                &format!("{key}.alpha"),
                format!("bad value for `{key}.alpha`: must be > 0 (got {a})"),
            );
        }
        match &self.def.modules {
            None => problems.bad(
                key,
                format!(
                    "missing key `{key}.modules`: kind = \"lora\" needs modules, e.g. [\"down_proj\"]"
                ),
            ),
            Some(ms) if ms.is_empty() => problems.bad(
                &format!("{key}.modules"),
                format!("`{key}.modules` is empty"),
            ),
            Some(ms) => {
                for module in ms {
                    if !LORA_MODULES.contains(&module.as_str()) {
                        problems.bad(
                            &format!("{key}.modules"),
                            format!(
                                "unknown module `{module}` in `{key}.modules` (one of {}){}",
                                LORA_MODULES.join(" "),
                                did_you_mean(module, LORA_MODULES.iter())
                            ),
                        );
                    }
                }
            }
        }
    }

    /// LoRA adapters train in f32: bf16 (from `[train]` or the protocol's own) is refused.
    fn check_lora_precision(&self, problems: &mut Problems) {
        let key = self.key;
        let own = self.def.train.as_ref();
        let effective = protocol_train(&self.sweep.file, own, self.preset_train);
        if effective.precision == "bf16" {
            let k = if own.is_some_and(|o| o.precision.is_some()) {
                format!("{key}.train.precision")
            } else {
                "train.precision".to_string()
            };
            problems.bad(
                &k,
                format!(
                    "`{k}` = \"bf16\" applies to full fine-tuning; protocol `{key}` trains LoRA \
                     adapters, which train in f32 (use \"auto\" or \"f32\", or set bf16 in the \
                     full protocol's own [train])"
                ),
            );
        }
    }

    /// The fields of the protocol's own `[train]` whose effective value is bad.
    fn check_train(&self, problems: &mut Problems) {
        let Some(own) = &self.def.train else { return };
        let set = train::overridden_fields(own);
        let effective = protocol_train(&self.sweep.file, Some(own), self.preset_train);
        for (field, msg) in train::problems(&effective) {
            if set.contains(field) {
                let k = format!("{}.train.{field}", self.key);
                problems.bad(&k, format!("bad value for `{k}`: {msg}"));
            }
        }
    }
}

/// The layers of every LoRA protocol on every model it meets in the matrix (models whose registry
/// lookup failed are skipped: that is reported already).
pub(super) fn lookup_layers<'a>(
    sweep: &Sweep,
    axes: &'a BTreeSet<Point>,
    models: &Models<'_>,
    problems: &mut Problems,
) -> Layers<'a> {
    let f = &sweep.file;
    let mut layers = Layers::new();
    for a in axes {
        let (Some(p), Some((_, info))) =
            (f.protocols.get(&a.protocol), models.get(a.model.as_str()))
        else {
            continue;
        };
        if p.effective_kind() != Some(ProtocolKind::Lora)
            || layers.contains_key(&(a.model.as_str(), a.protocol.as_str()))
        {
            continue;
        }
        let Ok((p, _)) = p.expanded() else { continue };
        let sel = p.layers.clone().unwrap_or(LayerSel::All);
        match sel.resolve(info.n_layers) {
            Ok(l) => {
                layers.insert((&a.model, &a.protocol), l);
            }
            Err(e) => {
                let key = format!("protocols.{}.layers", a.protocol);
                problems.bad(
                    &key,
                    format!("bad value for `{key}` with model `{}`: {e}", a.model),
                );
            }
        }
    }
    layers
}
