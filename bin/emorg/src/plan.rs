//! `emorg plan`: the cells of a sweep, their state in the store, and why they would run.

use std::process::ExitCode;

use anyhow::Result;
use emorg_spec::{Stage, explain_values};

use emorg_exec::{LocalResolver, StageState, SweepRecord, cell_states, open_store};

use crate::PlanArgs;
use crate::sweep::load_and_resolve;

/// Left-aligned text table.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

pub fn plan(args: &PlanArgs) -> Result<ExitCode> {
    let (sweep, resolution) = load_and_resolve(&args.sweep, &[], &LocalResolver::from_env())?;
    let cells = resolution.cells;
    let store = open_store(&sweep.file.store.url)?;
    let previous = if args.explain {
        SweepRecord::load(&store, &sweep.file.name)?
    } else {
        None
    };
    let previous = previous.as_ref().map(|r| r.by_axes());

    let stages = [Stage::Train, Stage::Sample, Stage::Judge];
    let mut rows = Vec::new();
    let mut whys = Vec::new();
    let (mut to_run, mut stages_to_run) = (0usize, 0usize);
    for cell in &cells {
        let key = cell.key();
        let states = cell_states(&store, cell, &key)?;
        let pending = states.iter().filter(|(_, s)| !s.is_done()).count();
        let runs = pending > 0;
        if runs {
            to_run += 1;
            stages_to_run += pending;
        }
        let mut row = vec![
            cell.axes.model.clone(),
            cell.axes.protocol.clone(),
            cell.axes.dataset.clone(),
            cell.axes.seed.to_string(),
            key[..12].to_string(),
        ];
        for stage in stages {
            row.push(
                states
                    .iter()
                    .find(|(s, _)| *s == stage)
                    .map_or("-".to_string(), |(_, st)| st.to_string()),
            );
        }
        row.push(if runs { "yes".into() } else { "no".into() });
        rows.push(row);

        if args.explain && runs {
            let why = match previous.as_ref().and_then(|p| p.get(&cell.axes)) {
                None => vec!["new".to_string()],
                Some(prev) if prev.key == key => {
                    // Same inputs: say what is left to do.
                    states
                        .iter()
                        .filter(|(_, s)| !s.is_done())
                        .map(|(stage, s)| match s {
                            StageState::Failed => format!("{stage} failed"),
                            StageState::Invalid(reason) => {
                                format!("{stage} DONE.json invalid: {reason}")
                            }
                            StageState::Stale(reason) => format!("{stage} stale: {reason}"),
                            _ => format!("{stage} not done"),
                        })
                        .collect()
                }
                Some(prev) => {
                    let current = serde_json::to_value(cell)?;
                    let mut why = explain_values(&prev.cell, &current);
                    if why.is_empty() {
                        why.push("key changed".into());
                    }
                    why
                }
            };
            whys.push((cell.axes.clone(), key[..12].to_string(), why));
        }
    }

    println!(
        "sweep {}: {} cells, {} to run ({} stages); store {}",
        sweep.file.name,
        cells.len(),
        to_run,
        stages_to_run,
        sweep.file.store.url
    );
    println!(
        "{}",
        table(
            &[
                "MODEL", "PROTOCOL", "DATASET", "SEED", "KEY", "TRAIN", "SAMPLE", "JUDGE", "RUN"
            ],
            &rows
        )
    );
    if args.explain {
        if whys.is_empty() {
            println!("\nnothing to run: every stage is done");
        } else {
            println!("\nwhy:");
            for (axes, key, why) in whys {
                println!(
                    "  {}/{}/{}/seed{} ({key}): {}",
                    axes.model,
                    axes.protocol,
                    axes.dataset,
                    axes.seed,
                    why.join("; ")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
