//! The Slurm executor: `emorg render`, `submit`, `status`, `logs`, `cancel`, `rerun --failed`.
//!
//! A submission groups the cells that need work by (resource profile, stages left): the profile is
//! the cell's protocol when `[slurm.protocols]` names it, else the default. Each group is split in
//! chunks of at most MaxArraySize cells, and each chunk gets one job array per stage left, later
//! stages depending element-wise on the earlier one (`--dependency=aftercorr:ID`): task i of every
//! array of a chunk is the same cell, line i+1 of the chunk's cells file. The store stays the truth
//! for done and failed; squeue and sacct add the live state of what was submitted.

mod cli;
mod template;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use emorg_spec::{Axes, Cell, Stage, Sweep};
use emorg_store::{Store, layout};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::SweepArgs;
use crate::plan::table;
use crate::record::{SweepRecord, load_and_resolve, open_store};
use crate::resolver::LocalResolver;
use crate::state::{StageState, stage_state};
use cli::TaskState;
pub use template::{ScriptContext, Templates, shell_quote};

/// Format of the submission record.
pub const SUBMISSION_FORMAT: u32 = 1;
/// MaxArraySize assumed by `render` when no Slurm is reachable (Slurm's default).
const DEFAULT_MAX_ARRAY_SIZE: usize = 1001;

/// `sweeps/<name>/submissions/<id>.json`: what one `emorg submit` sent to Slurm.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Submission {
    pub format: u32,
    pub sweep: String,
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub store_url: String,
    /// Scripts, cells files and Slurm logs of this submission.
    pub dir: String,
    pub max_array_size: usize,
    pub sbatch_calls: usize,
    pub chunks: Vec<Chunk>,
}

/// Cells that share resources and stages left, and their arrays (one per stage).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Chunk {
    pub name: String,
    /// The `[slurm.protocols]` name, or `default`.
    pub profile: String,
    /// Index i of every array of the chunk is `cells[i]`.
    pub cells: Vec<String>,
    pub cells_file: String,
    pub jobs: Vec<ArrayJob>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArrayJob {
    pub stage: Stage,
    /// Empty in a rendered (not submitted) plan.
    pub job_id: String,
    pub script: String,
    /// The Slurm output pattern (`%A`, `%a`).
    pub output: String,
    /// `aftercorr:<id>` on the previous stage of the chunk.
    pub dependency: Option<String>,
}

impl ArrayJob {
    /// The Slurm log of array index `i`.
    pub fn log_path(&self, i: usize) -> PathBuf {
        PathBuf::from(
            self.output
                .replace("%A", &self.job_id)
                .replace("%a", &i.to_string()),
        )
    }
}

/// `file://relative` made absolute: array tasks may not start in this directory.
fn absolute_store_url(url: &str) -> Result<String> {
    if let Some(rest) = url.strip_prefix("file://")
        && !rest.starts_with('/')
    {
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        return Ok(format!("file://{}", cwd.join(rest).display()));
    }
    Ok(url.to_string())
}

/// `[slurm].state_dir`, else `<cache>/emorg/slurm`.
fn state_dir(sweep: &Sweep) -> PathBuf {
    match &sweep.file.slurm.state_dir {
        Some(d) => {
            let p = sweep.resolve_path(d);
            std::path::absolute(&p).unwrap_or(p)
        }
        None => dirs::cache_dir()
            .unwrap_or_else(|| PathBuf::from(".cache"))
            .join("emorg")
            .join("slurm"),
    }
}

/// A planned chunk: (profile, stages, cell keys in index order).
type PlannedChunk = (String, Vec<Stage>, Vec<String>);
/// The stages of a group and its cell keys.
type GroupCells = (Vec<Stage>, Vec<String>);

/// One cell that needs work, and the stages it needs.
struct Pending<'a> {
    cell: &'a Cell,
    key: String,
    stages: Vec<Stage>,
}

fn pending_cells<'a>(
    store: &Store,
    cells: &'a [Cell],
    only: Option<&BTreeSet<String>>,
) -> Result<Vec<Pending<'a>>> {
    let mut out = Vec::new();
    for cell in cells {
        let key = cell.key();
        if only.is_some_and(|o| !o.contains(&key)) {
            continue;
        }
        let mut stages = Vec::new();
        for stage in cell.stages() {
            if stage_state(store, &key, stage)? != StageState::Done {
                stages.push(stage);
            }
        }
        if !stages.is_empty() {
            out.push(Pending { cell, key, stages });
        }
    }
    Ok(out)
}

/// Groups pending cells by (profile, stages) and splits the groups at `max_array_size`.
fn plan_chunks(sweep: &Sweep, pending: &[Pending<'_>], max_array_size: usize) -> Vec<PlannedChunk> {
    let mut groups: BTreeMap<(String, Vec<&'static str>), GroupCells> = BTreeMap::new();
    for p in pending {
        let profile = if sweep
            .file
            .slurm
            .protocols
            .contains_key(&p.cell.axes.protocol)
        {
            p.cell.axes.protocol.clone()
        } else {
            "default".to_string()
        };
        let names = p.stages.iter().map(|s| s.as_str()).collect();
        groups
            .entry((profile, names))
            .or_insert_with(|| (p.stages.clone(), Vec::new()))
            .1
            .push(p.key.clone());
    }
    let mut out = Vec::new();
    for ((profile, _), (stages, keys)) in groups {
        for chunk in keys.chunks(max_array_size.max(1)) {
            out.push((profile.clone(), stages.clone(), chunk.to_vec()));
        }
    }
    out
}

/// Writes the scripts and cells files of a submission into `dir`; returns the chunks (no job ids).
#[allow(clippy::too_many_arguments)]
fn write_scripts(
    sweep: &Sweep,
    templates: &Templates,
    chunks: &[PlannedChunk],
    dir: &Path,
    store_url: &str,
    worker: &str,
) -> Result<Vec<Chunk>> {
    let s = &sweep.file.slurm;
    std::fs::create_dir_all(dir.join("logs"))
        .with_context(|| format!("cannot create {}", dir.join("logs").display()))?;
    let mut out = Vec::new();
    for (n, (profile, stages, keys)) in chunks.iter().enumerate() {
        let name = format!("c{n:03}-{profile}");
        let cells_file = dir.join(format!("{name}.cells"));
        std::fs::write(&cells_file, keys.join("\n") + "\n")
            .with_context(|| format!("cannot write {}", cells_file.display()))?;
        let protocol = if profile == "default" { "" } else { profile };
        let mut jobs = Vec::new();
        for &stage in stages {
            let r = s.effective(protocol, stage);
            let last = keys.len() - 1;
            let array = match s.throttle {
                Some(t) => format!("0-{last}%{t}"),
                None => format!("0-{last}"),
            };
            let output = dir
                .join("logs")
                .join(format!("{name}-{stage}-%A_%a.out"))
                .display()
                .to_string();
            let ctx = ScriptContext {
                sweep: sweep.file.name.clone(),
                stage: stage.as_str().to_string(),
                job_name: format!("emorg-{}-{stage}", sweep.file.name),
                array,
                n_cells: keys.len(),
                output: output.clone(),
                cells_file: cells_file.display().to_string(),
                worker: worker.to_string(),
                store_url: store_url.to_string(),
                threads: r.worker_threads(),
                grace_s: s.grace_s(),
                max_requeues: s.max_requeues(),
                emorg_version: env!("CARGO_PKG_VERSION").to_string(),
                partition: r.partition.clone(),
                account: r.account.clone(),
                qos: r.qos.clone(),
                time: r.time.clone(),
                mem: r.mem.clone(),
                cpus_per_task: r.cpus_per_task,
                gpus: r.gpus.clone(),
                gres: r.gres.clone(),
                constraint: r.constraint.clone(),
                exclusive: r.exclusive.unwrap_or(false),
                setup: r.setup.clone(),
                env: r.env.clone(),
                extra: r.extra.clone(),
            };
            let text = templates.render(stage, &ctx)?;
            let script = dir.join(format!("{name}-{stage}.sbatch"));
            std::fs::write(&script, text)
                .with_context(|| format!("cannot write {}", script.display()))?;
            jobs.push(ArrayJob {
                stage,
                job_id: String::new(),
                script: script.display().to_string(),
                output,
                dependency: None,
            });
        }
        out.push(Chunk {
            name,
            profile: profile.clone(),
            cells: keys.clone(),
            cells_file: cells_file.display().to_string(),
            jobs,
        });
    }
    Ok(out)
}

fn templates_for(sweep: &Sweep) -> Result<Templates> {
    let dir = sweep
        .file
        .slurm
        .templates
        .as_ref()
        .map(|d| sweep.resolve_path(d));
    Templates::load(dir.as_deref())
}

fn worker_for(sweep: &Sweep) -> Result<String> {
    Ok(match &sweep.file.slurm.worker {
        Some(w) => w.clone(),
        None => {
            let w = crate::run::worker_path()?;
            std::path::absolute(&w).unwrap_or(w).display().to_string()
        }
    })
}

/// `emorg render SWEEP [--out DIR]`: the scripts `submit` would send, without Slurm.
pub fn render(args: &crate::RenderArgs) -> Result<ExitCode> {
    let resolver = LocalResolver::from_env();
    let (sweep, resolution) = load_and_resolve(&args.sweep, &[], &resolver)?;
    let templates = templates_for(&sweep)?;
    let store = open_store(&sweep.file.store.url)?;
    let max = match cli::max_array_size() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("note: {e:#}; assuming MaxArraySize = {DEFAULT_MAX_ARRAY_SIZE}");
            DEFAULT_MAX_ARRAY_SIZE
        }
    };
    let pending = pending_cells(&store, &resolution.cells, None)?;
    let chunks = plan_chunks(&sweep, &pending, max);
    let out = match &args.out {
        Some(d) => d.clone(),
        None => PathBuf::from("slurm-render").join(&sweep.file.name),
    };
    let out = std::path::absolute(&out).unwrap_or(out);
    let url = absolute_store_url(&sweep.file.store.url)?;
    let chunks = write_scripts(
        &sweep,
        &templates,
        &chunks,
        &out,
        &url,
        &worker_for(&sweep)?,
    )?;
    let n: usize = chunks.iter().map(|c| c.jobs.len()).sum();
    println!(
        "sweep {}: {} cells need work; {} array jobs in {} chunks written to {}",
        sweep.file.name,
        pending.len(),
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

/// Submits `chunks`' scripts; on any refusal cancels what was already submitted.
fn submit_chunks(chunks: &mut [Chunk]) -> Result<usize> {
    // Every script is checked first (sbatch --test-only: partition, limits, syntax), so that a
    // refusal usually happens before anything is queued.
    let mut calls = 0usize;
    for c in chunks.iter() {
        for j in &c.jobs {
            cli::sbatch(Path::new(&j.script), None, true)?;
            calls += 1;
        }
    }
    let mut submitted: Vec<String> = Vec::new();
    for c in chunks.iter_mut() {
        let mut prev: Option<String> = None;
        for j in c.jobs.iter_mut() {
            match cli::sbatch(Path::new(&j.script), prev.as_deref(), false) {
                Ok(id) => {
                    calls += 1;
                    j.dependency = prev.as_ref().map(|p| format!("aftercorr:{p}"));
                    j.job_id = id.clone();
                    submitted.push(id.clone());
                    prev = Some(id);
                }
                Err(e) => {
                    if let Err(ce) = cli::scancel(&submitted) {
                        warn!(
                            "cannot cancel the jobs already submitted ({}): {ce:#}",
                            submitted.join(" ")
                        );
                    }
                    return Err(e.context(format!(
                        "nothing was recorded; the {} job(s) already submitted were cancelled",
                        submitted.len()
                    )));
                }
            }
        }
    }
    Ok(calls)
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
    let templates = templates_for(&sweep)?;
    let worker = worker_for(&sweep)?;
    let max = cli::max_array_size()?;
    let (store, url) = crate::run::prepare(&sweep, &resolution, &resolver)?;
    let abs_url = absolute_store_url(&url)?;
    let pending = pending_cells(&store, &resolution.cells, only)?;
    if pending.is_empty() {
        println!(
            "sweep {}: nothing to submit: every stage of every cell{} is done",
            sweep.file.name,
            if only.is_some() { " selected" } else { "" }
        );
        return Ok(ExitCode::SUCCESS);
    }
    let plan = plan_chunks(&sweep, &pending, max);
    let id = Utc::now().format("%Y-%m-%dT%H-%M-%S%.3fZ").to_string();
    let dir = state_dir(&sweep).join(&sweep.file.name).join(&id);
    let written = write_scripts(&sweep, &templates, &plan, &dir, &abs_url, &worker);
    let mut chunks = match written {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
    };
    let calls = match submit_chunks(&mut chunks) {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
    };
    let submission = Submission {
        format: SUBMISSION_FORMAT,
        sweep: sweep.file.name.clone(),
        id: id.clone(),
        created_at: Utc::now(),
        store_url: abs_url.clone(),
        dir: dir.display().to_string(),
        max_array_size: max,
        sbatch_calls: calls,
        chunks,
    };
    store.put_json(
        &layout::sweep_submission(&sweep.file.name, &id),
        &submission,
    )?;
    SweepRecord::new(&sweep, &resolution.cells, &url).save(&store)?;
    let arrays: Vec<String> = submission
        .chunks
        .iter()
        .flat_map(|c| c.jobs.iter().map(|j| format!("{}={}", j.stage, j.job_id)))
        .collect();
    println!(
        "sweep {}: submitted {} cells as {} job arrays ({} sbatch calls incl. --test-only checks, {:.2}s): {}",
        sweep.file.name,
        pending.len(),
        arrays.len(),
        calls,
        t0.elapsed().as_secs_f64(),
        arrays.join(" ")
    );
    println!(
        "record: {}; scripts and logs: {}",
        layout::sweep_submission(&sweep.file.name, &id),
        dir.display()
    );
    if !wait {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        let report = collect_status(&sweep, &resolution.cells, &store)?;
        if !report.rows.iter().any(|r| r.stages.iter().any(|s| s.live)) {
            print_status(&sweep, &report);
            return Ok(if report.any_failed() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            });
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Every submission record of a sweep, oldest first.
pub fn submissions(store: &Store, sweep: &str) -> Result<Vec<Submission>> {
    let mut keys = store.list(&layout::sweep_submissions(sweep))?;
    keys.retain(|k| k.ends_with(".json"));
    keys.sort();
    keys.iter()
        .map(|k| {
            store
                .get_json::<Submission>(k)
                .with_context(|| format!("cannot read the submission record {k}"))
        })
        .collect()
}

/// Where a (cell, stage) was last submitted: the job and the index.
struct Placement<'a> {
    job: &'a ArrayJob,
    index: usize,
}

fn placements(subs: &[Submission]) -> BTreeMap<(String, Stage), Placement<'_>> {
    let mut map = BTreeMap::new();
    for s in subs {
        for c in &s.chunks {
            for (i, key) in c.cells.iter().enumerate() {
                for j in &c.jobs {
                    map.insert((key.clone(), j.stage), Placement { job: j, index: i });
                }
            }
        }
    }
    map
}

#[derive(Debug, Clone, Serialize)]
pub struct StageStatus {
    pub stage: Stage,
    /// done, failed, timeout, cancelled, out_of_memory, node_fail, blocked, pending, running, missing
    pub state: String,
    /// The store's view (done, failed, invalid, missing).
    pub store: String,
    /// `ARRAYID_INDEX` of the last submission of this stage.
    pub task: Option<String>,
    pub slurm_state: Option<String>,
    pub reason: Option<String>,
    pub exit_code: Option<String>,
    pub log: Option<String>,
    /// Pending or running in Slurm.
    pub live: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CellStatus {
    pub key: String,
    pub axes: Axes,
    pub stages: Vec<StageStatus>,
}

impl CellStatus {
    /// A stage failed (in the store or in Slurm: failed, timeout, out of memory, node failure).
    pub fn failed(&self) -> bool {
        self.stages.iter().any(|s| {
            matches!(
                s.state.as_str(),
                "failed"
                    | "timeout"
                    | "out_of_memory"
                    | "node_fail"
                    | "boot_fail"
                    | "deadline"
                    | "preempted"
            )
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub sweep: String,
    /// How Slurm was asked: "squeue+sacct", "squeue (accounting disabled)", or why not at all.
    pub slurm: String,
    pub rows: Vec<CellStatus>,
}

impl StatusReport {
    pub fn any_failed(&self) -> bool {
        self.rows.iter().any(CellStatus::failed)
    }
}

fn collect_status(sweep: &Sweep, cells: &[Cell], store: &Store) -> Result<StatusReport> {
    let subs = submissions(store, &sweep.file.name)?;
    let places = placements(&subs);
    let mut ids: Vec<String> = places.values().map(|p| p.job.job_id.clone()).collect();
    ids.sort();
    ids.dedup();
    // Live state from squeue, final state from sacct; each may be unavailable.
    let mut notes = Vec::new();
    let live = if ids.is_empty() {
        BTreeMap::new()
    } else {
        match cli::squeue(&ids) {
            Ok(m) => {
                notes.push("squeue");
                m
            }
            Err(e) => {
                notes.push("no squeue");
                warn!("{e:#}");
                BTreeMap::new()
            }
        }
    };
    let acct = if ids.is_empty() {
        BTreeMap::new()
    } else {
        match cli::sacct(&ids) {
            Ok(Some(m)) => {
                notes.push("sacct");
                m
            }
            Ok(None) => {
                notes.push(
                    "sacct: accounting disabled, so jobs Slurm has forgotten (MinJobAge) show only the store's state",
                );
                BTreeMap::new()
            }
            Err(e) => {
                notes.push("no sacct");
                warn!("{e:#}");
                BTreeMap::new()
            }
        }
    };
    let slurm = if ids.is_empty() {
        "nothing submitted".to_string()
    } else {
        notes.join(", ")
    };

    let mut rows = Vec::new();
    for cell in cells {
        let key = cell.key();
        let mut stages: Vec<StageStatus> = Vec::new();
        for stage in cell.stages() {
            let st = stage_state(store, &key, stage)?;
            let place = places.get(&(key.clone(), stage));
            let task = place.map(|p| format!("{}_{}", p.job.job_id, p.index));
            // squeue is fresher; sacct fills in what squeue no longer holds.
            let ts: Option<TaskState> =
                task.as_ref()
                    .and_then(|t| match (live.get(t), acct.get(t)) {
                        (Some(l), Some(a)) if !l.is_live() => Some(TaskState {
                            exit_code: a.exit_code.clone(),
                            ..l.clone()
                        }),
                        (Some(l), _) => Some(l.clone()),
                        (None, Some(a)) => Some(a.clone()),
                        (None, None) => None,
                    });
            let earlier_failed = stages.iter().any(|s| {
                matches!(
                    s.state.as_str(),
                    "failed" | "timeout" | "cancelled" | "out_of_memory" | "node_fail" | "blocked"
                )
            });
            let is_live = ts.as_ref().is_some_and(TaskState::is_live)
                && ts.as_ref().and_then(|t| t.reason.as_deref())
                    != Some("DependencyNeverSatisfied");
            let state = if st == StageState::Done {
                "done".to_string()
            } else if is_live {
                match ts.as_ref().map(|t| t.state.as_str()) {
                    Some("RUNNING") | Some("COMPLETING") => "running".into(),
                    _ => "pending".into(),
                }
            } else if earlier_failed {
                "blocked".into()
            } else if st == StageState::Failed {
                "failed".into()
            } else {
                match ts.as_ref().map(|t| t.state.as_str()) {
                    Some("COMPLETED") => "failed".into(), // exited 0 without a valid DONE.json
                    Some("CANCELLED") => "cancelled".into(),
                    Some(s) => s.to_ascii_lowercase(),
                    None => "missing".into(),
                }
            };
            stages.push(StageStatus {
                stage,
                state,
                store: st.to_string(),
                task: task.clone(),
                slurm_state: ts.as_ref().map(|t| t.state.clone()),
                reason: ts.as_ref().and_then(|t| t.reason.clone()),
                exit_code: ts.as_ref().and_then(|t| t.exit_code.clone()),
                log: place.map(|p| p.job.log_path(p.index).display().to_string()),
                live: is_live && st != StageState::Done,
            });
        }
        rows.push(CellStatus {
            key,
            axes: cell.axes.clone(),
            stages,
        });
    }
    Ok(StatusReport {
        sweep: sweep.file.name.clone(),
        slurm,
        rows,
    })
}

fn print_status(sweep: &Sweep, report: &StatusReport) {
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
    let sweep = crate::record::load_sweep(&args.sweep, &[])?;
    let store = open_store(&sweep.file.store.url)?;
    let subs = submissions(&store, &sweep.file.name)?;
    let mut ids: Vec<String> = subs
        .iter()
        .flat_map(|s| {
            s.chunks
                .iter()
                .flat_map(|c| c.jobs.iter().map(|j| j.job_id.clone()))
        })
        .collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        println!("sweep {}: nothing was submitted", sweep.file.name);
        return Ok(ExitCode::SUCCESS);
    }
    let live: BTreeSet<String> = cli::squeue(&ids)?
        .into_iter()
        .filter(|(_, s)| s.is_live())
        .map(|(t, _)| t.split('_').next().unwrap_or("").to_string())
        .collect();
    let live: Vec<String> = live.into_iter().collect();
    cli::scancel(&live)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_become_absolute() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            absolute_store_url("file://results").unwrap(),
            format!("file://{}", cwd.join("results").display())
        );
        assert_eq!(absolute_store_url("file:///x").unwrap(), "file:///x");
        assert_eq!(absolute_store_url("s3://b/p").unwrap(), "s3://b/p");
    }

    #[test]
    fn log_paths_expand() {
        let j = ArrayJob {
            stage: Stage::Train,
            job_id: "12".into(),
            script: String::new(),
            output: "/d/logs/c000-default-train-%A_%a.out".into(),
            dependency: None,
        };
        assert_eq!(
            j.log_path(3),
            PathBuf::from("/d/logs/c000-default-train-12_3.out")
        );
    }
}
