//! The local executor (`emorg run`, the embedded default): each cell's stages run in order as
//! `emorg-worker <stage> --store URL --cell KEY --threads T` subprocesses on a pool of `parallel`
//! threads, skipping stages whose DONE.json is valid and stopping a cell at its first failure
//! (other cells go on). Each stage's stdout+stderr goes to `<log root>/<key>/<stage>.log` (the CLI
//! gives each run its own log root, so two launchers on one machine keep their logs apart) and is
//! uploaded to `cells/<key>/logs/<stage>.log`, except when another run holds the stage (that run's
//! log belongs there). Progress is reported through [`Progress`], which
//! the CLI implements with bars; without bars, progress and heartbeats are log lines.

use std::collections::{BTreeSet, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use emorg_spec::{Axes, Cell, Stage};
use emorg_store::{Store, layout};
use tracing::{Span, error, info, warn};

use crate::Executor;
use crate::prepare::Prepared;
use crate::state::{StageState, stage_state};

/// How the local executor shows progress. The run and each stage get a tracing span (fields
/// `sweep`, and `cell` and `stage`); an implementation may draw them as bars. Every method has a
/// do-nothing default, so [`LogProgress`] (log lines only) is empty.
pub trait Progress: Sync {
    /// Whether bars are drawn. When not, the executor logs "progress: n/N" and a heartbeat of
    /// each running stage's last line.
    fn bars(&self) -> bool {
        false
    }
    /// The run's span, with `total` stages to run.
    fn run_started(&self, _run: &Span, _total: usize) {}
    /// One more stage finished (succeeded or failed).
    fn advanced(&self, _run: &Span) {}
    /// All stages finished.
    fn run_finished(&self, _run: &Span, _total: usize) {}
    /// A stage's span, with its label `model/protocol/dataset/seedN`.
    fn stage_started(&self, _stage: &Span, _label: &str) {}
    /// The stage's latest output line.
    fn stage_output(&self, _stage: &Span, _line: &str) {}
}

/// Progress as log lines only.
pub struct LogProgress;

impl Progress for LogProgress {}

/// How often a running stage's last line is logged when there are no progress bars.
const HEARTBEAT: Duration = Duration::from_secs(60);
/// Lines of a failed stage's output kept in the failure record and shown at the end.
const TAIL_LINES: usize = 20;

/// The default local directory for stage logs: `<cache dir>/emorg/logs`.
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

/// What happened to one stage of one cell.
#[derive(Debug, Clone)]
pub enum StageResult {
    /// Its DONE.json was valid already.
    Skipped,
    Succeeded(Duration),
    Failed {
        message: String,
        log: PathBuf,
        tail: Vec<String>,
    },
    /// Another run holds the stage's claim (the worker exited 73): left to that run, not a
    /// failure, and no FAILED.json.
    Claimed,
    /// Not run because an earlier stage of the cell failed or is held by another run.
    Blocked,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub axes: Axes,
    pub key: String,
    pub stage: Stage,
    pub result: StageResult,
}

/// The local executor's settings.
pub struct LocalExecutor<'a> {
    /// The emorg-worker binary.
    pub worker: PathBuf,
    /// Stages run at the same time.
    pub parallel: usize,
    /// Threads per worker.
    pub threads: usize,
    /// Where stage logs are written before they are uploaded (a directory of this run under
    /// [`log_root`]).
    pub log_root: PathBuf,
    /// Workers take over the claims of stages another run may still hold (`--take-over`).
    pub take_over: bool,
    pub progress: &'a dyn Progress,
}

/// What a local run did.
#[derive(Debug, Clone)]
pub struct LocalRun {
    /// Stages that were not done when the run started.
    pub total: usize,
    /// One per (cell, stage) the run looked at, in the order they finished.
    pub outcomes: Vec<Outcome>,
}

impl LocalRun {
    pub fn count(&self, f: impl Fn(&StageResult) -> bool) -> usize {
        self.outcomes.iter().filter(|o| f(&o.result)).count()
    }

    /// Total wall time of the stages that ran and succeeded.
    pub fn stage_time(&self) -> Duration {
        self.outcomes
            .iter()
            .filter_map(|o| match o.result {
                StageResult::Succeeded(d) => Some(d),
                _ => None,
            })
            .sum()
    }

    pub fn failed(&self) -> Vec<&Outcome> {
        self.outcomes
            .iter()
            .filter(|o| matches!(o.result, StageResult::Failed { .. }))
            .collect()
    }
}

impl Executor for LocalExecutor<'_> {
    type Launched = LocalRun;

    fn name(&self) -> &'static str {
        "local"
    }

    /// Runs every stage that is not done, to the end.
    fn launch(&self, prepared: &Prepared, only: Option<&BTreeSet<String>>) -> Result<LocalRun> {
        let cells: Vec<&Cell> = prepared
            .cells
            .iter()
            .filter(|c| only.is_none_or(|o| o.contains(&c.key())))
            .collect();
        let mut total = 0usize;
        for cell in &cells {
            let key = cell.key();
            for stage in cell.stages() {
                if stage_state(&prepared.store, &key, stage)? != StageState::Done {
                    total += 1;
                }
            }
        }
        let parallel = self.parallel.max(1);
        info!(
            "sweep {}: {} cells, {total} stages to run, {parallel} at a time; store {}",
            prepared.sweep.file.name,
            cells.len(),
            prepared.store_url,
        );
        let run_span = tracing::info_span!("run", indicatif.pb_show = tracing::field::Empty, sweep = %prepared.sweep.file.name);
        self.progress.run_started(&run_span, total);
        let exec = Exec {
            store: &prepared.store,
            worker: &self.worker,
            url: &prepared.store_url,
            threads: self.threads.max(1),
            log_root: self.log_root.clone(),
            take_over: self.take_over,
            progress: self.progress,
            run_span: run_span.clone(),
            total,
            finished: AtomicUsize::new(0),
            outcomes: Mutex::new(Vec::new()),
        };
        {
            let _entered = run_span.enter();
            let queue = Mutex::new(cells.iter().copied().collect::<VecDeque<_>>());
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
        self.progress.run_finished(&run_span, total);
        let outcomes = exec.outcomes.into_inner().expect("outcomes lock");
        Ok(LocalRun { total, outcomes })
    }
}

/// One run's shared state across the pool's threads.
struct Exec<'a> {
    store: &'a Store,
    worker: &'a Path,
    url: &'a str,
    threads: usize,
    log_root: PathBuf,
    take_over: bool,
    progress: &'a dyn Progress,
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
            if self.progress.bars() {
                self.progress.advanced(&self.run_span);
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
            // Read again before each stage: an earlier stage that just ran may make this one stale.
            match stage_state(self.store, &key, stage) {
                Ok(StageState::Done) => {
                    self.record(cell, &key, stage, StageResult::Skipped);
                    continue;
                }
                Ok(StageState::Invalid(reason)) => {
                    warn!(cell = %&key[..12], %stage, "DONE.json is invalid ({reason}); running the stage again")
                }
                Ok(StageState::Stale(reason)) => {
                    warn!(cell = %&key[..12], %stage, "stale: {reason}; running the stage again")
                }
                Ok(StageState::Failed | StageState::Missing) => {}
                Err(e) => {
                    warn!(cell = %&key[..12], %stage, "cannot read DONE.json: {e}; running the stage")
                }
            }
            let result = self.run_stage(cell, &key, stage);
            let stop = matches!(result, StageResult::Failed { .. } | StageResult::Claimed);
            self.record(cell, &key, stage, result);
            if stop {
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
        self.progress.stage_started(&span, &label);
        let _entered = span.enter();
        info!("{label}: started");

        let log_path = self.log_root.join(key).join(format!("{stage}.log"));
        let started = Instant::now();
        let result = self.spawn_and_wait(key, stage, &log_path, &span);

        // The log goes to the store whatever happened, unless another run holds the stage: the
        // log there is that run's.
        let claimed = matches!(&result, Ok((status, _)) if status.code() == Some(i32::from(emorg_store::CLAIMED_EXIT_CODE)));
        if log_path.is_file()
            && !claimed
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
            match stage_state(self.store, key, stage) {
                Ok(StageState::Done) => {
                    info!("{label}: {stage} done in {:.1}s", elapsed.as_secs_f64());
                    return StageResult::Succeeded(elapsed);
                }
                Ok(other) => {
                    let state = match other {
                        StageState::Invalid(reason) => format!("invalid ({reason})"),
                        StageState::Stale(reason) => format!("stale ({reason})"),
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
        if status.code() == Some(i32::from(emorg_store::CLAIMED_EXIT_CODE)) {
            // Two launchers on one sweep, or a Slurm task of it: the holder commits the stage.
            info!("{label}: {stage} is held by another run; left to it");
            return StageResult::Claimed;
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
        let log = Mutex::new(log);
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
            .args(self.take_over.then_some("--take-over"))
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

        let tail = Mutex::new(VecDeque::<String>::new());
        let pump = |stream: Box<dyn Read + Send>| {
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
                self.progress.stage_output(span, &truncate(&line, 120));
                let mut t = tail.lock().expect("tail lock");
                if t.len() == TAIL_LINES {
                    t.pop_front();
                }
                t.push_back(line);
            }
        };
        let stdout: Box<dyn Read + Send> = Box::new(child.stdout.take().expect("piped stdout"));
        let stderr: Box<dyn Read + Send> = Box::new(child.stderr.take().expect("piped stderr"));
        // Scoped pumps: they borrow the progress reporter, and end with the worker's streams.
        let status = std::thread::scope(|s| {
            s.spawn(|| pump(stdout));
            s.spawn(|| pump(stderr));
            let mut last_beat = Instant::now();
            loop {
                match child.try_wait() {
                    Ok(Some(status)) => break Ok(status),
                    Ok(None) => {}
                    Err(e) => {
                        // The pumps end only when the worker's pipes close: stop it first.
                        let _ = child.kill();
                        break Err(anyhow::Error::new(e).context("cannot wait for the worker"));
                    }
                }
                if !self.progress.bars() && last_beat.elapsed() >= HEARTBEAT {
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
            }
        })?;
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
            "written_by": "emorg run (local executor)",
        });
        if let Err(e) = self.store.put_json(&failure_key, &record) {
            warn!("cannot write {failure_key}: {e}");
        }
    }
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
