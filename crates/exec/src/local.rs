//! `emorg run`: the local executor.
//!
//! 1. resolve the sweep; check datasets (chat JSONL validation) and the question file;
//! 2. make sure the models are in the local cache (fetch the missing ones);
//! 3. upload inputs to the store, content-addressed (skipped when present), and each `cell.json`
//!    (its canonical JSON, whose sha256 is the key; skipped when present);
//! 4. write the sweep record `sweeps/<name>/latest.json`;
//! 5. run the cells on a pool of `parallel` threads; each cell runs its stages in order as
//!    `emorg-worker <stage> --store URL --cell KEY --threads T`, skipping stages whose DONE.json is
//!    valid and stopping at the first failure (other cells go on). Each stage's stdout+stderr goes
//!    to `<cache>/emorg/logs/<key>/<stage>.log` and is uploaded to `cells/<key>/logs/<stage>.log`;
//! 6. build the report (unless `--no-report`).

use std::collections::{BTreeSet, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use emorg_models::{CacheState, FetchOptions};
use emorg_spec::{Axes, Cell, InputKind, Stage};
use emorg_store::{DoneState, Store, layout};
use indicatif::ProgressStyle;
use tracing::{Span, error, info, warn};
use tracing_indicatif::span_ext::IndicatifSpanExt;

use crate::RunArgs;
use crate::logging;
use crate::record::{SweepRecord, load_and_resolve, open_store};
use crate::resolver::LocalResolver;
use crate::state::{StageState, stage_state};

/// How often a running stage's last line is logged when there are no progress bars.
const HEARTBEAT: Duration = Duration::from_secs(60);
/// Lines of a failed stage's output kept in the failure record and shown at the end.
const TAIL_LINES: usize = 20;

/// The worker binary: `EMORG_WORKER`, else `emorg-worker` next to this executable.
pub fn worker_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("EMORG_WORKER").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("cannot find the current executable")?;
    let worker = exe.with_file_name(format!("emorg-worker{}", std::env::consts::EXE_SUFFIX));
    if worker.is_file() {
        Ok(worker)
    } else {
        bail!(
            "the worker binary is not at {} (build it with `cargo build --release -p emorg-worker`, \
             or set EMORG_WORKER to its path)",
            worker.display()
        )
    }
}

/// Local directory for stage logs: `<cache dir>/emorg/logs`.
pub fn log_root() -> PathBuf {
    dirs::cache_dir()
        .unwrap_or_else(|| PathBuf::from(".cache"))
        .join("emorg")
        .join("logs")
}

/// Removes ANSI escape sequences (`ESC [ ... letter`) and other control characters but tabs.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else if !c.is_control() || c == '\t' {
            out.push(c);
        }
    }
    out
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

#[derive(Debug, Clone)]
enum StageResult {
    Skipped,
    Succeeded(Duration),
    Failed {
        message: String,
        log: PathBuf,
        tail: Vec<String>,
    },
    /// Not run because an earlier stage of the cell failed.
    Blocked,
}

#[derive(Debug, Clone)]
struct Outcome {
    axes: Axes,
    key: String,
    stage: Stage,
    result: StageResult,
}

struct Exec<'a> {
    store: &'a Store,
    worker: &'a Path,
    url: &'a str,
    threads: usize,
    log_root: PathBuf,
    bars: bool,
    run_span: Span,
    total: usize,
    finished: AtomicUsize,
    outcomes: Mutex<Vec<Outcome>>,
}

impl Exec<'_> {
    fn record(&self, cell: &Cell, key: &str, stage: Stage, result: StageResult) {
        let counts = !matches!(result, StageResult::Skipped);
        self.outcomes.lock().expect("outcomes lock").push(Outcome {
            axes: cell.axes.clone(),
            key: key.to_string(),
            stage,
            result,
        });
        if counts {
            let n = self.finished.fetch_add(1, Ordering::SeqCst) + 1;
            if self.bars {
                self.run_span.pb_inc(1);
            } else {
                info!("progress: {n}/{} stages finished", self.total);
            }
        }
    }

    /// Runs a cell's stages in order; stops at the first failure.
    fn run_cell(&self, cell: &Cell) {
        let key = cell.key();
        let stages = cell.stages();
        for (i, &stage) in stages.iter().enumerate() {
            match self.store.read_done(&key, stage.dir()) {
                Ok(DoneState::Valid(_)) => {
                    self.record(cell, &key, stage, StageResult::Skipped);
                    continue;
                }
                Ok(DoneState::Invalid { reason }) => {
                    warn!(cell = %&key[..12], %stage, "DONE.json is invalid ({reason}); running the stage again")
                }
                Ok(DoneState::Missing) => {}
                Err(e) => {
                    warn!(cell = %&key[..12], %stage, "cannot read DONE.json: {e}; running the stage")
                }
            }
            let result = self.run_stage(cell, &key, stage);
            let failed = matches!(result, StageResult::Failed { .. });
            self.record(cell, &key, stage, result);
            if failed {
                for &later in &stages[i + 1..] {
                    self.record(cell, &key, later, StageResult::Blocked);
                }
                return;
            }
        }
    }

    fn run_stage(&self, cell: &Cell, key: &str, stage: Stage) -> StageResult {
        let short = &key[..12];
        let a = &cell.axes;
        let label = format!("{}/{}/{}/seed{}", a.model, a.protocol, a.dataset, a.seed);
        let span = tracing::info_span!(
            parent: &self.run_span,
            "stage",
            indicatif.pb_show = tracing::field::Empty,
            cell = %short,
            stage = %stage,
        );
        if self.bars {
            span.pb_set_style(
                &ProgressStyle::with_template(
                    "{span_child_prefix}{spinner} {span_fields} [{elapsed}] {wide_msg}",
                )
                .expect("a valid template"),
            );
            span.pb_set_message(&label);
        }
        let _entered = span.enter();
        info!("{label}: started");

        let log_path = self.log_root.join(key).join(format!("{stage}.log"));
        let started = Instant::now();
        let result = self.spawn_and_wait(key, stage, &log_path, &span);

        // The log goes to the store whatever happened.
        if log_path.is_file()
            && let Err(e) = self
                .store
                .put_file(&layout::stage_log(key, stage.as_str()), &log_path)
        {
            warn!("cannot upload the log {}: {e}", log_path.display());
        }

        let (status, tail) = match result {
            Ok(x) => x,
            Err(e) => {
                let message = format!("{e:#}");
                error!("{label}: {stage} could not run: {message}");
                self.write_failure(key, stage, &message, &[]);
                return StageResult::Failed {
                    message,
                    log: log_path,
                    tail: vec![],
                };
            }
        };
        let elapsed = started.elapsed();
        if status.success() {
            match self.store.read_done(key, stage.dir()) {
                Ok(DoneState::Valid(_)) => {
                    info!("{label}: {stage} done in {:.1}s", elapsed.as_secs_f64());
                    return StageResult::Succeeded(elapsed);
                }
                Ok(other) => {
                    let state = match other {
                        DoneState::Invalid { reason } => format!("invalid ({reason})"),
                        _ => "missing".into(),
                    };
                    let message = format!("the worker exited 0 but DONE.json is {state}");
                    error!("{label}: {stage} failed: {message}");
                    self.write_failure(key, stage, &message, &tail);
                    return StageResult::Failed {
                        message,
                        log: log_path,
                        tail,
                    };
                }
                Err(e) => {
                    let message = format!("cannot read DONE.json after the stage: {e}");
                    error!("{label}: {stage} failed: {message}");
                    return StageResult::Failed {
                        message,
                        log: log_path,
                        tail,
                    };
                }
            }
        }
        let message = format!("the worker {status} after {:.1}s", elapsed.as_secs_f64());
        error!(
            "{label}: {stage} failed: {message} (log: {})",
            log_path.display()
        );
        self.write_failure(key, stage, &message, &tail);
        StageResult::Failed {
            message,
            log: log_path,
            tail,
        }
    }

    /// Runs the worker, teeing its output into the log; returns its status and last lines.
    fn spawn_and_wait(
        &self,
        key: &str,
        stage: Stage,
        log_path: &Path,
        span: &Span,
    ) -> Result<(ExitStatus, Vec<String>)> {
        if let Some(dir) = log_path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let log = File::create(log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let log = Arc::new(Mutex::new(log));
        // A failure record of an earlier attempt no longer describes the stage.
        if let Err(e) = self.store.delete(&layout::failure(key, stage.dir())) {
            warn!("cannot delete an old FAILED.json: {e}");
        }

        let mut cmd = Command::new(self.worker);
        cmd.arg(stage.as_str())
            .arg("--store")
            .arg(self.url)
            .arg("--cell")
            .arg(key)
            .arg("--threads")
            .arg(self.threads.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        {
            let mut f = log.lock().expect("log lock");
            writeln!(f, "[emorg] {:?}", cmd).ok();
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", self.worker.display()))?;

        let tail = Arc::new(Mutex::new(VecDeque::<String>::new()));
        let pump = |stream: Box<dyn Read + Send>| {
            let log = Arc::clone(&log);
            let tail = Arc::clone(&tail);
            let span = span.clone();
            let bars = self.bars;
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match reader.read_until(b'\n', &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    let line = strip_ansi(String::from_utf8_lossy(&buf).trim_end());
                    if let Ok(mut f) = log.lock() {
                        let _ = writeln!(f, "{line}");
                    }
                    if line.trim().is_empty() {
                        continue;
                    }
                    if bars {
                        span.pb_set_message(&truncate(&line, 120));
                    }
                    let mut t = tail.lock().expect("tail lock");
                    if t.len() == TAIL_LINES {
                        t.pop_front();
                    }
                    t.push_back(line);
                }
            })
        };
        let out = pump(Box::new(child.stdout.take().expect("piped stdout")));
        let err = pump(Box::new(child.stderr.take().expect("piped stderr")));

        let mut last_beat = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().context("cannot wait for the worker")? {
                break status;
            }
            if !self.bars && last_beat.elapsed() >= HEARTBEAT {
                last_beat = Instant::now();
                let last = tail
                    .lock()
                    .expect("tail lock")
                    .back()
                    .cloned()
                    .unwrap_or_default();
                info!("running: {}", truncate(&last, 200));
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let _ = out.join();
        let _ = err.join();
        {
            let mut f = log.lock().expect("log lock");
            writeln!(f, "[emorg] the worker {status}").ok();
            f.flush().ok();
        }
        let tail = tail.lock().expect("tail lock").iter().cloned().collect();
        Ok((status, tail))
    }

    /// Writes FAILED.json when the worker did not (it crashed, was killed, or could not start).
    fn write_failure(&self, key: &str, stage: Stage, message: &str, tail: &[String]) {
        let failure_key = layout::failure(key, stage.dir());
        match self.store.exists(&failure_key) {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                warn!("cannot check {failure_key}: {e}");
                return;
            }
        }
        let record = serde_json::json!({
            "cell_key": key,
            "stage": stage.as_str(),
            "stage_dir": stage.dir(),
            "error": message,
            "log": layout::stage_log(key, stage.as_str()),
            "tail": tail,
            "failed_at": chrono::Utc::now(),
            "written_by": "emorg run",
        });
        if let Err(e) = self.store.put_json(&failure_key, &record) {
            warn!("cannot write {failure_key}: {e}");
        }
    }
}

/// Fetches the registry models that are not in the local cache (the worker reads them there).
pub fn ensure_models<'a>(
    resolver: &LocalResolver,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<()> {
    for name in names {
        let entry = resolver.registry.get(name)?;
        match resolver.registry.cache_state(entry) {
            CacheState::Missing | CacheState::Corrupt => {
                info!(
                    "fetching model {name} into {}",
                    resolver.registry.cache_dir().display()
                );
                let report = resolver.registry.fetch(name, &FetchOptions::default())?;
                info!("{report}");
            }
            CacheState::Verified | CacheState::Unverified => {}
        }
    }
    Ok(())
}

/// What every executor does before a stage runs: checks the inputs (chat JSONL, question file),
/// fetches missing models into the local cache, uploads the inputs (content-addressed) and each
/// `cell.json` to the store (skipped when present). Returns the store and its URL.
pub fn prepare(
    sweep: &emorg_spec::Sweep,
    resolution: &emorg_spec::Resolution,
    resolver: &LocalResolver,
) -> Result<(Store, String)> {
    // Inputs must be sound before anything is uploaded.
    for input in &resolution.inputs {
        match input.kind {
            InputKind::Dataset => {
                let report = emorg_data::validate_chat_jsonl(&input.path);
                if report.has_errors() {
                    bail!(
                        "dataset `{}` is not valid chat JSONL:\n{report}",
                        input.name
                    );
                }
                if report.warnings().next().is_some() {
                    warn!("dataset `{}`:\n{report}", input.name);
                }
            }
            InputKind::Questions => {
                emorg_data::load_questions(&input.path)?;
            }
        }
    }

    // Models in the local cache (the worker reads them from there).
    let mut models: BTreeSet<&str> = resolution
        .cells
        .iter()
        .map(|c| c.model.name.as_str())
        .collect();
    // A judge behind an API needs no local model.
    models.extend(
        resolution
            .cells
            .iter()
            .filter_map(|c| c.judge.local_model())
            .map(|m| m.name.as_str()),
    );
    ensure_models(resolver, models)?;

    let url = sweep.file.store.url.clone();
    let store = open_store(&url)?;
    for input in &resolution.inputs {
        let key = match input.kind {
            InputKind::Dataset => layout::dataset(&input.sha256),
            InputKind::Questions => layout::questions(&input.sha256),
        };
        if !store.exists(&key)? {
            store
                .put_file(&key, &input.path)
                .with_context(|| format!("cannot upload {}", input.path.display()))?;
            info!("uploaded {} to {key}", input.path.display());
        }
    }
    for cell in &resolution.cells {
        let key = layout::cell_json(&cell.key());
        if !store.exists(&key)? {
            store.put(&key, cell.canonical_json().into_bytes())?;
        }
    }
    Ok((store, url))
}

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
    let cells = resolution.cells.clone();
    let worker = worker_path()?;

    let (store, url) = prepare(&sweep, &resolution, &resolver)?;
    let record = SweepRecord::new(&sweep, &cells, &url);
    record.save(&store)?;

    // What is left to do.
    let mut total = 0usize;
    for cell in &cells {
        let key = cell.key();
        for stage in cell.stages() {
            if stage_state(&store, &key, stage)? != StageState::Done {
                total += 1;
            }
        }
    }
    let parallel = sweep.file.executor.parallel.max(1);
    info!(
        "sweep {}: {} cells, {total} stages to run, {parallel} at a time; store {url}; run {}",
        sweep.file.name,
        cells.len(),
        record.run_id
    );

    let bars = logging::bars();
    let run_span = tracing::info_span!("run", indicatif.pb_show = tracing::field::Empty, sweep = %sweep.file.name);
    if bars {
        run_span.pb_set_style(
            &ProgressStyle::with_template(
                "{bar:30.cyan/blue} {pos}/{len} stages [{elapsed_precise}] {msg}",
            )
            .expect("a valid template"),
        );
        run_span.pb_set_length(total as u64);
    }
    let exec = Exec {
        store: &store,
        worker: &worker,
        url: &url,
        threads: sweep.file.executor.threads_per_job.max(1),
        log_root: log_root(),
        bars,
        run_span: run_span.clone(),
        total,
        finished: AtomicUsize::new(0),
        outcomes: Mutex::new(Vec::new()),
    };
    {
        let _entered = run_span.enter();
        let queue = Mutex::new(cells.iter().collect::<VecDeque<_>>());
        std::thread::scope(|s| {
            for _ in 0..parallel.min(cells.len().max(1)) {
                s.spawn(|| {
                    loop {
                        let next = queue.lock().expect("queue lock").pop_front();
                        let Some(cell) = next else { break };
                        exec.run_cell(cell);
                    }
                });
            }
        });
    }
    if bars {
        run_span.pb_set_position(total as u64);
    }
    // Closing the run span (and its clone in `exec`) removes the bars before the summary.
    let outcomes = exec.outcomes.into_inner().expect("outcomes lock");
    drop(run_span);

    // Summary.
    let count = |f: fn(&StageResult) -> bool| outcomes.iter().filter(|o| f(&o.result)).count();
    let succeeded = count(|r| matches!(r, StageResult::Succeeded(_)));
    let stage_time: Duration = outcomes
        .iter()
        .filter_map(|o| match o.result {
            StageResult::Succeeded(d) => Some(d),
            _ => None,
        })
        .sum();
    let skipped = count(|r| matches!(r, StageResult::Skipped));
    let failed: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| matches!(o.result, StageResult::Failed { .. }))
        .collect();
    let blocked = count(|r| matches!(r, StageResult::Blocked));
    logging::suspend(|| {
        println!(
            "sweep {}: {succeeded} stages ran ({:.1}s), {skipped} already done, {} failed, {blocked} not run after a failure",
            sweep.file.name,
            stage_time.as_secs_f64(),
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
        match crate::report::build(&store, &store, &record) {
            Ok(location) => println!("report: {location}"),
            Err(e) => {
                logging::suspend(|| eprintln!("error: the report failed: {e:#}"));
                code = ExitCode::from(1);
            }
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_is_stripped() {
        assert_eq!(
            strip_ansi("\u{1b}[2m2026\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m step 3"),
            "2026  INFO step 3"
        );
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
