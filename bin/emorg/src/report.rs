//! `emorg report`: the robustness matrix of a sweep's last run.
//!
//! Reads the sweep record (`sweeps/<name>/latest.json`) and each cell's scores from the store given
//! by `--from` (default: `--store`, default: the sweep's `[store].url`), and writes the report to
//! `reports/<name>/<run-id>/` and a copy to `reports/<name>/latest/` in the `--store` store.

use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use emorg_judge::ValidationSummary;
use emorg_report::{
    CellResult, CellStatus, DEFAULT_N_BOOT, build_matrix, load_cell_scores, write_report,
};
use emorg_spec::Stage;
use emorg_store::{Store, layout};

use crate::ReportArgs;
use emorg_exec::record::RecordCell;
use emorg_exec::{StageState, SweepRecord, em_rule, open_store, stage_state};

use crate::sweep::load_sweep;

/// Seed of the bootstrap intervals (fixed, so a report is reproducible).
const REPORT_SEED: u64 = 0;

/// The reason stored in a FAILED.json (worker- or launcher-written), as best as can be found.
fn failure_reason(store: &Store, key: &str, stage: Stage) -> Result<Option<String>> {
    let Some(bytes) = store.get_opt(&layout::failure(key, stage.dir()))? else {
        return Ok(None);
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    let reason = ["error", "message", "reason"]
        .iter()
        .find_map(|k| value.get(k).and_then(|v| v.as_str()).map(str::to_string))
        .unwrap_or_else(|| "see FAILED.json".to_string());
    Ok(Some(format!("{stage}: {reason}")))
}

/// The status and scores of one cell of the record.
fn cell_result(store: &Store, cell: &RecordCell) -> Result<CellResult> {
    let a = &cell.axes;
    let (scores, status) = match load_cell_scores(store, &cell.key) {
        Ok(Some(scores)) => (scores, CellStatus::Done),
        // A judge stage whose scores cannot be read is reported as failed, not as a gap.
        Err(e) => {
            tracing::warn!("cell {}: {e}", &cell.key[..12]);
            (
                Vec::new(),
                CellStatus::Failed(format!("judge scores unreadable: {e}")),
            )
        }
        Ok(None) => {
            let mut status = CellStatus::NotRun;
            for stage in [Stage::Train, Stage::Sample, Stage::Judge] {
                if let Some(reason) = failure_reason(store, &cell.key, stage)? {
                    status = CellStatus::Failed(reason);
                    break;
                }
            }
            // Judged once, from answers (or an adapter) that were redone since: its numbers are
            // not shown; the reason is.
            if status == CellStatus::NotRun
                && let StageState::Stale(reason) = stage_state(store, &cell.key, Stage::Judge)?
            {
                status = CellStatus::Failed(format!("judge is stale: {reason}"));
            }
            (Vec::new(), status)
        }
    };
    Ok(CellResult {
        key: cell.key.clone(),
        model: a.model.clone(),
        protocol: a.protocol.clone(),
        dataset: a.dataset.clone(),
        seed: a.seed,
        status,
        scores,
    })
}

/// The validation figures of the judge that scored `cell` (a cell's JSON), if `emorg judge
/// validate` stored any for exactly this judge (its spec and question file). With several labelled
/// sets, the one with the most items.
fn judge_validation(store: &Store, cell: &serde_json::Value) -> Option<ValidationSummary> {
    let judge: emorg_spec::JudgeSpec = serde_json::from_value(cell.get("judge")?.clone()).ok()?;
    let questions = cell.pointer("/eval/questions_sha256")?.as_str()?;
    let id = emorg_spec::judge_id(&judge, questions);
    let prefix = format!("judges/{id}/validation/");
    let keys = match store.list(&prefix) {
        Ok(keys) => keys,
        Err(e) => {
            tracing::warn!("cannot list {prefix}: {e}");
            return None;
        }
    };
    keys.iter()
        .filter(|k| k.ends_with("/report.json"))
        .filter_map(|k| {
            let v: serde_json::Value = store.get_json(k).ok()?;
            serde_json::from_value::<ValidationSummary>(v.get("summary")?.clone()).ok()
        })
        .max_by_key(|s| s.labelled)
}

/// Builds and writes the report of `record`; returns where it is (the index.html path for a
/// `file://` store, else its URL).
pub fn build(from: &Store, to: &Store, record: &SweepRecord) -> Result<String> {
    let cells = record
        .cells
        .iter()
        .map(|c| cell_result(from, c))
        .collect::<Result<Vec<_>>>()?;
    let matrix = build_matrix(&cells, record.em_rule, DEFAULT_N_BOOT, REPORT_SEED);
    let dir = layout::report_dir(&record.sweep, &record.run_id);
    let title = format!(
        "{}: emergent misalignment robustness ({})",
        record.sweep, record.run_id
    );
    let first = record.cells.first().map(|c| &c.cell);
    let meta = serde_json::json!({
        "sweep": record.sweep,
        "run_id": record.run_id,
        "sweep_file": record.sweep_file,
        "store": record.store_url,
        "cells": record.cells.len(),
        "judge_model": first.and_then(|c| {
            c.pointer("/judge/model/name")
                .or_else(|| c.pointer("/judge/openai/model"))
        }),
        "judge_backend": first.map(|c| {
            if c.pointer("/judge/openai").is_some() { "openai" } else { "local" }
        }),
        "judge_method": first.and_then(|c| c.pointer("/judge/method")),
        "judge_validation": first.and_then(|c| judge_validation(from, c)),
        "worker_version": first.and_then(|c| c.get("worker_version")),
        "em_rule": record.em_rule,
    });
    let paths = write_report(to, &dir, &title, &matrix, &meta)
        .with_context(|| format!("cannot write the report to {dir}"))?;

    // reports/<name>/latest/: a copy of this report, and nothing else.
    let latest = layout::report_dir(&record.sweep, "latest");
    let mut written = to.list(&dir)?;
    // index.html last, as in the report itself.
    written.sort_by_key(|k| k.ends_with("index.html"));
    let mut copied = Vec::new();
    for key in &written {
        let rel = key
            .strip_prefix(&dir)
            .unwrap_or(key)
            .trim_start_matches('/');
        let target = format!("{latest}/{rel}");
        to.put(&target, to.get(key)?)?;
        copied.push(target);
    }
    for stale in to.list(&latest)? {
        if !copied.contains(&stale) {
            to.delete(&stale)?;
        }
    }

    Ok(match paths.local_html {
        Some(path) => path.display().to_string(),
        None => format!("{}/{}", to.url().trim_end_matches('/'), paths.html),
    })
}

pub fn report_cmd(args: &ReportArgs) -> Result<ExitCode> {
    let (name, rule, file_url) = match &args.file {
        Some(file) => {
            let sweep = load_sweep(
                &crate::SweepArgs {
                    file: file.clone(),
                    set: args.set.clone(),
                },
                &[],
            )?;
            (
                sweep.file.name.clone(),
                Some(em_rule(&sweep)),
                Some(sweep.file.store.url.clone()),
            )
        }
        None => (
            args.sweep
                .clone()
                .ok_or_else(|| anyhow!("give a sweep FILE or --sweep NAME"))?,
            None,
            None,
        ),
    };
    let to_url = args
        .store
        .clone()
        .or(file_url)
        .unwrap_or_else(|| "file://results".to_string());
    let from_url = args.from.clone().unwrap_or_else(|| to_url.clone());
    let to = open_store(&to_url)?;
    let from = if from_url == to_url {
        to.clone()
    } else {
        open_store(&from_url)?
    };
    let mut record = SweepRecord::load(&from, &name)?.ok_or_else(|| {
        anyhow!(
            "no record of sweep `{name}` in {from_url} ({} is missing): run `emorg run` first",
            layout::sweep_record(&name)
        )
    })?;
    if let Some(rule) = rule {
        record.em_rule = rule;
    }
    let location = build(&from, &to, &record)?;
    println!("{location}");
    Ok(ExitCode::SUCCESS)
}
