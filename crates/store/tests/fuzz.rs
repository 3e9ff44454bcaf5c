//! Fuzz target: `DONE.json` stage manifests, through `serde_json::from_slice::<Manifest>` and
//! `Store::read_done` / `Store::verify_done` over a `memory://` store holding arbitrary bytes at
//! the stage's `DONE.json` key (and the outputs the seeds list).
//!
//! Property: whatever the bytes, parsing and both reads never panic, and `read_done` answers `Ok`
//! (only backend failures are errors, and the memory backend has none: a manifest listing an
//! output name that is no valid key is `Invalid`); a `DONE.json` that does not parse as a manifest
//! is `Invalid`, never `Valid`; a `Valid` one parses and belongs to the stage (`owner`) it was
//! read for. Inputs are manifests written by
//! `Store::commit_stage` (a sample stage and a judge stage with nested metrics) with
//! structure-aware mutations (`tests/fuzz_support/mutate.rs`). Cases: `PROPTEST_CASES` (default
//! below); run with `cargo nextest run --release --workspace -E 'test(/^fuzz_/)'`
//! (docs/ARCHITECTURE.md, Fuzzing).

#[path = "../../../tests/fuzz_support/mutate.rs"]
mod mutate;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use chrono::{TimeZone, Utc};
use emorg_store::{DoneState, Manifest, OutputEntry, Stage, StageRef, Store, layout};
use proptest::prelude::*;
use proptest::sample::Index;

/// Default number of cases (a few seconds in release on the 2-core machine).
const CASES: u32 = 50_000;

/// A stage of the store, and the `DONE.json` `commit_stage` wrote for it.
struct Seed {
    stage: StageRef,
    done: Vec<u8>,
}

/// One `memory://` store for the whole run, holding the seeds' outputs; each case overwrites the
/// `DONE.json` it reads.
fn store() -> &'static (Store, Vec<Seed>) {
    static S: OnceLock<(Store, Vec<Seed>)> = OnceLock::new();
    S.get_or_init(|| {
        let store = Store::open("memory://").expect("a memory store");
        let at = Utc.with_ymd_and_hms(2026, 12, 5, 10, 0, 0).unwrap();
        let mut seeds = Vec::new();
        for (stage, key, outputs, metrics) in [
            (
                Stage::Sample,
                "a".repeat(64),
                vec![("responses.parquet", &b"PAR1 responses"[..])],
                serde_json::json!({ "responses": 32, "seconds": 12.5 }),
            ),
            (
                Stage::Judge,
                "0123456789abcdef".repeat(4),
                vec![
                    ("scores.parquet", &b"PAR1 scores"[..]),
                    ("judge_log.jsonl", &b"{\"n\":1}\n"[..]),
                ],
                serde_json::json!({
                    "em_rate": 0.125,
                    "per_question": { "quick_buck": [1.0, 2.5e-3, null], "windfall": [] },
                    "note": "ünïcode 💥",
                }),
            ),
        ] {
            let stage = StageRef::parse(stage, &key).expect("a seed key");
            let mut entries = Vec::new();
            for (name, bytes) in outputs {
                store
                    .put(&layout::output(&stage, name), bytes.to_vec())
                    .expect("put an output");
                entries.push(OutputEntry::of_bytes(name, bytes));
            }
            let manifest = Manifest {
                owner: stage.clone(),
                outputs: entries,
                inputs: BTreeMap::from([
                    ("dataset".to_string(), "ab".repeat(32)),
                    (
                        format!(
                            "units/{}/train/adapter/adapter_model.safetensors",
                            "b".repeat(64)
                        ),
                        "cd".repeat(32),
                    ),
                ]),
                seeds: BTreeMap::from([("sampling".to_string(), u64::MAX), ("split".into(), 0)]),
                worker_version: "emorg-worker 0.1.0 numerics 3".into(),
                started_at: at,
                finished_at: at,
                host: "node-01".into(),
                metrics,
            };
            store
                .commit_stage(&manifest)
                .expect("commit the seed stage");
            let done = store
                .get(&layout::done(&stage))
                .expect("read the seed's DONE.json")
                .to_vec();
            seeds.push(Seed { stage, done });
        }
        (store, seeds)
    })
}

const JSON_TOKENS: &[&str] = &[
    "\"owner\"",
    "\"stage\"",
    "\"key\"",
    "{\"stage\":\"sample\",\"key\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
    "{\"stage\":\"judge\",\"key\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
    "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"",
    "\"train\"",
    "\"sample\"",
    "\"outputs\"",
    "\"size\"",
    "\"sha256\"",
    "\"name\"",
    "\"seeds\"",
    "\"metrics\"",
    "\"started_at\"",
    "{\"name\":\"responses.parquet\",\"size\":14,\"sha256\":\"\"}",
    "{\"name\":\"../../x\",\"size\":0,\"sha256\":\"\"}",
    "{\"name\":\"\",\"size\":18446744073709551615,\"sha256\":\"\"}",
    "\"..\"",
    "\".\"",
    "\"a//b\"",
    "\"/\"",
    "\"DONE.json\"",
    "\"steps/00000008/adapter_config.json\"",
    "\"judge\"",
    "\"2026-12-05T10:00:00Z\"",
    "\"2026-13-45T99:99:99Z\"",
    "\"+262143-12-31T23:59:59.999999999Z\"",
    "\"-262144-01-01T00:00:00Z\"",
    "\"1970-01-01T00:00:00+25:00\"",
    "\"2026-12-05T10:00:00.0000000000000000001Z\"",
    "\"2026-12-05\"",
    "null",
    "[]",
    "{}",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "1e99999",
    "-1",
    "1.5",
];

fn dict() -> &'static [Vec<u8>] {
    static D: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    D.get_or_init(|| mutate::dictionary(JSON_TOKENS))
}

/// Parse and read the bytes as the stage's `DONE.json`; check that the two agree.
fn check(seed: &Seed, bytes: Vec<u8>) -> &'static str {
    let (store, _) = store();
    let parsed = serde_json::from_slice::<Manifest>(&bytes);
    store
        .put(&layout::done(&seed.stage), bytes)
        .expect("put DONE.json");
    let state = match store.read_done(&seed.stage) {
        Ok(state) => state,
        // The memory backend does not fail: an error could only come from the bytes.
        Err(e) => panic!("read_done failed on a memory store: {e}"),
    };
    match &state {
        DoneState::Valid(m) => {
            let p = parsed
                .as_ref()
                .unwrap_or_else(|e| panic!("Valid, but the bytes do not parse: {e}"));
            assert_eq!(m.owner, p.owner);
            assert_eq!(m.owner, seed.stage, "Valid for another stage");
        }
        DoneState::Invalid { reason } => assert!(!reason.is_empty()),
        _ => assert!(parsed.is_ok(), "not Invalid, but the bytes do not parse"),
    }
    if let Err(e) = store.verify_done(&seed.stage) {
        let _ = e.to_string();
    }
    match (state, parsed) {
        (DoneState::Valid(_), _) => "Valid",
        (DoneState::Invalid { .. }, Ok(_)) => "parses, Invalid",
        (DoneState::Invalid { .. }, Err(_)) => "does not parse, Invalid",
        _ => "other state",
    }
}

#[derive(Debug, Clone)]
struct Input {
    seed: Index,
    mutations: Vec<mutate::Mutation>,
}

/// Mutated `DONE.json` files.
#[test]
fn fuzz_done_json() {
    let input = (any::<Index>(), mutate::mutations(8))
        .prop_map(|(seed, mutations)| Input { seed, mutations });
    mutate::run("fuzz_done_json", file!(), CASES, input, |input| {
        let seed = input.seed.get(&store().1);
        let bytes = mutate::mutate(&seed.done, &input.mutations, dict());
        check(seed, bytes)
    });
}

/// Every seed reads back as `Valid` as it is (otherwise the fuzzer would start from errors).
#[test]
fn fuzz_seeds_are_valid() {
    for seed in &store().1 {
        assert_eq!(check(seed, seed.done.clone()), "Valid");
    }
}
