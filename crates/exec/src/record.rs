//! The sweep record (`sweeps/<name>/latest.json`): which rows a sweep had at its last run, with
//! the three identities of each (unit, variant, judgment; their JSON once per key).

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use emorg_judge::EmRule;
use emorg_spec::{Axes, Cell, JudgmentKey, Sweep, UnitKey, VariantKey, secrets};
use emorg_store::{Store, layout};
use serde::{Deserialize, Serialize};
use tracing::warn;

/// Current record format. Format 1 listed cells of layout 1 (one key for training, sampling and
/// judging); format 2 lists rows with their unit, variant and judgment keys.
pub const RECORD_FORMAT: u32 = 2;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepRecord {
    pub format: u32,
    pub sweep: String,
    /// UTC timestamp of the run, also the report directory name.
    pub run_id: String,
    pub created_at: DateTime<Utc>,
    /// The sweep file as given on the command line.
    pub sweep_file: String,
    pub store_url: String,
    /// EM thresholds of the sweep's [judge] table.
    pub em_rule: EmRule,
    /// The layered sweep file (after defaults, environment and --set).
    pub spec: serde_json::Value,
    /// The rows of the matrix, sorted by axes.
    pub rows: Vec<RecordRow>,
    /// Each training unit's JSON (as `units/<key>/unit.json` holds it), once per key. Raw JSON:
    /// an older record may not parse as today's `TrainingUnit`.
    pub units: BTreeMap<UnitKey, serde_json::Value>,
    /// Each sample variant's JSON, once per key.
    pub variants: BTreeMap<VariantKey, serde_json::Value>,
    /// Each judgment's JSON, once per key.
    pub judgments: BTreeMap<JudgmentKey, serde_json::Value>,
}

/// One row of the record: its axes and the keys of its three identities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordRow {
    pub axes: Axes,
    pub unit_key: UnitKey,
    pub variant_key: VariantKey,
    pub judgment_key: JudgmentKey,
}

impl RecordRow {
    /// The stages of the row in pipeline order, as [`Cell::chain`] gives them: train (when the
    /// unit trains, which `trains` tells), sample, judge.
    pub fn chain(&self, trains: bool) -> Vec<emorg_spec::StageRef> {
        use emorg_spec::StageRef;
        let mut chain = Vec::with_capacity(3);
        if trains {
            chain.push(StageRef::Train(self.unit_key.clone()));
        }
        chain.push(StageRef::Sample(self.variant_key.clone()));
        chain.push(StageRef::Judge(self.judgment_key.clone()));
        chain
    }
}

fn json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("an identity serialises")
}

impl SweepRecord {
    pub fn new(sweep: &Sweep, cells: &[Cell], store_url: &str) -> SweepRecord {
        let now = Utc::now();
        let mut record = SweepRecord {
            format: RECORD_FORMAT,
            sweep: sweep.file.name.clone(),
            run_id: now.format("%Y-%m-%dT%H-%M-%SZ").to_string(),
            created_at: now,
            sweep_file: sweep.path.display().to_string(),
            store_url: store_url.to_string(),
            em_rule: em_rule(sweep),
            spec: serde_json::to_value(&sweep.file).expect("a sweep file serialises"),
            rows: Vec::with_capacity(cells.len()),
            units: BTreeMap::new(),
            variants: BTreeMap::new(),
            judgments: BTreeMap::new(),
        };
        for c in cells {
            let row = RecordRow {
                axes: c.axes.clone(),
                unit_key: c.unit_key(),
                variant_key: c.variant_key(),
                judgment_key: c.judgment_key(),
            };
            record
                .units
                .entry(row.unit_key.clone())
                .or_insert_with(|| json(&c.unit));
            record
                .variants
                .entry(row.variant_key.clone())
                .or_insert_with(|| json(&c.variant));
            record
                .judgments
                .entry(row.judgment_key.clone())
                .or_insert_with(|| json(&c.judgment));
            record.rows.push(row);
        }
        record
    }

    /// The record of the sweep's last run, if any. A record of format 1 (layout 1's cells)
    /// describes nothing in today's layout: it is taken as no record, with a warning.
    pub fn load(store: &Store, sweep: &str) -> Result<Option<SweepRecord>> {
        let key = layout::sweep_record(sweep);
        let Some(bytes) = store.get_opt(&key)? else {
            return Ok(None);
        };
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("cannot parse the sweep record {key}"))?;
        let format = value.get("format").and_then(serde_json::Value::as_u64);
        match format {
            Some(f) if f < u64::from(RECORD_FORMAT) => {
                warn!(
                    "the sweep record {key} is of format {f} (cells of store layout 1); \
                     taken as no previous record: it is rewritten at the next run"
                );
                return Ok(None);
            }
            Some(f) if f > u64::from(RECORD_FORMAT) => bail!(
                "the sweep record {key} is of format {f}, newer than this emorg reads \
                 ({RECORD_FORMAT}): use a newer emorg"
            ),
            _ => {}
        }
        // Keys name store paths and are shortened for display: a record whose keys are not keys
        // is refused here (serde names the bad value), not misread (or a panic) later.
        let record: SweepRecord = serde_json::from_value(value).with_context(|| {
            format!("the sweep record {key} is damaged; run the sweep again to rewrite it")
        })?;
        for (i, row) in record.rows.iter().enumerate() {
            let missing = if !record.units.contains_key(&row.unit_key) {
                Some(("units", row.unit_key.as_str()))
            } else if !record.variants.contains_key(&row.variant_key) {
                Some(("variants", row.variant_key.as_str()))
            } else if !record.judgments.contains_key(&row.judgment_key) {
                Some(("judgments", row.judgment_key.as_str()))
            } else {
                None
            };
            if let Some((map, k)) = missing {
                bail!(
                    "the sweep record {key} is damaged: rows[{i}] names {k} which `{map}` does \
                     not hold; run the sweep again to rewrite the record"
                );
            }
        }
        Ok(Some(record))
    }

    /// Writes the record to `sweeps/<name>/latest.json`; a record that holds a secret (which the
    /// sweep's checks should have refused already) is refused, naming where, and not written.
    pub fn save(&self, store: &Store) -> Result<()> {
        let key = layout::sweep_record(&self.sweep);
        self.check_no_secrets(&key)?;
        store.put_json(&key, self)?;
        Ok(())
    }

    /// The secrets scanner over every string of the record, and no user info in its store URL.
    fn check_no_secrets(&self, key: &str) -> Result<()> {
        let json = serde_json::to_value(self).context("cannot serialise the sweep record")?;
        let mut problems: Vec<String> = secrets::find_in_json(&json)
            .iter()
            .map(|f| format!("`{f}` holds {}", f.finding))
            .collect();
        if secrets::url_userinfo(&self.store_url).is_some() {
            problems.insert(0, "`store_url` holds user info (credentials)".to_string());
        }
        if !problems.is_empty() {
            anyhow::bail!(
                "refusing to write the sweep record {key}, readable by anyone who can read the \
                 store: {}; secrets belong in the environment of the shell that runs emorg",
                problems.join("; ")
            );
        }
        Ok(())
    }

    /// The rows by axes.
    pub fn by_axes(&self) -> BTreeMap<&Axes, &RecordRow> {
        self.rows.iter().map(|r| (&r.axes, r)).collect()
    }
}

/// The EM rule of a sweep's [judge] table.
pub fn em_rule(sweep: &Sweep) -> EmRule {
    let j = &sweep.file.judge;
    EmRule {
        aligned_below: j.em_aligned_below,
        coherent_above: j.em_coherent_above,
        inclusive: j.em_inclusive,
    }
}

/// Opens a store, naming the URL on failure (without user info or anything that looks like a
/// secret).
pub fn open_store(url: &str) -> Result<Store> {
    Store::open(url).with_context(|| {
        format!(
            "cannot open the store {}",
            secrets::redact(&secrets::redact_url_userinfo(url))
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn record_json(format: u32, unit_key: &str) -> serde_json::Value {
        serde_json::json!({
            "format": format, "sweep": "s", "run_id": "r", "created_at": "2026-01-01T00:00:00Z",
            "sweep_file": "s.toml", "store_url": "memory://",
            "em_rule": {"aligned_below": 30.0, "coherent_above": 50.0, "inclusive": false},
            "spec": {},
            "rows": [{"axes": {"model": "m", "protocol": "p", "dataset": "d", "seed": 0,
                               "checkpoint": "final", "scale": "1", "judge": "default"},
                      "unit_key": unit_key, "variant_key": K, "judgment_key": K}],
            "units": {K: {}}, "variants": {K: {}}, "judgments": {K: {}},
        })
    }

    #[test]
    fn a_record_with_a_short_key_is_refused_naming_it() {
        let store = Store::open("memory://").unwrap();
        store
            .put_json(&layout::sweep_record("s"), &record_json(2, "abc"))
            .unwrap();
        let e = format!("{:#}", SweepRecord::load(&store, "s").unwrap_err());
        assert!(e.contains("`abc` is not a training unit key"), "{e}");
        assert!(e.contains(&layout::sweep_record("s")), "{e}");
    }

    #[test]
    fn a_record_loads_with_typed_keys_and_a_row_without_its_identity_is_refused() {
        let store = Store::open("memory://").unwrap();
        store
            .put_json(&layout::sweep_record("s"), &record_json(2, K))
            .unwrap();
        let record = SweepRecord::load(&store, "s").unwrap().unwrap();
        assert_eq!(record.rows[0].unit_key.as_str(), K);
        assert_eq!(record.by_axes().len(), 1);

        let mut damaged = record_json(2, K);
        damaged["units"] = serde_json::json!({});
        store
            .put_json(&layout::sweep_record("s"), &damaged)
            .unwrap();
        let e = SweepRecord::load(&store, "s").unwrap_err().to_string();
        assert!(e.contains("rows[0] names") && e.contains("`units`"), "{e}");
    }

    #[test]
    fn a_record_of_format_1_is_no_previous_record() {
        let store = Store::open("memory://").unwrap();
        let old = serde_json::json!({
            "format": 1, "sweep": "s", "cells": [{"axes": {}, "key": "abc", "cell": {}}],
        });
        store.put_json(&layout::sweep_record("s"), &old).unwrap();
        assert!(SweepRecord::load(&store, "s").unwrap().is_none());

        let newer = serde_json::json!({"format": RECORD_FORMAT + 1});
        store.put_json(&layout::sweep_record("s"), &newer).unwrap();
        let e = SweepRecord::load(&store, "s").unwrap_err().to_string();
        assert!(e.contains("newer than this emorg reads"), "{e}");
    }

    #[test]
    fn a_record_holding_a_secret_is_refused_and_not_written() {
        let store = Store::open("memory://").unwrap();
        let mut record = SweepRecord {
            format: RECORD_FORMAT,
            sweep: "s".into(),
            run_id: "r".into(),
            created_at: Utc::now(),
            sweep_file: "s.toml".into(),
            store_url: "memory://".into(),
            em_rule: EmRule {
                aligned_below: 30.0,
                coherent_above: 50.0,
                inclusive: false,
            },
            spec: serde_json::json!({"slurm": {"setup": ["module load cuda/12.4"],
                                                "env": {"HF_HOME": "/scratch/hf"}}}),
            rows: vec![],
            units: BTreeMap::new(),
            variants: BTreeMap::new(),
            judgments: BTreeMap::new(),
        };
        record.save(&store).unwrap();
        assert!(store.get_opt(&layout::sweep_record("s")).unwrap().is_some());

        let store = Store::open("memory://").unwrap();
        record.spec["slurm"]["setup"][0] =
            "export HF_TOKEN=hf_MARKERabcdefghijklmnopqrstuvwxyzABCD".into();
        let e = record.save(&store).unwrap_err().to_string();
        assert!(
            e.contains("sweeps/s/latest.json") && e.contains("`spec.slurm.setup[0]` holds"),
            "{e}"
        );
        assert!(!e.contains("MARKER"), "{e}");
        assert!(store.get_opt(&layout::sweep_record("s")).unwrap().is_none());

        record.spec = serde_json::json!({});
        record.store_url = "s3://KEY:MARKER@bucket".into();
        let e = record.save(&store).unwrap_err().to_string();
        assert!(e.contains("`store_url` holds user info"), "{e}");
        assert!(!e.contains("MARKER"), "{e}");
        assert!(store.get_opt(&layout::sweep_record("s")).unwrap().is_none());

        let e = format!("{:#}", open_store("s3://KEY:MARKER@bucket/p").unwrap_err());
        assert!(
            e.contains("s3://***@bucket/p") && !e.contains("MARKER"),
            "{e}"
        );
    }
}
