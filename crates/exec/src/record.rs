//! The sweep record (`sweeps/<name>/latest.json`): which cells a sweep had at its last run.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use emorg_judge::EmRule;
use emorg_spec::{Axes, Cell, Sweep, secrets};
use emorg_store::{Store, layout};
use serde::{Deserialize, Serialize};

/// Current record format.
pub const RECORD_FORMAT: u32 = 1;

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
    pub cells: Vec<RecordCell>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordCell {
    pub axes: Axes,
    pub key: String,
    /// The resolved cell, as JSON (an older record may not parse as today's [`Cell`]).
    pub cell: serde_json::Value,
}

impl SweepRecord {
    pub fn new(sweep: &Sweep, cells: &[Cell], store_url: &str) -> SweepRecord {
        let now = Utc::now();
        SweepRecord {
            format: RECORD_FORMAT,
            sweep: sweep.file.name.clone(),
            run_id: now.format("%Y-%m-%dT%H-%M-%SZ").to_string(),
            created_at: now,
            sweep_file: sweep.path.display().to_string(),
            store_url: store_url.to_string(),
            em_rule: em_rule(sweep),
            spec: serde_json::to_value(&sweep.file).expect("a sweep file serialises"),
            cells: cells
                .iter()
                .map(|c| RecordCell {
                    axes: c.axes.clone(),
                    key: c.key(),
                    cell: serde_json::to_value(c).expect("a cell serialises"),
                })
                .collect(),
        }
    }

    /// The record of the sweep's last run, if any.
    pub fn load(store: &Store, sweep: &str) -> Result<Option<SweepRecord>> {
        let key = layout::sweep_record(sweep);
        match store.get_opt(&key)? {
            None => Ok(None),
            Some(bytes) => {
                let record: SweepRecord = serde_json::from_slice(&bytes)
                    .with_context(|| format!("cannot parse the sweep record {key}"))?;
                // Keys name store paths and are shortened for display: a record whose key is not
                // a cell key is refused here, not misread (or a panic) later.
                for (i, cell) in record.cells.iter().enumerate() {
                    if cell.key.len() != 64 || !cell.key.bytes().all(|b| b.is_ascii_hexdigit()) {
                        anyhow::bail!(
                            "the sweep record {key} is damaged: cells[{i}].key is {:?}, not a cell \
                             key (64 hex characters); run the sweep again to rewrite the record",
                            cell.key
                        );
                    }
                }
                Ok(Some(record))
            }
        }
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

    /// Previous cell JSON by axes.
    pub fn by_axes(&self) -> BTreeMap<Axes, &RecordCell> {
        self.cells.iter().map(|c| (c.axes.clone(), c)).collect()
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

    #[test]
    fn a_record_with_a_short_cell_key_is_refused_naming_it() {
        let store = Store::open("memory://").unwrap();
        let record = serde_json::json!({
            "format": 1, "sweep": "s", "run_id": "r", "created_at": "2026-01-01T00:00:00Z",
            "sweep_file": "s.toml", "store_url": "memory://",
            "em_rule": {"aligned_below": 30.0, "coherent_above": 50.0, "inclusive": false},
            "spec": {},
            "cells": [{"axes": {"model": "m", "protocol": "p", "dataset": "d", "seed": 0},
                       "key": "abc", "cell": {}}],
        });
        store.put_json(&layout::sweep_record("s"), &record).unwrap();
        let e = SweepRecord::load(&store, "s").unwrap_err().to_string();
        assert!(e.contains("cells[0].key is \"abc\""), "{e}");
        assert!(e.contains(&layout::sweep_record("s")), "{e}");
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
            cells: vec![],
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
