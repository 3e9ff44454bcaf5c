//! Pass 3, models: the `[models]` entries the matrix uses, looked up in the registry.
//!
//! Takes the axis tuples and a [`Resolver`]; gives, by table name, the registry model
//! ([`ModelRef`]: registry name and GGUF sha256) and its number of layers. Reports a registry name
//! the resolver does not know, with the nearest registry name. (Table names are checked with the
//! matrix, [`super::matrix`].)

use std::collections::{BTreeMap, BTreeSet};

use super::expand::Point;
use super::{ModelInfo, Problems, Resolver};
use crate::cell::ModelRef;
use crate::load::Sweep;
use crate::suggest::did_you_mean;

/// Registry model and number of layers by table name, for the models the cells use.
pub(super) type Models<'a> = BTreeMap<&'a str, (ModelRef, ModelInfo)>;

/// Every model of the cells, once.
pub(super) fn lookup<'a>(
    sweep: &Sweep,
    axes: &'a BTreeSet<Point>,
    resolver: &dyn Resolver,
    problems: &mut Problems,
) -> Models<'a> {
    let mut models = Models::new();
    for a in axes {
        if models.contains_key(a.model.as_str()) {
            continue;
        }
        let Some(def) = sweep.file.models.get(&a.model) else {
            continue;
        };
        match resolver.model(&def.registry) {
            Ok(info) => {
                let model = ModelRef {
                    name: def.registry.clone(),
                    gguf_sha256: info.gguf_sha256.clone(),
                };
                models.insert(&a.model, (model, info));
            }
            Err(e) => {
                let names = resolver.model_names();
                problems.bad(
                    &format!("models.{}.registry", a.model),
                    format!("{e}{}", did_you_mean(&def.registry, names.iter())),
                );
            }
        }
    }
    models
}
