//! `emorg run`: resolve the sweep, prepare it (inputs checked and uploaded, models fetched), save
//! the sweep record, run its work graph with the local executor (`--only`: one level and those
//! after it; `--cell`: those rows' stages), print the summary per level and build the report.

use std::process::ExitCode;

use anyhow::Result;
use emorg_exec::local::{LocalRun, StageResult, log_root};
use emorg_exec::{Executor, LocalExecutor, LocalResolver, SweepRecord, prepare, worker_path};
use emorg_spec::Stage;

use crate::RunArgs;
use crate::logging;
use crate::plan::table;
use crate::sweep::load_and_resolve_with;

pub fn run(args: &RunArgs) -> Result<ExitCode> {
    let mut extra = Vec::new();
    if let Some(p) = args.parallel {
        extra.push(format!("executor.parallel={p}"));
    }
    if let Some(t) = args.threads {
        extra.push(format!("executor.threads_per_job={t}"));
    }
    let resolver = LocalResolver::from_env();
    let (sweep, resolution) =
        load_and_resolve_with(&args.sweep, &extra, &resolver, args.rerun.replicate())?;
    let worker = worker_path()?;
    let prepared = prepare(sweep, resolution, &resolver)?;
    let sweep = &prepared.sweep;
    let record = SweepRecord::new(sweep, &prepared.cells, &prepared.store_url);
    record.save(&prepared.store)?;
    tracing::info!("sweep {}: run {}", sweep.file.name, record.run_id);

    // --only LEVEL: that level and those after it, where the levels before are done; --cell:
    // the stages of those rows.
    let selection = args
        .rerun
        .selection(&prepared.store, &prepared.graph, &prepared.cells)?;
    let waiting = selection.as_ref().map_or(0, |s| s.waiting.len());
    if let (Some(level), true) = (args.rerun.level(), waiting > 0) {
        tracing::warn!(
            "--only {level}: {waiting} stages are left out, since a stage before the {level} \
             level that they need is not done (run without --only to run it)"
        );
    }
    let only = selection.map(|s| s.only);

    let progress = logging::Bars;
    let executor = LocalExecutor {
        worker,
        parallel: sweep.file.executor.parallel,
        threads: sweep.file.executor.threads_per_job,
        // Per run, so that two launchers on one machine do not write the same log files.
        log_root: log_root().join(format!("{}-{}", record.run_id, std::process::id())),
        take_over: args.take_over,
        progress: &progress,
    };
    let run = executor.launch(&prepared, only.as_ref())?;

    let failed = run.failed();
    logging::suspend(|| {
        println!("{}", summary(&sweep.file.name, &run, waiting));
        for o in &failed {
            if let StageResult::Failed { message, log, tail } = &o.result {
                println!(
                    "FAILED {} ({} {}): {message}\n  log: {}",
                    o.label(),
                    o.stage.stage(),
                    o.stage.short(),
                    log.display()
                );
                for line in tail.iter().rev().take(5).rev() {
                    println!("  | {line}");
                }
            }
        }
    });

    let mut code = if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    if !args.no_report {
        match crate::report::build(&prepared.store, &prepared.store, &record) {
            Ok(location) => println!("report: {location}"),
            Err(e) => {
                logging::suspend(|| eprintln!("error: the report failed: {e:#}"));
                code = ExitCode::from(1);
            }
        }
    }
    Ok(code)
}

/// The run's summary: a line of totals, then a table of stages per level and what happened.
fn summary(sweep: &str, run: &LocalRun, waiting: usize) -> String {
    let ran = |r: &StageResult| matches!(r, StageResult::Succeeded(_));
    let skipped = |r: &StageResult| matches!(r, StageResult::Skipped);
    let failed = |r: &StageResult| matches!(r, StageResult::Failed { .. });
    let claimed = |r: &StageResult| matches!(r, StageResult::Claimed);
    let blocked = |r: &StageResult| matches!(r, StageResult::Blocked);
    let mut out = format!(
        "sweep {sweep}: {} stages ran ({:.1}s), {} already done, {} failed, {} held by another \
         run, {} not run after a failure or a claim",
        run.count(ran),
        run.stage_time().as_secs_f64(),
        run.count(skipped),
        run.count(failed),
        run.count(claimed),
        run.count(blocked),
    );
    if waiting > 0 {
        out.push_str(&format!(
            ", {waiting} left out by --only (an earlier level is not done)"
        ));
    }
    let rows: Vec<Vec<String>> = Stage::ALL
        .iter()
        .map(|&stage| {
            let mut row = vec![stage.to_string()];
            for f in [
                &ran as &dyn Fn(&StageResult) -> bool,
                &skipped,
                &failed,
                &claimed,
                &blocked,
            ] {
                row.push(run.count_at(stage, f).to_string());
            }
            row
        })
        .collect();
    out.push('\n');
    out.push_str(&table(
        &["STAGE", "RAN", "DONE", "FAILED", "CLAIMED", "BLOCKED"],
        &rows,
    ));
    out
}
