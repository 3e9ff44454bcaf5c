//! Pass 3, the matrix and its names (static).
//!
//! Takes the parsed sweep; reports a bad sweep name or table name, axis values (in `[matrix]`, its
//! `exclude` and `include` entries) that name no table entry, an empty `exclude` entry, and a
//! training protocol without datasets. Gives nothing else: [`super::expand`] expands the axes once
//! these hold.

use super::Problems;
use super::defaults::trains;
use crate::load::Sweep;
use crate::schema::{AxisFilter, SweepFile};
use crate::suggest::did_you_mean;

/// The tables that axis values name.
#[derive(Clone, Copy)]
enum Table {
    Models,
    Protocols,
    Datasets,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Models => "models",
            Table::Protocols => "protocols",
            Table::Datasets => "datasets",
        }
    }

    fn names(self, f: &SweepFile) -> Vec<&String> {
        match self {
            Table::Models => f.models.keys().collect(),
            Table::Protocols => f.protocols.keys().collect(),
            Table::Datasets => f.datasets.keys().collect(),
        }
    }
}

/// Every check of this module, in order.
pub(super) fn check(sweep: &Sweep, problems: &mut Problems) {
    names(sweep, problems);
    axes(sweep, problems);
    exclude(sweep, problems);
    include(sweep, problems);
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s != "-"
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The sweep's name and the names of its tables' entries.
fn names(sweep: &Sweep, problems: &mut Problems) {
    let f = &sweep.file;
    if !valid_name(&f.name) {
        problems.bad(
            "name",
            format!(
                "bad sweep name `{}`: use letters, digits, `-` and `_`",
                f.name
            ),
        );
    }
    for table in [Table::Models, Table::Datasets, Table::Protocols] {
        for n in table.names(f) {
            if !valid_name(n) {
                problems.bad(
                    &format!("{}.{n}", table.name()),
                    format!("bad name `{n}`: use letters, digits, `-` and `_`"),
                );
            }
        }
    }
}

/// An axis value at `key` must name an entry of `table`.
fn check_axis(problems: &mut Problems, f: &SweepFile, key: &str, value: &str, table: Table) {
    let names = table.names(f);
    if !names.iter().any(|n| n.as_str() == value) {
        problems.bad(
            key,
            format!(
                "unknown {} `{value}` in `{key}` (not in [{}]){}",
                table.name().trim_end_matches('s'),
                table.name(),
                did_you_mean(value, names.iter().map(|s| s.as_str()))
            ),
        );
    }
}

/// `[matrix]`'s own axes, and datasets for the protocols that train.
fn axes(sweep: &Sweep, problems: &mut Problems) {
    let f = &sweep.file;
    let m = &f.matrix;
    for v in &m.model {
        check_axis(problems, f, "matrix.model", v, Table::Models);
    }
    for v in &m.protocol {
        check_axis(problems, f, "matrix.protocol", v, Table::Protocols);
    }
    for v in &m.dataset {
        check_axis(problems, f, "matrix.dataset", v, Table::Datasets);
    }
    if m.dataset.is_empty()
        && let Some(p) = m.protocol.iter().find(|p| trains(f, p))
    {
        problems.bad(
            "matrix.dataset",
            format!("no datasets, but protocol `{p}` trains: add `dataset = [...]` to [matrix]"),
        );
    }
}

/// `[matrix].exclude` entries: not empty, and naming table entries (dataset `"-"` is the dataset
/// of the cells that do not train).
fn exclude(sweep: &Sweep, problems: &mut Problems) {
    let f = &sweep.file;
    for (i, e) in f.matrix.exclude.iter().enumerate() {
        let key = format!("matrix.exclude.{i}");
        let AxisFilter {
            model,
            protocol,
            dataset,
            seed,
        } = e;
        if model.is_none() && protocol.is_none() && dataset.is_none() && seed.is_none() {
            problems.bad(
                &key,
                format!("`{key}` is empty: it would exclude every cell"),
            );
        }
        if let Some(v) = model {
            check_axis(problems, f, &format!("{key}.model"), v, Table::Models);
        }
        if let Some(v) = protocol {
            check_axis(problems, f, &format!("{key}.protocol"), v, Table::Protocols);
        }
        if let Some(v) = dataset
            && v != "-"
        {
            check_axis(problems, f, &format!("{key}.dataset"), v, Table::Datasets);
        }
    }
}

/// `[matrix].include` entries: naming table entries, with a dataset when the protocol trains.
fn include(sweep: &Sweep, problems: &mut Problems) {
    let f = &sweep.file;
    for (i, c) in f.matrix.include.iter().enumerate() {
        let key = format!("matrix.include.{i}");
        check_axis(
            problems,
            f,
            &format!("{key}.model"),
            &c.model,
            Table::Models,
        );
        check_axis(
            problems,
            f,
            &format!("{key}.protocol"),
            &c.protocol,
            Table::Protocols,
        );
        match &c.dataset {
            Some(d) if trains(f, &c.protocol) => {
                check_axis(problems, f, &format!("{key}.dataset"), d, Table::Datasets)
            }
            None if trains(f, &c.protocol) => problems.bad(
                &key,
                format!(
                    "missing key `{key}.dataset`: protocol `{}` trains",
                    c.protocol
                ),
            ),
            _ => {}
        }
    }
}
