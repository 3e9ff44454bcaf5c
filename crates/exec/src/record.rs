//! The sweep record (`sweeps/<name>/latest.json`): which cells a sweep had at its last run.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use emorg_judge::EmRule;
use emorg_spec::{Axes, Cell, Sweep};
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

    pub fn save(&self, store: &Store) -> Result<()> {
        store.put_json(&layout::sweep_record(&self.sweep), self)?;
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

/// Opens a store, naming the URL on failure.
pub fn open_store(url: &str) -> Result<Store> {
    Store::open(url).with_context(|| format!("cannot open the store {url}"))
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
}
