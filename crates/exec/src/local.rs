//! The local executor (`emorg run`, the embedded default): the sweep's [`WorkGraph`] runs as
//! `emorg-worker <stage> --store URL --key KEY --threads T` subprocesses, `parallel` at a time: each
//! unit's train, each variant's sample once its unit's train is done, each judgment's judge once
//! its variant's sample is done. Stages whose DONE.json is valid are skipped; a stage whose
//! upstream stage failed, or is held by another run, is not run (blocked), and neither are the
//! stages after it; other branches of the graph go on. Among the stages ready to run, later
//! levels go first (a judge before a new train), so results come in early.
//!
//! Each stage's stdout+stderr goes to `<log root>/<owner>/logs/<stage>.log` (the CLI gives each
//! run its own log root, so two launchers on one machine keep their logs apart) and is uploaded to
//! [`layout::stage_log`], except when another run holds the stage (that run's log belongs there).
//! Progress is reported through [`Progress`], which the CLI implements with bars; without bars,
//! progress and heartbeats are log lines.

use std::cmp::Reverse;
use std::collections::{BTreeSet, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use emorg_spec::{Axes, Stage, StageRef};
use emorg_store::{Store, layout};
use tracing::{Span, error, info, warn};

use crate::Executor;
use crate::graph::WorkGraph;
use crate::prepare::Prepared;
use crate::state::{StageState, stage_state};

/// How the local executor shows progress. The run and each stage get a tracing span (fields
/// `sweep`, and `stage` and `key`); an implementation may draw them as bars. Every method has a
/// do-nothing default, so [`LogProgress`] (log lines only) is empty.
pub trait Progress: Sync {
    /// Whether bars are drawn. When not, the executor logs "progress: n/N" and a heartbeat of
    /// each running stage's last line.
    fn bars(&self) -> bool {
        false
    }
    /// The run's span, with `total` stages to run.
    fn run_started(&self, _run: &Span, _total: usize) {}
    /// One more stage finished (succeeded, failed, or blocked).
    fn advanced(&self, _run: &Span) {}
    /// All stages finished.
    fn run_finished(&self, _run: &Span, _total: usize) {}
    /// A stage's span, with its label ([`stage_label`]).
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

/// What happened to one stage.
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
    /// Not run because a stage it runs after failed, is held by another run, or is blocked.
    Blocked,
}

impl StageResult {
    /// Whether the stages after it may run.
    pub fn is_ok(&self) -> bool {
        matches!(self, StageResult::Skipped | StageResult::Succeeded(_))
    }
}

/// One stage the run looked at.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub stage: StageRef,
    /// The axes of the first row the stage serves.
    pub axes: Axes,
    /// How many rows of the sweep the stage serves.
    pub rows: usize,
    pub result: StageResult,
}

impl Outcome {
    /// [`stage_label`] of the outcome.
    pub fn label(&self) -> String {
        stage_label(self.stage.stage(), &self.axes)
    }
}

/// A stage's label from the axes of a row it serves, at its level:
/// `model/protocol/dataset/seedN` for a train, then ` CHECKPOINT xSCALE` for a sample, then
/// ` judge NAME` for a judge.
pub fn stage_label(stage: Stage, a: &Axes) -> String {
    let mut label = format!("{}/{}/{}/seed{}", a.model, a.protocol, a.dataset, a.seed);
    if a.replicate > 0 {
        label.push_str(&format!("/r{}", a.replicate));
    }
    if stage >= Stage::Sample {
        label.push_str(&format!(" {} x{}", a.checkpoint, a.scale));
    }
    if stage >= Stage::Judge {
        label.push_str(&format!(" judge {}", a.judge));
    }
    label
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
    /// One per stage the run looked at: the ones done already first, then in the order they
    /// finished.
    pub outcomes: Vec<Outcome>,
}

impl LocalRun {
    pub fn count(&self, f: impl Fn(&StageResult) -> bool) -> usize {
        self.outcomes.iter().filter(|o| f(&o.result)).count()
    }

    /// [`LocalRun::count`] among the stages of one level.
    pub fn count_at(&self, stage: Stage, f: impl Fn(&StageResult) -> bool) -> usize {
        self.outcomes
            .iter()
            .filter(|o| o.stage.stage() == stage && f(&o.result))
            .count()
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

/// Where a task of the graph stands in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Not part of this run (`only` leaves it out).
    Off,
    /// Waits for the stage it runs after.
    Waiting,
    Ready,
    Running,
    /// Finished; `true` when the stages after it may run.
    Finished(bool),
}

/// The run's ready queue over the graph.
struct Sched {
    slots: Vec<Slot>,
    /// Later levels first, then in graph order.
    ready: BTreeSet<(Reverse<Stage>, usize)>,
    /// Tasks waiting, ready or running.
    open: usize,
}

impl Executor for LocalExecutor<'_> {
    type Launched = LocalRun;

    fn name(&self) -> &'static str {
        "local"
    }

    /// Runs every stage that is not done (of `only` and the not-done stages they need, when
    /// given), each after the stage it needs, to the end.
    fn launch(&self, prepared: &Prepared, only: Option<&BTreeSet<StageRef>>) -> Result<LocalRun> {
        let graph = &prepared.graph;
        let n = graph.tasks.len();
        let mut selected = vec![only.is_none(); n];
        if let Some(only) = only {
            for stage in only {
                let mut at = Some(graph.position(stage).with_context(|| {
                    format!(
                        "{stage} is not a stage of sweep {}",
                        prepared.sweep.file.name
                    )
                })?);
                while let Some(i) = at {
                    if selected[i] {
                        break;
                    }
                    selected[i] = true;
                    at = graph.tasks[i]
                        .after
                        .as_ref()
                        .and_then(|a| graph.position(a));
                }
            }
        }
        let mut done = vec![false; n];
        for (i, task) in graph.tasks.iter().enumerate() {
            if selected[i] {
                done[i] = stage_state(&prepared.store, &graph.chain(&task.stage))?.is_done();
            }
        }
        let total = (0..n).filter(|&i| selected[i] && !done[i]).count();
        let parallel = self.parallel.max(1);
        let count = |stage: Stage| {
            (0..n)
                .filter(|&i| selected[i] && !done[i] && graph.tasks[i].stage.stage() == stage)
                .count()
        };
        info!(
            "sweep {}: {} rows; {total} stages to run ({} train, {} sample, {} judge), {parallel} at a time; store {}",
            prepared.sweep.file.name,
            prepared.cells.len(),
            count(Stage::Train),
            count(Stage::Sample),
            count(Stage::Judge),
            prepared.store_url,
        );
        let run_span = tracing::info_span!("run", indicatif.pb_show = tracing::field::Empty, sweep = %prepared.sweep.file.name);
        self.progress.run_started(&run_span, total);
        let exec = Exec {
            prepared,
            graph,
            worker: &self.worker,
            threads: self.threads.max(1),
            log_root: self.log_root.clone(),
            take_over: self.take_over,
            progress: self.progress,
            run_span: run_span.clone(),
            total,
            finished: AtomicUsize::new(0),
            outcomes: Mutex::new(Vec::new()),
        };

        // The stages done already are skipped; those whose upstream is done (or absent) are
        // ready.
        let mut sched = Sched {
            slots: vec![Slot::Off; n],
            ready: BTreeSet::new(),
            open: 0,
        };
        for i in 0..n {
            if !selected[i] {
                continue;
            }
            if done[i] {
                sched.slots[i] = Slot::Finished(true);
                exec.record(i, StageResult::Skipped, false);
            } else {
                sched.slots[i] = Slot::Waiting;
                sched.open += 1;
            }
        }
        for i in 0..n {
            if sched.slots[i] != Slot::Waiting {
                continue;
            }
            let after = graph.tasks[i]
                .after
                .as_ref()
                .and_then(|a| graph.position(a));
            let upstream_ok =
                after.is_none_or(|p| matches!(sched.slots[p], Slot::Finished(true) | Slot::Off));
            if upstream_ok {
                sched.slots[i] = Slot::Ready;
                sched
                    .ready
                    .insert((Reverse(graph.tasks[i].stage.stage()), i));
            }
        }
        let children = graph.children();
        let sched = Mutex::new(sched);
        let wake = Condvar::new();
        {
            let _entered = run_span.enter();
            std::thread::scope(|s| {
                for _ in 0..parallel.min(total.max(1)) {
                    s.spawn(|| exec.work(&sched, &wake, &children));
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
    prepared: &'a Prepared,
    graph: &'a WorkGraph,
    worker: &'a Path,
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
    fn store(&self) -> &Store {
        &self.prepared.store
    }

    /// The axes of the first row task `i` serves.
    fn axes(&self, i: usize) -> &Axes {
        &self.prepared.cells[self.graph.tasks[i].rows[0]].axes
    }

    /// Records what happened to task `i`; `counts` when it was one of the stages to run.
    fn record(&self, i: usize, result: StageResult, counts: bool) {
        let task = &self.graph.tasks[i];
        self.outcomes.lock().expect("outcomes lock").push(Outcome {
            stage: task.stage.clone(),
            axes: self.axes(i).clone(),
            rows: task.rows.len(),
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

    /// One thread of the pool: takes ready tasks until none is open.
    fn work(&self, sched: &Mutex<Sched>, wake: &Condvar, children: &[Vec<usize>]) {
        loop {
            let next = {
                let mut s = sched.lock().expect("scheduler lock");
                loop {
                    if let Some((_, i)) = s.ready.pop_first() {
                        s.slots[i] = Slot::Running;
                        break Some(i);
                    }
                    if s.open == 0 {
                        break None;
                    }
                    s = wake.wait(s).expect("scheduler lock");
                }
            };
            let Some(i) = next else {
                wake.notify_all();
                return;
            };
            let result = self.run_task(i);
            let ok = result.is_ok();
            let mut s = sched.lock().expect("scheduler lock");
            self.record(i, result, true);
            s.slots[i] = Slot::Finished(ok);
            s.open -= 1;
            // Release the stages after it, or block them and everything after them.
            let mut next: Vec<usize> = children[i].clone();
            while let Some(c) = next.pop() {
                if s.slots[c] != Slot::Waiting {
                    continue;
                }
                if ok {
                    s.slots[c] = Slot::Ready;
                    s.ready
                        .insert((Reverse(self.graph.tasks[c].stage.stage()), c));
                } else {
                    s.slots[c] = Slot::Finished(false);
                    s.open -= 1;
                    self.record(c, StageResult::Blocked, true);
                    next.extend(children[c].iter().copied());
                }
            }
            drop(s);
            wake.notify_all();
        }
    }

    /// Runs task `i` unless its DONE.json became valid meanwhile (another launcher).
    fn run_task(&self, i: usize) -> StageResult {
        let stage = &self.graph.tasks[i].stage;
        // Read again: a stage that just ran upstream, or another launcher, may have changed it.
        match stage_state(self.store(), &self.graph.chain(stage)) {
            Ok(StageState::Done) => return StageResult::Skipped,
            Ok(StageState::Invalid(reason)) => {
                warn!(key = %stage.short(), stage = %stage.stage(), "DONE.json is invalid ({reason}); running the stage again")
            }
            Ok(StageState::Stale(reason)) => {
                warn!(key = %stage.short(), stage = %stage.stage(), "stale: {reason}; running the stage again")
            }
            Ok(StageState::Failed | StageState::Missing) => {}
            Err(e) => {
                warn!(key = %stage.short(), stage = %stage.stage(), "cannot read DONE.json: {e}; running the stage")
            }
        }
        self.run_stage(i)
    }

    fn run_stage(&self, i: usize) -> StageResult {
        let stage = &self.graph.tasks[i].stage;
        let label = stage_label(stage.stage(), self.axes(i));
        let span = tracing::info_span!(
            parent: &self.run_span,
            "stage",
            indicatif.pb_show = tracing::field::Empty,
            stage = %stage.stage(),
            key = %stage.short(),
        );
        self.progress.stage_started(&span, &label);
        let _entered = span.enter();
        info!("{label}: {} started", stage.stage());

        let log_path = self.log_root.join(layout::stage_log(stage));
        let started = Instant::now();
        let result = self.spawn_and_wait(stage, &log_path, &span);

        // The log goes to the store whatever happened, unless another run holds the stage: the
        // log there is that run's.
        let claimed = matches!(&result, Ok((status, _)) if status.code() == Some(i32::from(emorg_store::CLAIMED_EXIT_CODE)));
        if log_path.is_file()
            && !claimed
            && let Err(e) = self.store().put_file(&layout::stage_log(stage), &log_path)
        {
            warn!("cannot upload the log {}: {e}", log_path.display());
        }

        let (status, tail) = match result {
            Ok(x) => x,
            Err(e) => {
                let message = format!("{e:#}");
                error!("{label}: {} could not run: {message}", stage.stage());
                self.write_failure(stage, &message, &[]);
                return StageResult::Failed {
                    message,
                    log: log_path,
                    tail: vec![],
                };
            }
        };
        let elapsed = started.elapsed();
        if status.success() {
            match stage_state(self.store(), &self.graph.chain(stage)) {
                Ok(StageState::Done) => {
                    info!(
                        "{label}: {} done in {:.1}s",
                        stage.stage(),
                        elapsed.as_secs_f64()
                    );
                    return StageResult::Succeeded(elapsed);
                }
                Ok(other) => {
                    let state = match other {
                        StageState::Invalid(reason) => format!("invalid ({reason})"),
                        StageState::Stale(reason) => format!("stale ({reason})"),
                        _ => "missing".into(),
                    };
                    let message = format!("the worker exited 0 but DONE.json is {state}");
                    error!("{label}: {} failed: {message}", stage.stage());
                    self.write_failure(stage, &message, &tail);
                    return StageResult::Failed {
                        message,
                        log: log_path,
                        tail,
                    };
                }
                Err(e) => {
                    let message = format!("cannot read DONE.json after the stage: {e}");
                    error!("{label}: {} failed: {message}", stage.stage());
                    return StageResult::Failed {
                        message,
                        log: log_path,
                        tail,
                    };
                }
            }
        }
        if claimed {
            // Two launchers on one sweep, or a Slurm task of it: the holder commits the stage.
            info!(
                "{label}: {} is held by another run; left to it",
                stage.stage()
            );
            return StageResult::Claimed;
        }
        let message = format!("the worker {status} after {:.1}s", elapsed.as_secs_f64());
        error!(
            "{label}: {} failed: {message} (log: {})",
            stage.stage(),
            log_path.display()
        );
        self.write_failure(stage, &message, &tail);
        StageResult::Failed {
            message,
            log: log_path,
            tail,
        }
    }

    /// Runs the worker, teeing its output into the log; returns its status and last lines.
    fn spawn_and_wait(
        &self,
        stage: &StageRef,
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
        if let Err(e) = self.store().delete(&layout::failure(stage)) {
            warn!("cannot delete an old FAILED.json: {e}");
        }

        let mut cmd = Command::new(self.worker);
        cmd.arg(stage.stage().as_str())
            .arg("--store")
            .arg(&self.prepared.store_url)
            .arg("--key")
            .arg(stage.key())
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
    fn write_failure(&self, stage: &StageRef, message: &str, tail: &[String]) {
        let failure_key = layout::failure(stage);
        match self.store().exists(&failure_key) {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                warn!("cannot check {failure_key}: {e}");
                return;
            }
        }
        let record = serde_json::json!({
            "stage": stage.stage().as_str(),
            "key": stage.key(),
            "owner": layout::owner_prefix(stage),
            "error": message,
            "log": layout::stage_log(stage),
            "tail": tail,
            "failed_at": chrono::Utc::now(),
            "written_by": "emorg run (local executor)",
        });
        if let Err(e) = self.store().put_json(&failure_key, &record) {
            warn!("cannot write {failure_key}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::fixtures::{commit, rows};

    /// A prepared sweep over [`rows`] in a memory store.
    fn prepared(seeds: &[u64]) -> Prepared {
        let text = "name = \"t\"\n[matrix]\nmodel = [\"m\"]\nprotocol = [\"base\"]\n\
                    [models.m]\nregistry = \"x\"\n[protocols.base]\nkind = \"base\"\n";
        let sweep = emorg_spec::Sweep::from_text("t.toml", text.into(), &Default::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let cells = rows(seeds);
        Prepared {
            sweep,
            graph: WorkGraph::new(&cells),
            cells,
            store: Store::open("memory://").unwrap(),
            store_url: "memory://".into(),
        }
    }

    /// A stand-in worker: appends its arguments to `calls` and exits with the code `codes` gives
    /// its key (`KEY CODE` lines), else 1. It never commits, so exit 0 is a failure too.
    fn fake_worker(dir: &Path, codes: &[(&str, i32)]) -> PathBuf {
        let codes: String = codes.iter().map(|(k, c)| format!("{k} {c}\n")).collect();
        std::fs::write(dir.join("codes"), codes).unwrap();
        let script = dir.join("worker.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$@\" >> {d}/calls\necho working on $1\n\
                 code=$(grep \"^$5 \" {d}/codes | cut -d' ' -f2)\nexit ${{code:-1}}\n",
                d = dir.display()
            ),
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        script
    }

    fn executor(worker: PathBuf, logs: PathBuf) -> LocalExecutor<'static> {
        LocalExecutor {
            worker,
            parallel: 2,
            threads: 1,
            log_root: logs,
            take_over: false,
            progress: &LogProgress,
        }
    }

    fn calls(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[cfg(unix)]
    #[test]
    fn the_graph_runs_in_order_and_a_failed_or_claimed_stage_blocks_what_runs_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = prepared(&[0, 1]);
        let train = |seed: u64| {
            p.graph
                .level(Stage::Train)
                .find(|t| p.cells[t.rows[0]].axes.seed == seed)
                .unwrap()
                .stage
                .clone()
        };
        let (train0, train1) = (train(0), train(1));
        // Unit 0 is trained already; one of its variants is held by another run, the others
        // fail; unit 1's train is held by another run; the base variant fails.
        commit(&p.store, &train0);
        let samples0: Vec<StageRef> = p
            .graph
            .dependants(&train0)
            .map(|t| t.stage.clone())
            .collect();
        assert_eq!(samples0.len(), 4);
        let worker = fake_worker(
            dir.path(),
            &[
                (samples0[0].key(), 73),
                (train1.key(), 73),
                (samples0[1].key(), 0),
            ],
        );
        let run = executor(worker, dir.path().join("logs"))
            .launch(&p, None)
            .unwrap();

        assert_eq!(run.outcomes.len(), p.graph.tasks.len());
        assert_eq!(run.total, p.graph.tasks.len() - 1);
        assert_eq!(run.count(|r| matches!(r, StageResult::Skipped)), 1);
        assert_eq!(
            run.count_at(Stage::Train, |r| matches!(r, StageResult::Claimed)),
            1
        );
        assert_eq!(
            run.count_at(Stage::Sample, |r| matches!(r, StageResult::Claimed)),
            1
        );
        // 3 of unit 0's variants (one exits 0 without committing) and the base variant.
        assert_eq!(run.failed().len(), 4);
        assert!(
            run.failed()
                .iter()
                .all(|o| o.stage.stage() == Stage::Sample)
        );
        // Blocked: every judge (8 + 8 + 1) and unit 1's 4 variants.
        assert_eq!(
            run.count_at(Stage::Judge, |r| matches!(r, StageResult::Blocked)),
            17
        );
        assert_eq!(
            run.count_at(Stage::Sample, |r| matches!(r, StageResult::Blocked)),
            4
        );

        // The worker ran exactly the 6 stages that could run, by stage and key.
        let mut calls = calls(dir.path());
        calls.sort();
        let mut expected: Vec<String> = samples0
            .iter()
            .chain([&train1])
            .chain(
                p.graph
                    .level(Stage::Sample)
                    .filter(|t| t.after.is_none())
                    .map(|t| &t.stage),
            )
            .map(|s| {
                format!(
                    "{} --store memory:// --key {} --threads 1",
                    s.stage(),
                    s.key()
                )
            })
            .collect();
        expected.sort();
        assert_eq!(calls, expected);

        // FAILED.json and the log for a failed stage; neither for a claimed one.
        for o in run.failed() {
            assert!(
                p.store.exists(&layout::failure(&o.stage)).unwrap(),
                "{}",
                o.stage
            );
            let log = p.store.get(&layout::stage_log(&o.stage)).unwrap();
            assert!(String::from_utf8_lossy(&log).contains("working on sample"));
        }
        let message = run
            .failed()
            .iter()
            .find(|o| o.stage == samples0[1])
            .map(|o| match &o.result {
                StageResult::Failed { message, .. } => message.clone(),
                _ => unreachable!(),
            })
            .unwrap();
        assert!(
            message.contains("exited 0 but DONE.json is missing"),
            "{message}"
        );
        for claimed in [&samples0[0], &train1] {
            assert!(!p.store.exists(&layout::failure(claimed)).unwrap());
            assert!(!p.store.exists(&layout::stage_log(claimed)).unwrap());
        }
        // Outcomes carry the axes of the stage's first row, and its label is at its level.
        let o = run.outcomes.iter().find(|o| o.stage == train1).unwrap();
        assert_eq!((o.axes.seed, o.rows), (1, 8));
        assert_eq!(o.label(), "m/lora/d/seed1");
    }

    #[cfg(unix)]
    #[test]
    fn only_runs_the_stages_given_and_the_not_done_stages_they_need() {
        let dir = tempfile::tempdir().unwrap();
        let p = prepared(&[0, 1]);
        let base_judge = p
            .graph
            .level(Stage::Judge)
            .find(|t| p.cells[t.rows[0]].axes.protocol == "base")
            .unwrap()
            .stage
            .clone();
        let base_sample = p.graph.get(&base_judge).unwrap().after.clone().unwrap();
        let worker = fake_worker(dir.path(), &[(base_sample.key(), 73)]);
        let only = BTreeSet::from([base_judge.clone()]);
        let run = executor(worker, dir.path().join("logs"))
            .launch(&p, Some(&only))
            .unwrap();
        assert_eq!(run.total, 2);
        let got: Vec<(StageRef, bool)> = run
            .outcomes
            .iter()
            .map(|o| (o.stage.clone(), matches!(o.result, StageResult::Claimed)))
            .collect();
        assert_eq!(
            got,
            vec![(base_sample.clone(), true), (base_judge.clone(), false)]
        );
        assert_eq!(calls(dir.path()).len(), 1);

        // Once the sample is done, only the judge runs.
        commit(&p.store, &base_sample);
        std::fs::remove_file(dir.path().join("calls")).unwrap();
        let run = executor(fake_worker(dir.path(), &[]), dir.path().join("logs"))
            .launch(&p, Some(&only))
            .unwrap();
        assert_eq!(run.total, 1);
        assert_eq!(run.count(|r| matches!(r, StageResult::Skipped)), 1);
        assert_eq!(calls(dir.path()).len(), 1);
        assert!(calls(dir.path())[0].starts_with("judge "));

        // A stage not in the graph is refused, naming it.
        let stray = StageRef::Judge(emorg_spec::JudgmentKey::parse(&"f".repeat(64)).unwrap());
        let e = executor(fake_worker(dir.path(), &[]), dir.path().join("logs"))
            .launch(&p, Some(&BTreeSet::from([stray])))
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a stage of sweep t"), "{e}");
    }

    #[test]
    fn ansi_is_stripped() {
        assert_eq!(
            strip_ansi("\u{1b}[2m2026\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m step 3"),
            "2026  INFO step 3"
        );
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
