//! The store's state of every stage of a work graph, each `DONE.json` read once.
//!
//! [`emorg_exec::stage_state`] reads a stage's whole chain (its train, sample and judge manifests)
//! to tell whether it is stale; over a sweep's graph that reads a unit's train manifest once per
//! judgment. Here each stage's manifest is read once and its upstream states come from the memo,
//! with the same rule ([`emorg_store::Store::read_done_chain`]: a valid manifest is stale when an
//! upstream output it read changed, or its stage is no longer done).

use std::collections::HashMap;

use anyhow::Result;
use emorg_exec::{StageState, WorkGraph};
use emorg_spec::StageRef;
use emorg_store::{DoneState, Store, layout, stale_reason};

pub struct StoreStates<'a> {
    store: &'a Store,
    graph: &'a WorkGraph,
    done: HashMap<StageRef, DoneState>,
}

impl<'a> StoreStates<'a> {
    pub fn new(store: &'a Store, graph: &'a WorkGraph) -> StoreStates<'a> {
        StoreStates {
            store,
            graph,
            done: HashMap::new(),
        }
    }

    /// The stage's [`DoneState`] along its chain (stale included).
    pub fn done_state(&mut self, stage: &StageRef) -> Result<&DoneState> {
        if !self.done.contains_key(stage) {
            // Upstream first, so that each one's own upstream is in the memo when it is read.
            for s in self.graph.chain(stage) {
                if !self.done.contains_key(&s) {
                    let state = self.read_one(&s)?;
                    self.done.insert(s, state);
                }
            }
        }
        Ok(&self.done[stage])
    }

    /// Reads `stage`'s manifest; its upstream stages (in the memo) decide staleness.
    fn read_one(&self, stage: &StageRef) -> Result<DoneState> {
        Ok(match self.store.read_done(stage)? {
            DoneState::Valid(manifest) => {
                let chain = self.graph.chain(stage);
                let ups = chain[..chain.len() - 1]
                    .iter()
                    .filter_map(|u| self.done.get(u).map(|s| (u, s)));
                match stale_reason(&manifest, ups) {
                    Some(reason) => DoneState::Stale { manifest, reason },
                    None => DoneState::Valid(manifest),
                }
            }
            other => other,
        })
    }

    pub fn is_done(&mut self, stage: &StageRef) -> Result<bool> {
        Ok(self.done_state(stage)?.is_valid())
    }

    /// As [`emorg_exec::stage_state`]: a missing stage with a `FAILED.json` is failed.
    pub fn stage_state(&mut self, stage: &StageRef) -> Result<StageState> {
        let store = self.store;
        Ok(match self.done_state(stage)? {
            DoneState::Valid(_) => StageState::Done,
            DoneState::Stale { reason, .. } => StageState::Stale(reason.clone()),
            DoneState::Invalid { reason } => StageState::Invalid(reason.clone()),
            DoneState::Missing => {
                if store.exists(&layout::failure(stage))? {
                    StageState::Failed
                } else {
                    StageState::Missing
                }
            }
        })
    }
}
