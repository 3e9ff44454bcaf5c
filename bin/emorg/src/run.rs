//! `emorg run`: resolve the sweep, prepare it (inputs checked and uploaded, models fetched), save
//! the sweep record, run it with the local executor, print the summary and build the report.

use std::process::ExitCode;

use anyhow::Result;
use emorg_exec::local::{StageResult, log_root};
use emorg_exec::{Executor, LocalExecutor, LocalResolver, SweepRecord, prepare, worker_path};

use crate::RunArgs;
use crate::logging;
use crate::sweep::load_and_resolve;

pub fn run(args: &RunArgs) -> Result<ExitCode> {
    let mut extra = Vec::new();
    if let Some(p) = args.parallel {
        extra.push(format!("executor.parallel={p}"));
    }
    if let Some(t) = args.threads {
        extra.push(format!("executor.threads_per_job={t}"));
    }
    let resolver = LocalResolver::from_env();
    let (sweep, resolution) = load_and_resolve(&args.sweep, &extra, &resolver)?;
    let worker = worker_path()?;
    let prepared = prepare(sweep, resolution, &resolver)?;
    let sweep = &prepared.sweep;
    let record = SweepRecord::new(sweep, &prepared.cells, &prepared.store_url);
    record.save(&prepared.store)?;
    tracing::info!("sweep {}: run {}", sweep.file.name, record.run_id);

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
    let run = executor.launch(&prepared, None)?;

    let succeeded = run.count(|r| matches!(r, StageResult::Succeeded(_)));
    let skipped = run.count(|r| matches!(r, StageResult::Skipped));
    let blocked = run.count(|r| matches!(r, StageResult::Blocked));
    let claimed = run.count(|r| matches!(r, StageResult::Claimed));
    let failed = run.failed();
    logging::suspend(|| {
        println!(
            "sweep {}: {succeeded} stages ran ({:.1}s), {skipped} already done, {} failed, {claimed} held by another run, {blocked} not run after a failure or a claim",
            sweep.file.name,
            run.stage_time().as_secs_f64(),
            failed.len()
        );
        for o in &failed {
            if let StageResult::Failed { message, log, tail } = &o.result {
                let a = &o.axes;
                println!(
                    "FAILED {}/{}/{}/seed{} {} ({}): {message}\n  log: {}",
                    a.model,
                    a.protocol,
                    a.dataset,
                    a.seed,
                    o.stage,
                    &o.key[..12],
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
