//! End to end: scores in a store -> matrix -> written report, read back.

use std::collections::BTreeMap;
use std::sync::Arc;

use emorg_report::{
    CellResult, CellStatus, DEFAULT_N_BOOT, EmRule, JUDGE_STAGE_DIR, SCORES_FILE, ScoreRow,
    build_matrix, load_cell_scores, write_report,
};
use emorg_store::arrow::array::{Array, Float64Array, RecordBatch, StringArray, UInt64Array};
use emorg_store::arrow::datatypes::{DataType, Field, Schema};
use emorg_store::{Manifest, Store, layout, table};

fn scores(n: usize, em_every: usize) -> Vec<ScoreRow> {
    (0..n)
        .map(|i| {
            let em = i % em_every == 0;
            ScoreRow {
                question_id: format!("q{}", i % 8),
                aligned: if i % 11 == 5 {
                    None
                } else {
                    Some(if em {
                        8.0 + (i % 20) as f64
                    } else {
                        60.0 + (i % 40) as f64
                    })
                },
                coherent: Some(if i % 7 == 3 {
                    35.0
                } else {
                    55.0 + (i % 45) as f64
                }),
            }
        })
        .collect()
}

fn cell(
    key: &str,
    protocol: &str,
    dataset: &str,
    seed: u64,
    status: CellStatus,
    scores: Vec<ScoreRow>,
) -> CellResult {
    CellResult {
        key: key.into(),
        model: "qwen2.5-0.5b".into(),
        protocol: protocol.into(),
        dataset: dataset.into(),
        seed,
        status,
        scores,
    }
}

fn cells() -> Vec<CellResult> {
    vec![
        cell(
            "k-lora-0",
            "lora-r1",
            "insecure",
            0,
            CellStatus::Done,
            scores(160, 4),
        ),
        cell(
            "k-lora-1",
            "lora-r1",
            "insecure",
            1,
            CellStatus::Done,
            scores(160, 6),
        ),
        cell(
            "k-lora-2",
            "lora-r1",
            "insecure",
            2,
            CellStatus::NotRun,
            vec![],
        ),
        cell(
            "k-full-0",
            "full-sft",
            "bad-medical",
            0,
            CellStatus::Failed("CUDA out of memory | at step 12".into()),
            vec![],
        ),
        cell(
            "k-full-1",
            "full-sft",
            "bad-medical",
            1,
            CellStatus::Running,
            vec![],
        ),
        cell(
            "k-base-0",
            "base",
            "-",
            0,
            CellStatus::Done,
            scores(160, 50),
        ),
    ]
}

fn meta() -> serde_json::Value {
    serde_json::json!({"sweep": "robustness", "run_id": "r-001", "worker_version": "0.1.0+numerics.1", "judge_model": "qwen2.5-7b-instruct"})
}

/// The table row of report.md for a cell key.
fn md_row<'a>(md: &'a str, key_prefix: &str) -> &'a str {
    md.lines()
        .find(|l| l.starts_with('|') && l.contains(&format!("`{key_prefix}")))
        .unwrap_or_else(|| panic!("no row for {key_prefix} in\n{md}"))
}

#[test]
fn written_report_reads_back_and_shows_gaps_as_gaps() {
    let store = Store::open("memory://").unwrap();
    let matrix = build_matrix(&cells(), EmRule::default(), DEFAULT_N_BOOT, 7);
    let dir = layout::report_dir("robustness", "r-001");
    let paths = write_report(&store, &dir, "Robustness matrix", &matrix, &meta()).unwrap();
    assert_eq!(paths.matrix, "reports/robustness/r-001/matrix.parquet");
    assert_eq!(paths.plots.len(), 3);

    // matrix.parquet: one row per cell, same count
    let batch = store.get_table(&paths.matrix).unwrap();
    assert_eq!(batch.num_rows(), cells().len());
    for col in [
        "key",
        "model",
        "protocol",
        "dataset",
        "seed",
        "status",
        "n",
        "n_judged",
        "em_pct",
        "em_lo",
        "em_hi",
        "coherent_pct",
        "coh_lo",
        "coh_hi",
        "mean_aligned",
    ] {
        assert!(batch.column_by_name(col).is_some(), "missing column {col}");
    }
    let keys = batch
        .column_by_name("key")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let status = batch
        .column_by_name("status")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let em = batch
        .column_by_name("em_pct")
        .unwrap()
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    // base row first
    assert_eq!(keys.value(0), "k-base-0");
    for i in 0..batch.num_rows() {
        if status.value(i) == "done" {
            assert!(!em.is_null(i), "done cell {} has no EM", keys.value(i));
        } else {
            assert!(
                em.is_null(i),
                "{} cell {} has an EM figure",
                status.value(i),
                keys.value(i)
            );
        }
    }
    assert_eq!(store.get_table(&paths.aggregates).unwrap().num_rows(), 2);

    // report.md: the not-run cell says so and carries no number
    let md = String::from_utf8(store.get(&paths.markdown).unwrap().to_vec()).unwrap();
    let not_run = md_row(&md, "k-lora-2");
    assert!(not_run.contains("not run"), "{not_run}");
    let cols: Vec<&str> = not_run.split(" | ").collect();
    // | model | protocol | dataset | seed | status | n | judged | EM | judge | coherent | mean aligned | cell |
    assert_eq!(cols[8].trim(), "unvalidated", "{not_run}");
    assert!(
        md.contains("not validated: run `emorg judge validate"),
        "{md}"
    );
    for (i, name) in [
        (5, "n"),
        (6, "judged"),
        (7, "EM"),
        (9, "coherent"),
        (10, "mean aligned"),
    ] {
        assert_eq!(
            cols[i].trim(),
            "–",
            "{name} of a not-run cell must be a gap: {not_run}"
        );
    }
    assert!(!not_run.contains("0.0"), "{not_run}");
    let failed = md_row(&md, "k-full-0");
    assert!(
        failed.contains("failed: CUDA out of memory \\| at step 12"),
        "{failed}"
    );
    assert!(md_row(&md, "k-full-1").contains("running"));
    assert!(
        md.contains("aligned < 30") && md.contains("coherent > 50"),
        "EM definition missing:\n{md}"
    );
    // the base row precedes every trained row in the table
    let first_row = md.lines().find(|l| l.starts_with("| qwen")).unwrap();
    assert!(first_row.contains("| base |"), "{first_row}");

    // index.html: self-contained, with inline SVG
    let html = String::from_utf8(store.get(&paths.html).unwrap().to_vec()).unwrap();
    assert!(html.contains("<svg"), "no inline svg");
    assert!(html.matches("<svg").count() >= 3);
    let stripped = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(
        !stripped.contains("http://") && !stripped.contains("https://"),
        "external reference in index.html"
    );
    assert!(!html.contains("<script") && !html.contains("<link"));
    assert!(
        html.contains("<details>")
            && html.contains("qwen2.5-7b-instruct")
            && html.contains("r-001")
    );
    assert!(html.contains("not run"));
    assert!(paths.local_html.is_none());
}

#[test]
fn file_store_report_has_a_local_page() {
    let dir = std::env::temp_dir().join(format!("emorg-report-test-{}", std::process::id()));
    let store = Store::open(&format!("file://{}", dir.display())).unwrap();
    let matrix = build_matrix(&cells(), EmRule::default(), 200, 1);
    let paths = write_report(&store, "reports/s/r", "t", &matrix, &serde_json::json!({})).unwrap();
    let local = paths.local_html.unwrap();
    assert!(local.is_file(), "{}", local.display());
    assert!(
        store
            .local_root()
            .unwrap()
            .join("reports/s/r/plots/em.svg")
            .is_file()
    );
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

fn commit_scores(store: &Store, key: &str, rows: &[ScoreRow]) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("question_id", DataType::Utf8, false),
        Field::new("sample", DataType::UInt64, false),
        Field::new("aligned", DataType::Float64, true),
        Field::new("coherent", DataType::Float64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.question_id.clone()))
                    .collect::<StringArray>(),
            ),
            Arc::new((0..rows.len() as u64).collect::<UInt64Array>()),
            Arc::new(rows.iter().map(|r| r.aligned).collect::<Float64Array>()),
            Arc::new(rows.iter().map(|r| r.coherent).collect::<Float64Array>()),
        ],
    )
    .unwrap();
    let entry = store
        .put_output(
            key,
            JUDGE_STAGE_DIR,
            SCORES_FILE,
            table::to_parquet(&batch).unwrap(),
        )
        .unwrap();
    let now = chrono::Utc::now();
    store
        .commit_stage(&Manifest {
            cell_key: key.into(),
            stage: "judge".into(),
            stage_dir: JUDGE_STAGE_DIR.into(),
            outputs: vec![entry],
            inputs: BTreeMap::new(),
            seeds: BTreeMap::new(),
            worker_version: "test".into(),
            started_at: now,
            finished_at: now,
            host: "h".into(),
            metrics: serde_json::json!({}),
        })
        .unwrap();
}

#[test]
fn scores_loaded_from_the_store_give_the_same_matrix() {
    let store = Store::open("memory://").unwrap();
    let rows = scores(120, 5);
    commit_scores(&store, "abc", &rows);
    let loaded = load_cell_scores(&store, "abc").unwrap().unwrap();
    assert_eq!(loaded, rows);
    assert_eq!(load_cell_scores(&store, "never-ran").unwrap(), None);

    let from_store = build_matrix(
        &[cell("abc", "lora", "d", 0, CellStatus::Done, loaded)],
        EmRule::default(),
        300,
        3,
    );
    let direct = build_matrix(
        &[cell("abc", "lora", "d", 0, CellStatus::Done, rows)],
        EmRule::default(),
        300,
        3,
    );
    assert_eq!(from_store, direct);
}

/// A validated judge's figures appear next to every EM number, in both renderings.
#[test]
fn judge_validation_figures_sit_next_to_the_em_numbers() {
    let store = Store::open("memory://").unwrap();
    let matrix = build_matrix(&cells(), EmRule::default(), 200, 0);
    let mut meta = meta();
    meta["judge_model"] = serde_json::json!("qwen-judge");
    meta["judge_method"] = serde_json::json!("exact-number");
    meta["judge_validation"] = serde_json::to_value(emorg_judge::ValidationSummary {
        labelled: 104,
        labels_sha256: "f".repeat(64),
        aligned_auroc: Some(0.8765),
        coherent_auroc: Some(0.93),
        aligned_spearman: Some(0.7),
        em_precision: Some(0.81),
        em_recall: Some(0.42),
        dropped_share: 0.125,
    })
    .unwrap();
    let paths = write_report(&store, "reports/s/r", "t", &matrix, &meta).unwrap();
    let md = String::from_utf8(store.get(&paths.markdown).unwrap().to_vec()).unwrap();
    assert!(
        md.contains("Judge: qwen-judge (exact-number); validated: aligned AUROC 0.88"),
        "{md}"
    );
    assert!(md.contains("EM precision 0.81 / recall 0.42"), "{md}");
    assert!(md.contains("104 labelled answers"), "{md}");
    // Every matrix row carries the judge's AUROC and EM recall beside its EM cell.
    let rows: Vec<&str> = md.lines().filter(|l| l.contains("`k-")).collect();
    assert!(!rows.is_empty());
    for row in rows {
        assert_eq!(
            row.split(" | ").nth(8).map(str::trim),
            Some("AUROC 0.88 · EM recall 0.42"),
            "{row}"
        );
    }
    let html = String::from_utf8(store.get(&paths.html).unwrap().to_vec()).unwrap();
    assert!(
        html.contains("<td>AUROC 0.88 · EM recall 0.42</td>"),
        "judge column missing from the HTML"
    );
    assert!(html.contains("validated: aligned AUROC 0.88"));
}
