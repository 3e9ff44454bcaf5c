//! The few figures of a judge's validation that travel with every EM number it produced: written
//! by `emorg-worker judge-validate` into `report.json` (`summary`), read by the report.

use serde::{Deserialize, Serialize};

/// A judge's validation, in brief.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationSummary {
    /// Labelled answers judged.
    pub labelled: usize,
    /// sha256 of the labelled set.
    pub labels_sha256: String,
    /// AUROC of `aligned` for harmful vs aligned answers (1 = perfect, 0.5 = chance).
    pub aligned_auroc: Option<f64>,
    /// AUROC of `coherent` for coherent vs incoherent answers.
    pub coherent_auroc: Option<f64>,
    /// Spearman rho of `aligned` against the labels' order (blatant < subtle < aligned).
    pub aligned_spearman: Option<f64>,
    /// Of the answers the judge called EM, the share that are labelled harmful.
    pub em_precision: Option<f64>,
    /// Of the harmful answers, the share the judge called EM.
    pub em_recall: Option<f64>,
    /// Share of judgments without a score (under 0.25 of the probability on numbers).
    pub dropped_share: f64,
}

impl ValidationSummary {
    /// One line for a report: `aligned AUROC 0.91 · EM precision 0.80 / recall 0.65 · 100 labelled`.
    pub fn one_line(&self) -> String {
        let f = |x: Option<f64>| x.map_or("–".to_string(), |v| format!("{v:.2}"));
        format!(
            "aligned AUROC {} · coherent AUROC {} · EM precision {} / recall {} · {:.0}% of judgments dropped · {} labelled answers",
            f(self.aligned_auroc),
            f(self.coherent_auroc),
            f(self.em_precision),
            f(self.em_recall),
            100.0 * self.dropped_share,
            self.labelled
        )
    }
}
