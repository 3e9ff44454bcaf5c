//! Logging to stderr (`EMORG_LOG`, default `info`) and, on a terminal, progress bars through
//! tracing-indicatif so that log lines do not tear them.

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing_indicatif::IndicatifLayer;
use tracing_indicatif::filter::{IndicatifFilter, hide_indicatif_span_fields};
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
