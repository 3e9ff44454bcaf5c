//! Stage manifests (`DONE.json`) and the outputs they list.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::layout;
use emorg_artifacts::{Stage, StageRef};

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

/// `<owner>/<stage>/DONE.json` (`units/<unit>/train/DONE.json`, ...): written last, after every
/// output it lists. A stage without a valid manifest is not done.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Manifest {
    /// The stage and the key of the identity that owns it.
    pub owner: StageRef,
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
    /// Stage name, e.g. `train`, `sample`, `judge`.
    pub fn stage(&self) -> Stage {
        self.owner.stage()
    }

    /// `<owner>/<stage>`: the prefix of every output the manifest lists.
    pub fn prefix(&self) -> String {
        layout::stage_prefix(&self.owner)
    }

    /// The store key of output `name`.
    pub fn output_key(&self, name: &str) -> String {
        layout::output(&self.owner, name)
    }

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
    /// `DONE.json` parsed, names this stage of this owner, and every output it lists exists with
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
/// an upstream stage it read: the output's store key (`units/<unit>/train/adapter/...`,
/// `variants/<variant>/sample/responses.parquet`). [`stale_reason`] compares exactly these entries.
pub fn upstream_input_key(upstream: &StageRef, name: &str) -> String {
    layout::output(upstream, name)
}

/// The staleness rule, the one place it is decided (the worker's skip decision, the executors'
/// stage states and the report all reach it through
/// [`Store::read_done_chain`](crate::Store::read_done_chain)).
///
/// `manifest` is a valid `DONE.json`; `upstream` gives the current state of every stage before it
/// (the stage and what [`Store::read_done_chain`](crate::Store::read_done_chain) found).
/// For every input the manifest recorded under an upstream stage's prefix
/// ([`upstream_input_key`]), that stage must still be [`DoneState::Valid`] and list the output
/// with the same SHA-256; otherwise the reason names the input, the hash the stage read and what
/// the upstream stage lists now. Inputs under no upstream directory (the model, the dataset, the
/// questions: content-addressed by the identities themselves) are not compared here.
pub fn stale_reason<'a>(
    manifest: &Manifest,
    upstream: impl IntoIterator<Item = (&'a StageRef, &'a DoneState)>,
) -> Option<String> {
    for (stage, state) in upstream {
        let prefix = format!("{}/", layout::stage_prefix(stage));
        let dir = stage.to_string();
        for (input, read) in &manifest.inputs {
            let Some(name) = input.strip_prefix(&prefix) else {
                continue;
            };
            let done = layout::done(stage);
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
    use crate::{ALREADY_COMMITTED, JudgmentKey, Store, StoreError, UnitKey, VariantKey, layout};

    fn hex(c: char) -> String {
        std::iter::repeat_n(c, 64).collect()
    }

    fn train(c: char) -> StageRef {
        StageRef::Train(UnitKey::parse(&hex(c)).unwrap())
    }

    fn sample(c: char) -> StageRef {
        StageRef::Sample(VariantKey::parse(&hex(c)).unwrap())
    }

    fn judge(c: char) -> StageRef {
        StageRef::Judge(JudgmentKey::parse(&hex(c)).unwrap())
    }

    fn manifest(
        owner: &StageRef,
        outputs: Vec<OutputEntry>,
        inputs: &[(String, String)],
    ) -> Manifest {
        let now = Utc::now();
        Manifest {
            owner: owner.clone(),
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
        owner: &StageRef,
        name: &str,
        bytes: &[u8],
        inputs: &[(String, String)],
    ) -> Manifest {
        let entry = store.put_output(owner, name, bytes.to_vec()).unwrap();
        let m = manifest(owner, vec![entry], inputs);
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
    fn a_manifest_knows_its_stage_prefix_and_output_keys() {
        let m = manifest(&judge('c'), vec![], &[]);
        let c = hex('c');
        assert_eq!(m.stage(), Stage::Judge);
        assert_eq!(m.prefix(), format!("judgments/{c}/judge"));
        assert_eq!(
            m.output_key("scores.parquet"),
            format!("judgments/{c}/judge/scores.parquet")
        );
        // The owner serialises as {"stage": ..., "key": ...} and reads back as the same stage.
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(
            json["owner"],
            serde_json::json!({"stage": "judge", "key": c})
        );
        let back: Manifest = serde_json::from_value(json).unwrap();
        assert_eq!(back.owner, judge('c'));
        // An upstream input is recorded under the output's full store key.
        assert_eq!(
            upstream_input_key(&train('a'), "adapter/adapter_model.safetensors"),
            format!("units/{}/train/adapter/adapter_model.safetensors", hex('a'))
        );
    }

    #[test]
    fn a_tampered_output_of_the_same_size_is_refused_with_both_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("file://{}", dir.path().display())).unwrap();
        let (owner, name) = (sample('1'), "responses.parquet");
        let m = commit(&store, &owner, name, b"good bytes", &[]);
        let key = layout::output(&owner, name);
        assert_eq!(key, format!("variants/{}/sample/{name}", hex('1')));
        assert_eq!(store.get_verified(&m, name).unwrap(), &b"good bytes"[..]);
        let out = dir.path().join("copy/responses.parquet");
        store.get_to_file_verified(&m, name, &out).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"good bytes");

        // Same size, other bytes: the size check of read_done cannot see it, the reader does.
        store.put(&key, &b"evil bytes"[..]).unwrap();
        assert!(store.read_done(&owner).unwrap().is_valid());
        let reason = integrity_reason(store.get_verified(&m, name).unwrap_err(), &key);
        for part in [
            sha256_hex(b"evil bytes"),
            sha256_hex(b"good bytes"),
            format!("variants/{}/sample/DONE.json", hex('1')),
            "--force".into(),
            "emorg-worker sample".into(),
            format!("--key {}", hex('1')),
        ] {
            assert!(reason.contains(&part), "{part} in {reason}");
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

        // An output the manifest does not list is refused too, naming what it lists.
        let ghost = layout::output(&owner, "ghost.bin");
        let reason = integrity_reason(store.get_verified(&m, "ghost.bin").unwrap_err(), &ghost);
        assert!(
            reason.contains("does not list it") && reason.contains("responses.parquet"),
            "{reason}"
        );
    }

    #[test]
    fn a_manifest_without_outputs_is_invalid_and_is_not_committed() {
        let store = Store::open("memory://").unwrap();
        let owner = train('2');
        let done = format!("units/{}/train/DONE.json", hex('2'));
        assert_eq!(layout::done(&owner), done);
        let err = store
            .commit_stage(&manifest(&owner, vec![], &[]))
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Commit { key, reason }
                if *key == done && reason.contains("lists no outputs")),
            "{err:?}"
        );
        assert!(!store.exists(&done).unwrap());

        // Written behind the protocol's back (an older or foreign writer): invalid, not done.
        store
            .put_json(&done, &manifest(&owner, vec![], &[]))
            .unwrap();
        match store.read_done(&owner).unwrap() {
            DoneState::Invalid { reason } => assert!(
                reason.contains("lists no outputs") && reason.contains(&done),
                "{reason}"
            ),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn a_second_commit_of_a_stage_is_refused_as_already_committed() {
        let store = Store::open("memory://").unwrap();
        let owner = judge('3');
        let first = commit(&store, &owner, "scores.parquet", b"one", &[]);
        let entry = store
            .put_output(&owner, "scores.parquet", b"two".to_vec())
            .unwrap();
        let second = manifest(&owner, vec![entry], &[]);
        let err = store.commit_stage(&second).unwrap_err();
        assert!(err.is_already_committed(), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("judgments/{}/judge/DONE.json", hex('3')))
                && msg.contains(ALREADY_COMMITTED),
            "{msg}"
        );
        // The first run's manifest stands.
        let kept: Manifest = store.get_json(&layout::done(&owner)).unwrap();
        assert_eq!(kept.outputs, first.outputs);
        // Other commit errors are not "already committed": the same entry listed for another
        // stage, where no such output exists.
        let missing = store
            .commit_stage(&manifest(&sample('3'), vec![first.outputs[0].clone()], &[]))
            .unwrap_err();
        assert!(!missing.is_already_committed(), "{missing:?}");
        assert!(
            matches!(&missing, StoreError::Commit { key, .. }
                if *key == layout::output(&sample('3'), "scores.parquet")),
            "{missing:?}"
        );
    }

    const ADAPTER: &str = "adapter/adapter_model.safetensors";

    /// The chain of one row: unit `a`'s train, variant `b`'s sample, judgment `c`'s judge.
    fn chain() -> [StageRef; 3] {
        [train('a'), sample('b'), judge('c')]
    }

    /// train -> sample -> judge, each recording the hash of what it read upstream.
    fn pipeline(store: &Store, adapter: &[u8]) {
        let [t, s, j] = chain();
        let train = commit(store, &t, ADAPTER, adapter, &[]);
        let read = [(
            upstream_input_key(&t, ADAPTER),
            train.outputs[0].sha256.clone(),
        )];
        let sample = commit(store, &s, "responses.parquet", b"answers", &read);
        let read = [(
            upstream_input_key(&s, "responses.parquet"),
            sample.outputs[0].sha256.clone(),
        )];
        commit(store, &j, "scores.parquet", b"scores", &read);
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
        let chain = chain();
        let [t, s, _] = &chain;
        pipeline(&store, b"adapter A");
        let states = store.read_done_chain(&chain).unwrap();
        assert_eq!(states.len(), 3);
        assert!(states.iter().all(DoneState::is_valid), "{states:?}");

        // Train redone with other results (other hardware, or another worker build).
        store.delete(&layout::done(t)).unwrap();
        commit(&store, t, ADAPTER, b"adapter B", &[]);
        let states = store.read_done_chain(&chain).unwrap();
        assert!(states[0].is_valid());
        let reason = stale(&states[1]);
        for part in [
            format!("units/{}/train/adapter/adapter_model.safetensors", hex('a')),
            sha256_hex(b"adapter A"),
            sha256_hex(b"adapter B"),
            format!("units/{}/train/DONE.json", hex('a')),
        ] {
            assert!(reason.contains(&part), "{part} in {reason}");
        }
        // Transitively: the judge read the stale sample's answers.
        let reason = stale(&states[2]);
        assert!(
            reason.contains(&upstream_input_key(s, "responses.parquet"))
                && reason.contains(&format!("stage {s} is stale")),
            "{reason}"
        );
        assert!(states[2].manifest().is_none(), "stale is not valid");

        // The same bytes again (a deterministic retrain) change nothing.
        store.delete(&layout::done(t)).unwrap();
        commit(&store, t, ADAPTER, b"adapter A", &[]);
        let states = store.read_done_chain(&chain).unwrap();
        assert!(states.iter().all(DoneState::is_valid), "{states:?}");

        // Train redone without the output the sample read: "no longer lists it".
        store.delete(&layout::done(t)).unwrap();
        commit(&store, t, "model/model.safetensors", b"full weights", &[]);
        let states = store.read_done_chain(&chain).unwrap();
        assert!(states[0].is_valid());
        assert!(
            stale(&states[1]).contains("no longer lists it"),
            "{states:?}"
        );
        assert!(matches!(states[2], DoneState::Stale { .. }));

        // An upstream stage no longer done (a forced rerun that failed) leaves nothing to trust.
        store.delete(&layout::done(t)).unwrap();
        let states = store.read_done_chain(&chain).unwrap();
        assert!(matches!(states[0], DoneState::Missing));
        let reason = stale(&states[1]);
        assert!(
            reason.contains("no longer done") && reason.contains(&t.to_string()),
            "{reason}"
        );
        assert!(matches!(states[2], DoneState::Stale { .. }));

        // An invalid upstream stage (an output gone) makes its readers stale, naming why.
        commit(&store, t, ADAPTER, b"adapter A", &[]);
        assert!(store.read_done_chain(&chain).unwrap()[1].is_valid());
        store.delete(&layout::output(t, ADAPTER)).unwrap();
        let states = store.read_done_chain(&chain).unwrap();
        assert!(matches!(states[0], DoneState::Invalid { .. }));
        let reason = stale(&states[1]);
        assert!(
            reason.contains(&format!("stage {t} is invalid")) && reason.contains("missing"),
            "{reason}"
        );
    }

    #[test]
    fn only_inputs_under_a_stage_of_the_chain_are_compared() {
        let store = Store::open("memory://").unwrap();
        let [t, s, j] = chain();
        // A sample that read unit `a`'s adapter, and was then asked about under another unit's
        // train (`d`): an input under no stage of that chain is not compared.
        let adapter = commit(&store, &t, ADAPTER, b"adapter A", &[]);
        let read = [(
            upstream_input_key(&t, ADAPTER),
            adapter.outputs[0].sha256.clone(),
        )];
        let m = commit(&store, &s, "responses.parquet", b"answers", &read);
        assert_eq!(stale_reason(&m, [(&train('d'), &DoneState::Missing)]), None);
        // The same stage is compared: its prefix matches the recorded key exactly.
        assert!(stale_reason(&m, [(&t, &DoneState::Missing)]).is_some());
        // A judgment's sample (another variant `e` with the same outputs) is not the one it read.
        let jm = commit(
            &store,
            &j,
            "scores.parquet",
            b"scores",
            &[(upstream_input_key(&s, "responses.parquet"), "00".repeat(32))],
        );
        assert_eq!(
            stale_reason(&jm, [(&sample('e'), &DoneState::Missing)]),
            None
        );
        let reason = stale_reason(&jm, [(&s, &store.read_done(&s).unwrap())]).unwrap();
        assert!(
            reason.contains(&"00".repeat(32)) && reason.contains(&sha256_hex(b"answers")),
            "{reason}"
        );
    }

    #[test]
    fn a_stage_that_read_nothing_upstream_is_not_stale() {
        // A base model's unit: no train stage, and its sample recorded only content-addressed
        // inputs.
        let store = Store::open("memory://").unwrap();
        let chain = chain();
        let m = commit(
            &store,
            &chain[1],
            "responses.parquet",
            b"answers",
            &[("model".into(), "ab".repeat(32))],
        );
        let states = store.read_done_chain(&chain).unwrap();
        assert!(matches!(states[0], DoneState::Missing));
        assert!(states[1].is_valid());
        assert!(matches!(states[2], DoneState::Missing));
        assert_eq!(
            stale_reason(&m, [(&chain[0], &DoneState::Missing)]),
            None,
            "inputs under no upstream stage are not compared"
        );
        // The chain without the train stage reads the same.
        let states = store.read_done_chain(&chain[1..]).unwrap();
        assert!(states[0].is_valid() && matches!(states[1], DoneState::Missing));
    }
}
