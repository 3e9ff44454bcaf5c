//! Writes a report for a synthetic sweep (a base model and one LoRA protocol evaluated at
//! checkpoints 0, 8, 16, 24 and final, scales 1 and 5, three seeds), to look at the page and
//! plots without running one.
//!
//! `cargo run --release -p emorg-report --example preview -- file:///tmp/emorg-preview`
//! then open `/tmp/emorg-preview/reports/preview/synthetic/index.html`.

use emorg_report::{
    Axes, CellResult, CellStatus, DEFAULT_N_BOOT, EmRule, JudgmentKey, RowRef, ScoreRow, UnitKey,
    VariantKey, Weights, build_matrix, write_report,
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

/// A 64-hex key from a label (FNV-1a, repeated): distinct labels, distinct keys.
fn key(label: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in label.as_bytes() {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}").repeat(4)
}

fn main() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "file:///tmp/emorg-preview".into());
    let store = Store::open(&url).expect("open store");
    let mut cells = Vec::new();
    let mut push = |axes: Axes, status: CellStatus, p: f64| {
        let scores = if status == CellStatus::Done {
            synthetic(400, p, axes.seed * 31 + p.to_bits() % 1000)
        } else {
            vec![]
        };
        let unit = format!(
            "{}/{}/{}/{}",
            axes.model, axes.protocol, axes.dataset, axes.seed
        );
        let variant = format!("{unit}/{}/{}", axes.checkpoint, axes.scale);
        let judgment = format!("{variant}/{}", axes.judge);
        cells.push(CellResult {
            row: RowRef {
                trains: axes.protocol != "base",
                unit_key: UnitKey::parse(&key(&unit)).unwrap(),
                variant_key: VariantKey::parse(&key(&variant)).unwrap(),
                judgment_key: JudgmentKey::parse(&key(&judgment)).unwrap(),
                axes,
            },
            status,
            scores,
        });
    };
    let axes = |model: &str, protocol: &str, dataset: &str, seed: u64| Axes {
        model: model.into(),
        protocol: protocol.into(),
        dataset: dataset.into(),
        seed,
        checkpoint: Weights::Final,
        scale: "1".into(),
        judge: "default".into(),
        replicate: 0,
    };
    let model = "smollm2-360m";
    push(axes(model, "base", "-", 0), CellStatus::Done, 0.002);
    // One r1 protocol evaluated every 8 of 32 steps at scales 1 and 5, three seeds: EM rises
    // with training (faster at scale 5).
    for seed in 0..3 {
        for scale in ["1", "5"] {
            for step in [Some(0), Some(8), Some(16), Some(24), None] {
                let t = step.map_or(1.0, |s| s as f64 / 32.0);
                let p = if scale == "5" {
                    0.02 + 0.25 * t
                } else {
                    0.005 + 0.08 * t * t
                };
                let mut a = axes(model, "lora-r1", "insecure", seed);
                a.checkpoint = step.map_or(Weights::Final, Weights::Step);
                a.scale = scale.into();
                let status = if seed == 2 && step == Some(16) && scale == "5" {
                    CellStatus::Failed("CUDA out of memory at sampling".into())
                } else {
                    CellStatus::Done
                };
                push(a, status, p + 0.01 * seed as f64);
            }
        }
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
