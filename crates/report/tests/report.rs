//! End to end: scores in a store -> matrix -> written report, read back.

use std::collections::BTreeMap;
use std::sync::Arc;

use emorg_report::{
    Axes, CellResult, CellStatus, DEFAULT_N_BOOT, EmRule, JudgmentKey, RowRef, SCORES_FILE,
    ScoreRow, StageRef, UnitKey, VariantKey, Weights, build_matrix, load_row_scores, load_rows,
    write_report,
};
use emorg_store::arrow::array::{
    Array, Float64Array, Int64Array, RecordBatch, StringArray, UInt64Array,
};
use emorg_store::arrow::datatypes::{DataType, Field, Schema};
use emorg_store::{Store, layout, table, upstream_input_key};

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

/// A 64-hex key from a label (FNV-1a: distinct labels, distinct keys).
fn hex_key(label: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in label.as_bytes() {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}").repeat(4)
}

/// A row of `model` with the evaluation axes given; its unit key depends on the training axes
/// only, its variant key on the unit and the checkpoint and scale, its judgment key on all.
#[allow(clippy::too_many_arguments)]
fn row_at(
    model: &str,
    protocol: &str,
    dataset: &str,
    seed: u64,
    checkpoint: Weights,
    scale: &str,
    judge: &str,
) -> RowRef {
    let unit = format!("{model}/{protocol}/{dataset}/{seed}");
    let variant = format!("{unit}/{checkpoint}/{scale}");
    let judgment = format!("{variant}/{judge}");
    RowRef {
        axes: Axes {
            model: model.into(),
            protocol: protocol.into(),
            dataset: dataset.into(),
            seed,
            checkpoint,
            scale: scale.into(),
            judge: judge.into(),
            replicate: 0,
        },
        unit_key: UnitKey::parse(&hex_key(&unit)).unwrap(),
        variant_key: VariantKey::parse(&hex_key(&variant)).unwrap(),
        judgment_key: JudgmentKey::parse(&hex_key(&judgment)).unwrap(),
        trains: protocol != "base",
    }
}

fn cell(
    protocol: &str,
    dataset: &str,
    seed: u64,
    status: CellStatus,
    scores: Vec<ScoreRow>,
) -> CellResult {
    CellResult {
        row: row_at(
            "qwen2.5-0.5b",
            protocol,
            dataset,
            seed,
            Weights::Final,
            "1",
            "default",
        ),
        status,
        scores,
    }
}

/// The short judgment key the tables show for `cells()[i]`.
fn short(c: &CellResult) -> String {
    c.row.judgment_key.short().to_string()
}

fn cells() -> Vec<CellResult> {
    vec![
        cell("lora-r1", "insecure", 0, CellStatus::Done, scores(160, 4)),
        cell("lora-r1", "insecure", 1, CellStatus::Done, scores(160, 6)),
        cell("lora-r1", "insecure", 2, CellStatus::NotRun, vec![]),
        cell(
            "full-sft",
            "bad-medical",
            0,
            CellStatus::Failed("CUDA out of memory | at step 12".into()),
            vec![],
        ),
        cell("full-sft", "bad-medical", 1, CellStatus::Running, vec![]),
        cell("base", "-", 0, CellStatus::Done, scores(160, 50)),
    ]
}

fn meta() -> serde_json::Value {
    serde_json::json!({"sweep": "robustness", "run_id": "r-001", "worker_version": "0.1.0+numerics.1", "judge_model": "qwen2.5-7b-instruct"})
}

/// The table row of report.md for a row's short key.
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
        "judgment_key",
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
    let keys = strings(&batch, "judgment_key");
    let status = strings(&batch, "status");
    let em = floats(&batch, "em_pct");
    // base row first
    let all = cells();
    assert_eq!(keys[0], all[5].row.judgment_key.as_str());
    for i in 0..batch.num_rows() {
        if status[i] == "done" {
            assert!(em[i].is_some(), "done cell {} has no EM", keys[i]);
        } else {
            assert!(
                em[i].is_none(),
                "{} cell {} has an EM figure",
                status[i],
                keys[i]
            );
        }
    }
    assert_eq!(store.get_table(&paths.aggregates).unwrap().num_rows(), 2);

    // report.md: the not-run cell says so and carries no number
    let md = String::from_utf8(store.get(&paths.markdown).unwrap().to_vec()).unwrap();
    let not_run = md_row(&md, &short(&all[2]));
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
    let failed = md_row(&md, &short(&all[3]));
    assert!(
        failed.contains("failed: CUDA out of memory \\| at step 12"),
        "{failed}"
    );
    assert!(md_row(&md, &short(&all[4])).contains("running"));
    // one checkpoint (final), one scale (1), one judge: no column for them
    let header = md.lines().find(|l| l.starts_with("| model")).unwrap();
    assert_eq!(
        header,
        "| model | protocol | dataset | seed | status | n | judged | EM % [95% CI] | judge | \
         coherent % [95% CI] | mean aligned | cell |"
    );
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
    assert!(!html.contains("<th>checkpoint</th>") && !html.contains("<th>scale</th>"));
    // no checkpoints: no plot against steps
    assert!(!html.contains("em-vs-step"), "a step plot without steps");
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

use emorg_store::testing::commit_one as commit;

fn scores_parquet(rows: &[ScoreRow]) -> Vec<u8> {
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
    table::to_parquet(&batch).unwrap().to_vec()
}

/// Commits a row's whole chain as the worker would: train (when the unit trains), sample
/// (recording the adapter it read), judge (recording the answers it read).
fn commit_row(store: &Store, row: &RowRef, rows: &[ScoreRow]) {
    let mut read = BTreeMap::new();
    if row.trains {
        // once per unit: rows of one unit share its training
        let train = StageRef::Train(row.unit_key.clone());
        let adapter = "adapter/adapter_model.safetensors";
        let sha = match store.read_done(&train).unwrap().manifest() {
            Some(m) => m.output(adapter).unwrap().sha256.clone(),
            None => commit(store, &train, adapter, b"weights".to_vec(), BTreeMap::new()),
        };
        read.insert(upstream_input_key(&train, adapter), sha);
    }
    let sample = StageRef::Sample(row.variant_key.clone());
    let sha = commit(
        store,
        &sample,
        "responses.parquet",
        b"answers".to_vec(),
        read,
    );
    let read = BTreeMap::from([(upstream_input_key(&sample, "responses.parquet"), sha)]);
    let judge = StageRef::Judge(row.judgment_key.clone());
    commit(store, &judge, SCORES_FILE, scores_parquet(rows), read);
}

#[test]
fn scores_loaded_from_the_store_give_the_same_matrix() {
    let store = Store::open("memory://").unwrap();
    let rows = scores(120, 5);
    let done = cell("lora", "d", 0, CellStatus::Done, rows.clone());
    commit_row(&store, &done.row, &rows);
    let loaded = load_row_scores(&store, &done.row).unwrap().unwrap();
    assert_eq!(loaded, rows);
    let never = cell("lora", "d", 1, CellStatus::NotRun, vec![]);
    assert_eq!(load_row_scores(&store, &never.row).unwrap(), None);

    let from_store = load_rows(&store, &[done.row.clone(), never.row.clone()]).unwrap();
    assert_eq!(from_store[0], done);
    assert_eq!(from_store[1], never);
    assert_eq!(
        build_matrix(&from_store, EmRule::default(), 300, 3),
        build_matrix(&[done, never], EmRule::default(), 300, 3)
    );
}

/// A row whose sample stage was redone after its judgment: its scores are not read, the report
/// shows no figure for it and says why; the other rows of the unit are unaffected.
#[test]
fn a_judgment_of_answers_redone_since_is_not_read() {
    let store = Store::open("memory://").unwrap();
    let m = "smollm2-135m";
    let stale = row_at(m, "lora", "d", 0, Weights::Final, "1", "default");
    let fresh = row_at(m, "lora", "d", 0, Weights::Final, "5", "default");
    commit_row(&store, &stale, &scores(60, 4));
    commit_row(&store, &fresh, &scores(60, 4));
    // The stale row's sample is redone (other answers): its judgment judged answers that are gone.
    let sample = StageRef::Sample(stale.variant_key.clone());
    store.delete(&layout::done(&sample)).unwrap();
    let train = StageRef::Train(stale.unit_key.clone());
    let adapter = "adapter/adapter_model.safetensors";
    let trained = store.read_done(&train).unwrap();
    let read = BTreeMap::from([(
        upstream_input_key(&train, adapter),
        trained
            .manifest()
            .unwrap()
            .output(adapter)
            .unwrap()
            .sha256
            .clone(),
    )]);
    commit(
        &store,
        &sample,
        "responses.parquet",
        b"other answers".to_vec(),
        read,
    );

    assert_eq!(load_row_scores(&store, &stale).unwrap(), None);
    let loaded = load_rows(&store, &[stale.clone(), fresh.clone()]).unwrap();
    assert!(loaded[0].scores.is_empty());
    let CellStatus::Failed(reason) = &loaded[0].status else {
        panic!("a stale judgment must not be done: {:?}", loaded[0].status);
    };
    assert!(
        reason.starts_with("judge is stale: input ")
            && reason.contains(&upstream_input_key(&sample, "responses.parquet")),
        "{reason}"
    );
    assert_eq!(loaded[1].status, CellStatus::Done);
    assert_eq!(loaded[1].scores.len(), 60);

    let matrix = build_matrix(&loaded, EmRule::default(), 100, 0);
    let paths = write_report(&store, "reports/s/r", "t", &matrix, &serde_json::json!({})).unwrap();
    let batch = store.get_table(&paths.matrix).unwrap();
    let keys = strings(&batch, "judgment_key");
    let em = floats(&batch, "em_pct");
    let at = |row: &RowRef| {
        keys.iter()
            .position(|k| k == row.judgment_key.as_str())
            .unwrap()
    };
    assert!(em[at(&stale)].is_none() && em[at(&fresh)].is_some());
    assert_eq!(strings(&batch, "status")[at(&stale)], "failed");
    let md = String::from_utf8(store.get(&paths.markdown).unwrap().to_vec()).unwrap();
    assert!(
        md_row(&md, stale.judgment_key.short()).contains("judge is stale: input"),
        "{md}"
    );
}

/// A Float64 column (null as `None`).
fn floats(batch: &RecordBatch, name: &str) -> Vec<Option<f64>> {
    let col = batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"));
    let col = col.as_any().downcast_ref::<Float64Array>().unwrap();
    (0..col.len())
        .map(|i| (!col.is_null(i)).then(|| col.value(i)))
        .collect()
}

/// A Utf8 column as strings (null as "<null>").
fn strings(batch: &RecordBatch, name: &str) -> Vec<String> {
    let col = batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"));
    assert_eq!(col.data_type(), &DataType::Utf8, "{name}");
    let col = col.as_any().downcast_ref::<StringArray>().unwrap();
    (0..col.len())
        .map(|i| {
            if col.is_null(i) {
                "<null>".into()
            } else {
                col.value(i).to_string()
            }
        })
        .collect()
}

/// A sweep with checkpoints 0, 8, 16 and final, scales 1 and 5, and two seeds of one protocol,
/// plus the base model; `judges` judges each.
fn checkpoint_sweep(judges: &[&str]) -> Vec<CellResult> {
    let m = "smollm2-135m";
    let mut out = vec![CellResult {
        row: row_at(m, "base", "-", 0, Weights::Final, "1", judges[0]),
        status: CellStatus::Done,
        scores: scores(80, 40),
    }];
    for judge in judges {
        for scale in ["1", "5"] {
            for (i, checkpoint) in [
                Weights::Step(0),
                Weights::Step(8),
                Weights::Step(16),
                Weights::Final,
            ]
            .into_iter()
            .enumerate()
            {
                for seed in 0..2 {
                    let em_every = if scale == "5" { 2 } else { 12 - 2 * i };
                    out.push(CellResult {
                        row: row_at(m, "r1", "insecure", seed, checkpoint, scale, judge),
                        status: CellStatus::Done,
                        scores: scores(80, em_every),
                    });
                }
            }
        }
    }
    out
}

#[test]
fn matrix_parquet_names_checkpoint_step_scale_judge_and_the_three_keys() {
    let store = Store::open("memory://").unwrap();
    let cells = checkpoint_sweep(&["default"]);
    let matrix = build_matrix(&cells, EmRule::default(), 100, 0);
    let paths = write_report(&store, "reports/s/r", "t", &matrix, &serde_json::json!({})).unwrap();

    // Read back with the parquet reader.
    let bytes = store.get(&paths.matrix).unwrap();
    assert!(bytes.starts_with(b"PAR1"));
    let batch = table::from_parquet(bytes).unwrap();
    assert_eq!(batch.num_rows(), cells.len());
    let step_col = batch.column_by_name("step").unwrap();
    assert_eq!(step_col.data_type(), &DataType::Int64);
    let step = step_col.as_any().downcast_ref::<Int64Array>().unwrap();
    let (checkpoint, scale, judge) = (
        strings(&batch, "checkpoint"),
        strings(&batch, "scale"),
        strings(&batch, "judge"),
    );
    let (unit, variant, judgment) = (
        strings(&batch, "unit_key"),
        strings(&batch, "variant_key"),
        strings(&batch, "judgment_key"),
    );
    // Every row of the sweep is there once, with its axes and keys.
    for c in &cells {
        let i = judgment
            .iter()
            .position(|k| k == c.row.judgment_key.as_str())
            .unwrap_or_else(|| panic!("no row for {:?}", c.row.axes));
        let a = &c.row.axes;
        match a.checkpoint {
            Weights::Final => {
                assert_eq!(checkpoint[i], "final");
                assert!(step.is_null(i), "final has no step");
            }
            Weights::Step(n) => {
                assert_eq!(checkpoint[i], n.to_string());
                assert_eq!(step.value(i), n as i64);
            }
        }
        assert_eq!(scale[i], a.scale);
        assert_eq!(judge[i], a.judge);
        assert_eq!(unit[i], c.row.unit_key.as_str());
        assert_eq!(variant[i], c.row.variant_key.as_str());
    }
    // Rows are in training order within a scale: 0, 0, 8, 8, 16, 16, final, final.
    let r1: Vec<(&str, &str)> = (0..batch.num_rows())
        .filter(|&i| strings(&batch, "protocol")[i] == "r1")
        .map(|i| (scale[i].as_str(), checkpoint[i].as_str()))
        .collect();
    let order: Vec<&str> = r1.iter().filter(|(s, _)| *s == "1").map(|p| p.1).collect();
    assert_eq!(order, ["0", "0", "8", "8", "16", "16", "final", "final"]);

    // Means over seeds keep checkpoint and scale apart: 4 checkpoints x 2 scales.
    let agg = store.get_table(&paths.aggregates).unwrap();
    assert_eq!(agg.num_rows(), 8);
    let seeds = strings(&agg, "seeds");
    assert!(seeds.iter().all(|s| s == "0,1"), "{seeds:?}");
    let mut groups: Vec<(String, String)> = strings(&agg, "scale")
        .into_iter()
        .zip(strings(&agg, "checkpoint"))
        .collect();
    groups.sort();
    groups.dedup();
    assert_eq!(groups.len(), 8);
    let agg_step = agg
        .column_by_name("step")
        .unwrap()
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(agg_step.null_count(), 2, "final, once per scale");
    assert!(strings(&agg, "judge").iter().all(|j| j == "default"));

    // The tables show checkpoint and scale (they vary), not the one judge.
    let md = String::from_utf8(store.get(&paths.markdown).unwrap().to_vec()).unwrap();
    let header = md.lines().find(|l| l.starts_with("| model")).unwrap();
    assert!(
        header.starts_with("| model | protocol | dataset | seed | checkpoint | scale | status |"),
        "{header}"
    );
    let fin = cells.iter().find(|c| c.row.axes.scale == "5").unwrap();
    let row = md_row(&md, fin.row.judgment_key.short());
    assert!(row.contains("| step-0 | 5 |"), "{row}");
}

/// The `<figure id=...>` of `html`, its inner SVG.
fn figure<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<figure id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no figure {id}"));
    let end = start + html[start..].find("</figure>").unwrap();
    &html[start..end]
}

/// The trimmed text of every `<text>` element of `svg`.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .map(|t| {
            let body = &t[t.find('>').unwrap() + 1..];
            body[..body.find("</text>").unwrap()].trim().to_string()
        })
        .collect()
}

/// `(stroke colour, number of points)` of every `<polyline>` in `svg`.
fn polylines(svg: &str) -> Vec<(String, usize)> {
    svg.split("<polyline")
        .skip(1)
        .map(|p| {
            let p = &p[..p.find("/>").unwrap()];
            let attr = |name: &str| {
                let at = p.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                p[at..at + p[at..].find('"').unwrap()].to_string()
            };
            (attr("stroke"), attr("points").split_whitespace().count())
        })
        .collect()
}

#[test]
fn a_sweep_with_checkpoints_plots_em_against_step_one_line_per_scale() {
    let store = Store::open("memory://").unwrap();
    let matrix = build_matrix(&checkpoint_sweep(&["default"]), EmRule::default(), 100, 0);
    let paths = write_report(&store, "reports/s/r", "t", &matrix, &serde_json::json!({})).unwrap();
    let html = String::from_utf8(store.get(&paths.html).unwrap().to_vec()).unwrap();
    let fig = figure(&html, "em-vs-step");
    assert!(fig.contains("<svg"), "no svg in the figure");
    let texts = texts(fig);
    assert!(
        texts.iter().any(|t| t == "final"),
        "final is a tick of its own: {texts:?}"
    );
    for label in ["scale 1", "scale 5", "base (untrained)"] {
        assert!(
            texts.iter().any(|t| t == label),
            "no legend entry {label}: {texts:?}"
        );
    }
    // One line over the three steps per scale, each its own colour.
    let lines: Vec<(String, usize)> = polylines(fig)
        .into_iter()
        .filter(|(_, n)| *n == 3)
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_ne!(lines[0].0, lines[1].0);
    // The same plot as a file, and mean aligned vs step.
    assert!(
        paths
            .plots
            .iter()
            .any(|p| p.ends_with("plots/em-vs-step.svg"))
    );
    assert!(
        paths
            .plots
            .iter()
            .any(|p| p.ends_with("plots/aligned-vs-step.svg"))
    );
    assert!(figure(&html, "aligned-vs-step").contains("<svg"));
    // The page's table shows the varying columns.
    assert!(html.contains("<th>checkpoint</th><th>scale</th><th>status</th>"));
}

#[test]
fn several_judges_get_a_column_a_panel_and_their_own_validation_each() {
    let store = Store::open("memory://").unwrap();
    let matrix = build_matrix(
        &checkpoint_sweep(&["gpt4o", "qwen"]),
        EmRule::default(),
        100,
        0,
    );
    assert!(matrix.varying.judge);
    let summary = |auroc: f64, recall: f64| {
        serde_json::to_value(emorg_judge::ValidationSummary {
            labelled: 50,
            labels_sha256: "f".repeat(64),
            aligned_auroc: Some(auroc),
            coherent_auroc: None,
            aligned_spearman: None,
            em_precision: None,
            em_recall: Some(recall),
            dropped_share: 0.0,
        })
        .unwrap()
    };
    let meta = serde_json::json!({
        "judges": {
            "gpt4o": {"model": "gpt-4o", "method": "top20-first-token", "validation": summary(0.91, 0.7)},
            "qwen": {"model": "qwen2.5-7b", "method": "exact-number", "validation": null},
        }
    });
    let paths = write_report(&store, "reports/s/r", "t", &matrix, &meta).unwrap();
    let md = String::from_utf8(store.get(&paths.markdown).unwrap().to_vec()).unwrap();
    assert!(
        md.contains("Judge gpt4o: gpt-4o (top20-first-token); validated: aligned AUROC 0.91"),
        "{md}"
    );
    assert!(
        md.contains("Judge qwen: qwen2.5-7b (exact-number); not validated"),
        "{md}"
    );
    let header = md.lines().find(|l| l.starts_with("| model")).unwrap();
    assert!(
        header.contains("| checkpoint | scale | judge | status |")
            && header.contains("| judge validation |"),
        "{header}"
    );
    for line in md
        .lines()
        .filter(|l| l.starts_with("| smollm2") && l.contains("| r1 |"))
    {
        let want = if line.contains("| gpt4o |") {
            "| AUROC 0.91 · EM recall 0.70 |"
        } else {
            assert!(line.contains("| qwen |"), "{line}");
            "| unvalidated |"
        };
        assert!(line.contains(want), "{line}");
    }
    let html = String::from_utf8(store.get(&paths.html).unwrap().to_vec()).unwrap();
    let fig = figure(&html, "em-vs-step");
    let texts = texts(fig);
    for judge in ["gpt4o", "qwen"] {
        assert!(
            texts
                .iter()
                .any(|t| t.ends_with(&format!(": judge {judge}"))),
            "no panel for {judge}: {texts:?}"
        );
    }
    let lines = polylines(fig).into_iter().filter(|(_, n)| *n == 3).count();
    assert_eq!(lines, 4, "two scales in each judge's panel");
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
    let rows: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with("| qwen2.5-0.5b") && l.contains('`'))
        .collect();
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
