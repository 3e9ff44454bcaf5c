//! The state of a stage in the store.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use anyhow::Result;
use emorg_spec::{Cell, Stage, StageRef};
use emorg_store::{DoneState, Store, layout};

use crate::graph::WorkGraph;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageState {
    /// DONE.json valid, and every upstream output it recorded reading is still what its stage
    /// lists.
    Done,
    /// No DONE.json, a FAILED.json.
    Failed,
    /// DONE.json present but not trustworthy.
    Invalid(String),
    /// DONE.json valid, but built from upstream outputs that have changed since (or whose stage
    /// is no longer done): runs again. The reason names the input and both hashes
    /// ([`emorg_store::stale_reason`]).
    Stale(String),
    /// Neither.
    Missing,
}

impl StageState {
    /// Only [`StageState::Done`] is done: invalid and stale stages run again.
    pub fn is_done(&self) -> bool {
        *self == StageState::Done
    }
}

impl fmt::Display for StageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StageState::Done => "done",
            StageState::Failed => "failed",
            StageState::Invalid(_) => "invalid",
            StageState::Stale(_) => "stale",
            StageState::Missing => "missing",
        })
    }
}

/// The store's state of the last stage of `chain` (its upstream stages before it, in pipeline
/// order: [`crate::graph::WorkGraph::chain`] or [`Cell::chain`]), staleness included.
pub fn stage_state(store: &Store, chain: &[StageRef]) -> Result<StageState> {
    let mut states = store.read_done_chain(chain)?;
    let last = states.pop().expect("a chain has a stage");
    to_stage_state(store, chain.last().expect("a chain has a stage"), last)
}

fn to_stage_state(store: &Store, stage: &StageRef, done: DoneState) -> Result<StageState> {
    Ok(match done {
        DoneState::Valid(_) => StageState::Done,
        DoneState::Stale { reason, .. } => StageState::Stale(reason),
        DoneState::Invalid { reason } => StageState::Invalid(reason),
        DoneState::Missing => {
            if store.exists(&layout::failure(stage))? {
                StageState::Failed
            } else {
                StageState::Missing
            }
        }
    })
}

/// The state of every stage of a row, in pipeline order (the store read once along its chain).
pub fn cell_states(store: &Store, cell: &Cell) -> Result<Vec<(StageRef, StageState)>> {
    let chain = cell.chain();
    let states = store.read_done_chain(&chain)?;
    chain
        .into_iter()
        .zip(states)
        .map(|(s, done)| {
            let state = to_stage_state(store, &s, done)?;
            Ok((s, state))
        })
        .collect()
}

/// What `--only LEVEL` launches: the stages of `level` and the levels after it, among those whose
/// stages before `level` are done. The others are left out ([`LevelSelection::waiting`]): `--only`
/// never launches a stage above its level.
#[derive(Debug, Clone, Default)]
pub struct LevelSelection {
    /// The stages to launch (each skipped when done, as always).
    pub only: BTreeSet<StageRef>,
    /// Stages of `level` and after that need a stage above `level` that is not done.
    pub waiting: Vec<StageRef>,
}

/// The [`LevelSelection`] of `graph` for `--only level`.
pub fn select_level(store: &Store, graph: &WorkGraph, level: Stage) -> Result<LevelSelection> {
    let mut upstream_done: BTreeMap<StageRef, bool> = BTreeMap::new();
    let mut selection = LevelSelection::default();
    for task in &graph.tasks {
        if task.stage.stage() < level {
            continue;
        }
        // The nearest stage above `level` this one runs after, if any.
        let mut above = task.after.clone();
        while let Some(a) = above.as_ref().filter(|a| a.stage() >= level) {
            above = graph.get(a).and_then(|t| t.after.clone());
        }
        let ready = match above {
            None => true,
            Some(a) => match upstream_done.get(&a) {
                Some(&done) => done,
                None => {
                    let done = stage_state(store, &graph.chain(&a))?.is_done();
                    upstream_done.insert(a, done);
                    done
                }
            },
        };
        if ready {
            selection.only.insert(task.stage.clone());
        } else {
            selection.waiting.push(task.stage.clone());
        }
    }
    Ok(selection)
}

/// What `--only LEVEL` and `--cell SELECTOR...` (the row indices `rows`) leave to launch: the
/// level's selection ([`select_level`]) restricted to the stages that serve the rows
/// ([`crate::rows::stages_of_rows`]). `None` when neither is given (launch everything).
pub fn select_launch(
    store: &Store,
    graph: &WorkGraph,
    level: Option<Stage>,
    rows: Option<&BTreeSet<usize>>,
) -> Result<Option<LevelSelection>> {
    let of_rows = rows.map(|r| crate::rows::stages_of_rows(graph, r));
    let mut selection = match (level, &of_rows) {
        (None, None) => return Ok(None),
        (Some(level), _) => select_level(store, graph, level)?,
        (None, Some(stages)) => LevelSelection {
            only: stages.clone(),
            waiting: Vec::new(),
        },
    };
    if let Some(stages) = &of_rows {
        selection.only.retain(|s| stages.contains(s));
        selection.waiting.retain(|s| stages.contains(s));
    }
    Ok(Some(selection))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::fixtures::{commit, rows};

    #[test]
    fn only_a_level_leaves_out_the_stages_whose_upstream_level_is_not_done() {
        let cells = rows(&[0, 1]);
        let graph = WorkGraph::new(&cells);
        let store = Store::open("memory://").unwrap();
        let unit = |seed: u64| {
            graph
                .level(Stage::Train)
                .find(|t| cells[t.rows[0]].axes.seed == seed)
                .unwrap()
                .stage
                .clone()
        };
        commit(&store, &unit(0));
        let waits_on_unit1 = |s: &StageRef| graph.chain(s).first() == Some(&unit(1));

        // --only sample: the base variant and unit 0's variants with their judges; unit 1's
        // wait for its train.
        let sel = select_level(&store, &graph, Stage::Sample).unwrap();
        assert_eq!(sel.only.len(), (1 + 4) + (1 + 8));
        assert!(
            sel.only
                .iter()
                .all(|s| s.stage() >= Stage::Sample && !waits_on_unit1(s))
        );
        assert_eq!(sel.waiting.len(), 4 + 8);
        assert!(sel.waiting.iter().all(waits_on_unit1));

        // --only judge: no sample is done, so only the judges of nothing; once one variant is
        // sampled, its two judges.
        let sel = select_level(&store, &graph, Stage::Judge).unwrap();
        assert!(sel.only.is_empty());
        assert_eq!(sel.waiting.len(), 1 + 16);
        let variant = graph.dependants(&unit(0)).next().unwrap().stage.clone();
        commit(&store, &variant);
        let sel = select_level(&store, &graph, Stage::Judge).unwrap();
        let judges: BTreeSet<StageRef> = graph
            .dependants(&variant)
            .map(|t| t.stage.clone())
            .collect();
        assert_eq!(sel.only, judges);
        assert_eq!(judges.len(), 2);
    }

    #[test]
    fn cells_restrict_the_level_selection_to_their_stages() {
        let cells = rows(&[0, 1]);
        let graph = WorkGraph::new(&cells);
        let store = Store::open("memory://").unwrap();
        assert!(select_launch(&store, &graph, None, None).unwrap().is_none());
        let seed0 = crate::rows::select_indices(&cells, &["seed=0".to_string()]).unwrap();
        let of_seed0 = crate::rows::stages_of_rows(&graph, &seed0);

        // --cell alone: every stage of those rows, at every level.
        let sel = select_launch(&store, &graph, None, Some(&seed0))
            .unwrap()
            .unwrap();
        assert_eq!(sel.only, of_seed0);
        assert!(sel.only.len() < graph.tasks.len());

        // --only sample --cell seed=0 with seed 0's train done: its samples and judges only.
        let train0 = graph
            .level(Stage::Train)
            .find(|t| cells[t.rows[0]].axes.seed == 0)
            .unwrap()
            .stage
            .clone();
        commit(&store, &train0);
        let sel = select_launch(&store, &graph, Some(Stage::Sample), Some(&seed0))
            .unwrap()
            .unwrap();
        let level = select_level(&store, &graph, Stage::Sample).unwrap();
        assert!(!sel.only.is_empty());
        assert_eq!(
            sel.only,
            level
                .only
                .intersection(&of_seed0)
                .cloned()
                .collect::<BTreeSet<_>>()
        );
        assert!(sel.only.iter().all(|s| s.stage() >= Stage::Sample));
        assert!(sel.waiting.iter().all(|s| of_seed0.contains(s)));
    }
}
