//! The state of a cell's stages in the store.

use std::fmt;

use anyhow::Result;
use emorg_spec::{Cell, Stage};
use emorg_store::{DoneState, Store, layout};

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

/// Every stage in pipeline order: what [`Store::read_done_chain`] is given, so a stage is checked
/// against the outputs it recorded reading from any earlier stage. A stage a cell does not run
/// (`train` of a base cell) is missing and changes nothing, since no later stage read from it.
const PIPELINE: [Stage; 3] = [Stage::Train, Stage::Sample, Stage::Judge];

/// The store's state of `stage` of the cell `key`, staleness included.
pub fn stage_state(store: &Store, key: &str, stage: Stage) -> Result<StageState> {
    let upto = PIPELINE
        .iter()
        .position(|s| *s == stage)
        .expect("every stage is in the pipeline");
    let dirs: Vec<&str> = PIPELINE[..=upto].iter().map(|s| s.dir()).collect();
    let mut states = store.read_done_chain(key, &dirs)?;
    let last = states.pop().expect("the chain ends with the stage");
    to_stage_state(store, key, stage, last)
}

fn to_stage_state(store: &Store, key: &str, stage: Stage, done: DoneState) -> Result<StageState> {
    Ok(match done {
        DoneState::Valid(_) => StageState::Done,
        DoneState::Stale { reason, .. } => StageState::Stale(reason),
        DoneState::Invalid { reason } => StageState::Invalid(reason),
        DoneState::Missing => {
            if store.exists(&layout::failure(key, stage.dir()))? {
                StageState::Failed
            } else {
                StageState::Missing
            }
        }
    })
}

/// The state of every stage of the cell, in order (the store read once along the pipeline).
pub fn cell_states(store: &Store, cell: &Cell, key: &str) -> Result<Vec<(Stage, StageState)>> {
    let dirs: Vec<&str> = PIPELINE.iter().map(|s| s.dir()).collect();
    let states = store.read_done_chain(key, &dirs)?;
    let stages = cell.stages();
    PIPELINE
        .into_iter()
        .zip(states)
        .filter(|(s, _)| stages.contains(s))
        .map(|(s, done)| Ok((s, to_stage_state(store, key, s, done)?)))
        .collect()
}
