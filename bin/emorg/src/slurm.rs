//! The Slurm commands: `emorg render`, `submit`, `status`, `logs`, `cancel`, `rerun --failed`.
//! Argument handling and printing only; the executor is emorg-slurm's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use emorg_exec::{Executor, LocalResolver, SweepRecord, open_store, prepare};
use emorg_slurm::{
    DEFAULT_MAX_ARRAY_SIZE, SlurmExecutor, StatusReport, absolute_store_url, cli, collect_status,
    placements, shell_quote, submissions,
};
use emorg_spec::{Cell, Stage, Sweep};
use emorg_store::layout;
use tracing::info;

use crate::SweepArgs;
use crate::plan::table;
use crate::sweep::{load_and_resolve, load_sweep};

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
    let rendered = executor.render(&sweep, &resolution.cells, &store, None, &out, &url)?;
    let chunks = rendered.chunks;
    let n: usize = chunks.iter().map(|c| c.jobs.len()).sum();
    println!(
        "sweep {}: {} cells need work; {} array jobs in {} chunks written to {}",
        sweep.file.name,
        rendered.pending,
        n,
        chunks.len(),
        out.display()
    );
    for c in &chunks {
        let mut prev: Option<String> = None;
        for j in &c.jobs {
            let var = format!("JOB_{}_{}", c.name.replace('-', "_"), j.stage);
            let dep = prev
                .as_ref()
                .map(|p| format!(" --dependency=aftercorr:${p}"))
                .unwrap_or_default();
            println!("{var}=$(sbatch --parsable{dep} {})", shell_quote(&j.script));
            prev = Some(var);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `emorg submit SWEEP`, and `emorg rerun --failed` with `only` = the failed cells.
pub fn submit_sweep(
    sweep_args: &SweepArgs,
    only: Option<&BTreeSet<String>>,
    wait: bool,
) -> Result<ExitCode> {
    let t0 = Instant::now();
    let resolver = LocalResolver::from_env();
    let (sweep, resolution) = load_and_resolve(sweep_args, &[], &resolver)?;
    // The cluster first: without Slurm nothing is uploaded.
    let executor = SlurmExecutor::new(&sweep, cli::max_array_size()?)?;
    let prepared = prepare(sweep, resolution, &resolver)?;
    let sweep = &prepared.sweep;
    let Some(submission) = executor.launch(&prepared, only)? else {
        println!(
            "sweep {}: nothing to submit: every stage of every cell{} is done",
            sweep.file.name,
            if only.is_some() { " selected" } else { "" }
        );
        return Ok(ExitCode::SUCCESS);
    };
    SweepRecord::new(sweep, &prepared.cells, &prepared.store_url).save(&prepared.store)?;
    let cells: usize = submission.chunks.iter().map(|c| c.cells.len()).sum();
    let arrays: Vec<String> = submission
        .chunks
        .iter()
        .flat_map(|c| c.jobs.iter().map(|j| format!("{}={}", j.stage, j.job_id)))
        .collect();
    println!(
        "sweep {}: submitted {cells} cells as {} job arrays ({} sbatch calls incl. --test-only checks, {:.2}s): {}",
        sweep.file.name,
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
        if !report.rows.iter().any(|r| r.stages.iter().any(|s| s.live)) {
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

pub fn print_status(sweep: &Sweep, report: &StatusReport) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rows = Vec::new();
    for r in &report.rows {
        let a = &r.axes;
        let mut row = vec![
            a.model.clone(),
            a.protocol.clone(),
            a.dataset.clone(),
            a.seed.to_string(),
            r.key[..12].to_string(),
        ];
        for stage in [Stage::Train, Stage::Sample, Stage::Judge] {
            row.push(match r.stages.iter().find(|s| s.stage == stage) {
                None => "-".into(),
                Some(s) => {
                    *counts.entry(s.state.as_str()).or_default() += 1;
                    match (&s.task, s.state.as_str()) {
                        (_, "done") | (None, _) => s.state.clone(),
                        (Some(t), _) => format!("{} {t}", s.state),
                    }
                }
            });
        }
        rows.push(row);
    }
    let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    println!(
        "sweep {}: {} cells; stages: {}; store {}; slurm: {}",
        sweep.file.name,
        report.rows.len(),
        summary.join(", "),
        sweep.file.store.url,
        report.slurm
    );
    println!(
        "{}",
        table(
            &[
                "MODEL", "PROTOCOL", "DATASET", "SEED", "KEY", "TRAIN", "SAMPLE", "JUDGE"
            ],
            &rows
        )
    );
}

/// A cell selector: a key prefix (hex, 4+ characters) or `axis=value[,axis=value]` over model,
/// protocol, dataset and seed.
pub fn select<'a>(cells: &'a [Cell], selector: &str) -> Result<Vec<&'a Cell>> {
    let selector = selector.trim();
    let matched: Vec<&Cell> = if selector.contains('=') {
        let mut want: Vec<(&str, &str)> = Vec::new();
        for part in selector.split(',') {
            let (k, v) = part
                .split_once('=')
                .with_context(|| format!("bad cell selector part {part:?}: expected AXIS=VALUE"))?;
            let k = k.trim();
            if !["model", "protocol", "dataset", "seed"].contains(&k) {
                bail!(
                    "bad cell selector {selector:?}: `{k}` is not an axis (model, protocol, dataset, seed)"
                );
            }
            want.push((k, v.trim()));
        }
        cells
            .iter()
            .filter(|c| {
                want.iter().all(|(k, v)| match *k {
                    "model" => c.axes.model == *v,
                    "protocol" => c.axes.protocol == *v,
                    "dataset" => c.axes.dataset == *v,
                    _ => c.axes.seed.to_string() == *v,
                })
            })
            .collect()
    } else {
        if selector.len() < 4 || !selector.chars().all(|c| c.is_ascii_hexdigit()) {
            bail!(
                "bad cell selector {selector:?}: give a key prefix of 4+ hex characters or AXIS=VALUE[,AXIS=VALUE] (model, protocol, dataset, seed)"
            );
        }
        let s = selector.to_ascii_lowercase();
        cells.iter().filter(|c| c.key().starts_with(&s)).collect()
    };
    if matched.is_empty() {
        bail!("no cell of the sweep matches {selector:?}");
    }
    Ok(matched)
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
            for c in select(&resolution.cells, sel)? {
                if keys.insert(c.key()) {
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

pub fn logs(args: &crate::LogsArgs) -> Result<ExitCode> {
    let (sweep, resolution) = load_and_resolve(&args.sweep, &[], &LocalResolver::from_env())?;
    let store = open_store(&sweep.file.store.url)?;
    let matched = select(&resolution.cells, &args.cell)?;
    if matched.len() > 1 {
        let list: Vec<String> = matched
            .iter()
            .map(|c| {
                let a = &c.axes;
                format!(
                    "  {} {}/{}/{}/seed{}",
                    &c.key()[..12],
                    a.model,
                    a.protocol,
                    a.dataset,
                    a.seed
                )
            })
            .collect();
        bail!(
            "{:?} matches {} cells; pick one:\n{}",
            args.cell,
            matched.len(),
            list.join("\n")
        );
    }
    let cell = matched[0];
    let key = cell.key();
    let stages: Vec<Stage> = match &args.stage {
        Some(s) => {
            let stage = cell
                .stages()
                .into_iter()
                .find(|st| st.as_str() == s)
                .with_context(|| {
                    format!(
                        "cell {} has no stage `{s}` (its stages: {})",
                        &key[..12],
                        cell.stages()
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
            vec![stage]
        }
        None => cell.stages(),
    };
    let subs = submissions(&store, &sweep.file.name)?;
    let places = placements(&subs);
    for stage in stages {
        let slurm_log = places
            .get(&(key.clone(), stage))
            .and_then(|p| p.last())
            .map(|p| p.job.log_path(p.index));
        match slurm_log.filter(|p| p.is_file()) {
            Some(path) => {
                println!(
                    "==> {stage} of {} (Slurm log {}) <==",
                    &key[..12],
                    path.display()
                );
                print!("{}", std::fs::read_to_string(&path)?);
            }
            None => match store.get_opt(&layout::stage_log(&key, stage.as_str()))? {
                Some(bytes) => {
                    println!(
                        "==> {stage} of {} (store {}) <==",
                        &key[..12],
                        layout::stage_log(&key, stage.as_str())
                    );
                    print!("{}", String::from_utf8_lossy(&bytes));
                }
                None => println!("==> {stage} of {}: no log (not run yet) <==", &key[..12]),
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

pub fn rerun(args: &crate::RerunArgs) -> Result<ExitCode> {
    let (sweep, resolution) = load_and_resolve(&args.sweep, &[], &LocalResolver::from_env())?;
    let store = open_store(&sweep.file.store.url)?;
    let report = collect_status(&sweep, &resolution.cells, &store)?;
    let failed: BTreeSet<String> = report
        .rows
        .iter()
        .filter(|r| r.failed())
        .map(|r| r.key.clone())
        .collect();
    if failed.is_empty() {
        println!("sweep {}: no failed cell", sweep.file.name);
        return Ok(ExitCode::SUCCESS);
    }
    for r in report.rows.iter().filter(|r| failed.contains(&r.key)) {
        let a = &r.axes;
        println!(
            "rerun {} {}/{}/{}/seed{}",
            &r.key[..12],
            a.model,
            a.protocol,
            a.dataset,
            a.seed
        );
    }
    submit_sweep(&args.sweep, Some(&failed), args.wait)
}
