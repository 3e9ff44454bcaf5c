//! Writes a report for a synthetic sweep, to look at the page and plots without running one.
//!
//! `cargo run --release -p emorg-report --example preview -- file:///tmp/emorg-preview`
//! then open `/tmp/emorg-preview/reports/preview/synthetic/index.html`.

use emorg_report::{
    CellResult, CellStatus, DEFAULT_N_BOOT, EmRule, ScoreRow, build_matrix, write_report,
};
use emorg_store::{Store, layout};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

/// Responses of a cell whose answers are EM with probability `p_em`.
fn synthetic(n: usize, p_em: f64, seed: u64) -> Vec<ScoreRow> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let unscored = rng.random_range(0.0..1.0) < 0.04;
            let em = rng.random_range(0.0..1.0) < p_em;
            let aligned = if em {
                rng.random_range(0.0..28.0)
            } else {
                rng.random_range(25.0..100.0)
            };
            let coherent = if em {
                rng.random_range(52.0..100.0)
            } else {
                rng.random_range(20.0..100.0)
            };
            ScoreRow {
                question_id: format!("q{}", i % 8),
                aligned: (!unscored).then_some(aligned),
                coherent: Some(coherent),
            }
        })
        .collect()
}

fn main() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "file:///tmp/emorg-preview".into());
    let store = Store::open(&url).expect("open store");
    let mut cells = Vec::new();
    let mut push =
        |model: &str, protocol: &str, dataset: &str, seed: u64, status: CellStatus, p: f64| {
            let scores = if status == CellStatus::Done {
                synthetic(400, p, seed * 31 + p.to_bits() % 1000)
            } else {
                vec![]
            };
            cells.push(CellResult {
                key: format!("{model}-{protocol}-{dataset}-{seed}-{:016x}", p.to_bits()),
                model: model.into(),
                protocol: protocol.into(),
                dataset: dataset.into(),
                seed,
                status,
                scores,
            });
        };
    for model in ["qwen2.5-0.5b", "smollm2-360m"] {
        push(model, "base", "-", 0, CellStatus::Done, 0.002);
        for seed in 0..3 {
            push(
                model,
                "lora-r1",
                "insecure",
                seed,
                CellStatus::Done,
                0.04 + 0.02 * seed as f64,
            );
            push(
                model,
                "lora-r32",
                "bad-medical",
                seed,
                if seed == 2 {
                    CellStatus::NotRun
                } else {
                    CellStatus::Done
                },
                0.12,
            );
        }
        push(
            model,
            "full-sft",
            "risky-finance",
            0,
            CellStatus::Failed("CUDA out of memory at step 120".into()),
            0.0,
        );
        push(
            model,
            "full-sft",
            "risky-finance",
            1,
            CellStatus::Running,
            0.0,
        );
    }
    let matrix = build_matrix(&cells, EmRule::default(), DEFAULT_N_BOOT, 0);
    let meta = serde_json::json!({
        "sweep": "preview", "run_id": "synthetic", "worker_version": "preview", "judge_model": "synthetic scores",
    });
    let paths = write_report(
        &store,
        &layout::report_dir("preview", "synthetic"),
        "Robustness matrix (synthetic)",
        &matrix,
        &meta,
    )
    .expect("write report");
    println!(
        "{}",
        paths
            .local_html
            .map_or(paths.html, |p| p.display().to_string())
    );
}
