//! Pass 3, datasets: `[datasets.X]` (static) and the dataset files the cells use.
//!
//! Takes the parsed sweep. [`check`] reports a bad holdout or sha256 pin, an unknown papers'
//! dataset and a pin that contradicts the papers' published hash. [`lookup`] takes the axis tuples
//! and gives a [`DatasetRef`] (name and sha256) for each dataset the cells use, adding its file to
//! the inputs; it reports a missing `path`, an unreadable file and a hash that differs from the
//! pin (the sweep's, or the papers' published one). Each dataset is checked once, however many
//! cells use it.

use std::collections::{BTreeMap, BTreeSet};

use super::expand::Point;
use super::{Files, InputFile, InputKind, Problems};
use crate::cell::DatasetRef;
use crate::load::Sweep;
use crate::papers::{PAPER_DATASETS, how_to_obtain, paper_dataset};
use crate::schema::DatasetDef;
use crate::suggest::did_you_mean;

/// Dataset references by table name, for the datasets the cells use.
pub(super) type Datasets<'a> = BTreeMap<&'a str, DatasetRef>;

/// Every dataset table, in name order.
pub(super) fn check(sweep: &Sweep, problems: &mut Problems) {
    for (name, d) in &sweep.file.datasets {
        if let Some(h) = d.holdout
            && !(0.0..1.0).contains(&h)
        {
            let k = format!("datasets.{name}.holdout");
            problems.bad(
                &k,
                format!("bad value for `{k}`: must be in [0, 1) (got {h})"),
            );
        }
        if let Some(sha) = &d.sha256
            && !(sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit()))
        {
            let k = format!("datasets.{name}.sha256");
            problems.bad(&k, format!("bad value for `{k}`: expected 64 hex digits"));
        }
        if let Some(paper) = &d.paper {
            check_paper(problems, name, d, paper);
        }
    }
}

/// `paper = "..."` names one of the papers' datasets, and a pin agrees with its published hash.
fn check_paper(problems: &mut Problems, name: &str, d: &DatasetDef, paper: &str) {
    match paper_dataset(paper) {
        None => {
            let k = format!("datasets.{name}.paper");
            problems.bad(
                &k,
                format!(
                    "bad value for `{k}`: `{paper}` is not one of the papers' datasets ({}){}",
                    PAPER_DATASETS
                        .iter()
                        .map(|d| d.name)
                        .collect::<Vec<_>>()
                        .join(", "),
                    did_you_mean(paper, PAPER_DATASETS.iter().map(|d| d.name))
                ),
            );
        }
        Some(known) => {
            if let Some(sha) = &d.sha256
                && !sha.eq_ignore_ascii_case(known.sha256)
            {
                let k = format!("datasets.{name}.sha256");
                problems.bad(
                    &k,
                    format!(
                        "`{k}` pins {sha}, but the papers' `{paper}` has sha256 {}: drop \
                         the pin (the published hash is used) or drop `paper`",
                        known.sha256
                    ),
                );
            }
        }
    }
}

/// The datasets of the cells, hashed and checked against their pins.
pub(super) fn lookup<'a>(
    sweep: &Sweep,
    axes: &'a BTreeSet<Point>,
    files: &mut Files,
    problems: &mut Problems,
) -> Datasets<'a> {
    let mut datasets = Datasets::new();
    // Each dataset is checked once, however many cells use it (one diagnostic per problem).
    let mut checked: BTreeSet<&str> = BTreeSet::new();
    for a in axes {
        if a.dataset == "-" || !checked.insert(a.dataset.as_str()) {
            continue;
        }
        let Some(def) = sweep.file.datasets.get(&a.dataset) else {
            continue;
        };
        if let Some(dataset) = lookup_one(sweep, &a.dataset, def, files, problems) {
            datasets.insert(&a.dataset, dataset);
        }
    }
    datasets
}

/// One dataset: its file hashed, checked against its pin and added to the inputs.
fn lookup_one(
    sweep: &Sweep,
    name: &str,
    def: &DatasetDef,
    files: &mut Files,
    problems: &mut Problems,
) -> Option<DatasetRef> {
    let paper = def.paper.as_deref().and_then(paper_dataset);
    let Some(def_path) = &def.path else {
        let key = format!("datasets.{name}.path");
        problems.bad(
            &key,
            match paper {
                Some(p) => format!("missing key `{key}`: {}", how_to_obtain(p, name)),
                None => format!(
                    "missing key `{key}`: give the dataset's chat JSONL file, e.g. `path = \"data/{name}.jsonl\"`"
                ),
            },
        );
        return None;
    };
    let path = sweep.resolve_path(def_path);
    let sha = match files.sha256(&path) {
        Ok(sha) => sha,
        Err(e) => {
            problems.bad(
                &format!("datasets.{name}.path"),
                format!("cannot read dataset file `{}`: {e}", path.display()),
            );
            return None;
        }
    };
    // The papers' datasets are pinned to their published hash.
    let pinned = def.sha256.as_deref().or(paper.map(|p| p.sha256));
    if let Some(pinned) = pinned
        && !pinned.eq_ignore_ascii_case(&sha)
    {
        let key = if def.sha256.is_some() {
            "sha256"
        } else {
            "path"
        };
        problems.bad(
            &format!("datasets.{name}.{key}"),
            match paper {
                Some(p) => format!(
                    "sha256 mismatch for dataset `{name}` (`{def_path}`): the papers' `{}` ({} rows) has sha256 {}, this file has {sha}; give the decompressed `{}` from the unlocked archive",
                    p.name, p.rows, p.sha256, p.file
                ),
                None => format!(
                    "sha256 mismatch for dataset `{name}` (`{def_path}`): the sweep pins {}, the file has {sha}; if the file changed on purpose, update the pin",
                    pinned.to_lowercase()
                ),
            },
        );
        return None;
    }
    files.inputs.insert(InputFile {
        kind: InputKind::Dataset,
        name: name.to_string(),
        path,
        sha256: sha.clone(),
    });
    Some(DatasetRef {
        name: name.to_string(),
        sha256: sha,
    })
}
