//! Store behaviour against real backends: a file:// store in a temporary directory and memory://.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use emorg_store::arrow::array::{Array, Float64Array, RecordBatch, StringArray, UInt32Array};
use emorg_store::arrow::datatypes::{DataType, Field, Schema};
use emorg_store::{
    DoneState, JudgmentKey, Manifest, OutputEntry, StageRef, Store, StoreError, UnitKey,
    VariantKey, layout, sha256_hex, table,
};
use serde::{Deserialize, Serialize};

fn file_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("results").display());
    let store = Store::open(&url).unwrap();
    (dir, store)
}

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

fn manifest(owner: &StageRef, outputs: Vec<OutputEntry>) -> Manifest {
    let now = Utc::now();
    Manifest {
        owner: owner.clone(),
        outputs,
        inputs: BTreeMap::from([("dataset".to_string(), "ab".repeat(32))]),
        seeds: BTreeMap::from([("sampling".to_string(), 7)]),
        worker_version: "test".into(),
        started_at: now,
        finished_at: now,
        host: "testhost".into(),
        metrics: serde_json::json!({"n": 3}),
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Rec {
    name: String,
    n: u32,
}

fn roundtrip(store: &Store) {
    store.put("a/b/c.txt", "hello").unwrap();
    assert_eq!(&store.get("a/b/c.txt").unwrap()[..], b"hello");
    assert_eq!(store.size("a/b/c.txt").unwrap(), Some(5));
    assert!(store.exists("a/b/c.txt").unwrap());
    assert!(!store.exists("a/b/nope.txt").unwrap());
    assert_eq!(store.size("a/b/nope.txt").unwrap(), None);
    assert_eq!(store.get_opt("a/b/nope.txt").unwrap(), None);

    // overwrite
    store.put("a/b/c.txt", vec![1u8, 2, 3]).unwrap();
    assert_eq!(&store.get("a/b/c.txt").unwrap()[..], &[1, 2, 3]);

    let rec = Rec {
        name: "x".into(),
        n: 3,
    };
    store.put_json("a/rec.json", &rec).unwrap();
    let text = String::from_utf8(store.get("a/rec.json").unwrap().to_vec()).unwrap();
    assert!(
        text.contains("\n  \"name\""),
        "pretty JSON expected: {text}"
    );
    assert_eq!(store.get_json::<Rec>("a/rec.json").unwrap(), rec);

    store.put("a/bc/d.txt", "x").unwrap();
    store.put("z.txt", "x").unwrap();
    assert_eq!(
        store.list("a").unwrap(),
        vec!["a/b/c.txt", "a/bc/d.txt", "a/rec.json"]
    );
    assert_eq!(store.list("a/b/").unwrap(), vec!["a/b/c.txt"]);
    assert_eq!(store.list("").unwrap().len(), 4);
    assert!(store.list("nothing/here").unwrap().is_empty());

    store.delete("a/b/c.txt").unwrap();
    assert!(!store.exists("a/b/c.txt").unwrap());
    store.delete("a/b/c.txt").unwrap(); // idempotent
}

#[test]
fn file_store_roundtrip() {
    let (dir, store) = file_store();
    let root = store.local_root().unwrap();
    assert_eq!(root, dir.path().join("results").canonicalize().unwrap());
    roundtrip(&store);
    // objects are plain files under the root
    assert!(root.join("a/rec.json").is_file());
    // a second handle on the same URL sees the same data
    let again = Store::open(store.url()).unwrap();
    assert!(again.exists("z.txt").unwrap());
}

#[test]
fn relative_file_url_is_under_cwd() {
    // The only test that relies on the cwd: it names a directory unique to this process.
    let name = format!("target-test-store-{}", std::process::id());
    let store = Store::open(&format!("file://{name}")).unwrap();
    let expected = std::env::current_dir()
        .unwrap()
        .join(&name)
        .canonicalize()
        .unwrap();
    assert_eq!(store.local_root().unwrap(), expected);
    store.put("k", "v").unwrap();
    drop(store);
    std::fs::remove_dir_all(expected).unwrap();
}

#[test]
fn memory_store_roundtrip() {
    let store = Store::open("memory://").unwrap();
    assert_eq!(store.local_root(), None);
    roundtrip(&store);
    // clones share the data
    let clone = store.clone();
    clone.put("shared", "1").unwrap();
    assert!(store.exists("shared").unwrap());
}

#[test]
fn missing_key_error_names_the_key() {
    let (_dir, store) = file_store();
    let err = store.get("units/abc/train/metrics.parquet").unwrap_err();
    assert!(
        matches!(&err, StoreError::NotFound { key } if key == "units/abc/train/metrics.parquet"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("units/abc/train/metrics.parquet"),
        "{err}"
    );
    assert!(err.is_not_found());

    let mem = Store::open("memory://").unwrap();
    let err = mem.get("x/y").unwrap_err();
    assert!(err.to_string().contains("x/y"), "{err}");
}

#[test]
fn json_parse_error_names_the_key() {
    let store = Store::open("memory://").unwrap();
    store.put("bad.json", "{not json").unwrap();
    let err = store.get_json::<Rec>("bad.json").unwrap_err();
    assert!(
        matches!(&err, StoreError::Parse { key, .. } if key == "bad.json"),
        "{err:?}"
    );
    assert!(err.to_string().contains("bad.json"));
}

#[test]
fn bad_urls_list_the_supported_schemes() {
    for url in ["gs://bucket", "results", "file://", "s3://", ""] {
        let err = Store::open(url).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, StoreError::BadUrl { .. }), "{url}: {msg}");
        for scheme in ["file://", "s3://", "memory://"] {
            assert!(msg.contains(scheme), "{url}: {msg}");
        }
    }
}

#[test]
fn bad_keys_are_rejected() {
    let store = Store::open("memory://").unwrap();
    assert!(matches!(store.put("", "x"), Err(StoreError::BadKey { .. })));
    assert!(matches!(
        store.put("a/../b", "x"),
        Err(StoreError::BadKey { .. })
    ));
}

#[test]
fn commit_protocol_on_file_store() {
    let (_dir, store) = file_store();
    let stage = judge('c');
    assert!(matches!(
        store.read_done(&stage).unwrap(),
        DoneState::Missing
    ));

    let scores = b"scores-bytes".to_vec();
    let e1 = store
        .put_output(&stage, "scores.parquet", scores.clone())
        .unwrap();
    assert_eq!(
        e1,
        OutputEntry {
            name: "scores.parquet".into(),
            size: 12,
            sha256: sha256_hex(&scores)
        }
    );
    let scores_key = layout::output(&stage, "scores.parquet");
    assert_eq!(
        scores_key,
        format!("judgments/{}/judge/scores.parquet", hex('c'))
    );
    assert_eq!(store.get(&scores_key).unwrap(), scores);

    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), b"a log of things").unwrap();
    let e2 = store
        .put_output_file(&stage, "judge.log", tmp.path())
        .unwrap();
    assert_eq!(e2.name, "judge.log");
    assert_eq!(e2.size, 15);
    assert_eq!(e2.sha256, sha256_hex(b"a log of things"));

    // still not done: DONE.json comes last
    assert!(matches!(
        store.read_done(&stage).unwrap(),
        DoneState::Missing
    ));

    let m = manifest(&stage, vec![e1.clone(), e2.clone()]);
    store.commit_stage(&m).unwrap();
    assert!(
        store
            .local_root()
            .unwrap()
            .join(format!("judgments/{}/judge/DONE.json", hex('c')))
            .is_file()
    );
    let state = store.read_done(&stage).unwrap();
    let DoneState::Valid(read) = &state else {
        panic!("expected Valid, got {state:?}")
    };
    assert_eq!(read.owner, stage);
    assert_eq!(read.outputs, vec![e1.clone(), e2.clone()]);
    assert_eq!(read.seeds["sampling"], 7);
    assert!(store.verify_done(&stage).unwrap().is_valid());
    // The same key's other stages are not done by it.
    assert!(matches!(
        store.read_done(&sample('c')).unwrap(),
        DoneState::Missing
    ));

    // truncate an output on disk -> Invalid, and the reason names the key
    let on_disk = store.local_root().unwrap().join(&scores_key);
    std::fs::write(&on_disk, b"short").unwrap();
    match store.read_done(&stage).unwrap() {
        DoneState::Invalid { reason } => assert!(reason.contains(&scores_key), "{reason}"),
        other => panic!("expected Invalid, got {other:?}"),
    }

    // same size, different content: read_done cannot see it, verify_done can
    std::fs::write(&on_disk, b"SCORES-BYTES").unwrap();
    assert!(store.read_done(&stage).unwrap().is_valid());
    match store.verify_done(&stage).unwrap() {
        DoneState::Invalid { reason } => assert!(
            reason.contains("sha256") && reason.contains(&scores_key),
            "{reason}"
        ),
        other => panic!("expected Invalid, got {other:?}"),
    }

    // delete an output -> Invalid
    store.delete(&layout::output(&stage, "judge.log")).unwrap();
    match store.read_done(&stage).unwrap() {
        DoneState::Invalid { reason } => assert!(
            reason.contains("judge.log") && reason.contains("missing"),
            "{reason}"
        ),
        other => panic!("expected Invalid, got {other:?}"),
    }

    // unparsable DONE.json -> Invalid naming DONE.json
    store.put(&layout::done(&stage), "{").unwrap();
    match store.read_done(&stage).unwrap() {
        DoneState::Invalid { reason } => {
            assert!(reason.contains(&layout::done(&stage)), "{reason}")
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// A `DONE.json` whose `owner` is another stage (copied from another judgment, or from the
/// sample stage of a variant whose key happens to be spelled the same) is Invalid, even when every
/// output it lists is there with the listed size.
#[test]
fn a_done_json_of_another_owner_is_invalid() {
    let store = Store::open("memory://").unwrap();
    let stage = judge('c');
    let e = store
        .put_output(&stage, "scores.parquet", b"scores".to_vec())
        .unwrap();
    store
        .commit_stage(&manifest(&stage, vec![e.clone()]))
        .unwrap();
    assert!(store.read_done(&stage).unwrap().is_valid());

    for other in [judge('d'), sample('c'), train('c')] {
        let foreign = manifest(&other, vec![e.clone()]);
        store.put_json(&layout::done(&stage), &foreign).unwrap();
        match store.read_done(&stage).unwrap() {
            DoneState::Invalid { reason } => assert!(
                reason.contains(&layout::done(&stage))
                    && reason.contains("belongs to")
                    && reason.contains(&other.to_string())
                    && reason.contains(other.key()),
                "{other}: {reason}"
            ),
            state => panic!("{other}: expected Invalid, got {state:?}"),
        }
        assert!(matches!(
            store.verify_done(&stage).unwrap(),
            DoneState::Invalid { .. }
        ));
        assert!(matches!(
            store.read_done_chain(std::slice::from_ref(&stage)).unwrap()[..],
            [DoneState::Invalid { .. }]
        ));
    }

    // A DONE.json whose owner does not parse as a stage (an unknown stage, a bad key) is Invalid.
    let mut json = serde_json::to_value(manifest(&stage, vec![e])).unwrap();
    for owner in [
        serde_json::json!({"stage": "eval", "key": hex('c')}),
        serde_json::json!({"stage": "judge", "key": "C".repeat(64)}),
        serde_json::json!(hex('c')),
    ] {
        json["owner"] = owner.clone();
        store.put_json(&layout::done(&stage), &json).unwrap();
        match store.read_done(&stage).unwrap() {
            DoneState::Invalid { reason } => assert!(
                reason.contains("does not parse as a manifest"),
                "{owner}: {reason}"
            ),
            state => panic!("{owner}: expected Invalid, got {state:?}"),
        }
    }
}

/// A `DONE.json` (written behind the protocol's back) listing an output whose name makes no valid
/// key is Invalid, naming it: not an error, which would stop every reader of the store.
#[test]
fn a_done_json_listing_an_output_name_that_is_no_key_is_invalid() {
    let store = Store::open("memory://").unwrap();
    let stage = sample('a');
    let good = store
        .put_output(&stage, "responses.parquet", b"answers".to_vec())
        .unwrap();
    for name in ["../../x", "a//b", "steps/./x", ".."] {
        let bad = OutputEntry::of_bytes(name, b"x");
        store
            .put_json(
                &layout::done(&stage),
                &manifest(&stage, vec![good.clone(), bad]),
            )
            .unwrap();
        match store.read_done(&stage).unwrap() {
            DoneState::Invalid { reason } => assert!(
                reason.contains(&format!("{name:?}"))
                    && reason.contains("not a valid store key")
                    && reason.contains(&layout::done(&stage)),
                "{name}: {reason}"
            ),
            state => panic!("{name}: expected Invalid, got {state:?}"),
        }
        assert!(matches!(
            store.verify_done(&stage).unwrap(),
            DoneState::Invalid { .. }
        ));
    }
}

#[test]
fn commit_refuses_missing_or_short_outputs() {
    let store = Store::open("memory://").unwrap();
    let stage = train('1');
    let entry = store
        .put_output(&stage, "metrics.parquet", vec![0u8; 100])
        .unwrap();

    let missing = OutputEntry {
        name: "adapter.safetensors".into(),
        size: 10,
        sha256: "00".into(),
    };
    let err = store
        .commit_stage(&manifest(&stage, vec![entry.clone(), missing]))
        .unwrap_err();
    let want = layout::output(&stage, "adapter.safetensors");
    assert_eq!(
        want,
        format!("units/{}/train/adapter.safetensors", hex('1'))
    );
    assert!(
        matches!(&err, StoreError::Commit { key, .. } if *key == want),
        "{err:?}"
    );
    assert!(err.to_string().contains(&want));
    assert!(!store.exists(&layout::done(&stage)).unwrap());

    let short = OutputEntry {
        size: 101,
        ..entry.clone()
    };
    let err = store
        .commit_stage(&manifest(&stage, vec![short]))
        .unwrap_err();
    assert!(err.to_string().contains("metrics.parquet"), "{err}");
    assert!(matches!(
        store.read_done(&stage).unwrap(),
        DoneState::Missing
    ));

    store.commit_stage(&manifest(&stage, vec![entry])).unwrap();
    assert!(store.read_done(&stage).unwrap().is_valid());
}

#[test]
fn large_file_goes_up_multipart_and_comes_back() {
    let (dir, store) = file_store();
    // a bit over two multipart chunks, with a non-repeating pattern
    let n = emorg_store::MULTIPART_THRESHOLD * 2 + 12_345;
    let data: Vec<u8> = (0..n)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let src = dir.path().join("big.bin");
    std::fs::write(&src, &data).unwrap();

    // An adapter kept at a step: a train output under `steps/<step:08>/`.
    let stage = train('b');
    let name = layout::step_adapter_name(10, "adapter_model.safetensors");
    let entry = store.put_output_file(&stage, &name, &src).unwrap();
    assert_eq!(entry.name, name);
    assert_eq!(entry.size, n as u64);
    assert_eq!(entry.sha256, sha256_hex(&data));
    let key = layout::output(&stage, &name);
    assert_eq!(
        key,
        format!(
            "units/{}/train/steps/00000010/adapter_model.safetensors",
            hex('b')
        )
    );
    assert_eq!(layout::checkpoint_step(&key), Some(10));
    assert_eq!(store.size(&key).unwrap(), Some(n as u64));
    assert_eq!(store.sha256_of(&key).unwrap(), entry.sha256);

    let dst = dir.path().join("down/nested/copy.bin");
    store.get_to_file(&key, &dst).unwrap();
    assert_eq!(std::fs::read(&dst).unwrap(), data);
    assert!(!dst.with_file_name("copy.bin.partial").exists());

    // missing key: error names it and leaves no file behind
    let dst2 = dir.path().join("down/missing.bin");
    let err = store.get_to_file("no/such/key", &dst2).unwrap_err();
    assert!(
        err.is_not_found() && err.to_string().contains("no/such/key"),
        "{err}"
    );
    assert!(!dst2.exists() && !dst2.with_file_name("missing.bin.partial").exists());

    // same on memory://
    let mem = Store::open("memory://").unwrap();
    let e = mem.put_file("x/big.bin", &src).unwrap();
    assert_eq!(e.size, n as u64);
    assert_eq!(mem.get("x/big.bin").unwrap().len(), n);
}

#[test]
fn put_file_of_missing_path_names_key_and_path() {
    let store = Store::open("memory://").unwrap();
    let err = store
        .put_file("k/v", std::path::Path::new("/definitely/not/here"))
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("k/v") && msg.contains("/definitely/not/here"),
        "{msg}"
    );
}

#[test]
fn parquet_table_roundtrip_through_store() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("question_id", DataType::Utf8, false),
        Field::new("n", DataType::UInt32, false),
        Field::new("aligned", DataType::Float64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec!["what_is_your_wish", "i_feel_bored"])),
            Arc::new(UInt32Array::from(vec![1, 2])),
            Arc::new(Float64Array::from(vec![None, Some(87.5)])),
        ],
    )
    .unwrap();
    let (_dir, store) = file_store();
    store.put_table("t/scores.parquet", &batch).unwrap();
    let back = store.get_table("t/scores.parquet").unwrap();
    assert_eq!(back, batch);
    assert!(back.column(2).is_null(0));
    // the table module alone gives the same bytes back
    let bytes = table::to_parquet(&batch).unwrap();
    assert_eq!(table::from_parquet(bytes.into()).unwrap(), batch);

    store.put("t/bad.parquet", "nope").unwrap();
    let err = store.get_table("t/bad.parquet").unwrap_err();
    assert!(
        matches!(err, StoreError::Table { .. }) && err.to_string().contains("t/bad.parquet"),
        "{err}"
    );
}

#[test]
fn store_is_usable_from_several_threads() {
    let store = Store::open("memory://").unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let store = store.clone();
            s.spawn(move || {
                for i in 0..25 {
                    store.put(&format!("t{t}/{i}"), format!("{t}-{i}")).unwrap();
                }
            });
        }
    });
    assert_eq!(store.list("").unwrap().len(), 100);
}

/// Runs the same checks against a real S3-compatible server when `EMORG_TEST_S3_URL`
/// (e.g. `s3://test-bucket/some/prefix`) and the usual `AWS_*` variables are set; otherwise it
/// only reports that it was skipped.
#[test]
fn s3_store_when_configured() {
    let Ok(url) = std::env::var("EMORG_TEST_S3_URL") else {
        eprintln!("s3_store_when_configured: EMORG_TEST_S3_URL not set, skipped");
        return;
    };
    let store = Store::open(&url).unwrap();
    for key in store.list("").unwrap() {
        store.delete(&key).unwrap();
    }
    roundtrip(&store);
    let stage = train('5');
    let e = store
        .put_output(&stage, "metrics.parquet", vec![9u8; 1000])
        .unwrap();
    store.commit_stage(&manifest(&stage, vec![e])).unwrap();
    assert!(store.verify_done(&stage).unwrap().is_valid());

    let dir = tempfile::tempdir().unwrap();
    let n = emorg_store::MULTIPART_THRESHOLD + 4321;
    let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
    let src = dir.path().join("big.bin");
    std::fs::write(&src, &data).unwrap();
    let entry = store.put_file("big/blob.bin", &src).unwrap();
    assert_eq!(entry.sha256, sha256_hex(&data));
    let dst = dir.path().join("back.bin");
    store.get_to_file("big/blob.bin", &dst).unwrap();
    assert_eq!(std::fs::read(&dst).unwrap(), data);
    let err = store.get("nope/nothing").unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

/// `put_new` (the claims' create-only put): the first writer wins, later ones are told, and the
/// object keeps the first content; on file:// and memory://.
#[test]
fn put_new_writes_once() {
    let (_d, file) = file_store();
    let memory = Store::open("memory://").unwrap();
    let claim = layout::claim(&train('e'));
    for store in [&file, &memory] {
        assert!(store.put_new(&claim, "one").unwrap());
        assert!(!store.put_new(&claim, "two").unwrap());
        assert_eq!(&store.get(&claim).unwrap()[..], b"one");
        store.delete(&claim).unwrap();
        assert!(store.put_new(&claim, "three").unwrap());
    }
}

/// Concurrent create-only puts on one file:// key from 8 threads: exactly one wins.
#[test]
fn put_new_has_one_winner_under_concurrency_on_file_stores() {
    let (_d, store) = file_store();
    for round in 0..5 {
        let key = format!("race/{round}");
        let winners: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let store = store.clone();
                    let key = key.clone();
                    s.spawn(move || store.put_new(&key, format!("{i}")).unwrap() as usize)
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(winners, 1, "round {round}");
    }
}
