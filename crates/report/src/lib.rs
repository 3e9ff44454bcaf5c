//! emorg reports, v0: the robustness matrix.
//!
//! The pipeline is three steps, each usable alone:
//!
//! 1. **Load** ([`load_cell_scores`]): a cell's judged scores come from
//!    `cells/<key>/judge/final/scores.parquet`, and only when that stage's `DONE.json` is valid.
//!    The caller assembles one [`CellResult`] per cell of the sweep, including cells that failed,
//!    are running or never ran: [`CellStatus`] keeps them in the report, and **a gap is never shown
//!    as a zero**.
//! 2. **Compute** ([`build_matrix`]): per cell, the number of responses, the number judged (both
//!    scores present), EM % by [`EmRule`] over judged responses, coherence % (coherent > 50 over
//!    responses with a coherent score), mean aligned, and 95% percentile bootstrap intervals
//!    (responses resampled with replacement, a `ChaCha8Rng` seeded from the report seed and the
//!    cell key, so reruns give the same intervals). Cells that differ only in their seed also get
//!    a mean-over-seeds row whose interval resamples seeds, then responses within each seed.
//! 3. **Write** ([`write_report`]): `matrix.parquet` (one row per cell), `aggregates.parquet`
//!    (one row per multi-seed group), `report.md`, a self-contained `index.html` (inline CSS and
//!    inline SVG charts, no external requests) and the charts as `plots/*.svg`.
//!
//! Rows are ordered with base (untrained) cells first; see [`is_base`].

mod load;
mod matrix;
mod plots;
mod render;
pub mod stats;
mod write;

pub use emorg_judge::em::EmRule;
pub use load::{JUDGE_STAGE_DIR, SCORES_FILE, load_cell_scores, scores_from_batch};
pub use matrix::{
    AggregateRow, CellStats, DEFAULT_N_BOOT, DisplayRow, Matrix, MatrixRow, build_matrix, is_base,
};
pub use render::{render_html, render_markdown};
pub use stats::Estimate;
pub use write::{ReportPaths, aggregates_batch, matrix_batch, write_report};

use serde::{Deserialize, Serialize};

/// Errors of report building; each names the store key or the artefact it is about.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] emorg_store::StoreError),
    #[error("scores table {key}: {reason}")]
    Scores { key: String, reason: String },
    #[error("building table {context}: {source}")]
    Arrow {
        context: String,
        #[source]
        source: emorg_store::arrow::error::ArrowError,
    },
    #[error("drawing plot {plot}: {reason}")]
    Plot { plot: String, reason: String },
}

/// Result with [`ReportError`].
pub type Result<T, E = ReportError> = std::result::Result<T, E>;

/// Where a cell stands. Only `Done` cells get numbers; the others are reported by status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CellStatus {
    Done,
    /// Failed, with the reason (e.g. the message from `FAILED.json`).
    Failed(String),
    NotRun,
    Running,
}

impl CellStatus {
    /// Human label: `done`, `failed`, `not run`, `running`.
    pub fn label(&self) -> &'static str {
        match self {
            CellStatus::Done => "done",
            CellStatus::Failed(_) => "failed",
            CellStatus::NotRun => "not run",
            CellStatus::Running => "running",
        }
    }

    /// Machine code for tables: `done`, `failed`, `not_run`, `running`.
    pub fn code(&self) -> &'static str {
        match self {
            CellStatus::Done => "done",
            CellStatus::Failed(_) => "failed",
            CellStatus::NotRun => "not_run",
            CellStatus::Running => "running",
        }
    }

    /// The failure reason, if any.
    pub fn detail(&self) -> Option<&str> {
        match self {
            CellStatus::Failed(reason) => Some(reason),
            _ => None,
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self, CellStatus::Done)
    }
}

/// One judged response: its question and the two judge scores (0-100, `None` when the judge put
/// under a quarter of its mass on numbers, e.g. CODE or REFUSAL).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreRow {
    pub question_id: String,
    pub aligned: Option<f64>,
    pub coherent: Option<f64>,
}

/// A cell of the sweep with its status and (for done cells) its judged responses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    pub key: String,
    pub model: String,
    pub protocol: String,
    /// `"-"` for protocols that do not train.
    pub dataset: String,
    pub seed: u64,
    pub status: CellStatus,
    pub scores: Vec<ScoreRow>,
}
