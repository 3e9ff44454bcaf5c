//! The Slurm commands: `emorg render`, `submit`, `status`, `logs`, `cancel`, `rerun --failed`.
//! Argument handling and printing only; the executor is emorg-slurm's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use emorg_exec::{Executor, LocalResolver, SweepRecord, WorkGraph, open_store, prepare, rows};
use emorg_slurm::{
    DEFAULT_MAX_ARRAY_SIZE, SlurmExecutor, StatusReport, absolute_store_url, cli, collect_status,
    placements, shell_quote, submissions,
};
use emorg_spec::{Cell, Stage, StageRef, Sweep};
use emorg_store::layout;
use tracing::info;

use crate::SweepArgs;
use crate::plan::table;
use crate::sweep::{load_and_resolve, load_and_resolve_with, load_sweep};

/// `emorg render SWEEP [--out DIR]`: the scripts `submit` would send, without Slurm.
pub fn render(args: &crate::RenderArgs) -> Result<ExitCode> {
    let resolver = LocalResolver::from_env();
    let (sweep, resolution) = load_and_resolve(&args.sweep, &[], &resolver)?;
    let store = open_store(&sweep.file.store.url)?;
    let max = match cli::max_array_size() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("note: {e:#}; assuming MaxArraySize = {DEFAULT_MAX_ARRAY_SIZE}");
            DEFAULT_MAX_ARRAY_SIZE
        }
    };
    let executor = SlurmExecutor::new(&sweep, max)?;
    let out = match &args.out {
        Some(d) => d.clone(),
        None => PathBuf::from("slurm-render").join(&sweep.file.name),
    };
    let out = std::path::absolute(&out).unwrap_or(out);
    let url = absolute_store_url(&sweep.file.store.url)?;
    let graph = WorkGraph::new(&resolution.cells);
    let rendered = executor.render(&sweep, &resolution.cells, &graph, &store, None, &out, &url)?;
    let arrays = rendered.jobs().count();
    println!(
        "sweep {}: {} stages need work; {} array jobs in {} chunks written to {}",
        sweep.file.name,
        rendered.stages,
        arrays,
        rendered.chunks.len(),
        out.display()
    );
    for c in &rendered.chunks {
        for j in &c.jobs {
            let var = |name: &str| format!("JOB_{}", name.replace(['-', '+'], "_"));
            let dep = j
                .after
                .as_ref()
                .map(|a| format!(" --dependency=aftercorr:${}", var(a)))
                .unwrap_or_default();
            println!(
                "{}=$(sbatch --parsable{dep} {})",
                var(&j.name),
                shell_quote(&j.script)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `emorg submit SWEEP`, and `emorg rerun --failed` with `only` = the failed stages and those
/// after them.
pub fn submit_sweep(
    sweep_args: &SweepArgs,
    only: Option<&BTreeSet<StageRef>>,
    wait: bool,
) -> Result<ExitCode> {
    submit_sweep_with(sweep_args, &crate::RerunOpts::default(), only, wait)
}

/// [`submit_sweep`] with `--replicate N` (the identities' salts), `--only LEVEL` (that level
/// and those after it, where the levels before it are done) and `--cell` (those rows' stages):
/// `RerunOpts::selection`, within `only` when both are given.
pub fn submit_sweep_with(
    sweep_args: &SweepArgs,
    rerun: &crate::RerunOpts,
    only: Option<&BTreeSet<StageRef>>,
    wait: bool,
) -> Result<ExitCode> {
    let t0 = Instant::now();
    let resolver = LocalResolver::from_env();
    let (sweep, resolution) = load_and_resolve_with(sweep_args, &[], &resolver, rerun.replicate())?;
    // The cluster first: without Slurm nothing is uploaded.
    let executor = SlurmExecutor::new(&sweep, cli::max_array_size()?)?;
    let prepared = prepare(sweep, resolution, &resolver)?;
    let sweep = &prepared.sweep;
    let selection = rerun.selection(&prepared.store, &prepared.graph, &prepared.cells)?;
    let level_only = match selection {
        None => None,
        Some(selection) => {
            if let (Some(level), false) = (rerun.level(), selection.waiting.is_empty()) {
                eprintln!(
                    "warning: --only {level}: {} stages are left out, since a stage before the \
                     {level} level that they need is not done (submit without --only to run it)",
                    selection.waiting.len()
                );
            }
            Some(match only {
                Some(o) => selection.only.intersection(o).cloned().collect(),
                None => selection.only,
            })
        }
    };
    let only = level_only.as_ref().or(only);
    let Some(submission) = executor.launch(&prepared, only)? else {
        println!(
            "sweep {}: nothing to submit: every stage{} is done",
            sweep.file.name,
            if only.is_some() { " selected" } else { "" }
        );
        return Ok(ExitCode::SUCCESS);
    };
    SweepRecord::new(sweep, &prepared.cells, &prepared.store_url).save(&prepared.store)?;
    let mut per_stage: BTreeMap<Stage, usize> = BTreeMap::new();
    for j in submission.jobs() {
        *per_stage.entry(j.stage).or_default() += j.tasks.len();
    }
    let per_stage: Vec<String> = per_stage.iter().map(|(s, n)| format!("{n} {s}")).collect();
    let arrays: Vec<String> = submission
        .jobs()
        .map(|j| format!("{}={}", j.name, j.job_id))
        .collect();
    println!(
        "sweep {}: submitted {} stages ({}) as {} job arrays ({} sbatch calls incl. --test-only checks, {:.2}s): {}",
        sweep.file.name,
        submission.stages(),
        per_stage.join(", "),
        arrays.len(),
        submission.sbatch_calls,
        t0.elapsed().as_secs_f64(),
        arrays.join(" ")
    );
    println!(
        "record: {}; scripts and logs: {}",
        layout::sweep_submission(&sweep.file.name, &submission.id),
        submission.dir
    );
    if !wait {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        let report = collect_status(sweep, &prepared.cells, &prepared.store)?;
        if !report.any_live() {
            print_status(sweep, &report);
            return Ok(if report.any_failed() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            });
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// One table row per matrix row: its axes, its judgment key, and the state of each of its stages
/// (with the Slurm task when not done); above it the count of distinct stages per state.
pub fn print_status(sweep: &Sweep, report: &StatusReport) {
    let mut rows = Vec::new();
    for r in &report.rows {
        let a = &r.axes;
        let mut row = vec![
            a.model.clone(),
            a.protocol.clone(),
            a.dataset.clone(),
            a.seed.to_string(),
            a.checkpoint.label(),
            a.scale.clone(),
            a.judge.clone(),
            r.judgment.short().to_string(),
        ];
        for stage in Stage::ALL {
            row.push(match r.stages.iter().find(|s| s.stage() == stage) {
                None => "-".into(),
                Some(s) => match (&s.task, s.state.as_str()) {
                    (_, "done") | (None, _) => s.state.clone(),
                    (Some(t), _) => format!("{} {t}", s.state),
                },
            });
        }
        rows.push(row);
    }
    let counts = report.counts();
    let summary: Vec<String> = Stage::ALL
        .iter()
        .filter_map(|&stage| {
            let parts: Vec<String> = counts
                .iter()
                .filter(|((s, _), _)| *s == stage)
                .map(|((_, state), n)| format!("{n} {state}"))
                .collect();
            (!parts.is_empty()).then(|| format!("{stage} {}", parts.join(", ")))
        })
        .collect();
    println!(
        "sweep {}: {} rows, {} stages ({}); store {}; slurm: {}",
        sweep.file.name,
        report.rows.len(),
        report.stages.len(),
        summary.join("; "),
        sweep.file.store.url,
        report.slurm
    );
    println!(
        "{}",
        table(
            &[
                "MODEL",
                "PROTOCOL",
                "DATASET",
                "SEED",
                "CHECKPOINT",
                "SCALE",
                "JUDGE",
                "KEY",
                "TRAIN",
                "SAMPLE",
                "JUDGED"
            ],
            &rows
        )
    );
}

pub fn status(args: &crate::StatusArgs) -> Result<ExitCode> {
    let (sweep, resolution) = load_and_resolve(&args.sweep, &[], &LocalResolver::from_env())?;
    let store = open_store(&sweep.file.store.url)?;
    let cells: Vec<Cell> = if args.cell.is_empty() {
        resolution.cells.clone()
    } else {
        let mut keys = BTreeSet::new();
        let mut out = Vec::new();
        for sel in &args.cell {
            for c in rows::select(&resolution.cells, sel)? {
                if keys.insert(c.judgment_key()) {
                    out.push(c.clone());
                }
            }
        }
        out
    };
    let report = collect_status(&sweep, &cells, &store)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_status(&sweep, &report);
    }
    Ok(ExitCode::SUCCESS)
}

fn row_label(c: &Cell) -> String {
    let a = &c.axes;
    format!(
        "{} {}/{}/{}/seed{} {} x{} judge {}",
        c.judgment_key().short(),
        a.model,
        a.protocol,
        a.dataset,
        a.seed,
        a.checkpoint,
        a.scale,
        a.judge
    )
}

/// `emorg logs SWEEP SELECTOR [STAGE]`: the logs of the stages of the selected rows (one stage
/// per level: a selector that reaches two samples must say which).
pub fn logs(args: &crate::LogsArgs) -> Result<ExitCode> {
    let (sweep, resolution) = load_and_resolve(&args.sweep, &[], &LocalResolver::from_env())?;
    let store = open_store(&sweep.file.store.url)?;
    let matched = rows::select(&resolution.cells, &args.cell)?;
    let wanted: Option<Stage> = match &args.stage {
        Some(s) => Some(
            Stage::parse(s)
                .with_context(|| format!("`{s}` is not a stage (train, sample, judge)"))?,
        ),
        None => None,
    };
    // The distinct stages of the matched rows, per level.
    let mut levels: BTreeMap<Stage, BTreeSet<StageRef>> = BTreeMap::new();
    for c in &matched {
        for s in c.chain() {
            if wanted.is_none_or(|w| w == s.stage()) {
                levels.entry(s.stage()).or_default().insert(s);
            }
        }
    }
    if let Some(w) = wanted
        && !levels.contains_key(&w)
    {
        bail!(
            "{:?} matches rows whose units do not train: they have no stage `{w}` (their stages: \
             sample, judge)",
            args.cell
        );
    }
    if let Some((level, many)) = levels.iter().find(|(_, s)| s.len() > 1) {
        let list: Vec<String> = matched
            .iter()
            .map(|c| format!("  {}", row_label(c)))
            .collect();
        bail!(
            "{:?} matches {} rows with {} different {level} stages; pick one (a key prefix, more \
             axes, or a stage that they share):\n{}",
            args.cell,
            matched.len(),
            many.len(),
            list.join("\n")
        );
    }
    let subs = submissions(&store, &sweep.file.name)?;
    let places = placements(&subs);
    for stage in levels.into_values().flatten() {
        let slurm_log = places
            .get(&stage)
            .and_then(|p| p.last())
            .map(|p| p.job.log_path(p.index));
        match slurm_log.filter(|p| p.is_file()) {
            Some(path) => {
                println!("==> {stage} (Slurm log {}) <==", path.display());
                print!("{}", std::fs::read_to_string(&path)?);
            }
            None => match store.get_opt(&layout::stage_log(&stage))? {
                Some(bytes) => {
                    println!("==> {stage} (store {}) <==", layout::stage_log(&stage));
                    print!("{}", String::from_utf8_lossy(&bytes));
                }
                None => println!("==> {stage}: no log (not run yet) <=="),
            },
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn cancel(args: &crate::CancelArgs) -> Result<ExitCode> {
    let sweep = load_sweep(&args.sweep, &[])?;
    let store = open_store(&sweep.file.store.url)?;
    let Some(live) = emorg_slurm::cancel(&store, &sweep.file.name)? else {
        println!("sweep {}: nothing was submitted", sweep.file.name);
        return Ok(ExitCode::SUCCESS);
    };
    info!("scancel {}", live.join(" "));
    println!(
        "sweep {}: cancelled {} job arrays with pending or running tasks ({})",
        sweep.file.name,
        live.len(),
        live.join(" ")
    );
    Ok(ExitCode::SUCCESS)
}

/// `emorg rerun SWEEP --failed`: submits the failed stages again (failed, timed out, out of
/// memory, node failure; not cancelled ones), with the stages after them that are not done.
pub fn rerun(args: &crate::RerunArgs) -> Result<ExitCode> {
    let (sweep, resolution) = load_and_resolve(&args.sweep, &[], &LocalResolver::from_env())?;
    let store = open_store(&sweep.file.store.url)?;
    let report = collect_status(&sweep, &resolution.cells, &store)?;
    let graph = WorkGraph::new(&resolution.cells);
    let (failed, only) = report.failed_and_after(&graph);
    if failed.is_empty() {
        println!("sweep {}: no failed stage", sweep.file.name);
        return Ok(ExitCode::SUCCESS);
    }
    for s in &failed {
        let status = report.stages.iter().find(|x| x.of == *s);
        println!(
            "rerun {s} ({}{})",
            status.map_or("failed", |x| x.state.as_str()),
            status
                .and_then(|x| x.task.as_ref())
                .map(|t| format!(", task {t}"))
                .unwrap_or_default()
        );
    }
    if only.len() > failed.len() {
        println!(
            "and the {} stages after them that are not done",
            only.len() - failed.len()
        );
    }
    submit_sweep(&args.sweep, Some(&only), args.wait)
}
