//! Logging to stderr (`EMORG_LOG`, default `info`) and, on a terminal, progress bars through
//! tracing-indicatif so that log lines do not tear them.

use std::io::IsTerminal;
use std::sync::OnceLock;

use indicatif::ProgressStyle;
use tracing_indicatif::IndicatifLayer;
use tracing_indicatif::filter::{IndicatifFilter, hide_indicatif_span_fields};
use tracing_indicatif::span_ext::IndicatifSpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::DefaultFields;
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

static BARS: OnceLock<bool> = OnceLock::new();

/// Whether progress bars are drawn (stderr is a terminal). When not, progress goes to log lines.
pub fn bars() -> bool {
    *BARS.get().unwrap_or(&false)
}

/// Installs the global subscriber. Only spans with an `indicatif.pb_show` field get a bar.
pub fn init() {
    let filter = EnvFilter::try_from_env("EMORG_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let terminal = std::io::stderr().is_terminal();
    let _ = BARS.set(terminal);
    if terminal {
        let indicatif = IndicatifLayer::new()
            .with_span_field_formatter(hide_indicatif_span_fields(DefaultFields::new()));
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(indicatif.get_stderr_writer())
            .with_target(false)
            .with_filter(filter);
        let _ = tracing_subscriber::registry()
            .with(fmt)
            .with(indicatif.with_filter(IndicatifFilter::new(false)))
            .try_init();
    } else {
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .with_target(false)
            .with_filter(filter);
        let _ = tracing_subscriber::registry().with(fmt).try_init();
    }
}

/// Runs `f` (which prints to the terminal) with the progress bars hidden.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    if bars() {
        tracing_indicatif::suspend_tracing_indicatif(f)
    } else {
        f()
    }
}

/// The local executor's progress as tracing-indicatif bars: one for the run (stages finished of
/// those to run), a spinner per running stage with its latest output line. Without a terminal,
/// the executor's own log lines stand in.
pub struct Bars;

impl emorg_exec::Progress for Bars {
    fn bars(&self) -> bool {
        bars()
    }

    fn run_started(&self, run: &tracing::Span, total: usize) {
        if bars() {
            run.pb_set_style(
                &ProgressStyle::with_template(
                    "{bar:30.cyan/blue} {pos}/{len} stages [{elapsed_precise}] {msg}",
                )
                .expect("a valid template"),
            );
            run.pb_set_length(total as u64);
        }
    }

    fn advanced(&self, run: &tracing::Span) {
        run.pb_inc(1);
    }

    fn run_finished(&self, run: &tracing::Span, total: usize) {
        if bars() {
            run.pb_set_position(total as u64);
        }
    }

    fn stage_started(&self, stage: &tracing::Span, label: &str) {
        if bars() {
            stage.pb_set_style(
                &ProgressStyle::with_template(
                    "{span_child_prefix}{spinner} {span_fields} [{elapsed}] {wide_msg}",
                )
                .expect("a valid template"),
            );
            stage.pb_set_message(label);
        }
    }

    fn stage_output(&self, stage: &tracing::Span, line: &str) {
        if bars() {
            stage.pb_set_message(line);
        }
    }
}
