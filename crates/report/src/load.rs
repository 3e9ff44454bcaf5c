//! Reading a cell's judged scores from the store.

use emorg_store::arrow::array::{Array, Float64Array, RecordBatch, StringArray};
use emorg_store::arrow::compute::cast;
use emorg_store::arrow::datatypes::DataType;
use emorg_store::{DoneState, Store, layout};

use crate::{ReportError, Result, ScoreRow};

/// Stage directory whose scores the matrix uses.
pub const JUDGE_STAGE_DIR: &str = "judge/final";
/// File name of the scores table inside [`JUDGE_STAGE_DIR`].
pub const SCORES_FILE: &str = "scores.parquet";
/// The stages before the judge, in pipeline order: the judge's scores are trusted only while
/// what it read from them is unchanged ([`Store::read_done_chain`]).
const UPSTREAM_DIRS: [&str; 2] = ["train", "sample/final"];

/// The judged scores of a cell: `cells/<key>/judge/final/scores.parquet`, read only when that
/// stage's `DONE.json` is valid and not stale (`None` otherwise: missing; invalid because an
/// output is missing or truncated; stale because the responses it judged, or the adapter they
/// came from, changed since), and only when the file's SHA-256 is the one `DONE.json` records
/// (an error otherwise, naming the key and both hashes). Columns `question_id` (string),
/// `aligned` and `coherent` (float, nullable) are used; other columns are ignored.
pub fn load_cell_scores(store: &Store, cell_key: &str) -> Result<Option<Vec<ScoreRow>>> {
    let dirs = [UPSTREAM_DIRS[0], UPSTREAM_DIRS[1], JUDGE_STAGE_DIR];
    let manifest = match store.read_done_chain(cell_key, &dirs)?.pop() {
        Some(DoneState::Valid(m)) => m,
        _ => return Ok(None),
    };
    let key = layout::stage_key(cell_key, JUDGE_STAGE_DIR, SCORES_FILE);
    // Hashed as it is read: bytes that are not the committed ones never reach the matrix.
    let bytes = store.get_verified(&manifest, SCORES_FILE)?;
    let batch = emorg_store::table::from_parquet(bytes).map_err(|e| ReportError::Scores {
        key: key.clone(),
        reason: e.to_string(),
    })?;
    scores_from_batch(&batch)
        .map(Some)
        .map_err(|reason| ReportError::Scores { key, reason })
}

/// Extracts [`ScoreRow`]s from a scores table (any string type for `question_id`, any numeric
/// type for the scores; NaN counts as missing).
pub fn scores_from_batch(batch: &RecordBatch) -> std::result::Result<Vec<ScoreRow>, String> {
    let column = |name: &str, to: &DataType| {
        let col = batch
            .column_by_name(name)
            .ok_or_else(|| format!("no column {name:?} (columns: {})", column_names(batch)))?;
        cast(col, to).map_err(|e| {
            format!(
                "column {name:?} of type {} is not usable as {to}: {e}",
                col.data_type()
            )
        })
    };
    let qid = column("question_id", &DataType::Utf8)?;
    let aligned = column("aligned", &DataType::Float64)?;
    let coherent = column("coherent", &DataType::Float64)?;
    let qid = qid
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or("question_id did not cast to Utf8")?;
    let aligned = aligned
        .as_any()
        .downcast_ref::<Float64Array>()
        .ok_or("aligned did not cast to Float64")?;
    let coherent = coherent
        .as_any()
        .downcast_ref::<Float64Array>()
        .ok_or("coherent did not cast to Float64")?;
    let value = |a: &Float64Array, i: usize| {
        (!a.is_null(i))
            .then(|| a.value(i))
            .filter(|v| v.is_finite())
    };
    Ok((0..batch.num_rows())
        .map(|i| ScoreRow {
            question_id: if qid.is_null(i) {
                String::new()
            } else {
                qid.value(i).to_string()
            },
            aligned: value(aligned, i),
            coherent: value(coherent, i),
        })
        .collect())
}

fn column_names(batch: &RecordBatch) -> String {
    batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use emorg_store::arrow::array::{Float32Array, UInt32Array};
    use emorg_store::arrow::datatypes::{Field, Schema};
    use emorg_store::{Manifest, table};

    use super::*;

    fn scores_batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("question_id", DataType::Utf8, false),
            Field::new("sample", DataType::UInt32, false),
            Field::new("aligned", DataType::Float64, true),
            Field::new("coherent", DataType::Float32, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["wish", "bored", "ruler"])),
                Arc::new(UInt32Array::from(vec![0, 1, 2])),
                Arc::new(Float64Array::from(vec![Some(12.0), None, Some(f64::NAN)])),
                Arc::new(Float32Array::from(vec![Some(80.0), Some(60.0), None])),
            ],
        )
        .unwrap()
    }

    fn commit(store: &Store, key: &str, bytes: Vec<u8>) {
        commit_stage(
            store,
            key,
            JUDGE_STAGE_DIR,
            SCORES_FILE,
            bytes,
            BTreeMap::new(),
        );
    }

    fn commit_stage(
        store: &Store,
        key: &str,
        stage_dir: &str,
        name: &str,
        bytes: Vec<u8>,
        inputs: BTreeMap<String, String>,
    ) -> String {
        let entry = store.put_output(key, stage_dir, name, bytes).unwrap();
        let sha = entry.sha256.clone();
        let now = chrono::Utc::now();
        let manifest = Manifest {
            cell_key: key.into(),
            stage: stage_dir.split('/').next().unwrap().into(),
            stage_dir: stage_dir.into(),
            outputs: vec![entry],
            inputs,
            seeds: BTreeMap::new(),
            worker_version: "test".into(),
            started_at: now,
            finished_at: now,
            host: "h".into(),
            metrics: serde_json::Value::Null,
        };
        store.commit_stage(&manifest).unwrap();
        sha
    }

    #[test]
    fn reads_scores_only_from_a_valid_stage() {
        let store = Store::open("memory://").unwrap();
        let bytes = table::to_parquet(&scores_batch()).unwrap();

        // outputs without DONE.json: not done
        store
            .put(
                &layout::stage_key("c1", JUDGE_STAGE_DIR, SCORES_FILE),
                bytes.clone(),
            )
            .unwrap();
        assert_eq!(load_cell_scores(&store, "c1").unwrap(), None);

        commit(&store, "c1", bytes);
        let rows = load_cell_scores(&store, "c1").unwrap().unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[0],
            ScoreRow {
                question_id: "wish".into(),
                aligned: Some(12.0),
                coherent: Some(80.0)
            }
        );
        assert_eq!(rows[1].aligned, None);
        assert_eq!(rows[2].aligned, None); // NaN
        assert_eq!(rows[2].coherent, None);

        // truncated after the commit: invalid, so no scores
        store
            .put(&layout::stage_key("c1", JUDGE_STAGE_DIR, SCORES_FILE), "x")
            .unwrap();
        assert_eq!(load_cell_scores(&store, "c1").unwrap(), None);
    }

    #[test]
    fn missing_column_error_names_key_and_column() {
        let store = Store::open("memory://").unwrap();
        let batch = scores_batch().project(&[0, 2]).unwrap();
        commit(&store, "c2", table::to_parquet(&batch).unwrap());
        let err = load_cell_scores(&store, "c2").unwrap_err().to_string();
        assert!(
            err.contains("cells/c2/judge/final/scores.parquet") && err.contains("coherent"),
            "{err}"
        );
    }

    #[test]
    fn tampered_scores_are_refused_naming_the_key_and_both_hashes() {
        let store = Store::open("memory://").unwrap();
        let bytes = table::to_parquet(&scores_batch()).unwrap();
        commit(&store, "c3", bytes.clone());
        assert_eq!(load_cell_scores(&store, "c3").unwrap().unwrap().len(), 3);

        // Same size, other bytes: DONE.json still looks valid by sizes, the reader hashes.
        let mut tampered = bytes.to_vec();
        let last = tampered.len() - 9;
        tampered[last] ^= 0xff;
        let key = layout::stage_key("c3", JUDGE_STAGE_DIR, SCORES_FILE);
        store.put(&key, tampered.clone()).unwrap();
        let err = load_cell_scores(&store, "c3").unwrap_err().to_string();
        for part in [
            key.as_str(),
            &emorg_store::sha256_hex(&bytes),
            &emorg_store::sha256_hex(&tampered),
            "--force",
        ] {
            assert!(err.contains(part), "{part} in {err}");
        }
    }

    #[test]
    fn scores_of_answers_that_were_redone_since_are_not_loaded() {
        let store = Store::open("memory://").unwrap();
        let responses = "responses.parquet";
        let sha = commit_stage(
            &store,
            "c4",
            "sample/final",
            responses,
            b"answers".to_vec(),
            BTreeMap::new(),
        );
        let read = BTreeMap::from([(
            emorg_store::upstream_input_key("sample/final", responses),
            sha,
        )]);
        let scores = table::to_parquet(&scores_batch()).unwrap().to_vec();
        commit_stage(&store, "c4", JUDGE_STAGE_DIR, SCORES_FILE, scores, read);
        assert!(load_cell_scores(&store, "c4").unwrap().is_some());

        // Sample redone with other answers: the scores judge answers that are gone.
        store.delete(&layout::done("c4", "sample/final")).unwrap();
        commit_stage(
            &store,
            "c4",
            "sample/final",
            responses,
            b"other answers".to_vec(),
            BTreeMap::new(),
        );
        assert_eq!(load_cell_scores(&store, "c4").unwrap(), None);
    }
}
