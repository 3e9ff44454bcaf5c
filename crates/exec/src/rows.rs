//! Row selectors (`--cell`): which rows of a sweep a command is about, and the stages that serve
//! them. `status` and `logs` show the selected rows; `run`, `plan` and `submit` launch only their
//! stages (the sweep record stays the whole sweep).

use std::collections::BTreeSet;

use emorg_spec::{Cell, StageRef};

use crate::WorkGraph;

/// The axes a selector may name.
pub const AXES: &[&str] = &[
    "model",
    "protocol",
    "dataset",
    "seed",
    "checkpoint",
    "scale",
    "judge",
    "replicate",
];

/// A selector that cannot be read, or that matches no row.
#[derive(Debug, thiserror::Error)]
pub enum SelectorError {
    #[error("bad row selector part {part:?} in {selector:?}: expected AXIS=VALUE")]
    NotAxisValue { selector: String, part: String },
    #[error("bad row selector {selector:?}: `{axis}` is not an axis ({})", AXES.join(", "))]
    UnknownAxis { selector: String, axis: String },
    #[error(
        "bad row selector {selector:?}: give a key prefix of 4+ hex characters (of a training \
         unit, sample variant or judgment) or AXIS=VALUE[,AXIS=VALUE] ({})",
        AXES.join(", ")
    )]
    NotAKeyPrefix { selector: String },
    #[error("no row of the sweep matches {selector:?}")]
    NoMatch { selector: String },
}

/// One parsed selector: a key prefix (hex, 4+ characters) of a row's training unit, sample
/// variant or judgment, or `axis=value[,axis=value]` over [`AXES`] (all must hold).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowSelector {
    KeyPrefix(String),
    Axes(Vec<(String, String)>),
}

impl RowSelector {
    pub fn parse(selector: &str) -> Result<RowSelector, SelectorError> {
        let selector = selector.trim();
        if selector.contains('=') {
            let mut want = Vec::new();
            for part in selector.split(',') {
                let (k, v) = part
                    .split_once('=')
                    .ok_or_else(|| SelectorError::NotAxisValue {
                        selector: selector.to_string(),
                        part: part.to_string(),
                    })?;
                let k = k.trim();
                if !AXES.contains(&k) {
                    return Err(SelectorError::UnknownAxis {
                        selector: selector.to_string(),
                        axis: k.to_string(),
                    });
                }
                want.push((k.to_string(), v.trim().to_string()));
            }
            return Ok(RowSelector::Axes(want));
        }
        if selector.len() < 4 || !selector.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(SelectorError::NotAKeyPrefix {
                selector: selector.to_string(),
            });
        }
        Ok(RowSelector::KeyPrefix(selector.to_ascii_lowercase()))
    }

    pub fn matches(&self, cell: &Cell) -> bool {
        match self {
            RowSelector::KeyPrefix(p) => {
                cell.unit_key().as_str().starts_with(p)
                    || cell.variant_key().as_str().starts_with(p)
                    || cell.judgment_key().as_str().starts_with(p)
            }
            RowSelector::Axes(want) => {
                let a = &cell.axes;
                want.iter().all(|(k, v)| match k.as_str() {
                    "model" => a.model == *v,
                    "protocol" => a.protocol == *v,
                    "dataset" => a.dataset == *v,
                    "seed" => a.seed.to_string() == *v,
                    "checkpoint" => {
                        a.checkpoint.label() == *v
                            || a.checkpoint.step().is_some_and(|s| s.to_string() == *v)
                    }
                    "scale" => a.scale == *v,
                    "judge" => a.judge == *v,
                    "replicate" => a.replicate.to_string() == *v,
                    _ => unreachable!("parse admits only AXES"),
                })
            }
        }
    }
}

/// The rows of `cells` that `selector` matches; an error when it matches none.
pub fn select<'a>(cells: &'a [Cell], selector: &str) -> Result<Vec<&'a Cell>, SelectorError> {
    let parsed = RowSelector::parse(selector)?;
    let matched: Vec<&Cell> = cells.iter().filter(|c| parsed.matches(c)).collect();
    if matched.is_empty() {
        return Err(SelectorError::NoMatch {
            selector: selector.trim().to_string(),
        });
    }
    Ok(matched)
}

/// The indices of the rows any of `selectors` matches (each selector must match some row).
pub fn select_indices(
    cells: &[Cell],
    selectors: &[String],
) -> Result<BTreeSet<usize>, SelectorError> {
    let mut rows = BTreeSet::new();
    for selector in selectors {
        let parsed = RowSelector::parse(selector)?;
        let mut any = false;
        for (i, c) in cells.iter().enumerate() {
            if parsed.matches(c) {
                any = true;
                rows.insert(i);
            }
        }
        if !any {
            return Err(SelectorError::NoMatch {
                selector: selector.trim().to_string(),
            });
        }
    }
    Ok(rows)
}

/// The stages of `graph` that serve at least one of `rows` (a unit's train serves every row of
/// its variants, so selecting one checkpoint row selects its unit's train too).
pub fn stages_of_rows(graph: &WorkGraph, rows: &BTreeSet<usize>) -> BTreeSet<StageRef> {
    graph
        .tasks
        .iter()
        .filter(|t| t.rows.iter().any(|r| rows.contains(r)))
        .map(|t| t.stage.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::fixtures::rows;
    use emorg_spec::Stage;

    #[test]
    fn selectors_parse_or_say_what_to_give() {
        assert_eq!(
            RowSelector::parse(" seed=1, judge = big ").unwrap(),
            RowSelector::Axes(vec![
                ("seed".into(), "1".into()),
                ("judge".into(), "big".into())
            ])
        );
        assert_eq!(
            RowSelector::parse("ABCD").unwrap(),
            RowSelector::KeyPrefix("abcd".into())
        );
        for (bad, says) in [
            ("abc", "4+ hex"),
            ("size=7", "`size` is not an axis"),
            ("seed=1,judge", "expected AXIS=VALUE"),
        ] {
            let err = RowSelector::parse(bad).unwrap_err().to_string();
            assert!(err.contains(says) && err.contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn rows_select_their_stages_at_every_level() {
        let cells = rows(&[0, 1]);
        let graph = WorkGraph::new(&cells);
        let seed1 = select_indices(&cells, &["seed=1".to_string()]).unwrap();
        assert!(!seed1.is_empty());
        assert!(seed1.iter().all(|i| cells[*i].axes.seed == 1));
        let stages = stages_of_rows(&graph, &seed1);
        // Every stage of a seed-1 row, and no stage that serves only other rows.
        for t in &graph.tasks {
            let serves = t.rows.iter().any(|r| seed1.contains(r));
            assert_eq!(stages.contains(&t.stage), serves, "{:?}", t.stage);
        }
        for level in [Stage::Train, Stage::Sample, Stage::Judge] {
            assert!(stages.iter().any(|s| s.stage() == level), "{level}");
        }
        // A key prefix selects by any of the row's three keys.
        let key = cells[0].judgment_key().as_str()[..12].to_string();
        let by_key = select_indices(&cells, &[key]).unwrap();
        assert!(by_key.contains(&0));
        let err = select_indices(&cells, &["seed=9".to_string()]).unwrap_err();
        assert!(
            err.to_string()
                .contains("no row of the sweep matches \"seed=9\"")
        );
    }
}
