//! Reading rows' judged scores, and where each row stands, from the store.

use std::collections::HashMap;

use emorg_store::arrow::array::RecordBatch;
use emorg_store::tables::{self, ALIGNED, COHERENT};
use emorg_store::{DoneState, StageRef, Store, layout, stale_reason};

use crate::{CellResult, CellStatus, ReportError, Result, RowRef, ScoreRow};

/// File name of the scores table among the judge stage's outputs.
pub const SCORES_FILE: &str = tables::SCORES;

/// The judged scores of one row (see [`load_rows`] for every row of a sweep, with statuses).
///
/// Refuses a store in another layout (`Store::check_layout`, the store's message). Then the
/// scores are `judgments/<judgment>/judge/scores.parquet`, read only when every stage of the
/// row's chain (train when the unit trains, sample, judge) is done and not stale
/// (`Store::read_done_chain`): `None` when a stage is missing, invalid (an output missing or
/// truncated) or stale (the answers it judged, or the adapter they came from, were redone since).
/// The file is read through the judge's `DONE.json` (`Store::get_verified`): bytes whose SHA-256
/// is not the recorded one are an error naming the key and both hashes. Columns `question_id`
/// (string), `aligned` and `coherent` (float, nullable) are used; other columns are ignored.
pub fn load_row_scores(store: &Store, row: &RowRef) -> Result<Option<Vec<ScoreRow>>> {
    store.check_layout()?;
    let chain = row.chain();
    match store.read_done_chain(&chain)?.pop() {
        Some(DoneState::Valid(manifest)) => read_scores(store, &manifest).map(Some),
        _ => Ok(None),
    }
}

/// Every row with its status and, for done rows, its judged scores, in the order given.
///
/// The store's layout is checked first (an old store is refused with the store's message). Each
/// row's chain is read as [`load_row_scores`] reads it, with the same staleness rule
/// (`emorg_store::stale_reason`, as `Store::read_done_chain` applies it); a stage shared by
/// several rows (a unit's training, a variant judged by several judges) is read once.
///
/// - every stage done and not stale: [`CellStatus::Done`] with the scores; scores that cannot be
///   read (a hash mismatch, a missing column) make the row failed with the reason, not a gap;
/// - else the first stage of the chain, in pipeline order, that is not done and has a
///   `FAILED.json`: failed, `"<stage>: <error>"`;
/// - else a stage that is stale or invalid (the one nearest the judge): failed, `"<stage> is
///   stale: <reason>"` naming the input that changed and both hashes (its numbers are not
///   shown);
/// - else not run.
pub fn load_rows(store: &Store, rows: &[RowRef]) -> Result<Vec<CellResult>> {
    store.check_layout()?;
    let mut done = HashMap::new();
    rows.iter()
        .map(|row| load_row(store, row, &mut done))
        .collect()
}

/// One row for [`load_rows`]; `memo` holds each stage's state once its chain has been read.
fn load_row(
    store: &Store,
    row: &RowRef,
    memo: &mut HashMap<StageRef, DoneState>,
) -> Result<CellResult> {
    let chain = row.chain();
    let states = chain_states(store, &chain, memo)?;
    let result = |status, scores| CellResult {
        row: row.clone(),
        status,
        scores,
    };
    if let Some(DoneState::Valid(manifest)) = states.last() {
        return Ok(match read_scores(store, manifest) {
            Ok(scores) => result(CellStatus::Done, scores),
            Err(e) => result(
                CellStatus::Failed(format!("judge scores unreadable: {e}")),
                Vec::new(),
            ),
        });
    }
    for (stage, state) in chain.iter().zip(&states) {
        if state.is_valid() {
            continue;
        }
        if let Some(reason) = failure_reason(store, stage)? {
            return Ok(result(CellStatus::Failed(reason), Vec::new()));
        }
    }
    // The stage nearest the judge first: a judge built on redone answers says so, naming them.
    for (stage, state) in chain.iter().zip(&states).rev() {
        let why = match state {
            DoneState::Stale { reason, .. } => format!("{} is stale: {reason}", stage.stage()),
            DoneState::Invalid { reason } => format!("{} is invalid: {reason}", stage.stage()),
            _ => continue,
        };
        return Ok(result(CellStatus::Failed(why), Vec::new()));
    }
    Ok(result(CellStatus::NotRun, Vec::new()))
}

/// The states of `chain`'s stages, as `Store::read_done_chain` decides them (a valid stage whose
/// recorded upstream inputs changed since is stale), each stage read from the store once per
/// report: a stage's chain is fixed by its key, so its state is the same in every row.
fn chain_states(
    store: &Store,
    chain: &[StageRef],
    memo: &mut HashMap<StageRef, DoneState>,
) -> Result<Vec<DoneState>> {
    let mut states: Vec<DoneState> = Vec::with_capacity(chain.len());
    for stage in chain {
        let state = match memo.get(stage) {
            Some(state) => state.clone(),
            None => {
                let state = match store.read_done(stage)? {
                    DoneState::Valid(manifest) => {
                        match stale_reason(&manifest, chain.iter().zip(states.iter())) {
                            Some(reason) => DoneState::Stale { manifest, reason },
                            None => DoneState::Valid(manifest),
                        }
                    }
                    other => other,
                };
                memo.insert(stage.clone(), state.clone());
                state
            }
        };
        states.push(state);
    }
    Ok(states)
}

/// The scores a valid judge manifest lists, hashed as they are read.
fn read_scores(store: &Store, manifest: &emorg_store::Manifest) -> Result<Vec<ScoreRow>> {
    let key = manifest.output_key(SCORES_FILE);
    // Hashed as it is read: bytes that are not the committed ones never reach the matrix.
    let bytes = store.get_verified(manifest, SCORES_FILE)?;
    let batch = emorg_store::table::from_parquet(bytes).map_err(|e| ReportError::Scores {
        key: key.clone(),
        reason: e.to_string(),
    })?;
    scores_from_batch(&batch).map_err(|reason| ReportError::Scores { key, reason })
}

/// The reason a stage's `FAILED.json` gives (written by the worker or the executor), as
/// `"<stage>: <error>"`; `None` without one.
fn failure_reason(store: &Store, stage: &StageRef) -> Result<Option<String>> {
    let Some(bytes) = store.get_opt(&layout::failure(stage))? else {
        return Ok(None);
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    let reason = ["error", "message", "reason"]
        .iter()
        .find_map(|k| value.get(k).and_then(|v| v.as_str()).map(str::to_string))
        .unwrap_or_else(|| format!("see {}", layout::failure(stage)));
    Ok(Some(format!("{}: {reason}", stage.stage())))
}

/// Extracts [`ScoreRow`]s from a scores table (any string type for `question_id`, any numeric
/// type for the scores; NaN counts as missing). Columns as `emorg_store::tables` names them.
pub fn scores_from_batch(batch: &RecordBatch) -> std::result::Result<Vec<ScoreRow>, String> {
    let ids = tables::question_ids(batch).map_err(|e| e.to_string())?;
    let aligned = tables::metric_values(batch, ALIGNED).map_err(|e| e.to_string())?;
    let coherent = tables::metric_values(batch, COHERENT).map_err(|e| e.to_string())?;
    Ok(ids
        .into_iter()
        .zip(aligned.into_iter().zip(coherent))
        .map(|(question_id, (aligned, coherent))| ScoreRow {
            question_id,
            aligned,
            coherent,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use emorg_spec::{Axes, Weights};
    use emorg_store::arrow::array::{Float32Array, Float64Array, StringArray, UInt32Array};
    use emorg_store::arrow::datatypes::{DataType, Field, Schema};
    use emorg_store::{JudgmentKey, UnitKey, VariantKey, table, upstream_input_key};

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

    /// A row whose keys are `n` spelled out in hex (unit, variant and judgment differ).
    fn row(n: u64, trains: bool) -> RowRef {
        RowRef {
            axes: Axes {
                model: "m".into(),
                protocol: if trains { "lora" } else { "base" }.into(),
                dataset: if trains { "d" } else { "-" }.into(),
                seed: 0,
                checkpoint: Weights::Final,
                scale: "1".into(),
                judge: "default".into(),
                replicate: 0,
            },
            unit_key: UnitKey::parse(&format!("{:064x}", 0x100 + n)).unwrap(),
            variant_key: VariantKey::parse(&format!("{:064x}", 0x200 + n)).unwrap(),
            judgment_key: JudgmentKey::parse(&format!("{:064x}", 0x300 + n)).unwrap(),
            trains,
        }
    }

    fn judge(row: &RowRef) -> StageRef {
        StageRef::Judge(row.judgment_key.clone())
    }

    fn sample(row: &RowRef) -> StageRef {
        StageRef::Sample(row.variant_key.clone())
    }

    use emorg_store::testing::commit_one as commit;

    fn commit_scores(store: &Store, row: &RowRef, bytes: Vec<u8>) {
        commit(store, &judge(row), SCORES_FILE, bytes, BTreeMap::new());
    }

    #[test]
    fn reads_scores_only_from_a_valid_stage() {
        let store = Store::open("memory://").unwrap();
        let r = row(1, false);
        let bytes = table::to_parquet(&scores_batch()).unwrap();

        // outputs without DONE.json: not done
        store
            .put(&layout::output(&judge(&r), SCORES_FILE), bytes.clone())
            .unwrap();
        assert_eq!(load_row_scores(&store, &r).unwrap(), None);

        commit_scores(&store, &r, bytes.to_vec());
        let rows = load_row_scores(&store, &r).unwrap().unwrap();
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
            .put(&layout::output(&judge(&r), SCORES_FILE), "x")
            .unwrap();
        assert_eq!(load_row_scores(&store, &r).unwrap(), None);
        let loaded = load_rows(&store, std::slice::from_ref(&r)).unwrap();
        match &loaded[0].status {
            CellStatus::Failed(reason) => {
                assert!(
                    reason.starts_with("judge is invalid:") && reason.contains(SCORES_FILE),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_column_error_names_key_and_column() {
        let store = Store::open("memory://").unwrap();
        let r = row(2, false);
        let batch = scores_batch().project(&[0, 2]).unwrap();
        commit_scores(&store, &r, table::to_parquet(&batch).unwrap().to_vec());
        let err = load_row_scores(&store, &r).unwrap_err().to_string();
        let key = layout::output(&judge(&r), SCORES_FILE);
        assert!(
            key.starts_with("judgments/") && err.contains(&key) && err.contains("coherent"),
            "{err}"
        );
        // In a report, the row is failed with that reason, not a gap.
        let loaded = load_rows(&store, &[r]).unwrap();
        assert!(
            matches!(&loaded[0].status, CellStatus::Failed(m) if m.contains("judge scores unreadable") && m.contains("coherent")),
            "{:?}",
            loaded[0].status
        );
    }

    #[test]
    fn tampered_scores_are_refused_naming_the_key_and_both_hashes() {
        let store = Store::open("memory://").unwrap();
        let r = row(3, false);
        let bytes = table::to_parquet(&scores_batch()).unwrap();
        commit_scores(&store, &r, bytes.to_vec());
        assert_eq!(load_row_scores(&store, &r).unwrap().unwrap().len(), 3);

        // Same size, other bytes: DONE.json still looks valid by sizes, the reader hashes.
        let mut tampered = bytes.to_vec();
        let last = tampered.len() - 9;
        tampered[last] ^= 0xff;
        let key = layout::output(&judge(&r), SCORES_FILE);
        store.put(&key, tampered.clone()).unwrap();
        let err = load_row_scores(&store, &r).unwrap_err().to_string();
        for part in [
            key.as_str(),
            &emorg_store::sha256_hex(&bytes),
            &emorg_store::sha256_hex(&tampered),
            "--force",
        ] {
            assert!(err.contains(part), "{part} in {err}");
        }
    }

    /// A row whose sample stage was redone after its judgment: the scores judge answers that are
    /// gone, so they are not read, and the report says why.
    #[test]
    fn scores_of_answers_that_were_redone_since_are_not_loaded() {
        let store = Store::open("memory://").unwrap();
        let r = row(4, true);
        let train = StageRef::Train(r.unit_key.clone());
        let adapter = "adapter/adapter_model.safetensors";
        let trained = commit(&store, &train, adapter, b"w".to_vec(), BTreeMap::new());
        let responses = tables::RESPONSES;
        let read_adapter = BTreeMap::from([(upstream_input_key(&train, adapter), trained)]);
        let sha = commit(
            &store,
            &sample(&r),
            responses,
            b"answers".to_vec(),
            read_adapter.clone(),
        );
        let read = BTreeMap::from([(upstream_input_key(&sample(&r), responses), sha)]);
        let scores = table::to_parquet(&scores_batch()).unwrap().to_vec();
        commit(&store, &judge(&r), SCORES_FILE, scores, read);
        assert!(load_row_scores(&store, &r).unwrap().is_some());
        let loaded = load_rows(&store, std::slice::from_ref(&r)).unwrap();
        assert_eq!(loaded[0].status, CellStatus::Done);
        assert_eq!(loaded[0].scores.len(), 3);

        // Sample redone with other answers: the scores judge answers that are gone.
        store.delete(&layout::done(&sample(&r))).unwrap();
        commit(
            &store,
            &sample(&r),
            responses,
            b"other answers".to_vec(),
            read_adapter,
        );
        assert_eq!(load_row_scores(&store, &r).unwrap(), None);
        let loaded = load_rows(&store, std::slice::from_ref(&r)).unwrap();
        assert!(loaded[0].scores.is_empty());
        match &loaded[0].status {
            CellStatus::Failed(reason) => assert!(
                reason.starts_with("judge is stale:")
                    && reason.contains(&upstream_input_key(&sample(&r), responses)),
                "{reason}"
            ),
            other => panic!("a stale judgment must not count as done: {other:?}"),
        }
    }

    #[test]
    fn statuses_name_the_first_failed_stage_and_rows_that_never_ran() {
        let store = Store::open("memory://").unwrap();
        let (failed, never) = (row(5, true), row(6, true));
        store
            .put_json(
                &layout::failure(&sample(&failed)),
                &serde_json::json!({"error": "CUDA out of memory"}),
            )
            .unwrap();
        // A judge failure after it counts less than the sample's: the first in the chain wins.
        store
            .put_json(
                &layout::failure(&judge(&failed)),
                &serde_json::json!({"error": "no answers"}),
            )
            .unwrap();
        let loaded = load_rows(&store, &[failed, never]).unwrap();
        assert_eq!(
            loaded[0].status,
            CellStatus::Failed("sample: CUDA out of memory".into())
        );
        assert_eq!(loaded[1].status, CellStatus::NotRun);
    }

    #[test]
    fn an_old_layout_store_is_refused_with_the_stores_message() {
        let store = Store::open("memory://").unwrap();
        store
            .put(&format!("{}abc/cell.json", layout::LEGACY_PREFIX), "{}")
            .unwrap();
        let expected = store.check_layout().unwrap_err().to_string();
        let r = row(7, false);
        for err in [
            load_rows(&store, std::slice::from_ref(&r))
                .unwrap_err()
                .to_string(),
            load_row_scores(&store, &r).unwrap_err().to_string(),
        ] {
            assert_eq!(err, expected);
            assert!(err.contains("layout 1"), "{err}");
        }
    }
}
