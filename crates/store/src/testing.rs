//! For tests of the crates that read the store: a stage committed as a worker would commit it.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::{Manifest, StageRef, Store};

/// Commits `name` (`bytes`) as the one output of `stage`, recording `inputs` (upstream output key
/// -> sha256), and returns the output's sha256. Panics on a store error: for tests only.
pub fn commit_one(
    store: &Store,
    stage: &StageRef,
    name: &str,
    bytes: impl Into<Bytes>,
    inputs: BTreeMap<String, String>,
) -> String {
    let entry = store.put_output(stage, name, bytes).unwrap();
    let sha = entry.sha256.clone();
    let now = chrono::Utc::now();
    store
        .commit_stage(&Manifest {
            owner: stage.clone(),
            outputs: vec![entry],
            inputs,
            seeds: BTreeMap::new(),
            worker_version: "test".into(),
            started_at: now,
            finished_at: now,
            host: "test".into(),
            metrics: serde_json::Value::Null,
        })
        .unwrap();
    sha
}
