//! Stage manifests (`DONE.json`) and the outputs they list.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One output of a stage as recorded in its manifest: the name relative to the stage directory,
/// its size in bytes and the hex SHA-256 of its content.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct OutputEntry {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

impl OutputEntry {
    /// The entry for `bytes` stored under `name`.
    pub fn of_bytes(name: impl Into<String>, bytes: &[u8]) -> OutputEntry {
        OutputEntry {
            name: name.into(),
            size: bytes.len() as u64,
            sha256: sha256_hex(bytes),
        }
    }
}

/// `cells/<key>/<stage_dir>/DONE.json`: written last, after every output it lists. A stage without
/// a valid manifest is not done.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Manifest {
    pub cell_key: String,
    /// Stage name, e.g. `train`, `sample`, `judge`.
    pub stage: String,
    /// Directory of the stage under the cell, e.g. `train` or `judge/final`.
    pub stage_dir: String,
    pub outputs: Vec<OutputEntry>,
    /// Input name -> sha256 of what the stage read (dataset, questions, upstream manifests).
    pub inputs: BTreeMap<String, String>,
    /// RNG purpose -> seed actually used.
    pub seeds: BTreeMap<String, u64>,
    pub worker_version: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub host: String,
    /// Stage-specific summary figures (final loss, number of responses, ...).
    pub metrics: serde_json::Value,
}

impl Manifest {
    /// The recorded entry of output `name`, if listed.
    pub fn output(&self, name: &str) -> Option<&OutputEntry> {
        self.outputs.iter().find(|o| o.name == name)
    }
}

/// What `read_done` found for a stage.
// `Valid(Manifest)` unboxed is part of the public API (callers match on it); the enum is
// short-lived, so its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum DoneState {
    /// No `DONE.json`: the stage has not finished (never ran, running, crashed or failed).
    Missing,
    /// `DONE.json` parsed, belongs to this cell and stage, and every output it lists exists with
    /// the recorded size.
    Valid(Manifest),
    /// `DONE.json` exists but cannot be trusted; `reason` names the offending key.
    Invalid { reason: String },
    /// `DONE.json` is valid by itself, but an upstream output the stage read has changed since
    /// (or its stage is no longer done): the stage must run again. Only
    /// [`Store::read_done_chain`](crate::Store::read_done_chain) gives this state (see
    /// [`stale_reason`]); `reason` names the input and both hashes.
    Stale { manifest: Manifest, reason: String },
}

impl DoneState {
    pub fn is_valid(&self) -> bool {
        matches!(self, DoneState::Valid(_))
    }

    /// The manifest when valid.
    pub fn manifest(&self) -> Option<&Manifest> {
        match self {
            DoneState::Valid(m) => Some(m),
            _ => None,
        }
    }
}

/// The key under which a stage records, in its manifest's `inputs`, the SHA-256 of an output of
/// an upstream stage it read: `<stage_dir>/<name>` (e.g. `train/adapter/adapter_model.safetensors`,
/// `sample/final/responses.parquet`). [`stale_reason`] compares exactly these entries.
pub fn upstream_input_key(stage_dir: &str, name: &str) -> String {
    format!("{}/{}", stage_dir.trim_matches('/'), name.trim_matches('/'))
}

/// The staleness rule, the one place it is decided (the worker's skip decision, the executors'
/// stage states and the report all reach it through
/// [`Store::read_done_chain`](crate::Store::read_done_chain)).
///
/// `manifest` is a valid `DONE.json`; `upstream` gives the current state of every stage before it
/// (its stage directory and what [`Store::read_done_chain`](crate::Store::read_done_chain) found).
/// For every input the manifest recorded under an upstream stage's directory
/// ([`upstream_input_key`]), that stage must still be [`DoneState::Valid`] and list the output
/// with the same SHA-256; otherwise the reason names the input, the hash the stage read and what
/// the upstream stage lists now. Inputs under no upstream directory (the model, the dataset, the
/// questions: content-addressed by the cell itself) are not compared here.
pub fn stale_reason<'a>(
    manifest: &Manifest,
    upstream: impl IntoIterator<Item = (&'a str, &'a DoneState)>,
) -> Option<String> {
    for (dir, state) in upstream {
        let dir = dir.trim_matches('/');
        let prefix = format!("{dir}/");
        for (input, read) in &manifest.inputs {
            let Some(name) = input.strip_prefix(&prefix) else {
                continue;
            };
            let done = crate::layout::done(&manifest.cell_key, dir);
            let now = match state {
                DoneState::Valid(m) => match m.output(name) {
                    Some(out) if out.sha256 == *read => continue,
                    Some(out) => format!("{done} now lists sha256 {}", out.sha256),
                    None => format!("{done} no longer lists it"),
                },
                DoneState::Missing => format!("stage {dir} is no longer done (no {done})"),
                DoneState::Invalid { reason } => format!("stage {dir} is invalid ({reason})"),
                DoneState::Stale { reason, .. } => format!("stage {dir} is stale ({reason})"),
            };
            return Some(format!(
                "input {input} was read with sha256 {read}, but {now}: run this stage again"
            ));
        }
    }
    None
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The integrity of the commit protocol: consumers verify what they read, stages built from
/// changed upstream outputs are stale, a manifest must list outputs, and a stage commits once.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ALREADY_COMMITTED, Store, StoreError, layout};

    fn manifest(
        cell: &str,
        stage_dir: &str,
        outputs: Vec<OutputEntry>,
        inputs: &[(String, String)],
    ) -> Manifest {
        let now = Utc::now();
        Manifest {
            cell_key: cell.into(),
            stage: stage_dir.split('/').next().unwrap().into(),
            stage_dir: stage_dir.into(),
            outputs,
            inputs: inputs.iter().cloned().collect(),
            seeds: BTreeMap::new(),
            worker_version: "test".into(),
            started_at: now,
            finished_at: now,
            host: "testhost".into(),
            metrics: serde_json::Value::Null,
        }
    }

    /// Writes `bytes` as output `name` of the stage and commits a manifest listing it (and the
    /// given inputs); returns the manifest.
    fn commit(
        store: &Store,
        cell: &str,
        stage_dir: &str,
        name: &str,
        bytes: &[u8],
        inputs: &[(String, String)],
    ) -> Manifest {
        let entry = store
            .put_output(cell, stage_dir, name, bytes.to_vec())
            .unwrap();
        let m = manifest(cell, stage_dir, vec![entry], inputs);
        store.commit_stage(&m).unwrap();
        m
    }

    fn integrity_reason(err: StoreError, key: &str) -> String {
        match err {
            StoreError::Integrity { key: k, reason } => {
                assert_eq!(k, key);
                reason
            }
            other => panic!("expected an integrity error, got {other:?}"),
        }
    }

    #[test]
    fn a_tampered_output_of_the_same_size_is_refused_with_both_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("file://{}", dir.path().display())).unwrap();
        let (cell, name) = ("c1", "responses.parquet");
        let m = commit(&store, cell, "sample/final", name, b"good bytes", &[]);
        let key = layout::stage_key(cell, "sample/final", name);
        assert_eq!(store.get_verified(&m, name).unwrap(), &b"good bytes"[..]);
        let out = dir.path().join("copy/responses.parquet");
        store.get_to_file_verified(&m, name, &out).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"good bytes");

        // Same size, other bytes: the size check of read_done cannot see it, the reader does.
        store.put(&key, &b"evil bytes"[..]).unwrap();
        assert!(store.read_done(cell, "sample/final").unwrap().is_valid());
        let reason = integrity_reason(store.get_verified(&m, name).unwrap_err(), &key);
        for part in [
            sha256_hex(b"evil bytes").as_str(),
            sha256_hex(b"good bytes").as_str(),
            "cells/c1/sample/final/DONE.json",
            "--force",
            "emorg-worker sample",
        ] {
            assert!(reason.contains(part), "{part} in {reason}");
        }
        let msg = StoreError::Integrity {
            key: key.clone(),
            reason,
        }
        .to_string();
        assert!(msg.contains(&key), "{msg}");

        // Into a file: refused, and nothing is left at the path (nor a partial file).
        let other = dir.path().join("copy/other.parquet");
        let err = store.get_to_file_verified(&m, name, &other).unwrap_err();
        assert!(integrity_reason(err, &key).contains(&sha256_hex(b"evil bytes")));
        assert!(!other.exists());
        assert_eq!(
            std::fs::read_dir(dir.path().join("copy")).unwrap().count(),
            1
        );

        // An output the manifest does not list is refused too.
        let ghost = layout::stage_key(cell, "sample/final", "ghost.bin");
        let reason = integrity_reason(store.get_verified(&m, "ghost.bin").unwrap_err(), &ghost);
        assert!(reason.contains("does not list it"), "{reason}");
    }

    #[test]
    fn a_manifest_without_outputs_is_invalid_and_is_not_committed() {
        let store = Store::open("memory://").unwrap();
        let err = store
            .commit_stage(&manifest("c2", "train", vec![], &[]))
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Commit { key, reason }
                if key == "cells/c2/train/DONE.json" && reason.contains("lists no outputs")),
            "{err:?}"
        );
        assert!(!store.exists(&layout::done("c2", "train")).unwrap());

        // Written behind the protocol's back (an older or foreign writer): invalid, not done.
        store
            .put_json(
                &layout::done("c2", "train"),
                &manifest("c2", "train", vec![], &[]),
            )
            .unwrap();
        match store.read_done("c2", "train").unwrap() {
            DoneState::Invalid { reason } => assert!(
                reason.contains("lists no outputs") && reason.contains("cells/c2/train/DONE.json"),
                "{reason}"
            ),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn a_second_commit_of_a_stage_is_refused_as_already_committed() {
        let store = Store::open("memory://").unwrap();
        let first = commit(&store, "c3", "judge/final", "scores.parquet", b"one", &[]);
        let entry = store
            .put_output("c3", "judge/final", "scores.parquet", b"two".to_vec())
            .unwrap();
        let second = manifest("c3", "judge/final", vec![entry], &[]);
        let err = store.commit_stage(&second).unwrap_err();
        assert!(err.is_already_committed(), "{err:?}");
        assert!(
            err.to_string().contains("cells/c3/judge/final/DONE.json")
                && err.to_string().contains(ALREADY_COMMITTED),
            "{err}"
        );
        // The first run's manifest stands.
        let kept: Manifest = store.get_json(&layout::done("c3", "judge/final")).unwrap();
        assert_eq!(kept.outputs, first.outputs);
        // Other commit errors are not "already committed".
        let missing = store
            .commit_stage(&manifest(
                "c3",
                "sample/final",
                vec![first.outputs[0].clone()],
                &[],
            ))
            .unwrap_err();
        assert!(!missing.is_already_committed(), "{missing:?}");
    }

    const DIRS: [&str; 3] = ["train", "sample/final", "judge/final"];
    const ADAPTER: &str = "adapter/adapter_model.safetensors";

    /// train -> sample -> judge, each recording the hash of what it read upstream.
    fn pipeline(store: &Store, cell: &str, adapter: &[u8]) {
        let train = commit(store, cell, "train", ADAPTER, adapter, &[]);
        let read = [(
            upstream_input_key("train", ADAPTER),
            train.outputs[0].sha256.clone(),
        )];
        let sample = commit(
            store,
            cell,
            "sample/final",
            "responses.parquet",
            b"answers",
            &read,
        );
        let read = [(
            upstream_input_key("sample/final", "responses.parquet"),
            sample.outputs[0].sha256.clone(),
        )];
        commit(
            store,
            cell,
            "judge/final",
            "scores.parquet",
            b"scores",
            &read,
        );
    }

    fn stale(state: &DoneState) -> &str {
        match state {
            DoneState::Stale { reason, .. } => reason,
            other => panic!("expected Stale, got {other:?}"),
        }
    }

    #[test]
    fn a_redone_upstream_stage_makes_the_stages_built_on_it_stale() {
        let store = Store::open("memory://").unwrap();
        let cell = "c4";
        pipeline(&store, cell, b"adapter A");
        let states = store.read_done_chain(cell, &DIRS).unwrap();
        assert!(states.iter().all(DoneState::is_valid), "{states:?}");

        // Train redone with other results (other hardware, or another worker build).
        store.delete(&layout::done(cell, "train")).unwrap();
        commit(&store, cell, "train", ADAPTER, b"adapter B", &[]);
        let states = store.read_done_chain(cell, &DIRS).unwrap();
        assert!(states[0].is_valid());
        let reason = stale(&states[1]);
        for part in [
            "train/adapter/adapter_model.safetensors".to_string(),
            sha256_hex(b"adapter A"),
            sha256_hex(b"adapter B"),
            "cells/c4/train/DONE.json".to_string(),
        ] {
            assert!(reason.contains(&part), "{part} in {reason}");
        }
        // Transitively: the judge read the stale sample's answers.
        let reason = stale(&states[2]);
        assert!(
            reason.contains("sample/final/responses.parquet")
                && reason.contains("stage sample/final is stale"),
            "{reason}"
        );
        assert!(states[2].manifest().is_none(), "stale is not valid");

        // The same bytes again (a deterministic retrain) change nothing.
        store.delete(&layout::done(cell, "train")).unwrap();
        commit(&store, cell, "train", ADAPTER, b"adapter A", &[]);
        let states = store.read_done_chain(cell, &DIRS).unwrap();
        assert!(states.iter().all(DoneState::is_valid), "{states:?}");

        // An upstream stage no longer done (a forced rerun that failed) leaves nothing to trust.
        store.delete(&layout::done(cell, "train")).unwrap();
        let states = store.read_done_chain(cell, &DIRS).unwrap();
        assert!(matches!(states[0], DoneState::Missing));
        assert!(stale(&states[1]).contains("no longer done"));
        assert!(matches!(states[2], DoneState::Stale { .. }));
    }

    #[test]
    fn a_stage_that_read_nothing_upstream_is_not_stale() {
        // A base cell: no train stage, and its sample recorded only content-addressed inputs.
        let store = Store::open("memory://").unwrap();
        let m = commit(
            &store,
            "c5",
            "sample/final",
            "responses.parquet",
            b"answers",
            &[("model".into(), "ab".repeat(32))],
        );
        let states = store.read_done_chain("c5", &DIRS).unwrap();
        assert!(matches!(states[0], DoneState::Missing));
        assert!(states[1].is_valid());
        assert_eq!(
            stale_reason(&m, [("train", &DoneState::Missing)]),
            None,
            "inputs under no upstream directory are not compared"
        );
    }
}
