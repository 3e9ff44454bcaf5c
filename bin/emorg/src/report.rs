//! `emorg report`: the robustness matrix of a sweep's last run.
//!
//! Reads the sweep record (`sweeps/<name>/latest.json`: its rows, each with its axes and the keys
//! of its unit, variant and judgment) and each row's scores from the store given by `--from`
//! (default: `--store`, default: the sweep's `[store].url`), and writes the report to
//! `reports/<name>/<run-id>/` and a copy to `reports/<name>/latest/` in the `--store` store.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use emorg_judge::ValidationSummary;
use emorg_report::{DEFAULT_N_BOOT, RowRef, build_matrix, load_rows, write_report};
use emorg_store::{Store, layout};

use crate::ReportArgs;
use emorg_exec::record::RecordRow;
use emorg_exec::{SweepRecord, em_rule, open_store};

use crate::sweep::load_sweep;

/// Seed of the bootstrap intervals (fixed, so a report is reproducible).
const REPORT_SEED: u64 = 0;

/// A record row as the report reads it: whether its unit trains comes from the unit's JSON in
/// the record (a base model's unit has protocol kind `base` and no train stage).
fn row_ref(record: &SweepRecord, row: &RecordRow) -> RowRef {
    let kind = record
        .units
        .get(&row.unit_key)
        .and_then(|u| u.pointer("/protocol/kind"))
        .and_then(|k| k.as_str());
    RowRef {
        axes: row.axes.clone(),
        unit_key: row.unit_key.clone(),
        variant_key: row.variant_key.clone(),
        judgment_key: row.judgment_key.clone(),
        trains: kind.is_some_and(|k| k != "base"),
    }
}

/// The validation figures of `judge` (a judgment's judge spec as JSON) for the question file
/// `questions_sha256`, if `emorg judge validate` stored any for exactly this judge. With several
/// labelled sets, the one with the most items.
fn judge_validation(
    store: &Store,
    judge: &serde_json::Value,
    questions_sha256: &str,
) -> Option<ValidationSummary> {
    let judge: emorg_spec::JudgeSpec = serde_json::from_value(judge.clone()).ok()?;
    let id = emorg_spec::judge_id(&judge, questions_sha256);
    // `judges/<id>/validation/`: every labelled set's validation of this judge
    let prefix = format!("{}/", layout::judge_validation(&id, "", ""));
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

/// Per judge name (in row order): its model, backend, method and validation figures, from the
/// first row it judged.
fn judges_meta(from: &Store, record: &SweepRecord) -> BTreeMap<String, serde_json::Value> {
    let mut out = BTreeMap::new();
    for row in &record.rows {
        if out.contains_key(&row.axes.judge) {
            continue;
        }
        let Some(judge) = record
            .judgments
            .get(&row.judgment_key)
            .and_then(|j| j.get("judge"))
        else {
            continue;
        };
        let questions = record
            .variants
            .get(&row.variant_key)
            .and_then(|v| v.get("questions_sha256"))
            .and_then(|q| q.as_str());
        let validation = questions.and_then(|q| judge_validation(from, judge, q));
        out.insert(
            row.axes.judge.clone(),
            serde_json::json!({
                "model": judge
                    .pointer("/model/name")
                    .or_else(|| judge.pointer("/openai/model")),
                "backend": if judge.get("openai").is_some() { "openai" } else { "local" },
                "method": judge.get("method"),
                "validation": validation,
            }),
        );
    }
    out
}

/// Builds and writes the report of `record`; returns where it is (the index.html path for a
/// `file://` store, else its URL).
pub fn build(from: &Store, to: &Store, record: &SweepRecord) -> Result<String> {
    let rows: Vec<RowRef> = record.rows.iter().map(|r| row_ref(record, r)).collect();
    // Refuses a store in another layout with the store's message, then reads each row's chain.
    let cells = load_rows(from, &rows)?;
    let matrix = build_matrix(&cells, record.em_rule, DEFAULT_N_BOOT, REPORT_SEED);
    let dir = layout::report_dir(&record.sweep, &record.run_id);
    let title = format!(
        "{}: emergent misalignment robustness ({})",
        record.sweep, record.run_id
    );
    let judges = judges_meta(from, record);
    // One judge: its figures at the top level too (`judge_model`, ...), as before judges had names.
    let one = (judges.len() == 1)
        .then(|| judges.values().next())
        .flatten();
    let first_unit = record
        .rows
        .first()
        .and_then(|r| record.units.get(&r.unit_key));
    let meta = serde_json::json!({
        "sweep": record.sweep,
        "run_id": record.run_id,
        "sweep_file": record.sweep_file,
        "store": record.store_url,
        "rows": record.rows.len(),
        "units": record.units.len(),
        "variants": record.variants.len(),
        "judgments": record.judgments.len(),
        "judges": judges,
        "judge_model": one.and_then(|j| j.get("model")),
        "judge_backend": one.and_then(|j| j.get("backend")),
        "judge_method": one.and_then(|j| j.get("method")),
        "judge_validation": one.and_then(|j| j.get("validation")),
        "worker_version": first_unit.and_then(|u| u.get("worker_version")),
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
    // A store in another layout is refused with its own message (naming the layout found and
    // what to do), before its old record could read as "no record".
    from.check_layout()?;
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
