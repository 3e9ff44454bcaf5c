//! The state of a cell's stages in the store.

use std::fmt;

use anyhow::Result;
use emorg_spec::{Cell, Stage};
use emorg_store::{DoneState, Store, layout};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageState {
    /// DONE.json valid.
    Done,
    /// No DONE.json, a FAILED.json.
    Failed,
    /// DONE.json present but not trustworthy.
    Invalid(String),
    /// Neither.
    Missing,
}

impl StageState {
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
            StageState::Missing => "missing",
        })
    }
}

pub fn stage_state(store: &Store, key: &str, stage: Stage) -> Result<StageState> {
    Ok(match store.read_done(key, stage.dir())? {
        DoneState::Valid(_) => StageState::Done,
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

/// The state of every stage of the cell, in order.
pub fn cell_states(store: &Store, cell: &Cell, key: &str) -> Result<Vec<(Stage, StageState)>> {
    cell.stages()
        .into_iter()
        .map(|s| Ok((s, stage_state(store, key, s)?)))
        .collect()
}
