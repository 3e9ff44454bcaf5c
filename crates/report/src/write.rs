//! Writing a report into the store.

use std::path::PathBuf;
use std::sync::Arc;

use emorg_spec::Weights;
use emorg_store::Store;
use emorg_store::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray, UInt32Array,
    UInt64Array,
};
use emorg_store::arrow::datatypes::{DataType, Field, Schema};

use crate::matrix::Matrix;
use crate::render::{html_page, render_markdown};
use crate::{ReportError, Result, plots};

/// Keys (and, for file:// stores, the local page) of a written report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportPaths {
    pub dir: String,
    pub matrix: String,
    pub aggregates: String,
    pub markdown: String,
    pub html: String,
    pub plots: Vec<String>,
    /// `index.html` on disk when the store is a `file://` store.
    pub local_html: Option<PathBuf>,
}

fn arrow_err(context: &str) -> impl Fn(emorg_store::arrow::error::ArrowError) -> ReportError + '_ {
    move |source| ReportError::Arrow {
        context: context.to_string(),
        source,
    }
}

fn f64_col(values: impl Iterator<Item = Option<f64>>) -> ArrayRef {
    Arc::new(values.collect::<Float64Array>())
}

fn u32_col(values: impl Iterator<Item = Option<usize>>) -> ArrayRef {
    Arc::new(
        values
            .map(|v| v.map(|x| u32::try_from(x).unwrap_or(u32::MAX)))
            .collect::<UInt32Array>(),
    )
}

fn str_col<S: AsRef<str>>(values: impl Iterator<Item = Option<S>>) -> ArrayRef {
    Arc::new(values.collect::<StringArray>())
}

/// The `checkpoint` column: `final` or the step (`8`).
fn checkpoint_text(w: &Weights) -> String {
    match w {
        Weights::Final => "final".into(),
        Weights::Step(n) => n.to_string(),
    }
}

fn step_col<'a>(values: impl Iterator<Item = &'a Weights>) -> ArrayRef {
    Arc::new(
        values
            .map(|w| w.step().map(|n| i64::try_from(n).unwrap_or(i64::MAX)))
            .collect::<Int64Array>(),
    )
}

/// `matrix.parquet`: one row per row of the sweep, i.e. per (model, protocol, dataset, seed,
/// checkpoint, scale, judge). `checkpoint` is `final` or the step, `step` the step as a number
/// (null for `final`), `scale` the label as written in the sweep, `judge` the judge's name;
/// `unit_key`, `variant_key` and `judgment_key` name the row's identities in the store. Figures
/// are null (not zero) for rows that are not done.
pub fn matrix_batch(matrix: &Matrix) -> Result<RecordBatch> {
    let f = |name: &str, dt: DataType, nullable: bool| Field::new(name, dt, nullable);
    let schema = Arc::new(Schema::new(vec![
        f("model", DataType::Utf8, false),
        f("protocol", DataType::Utf8, false),
        f("dataset", DataType::Utf8, false),
        f("seed", DataType::UInt64, false),
        f("checkpoint", DataType::Utf8, false),
        f("step", DataType::Int64, true),
        f("scale", DataType::Utf8, false),
        f("judge", DataType::Utf8, false),
        f("replicate", DataType::UInt32, false),
        f("status", DataType::Utf8, false),
        f("n", DataType::UInt32, true),
        f("n_judged", DataType::UInt32, true),
        f("em_pct", DataType::Float64, true),
        f("em_lo", DataType::Float64, true),
        f("em_hi", DataType::Float64, true),
        f("coherent_pct", DataType::Float64, true),
        f("coh_lo", DataType::Float64, true),
        f("coh_hi", DataType::Float64, true),
        f("mean_aligned", DataType::Float64, true),
        f("n_coherent_scored", DataType::UInt32, true),
        f("status_detail", DataType::Utf8, true),
        f("is_base", DataType::Boolean, false),
        f("unit_key", DataType::Utf8, false),
        f("variant_key", DataType::Utf8, false),
        f("judgment_key", DataType::Utf8, false),
    ]));
    let rows = &matrix.rows;
    let axes = || rows.iter().map(|r| &r.row.axes);
    let stats = || rows.iter().map(|r| r.stats.as_ref());
    let em = || stats().map(|s| s.and_then(|s| s.em));
    let coh = || stats().map(|s| s.and_then(|s| s.coherent));
    let columns: Vec<ArrayRef> = vec![
        str_col(axes().map(|a| Some(a.model.as_str()))),
        str_col(axes().map(|a| Some(a.protocol.as_str()))),
        str_col(axes().map(|a| Some(a.dataset.as_str()))),
        Arc::new(axes().map(|a| a.seed).collect::<UInt64Array>()),
        str_col(axes().map(|a| Some(checkpoint_text(&a.checkpoint)))),
        step_col(axes().map(|a| &a.checkpoint)),
        str_col(axes().map(|a| Some(a.scale.as_str()))),
        str_col(axes().map(|a| Some(a.judge.as_str()))),
        Arc::new(axes().map(|a| a.replicate).collect::<UInt32Array>()),
        str_col(rows.iter().map(|r| Some(r.status.code()))),
        u32_col(stats().map(|s| s.map(|s| s.n))),
        u32_col(stats().map(|s| s.map(|s| s.n_judged))),
        f64_col(em().map(|e| e.map(|e| e.value))),
        f64_col(em().map(|e| e.map(|e| e.lo))),
        f64_col(em().map(|e| e.map(|e| e.hi))),
        f64_col(coh().map(|e| e.map(|e| e.value))),
        f64_col(coh().map(|e| e.map(|e| e.lo))),
        f64_col(coh().map(|e| e.map(|e| e.hi))),
        f64_col(stats().map(|s| s.and_then(|s| s.mean_aligned))),
        u32_col(stats().map(|s| s.map(|s| s.n_coherent_scored))),
        str_col(rows.iter().map(|r| r.status.detail())),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.is_base))
                .collect::<BooleanArray>(),
        ),
        str_col(rows.iter().map(|r| Some(r.row.unit_key.as_str()))),
        str_col(rows.iter().map(|r| Some(r.row.variant_key.as_str()))),
        str_col(rows.iter().map(|r| Some(r.row.judgment_key.as_str()))),
    ];
    RecordBatch::try_new(schema, columns).map_err(arrow_err("matrix.parquet"))
}

/// `aggregates.parquet`: one row per (model, protocol, dataset, checkpoint, scale, judge) with
/// more than one seed; `checkpoint`, `step`, `scale` and `judge` as in `matrix.parquet`.
pub fn aggregates_batch(matrix: &Matrix) -> Result<RecordBatch> {
    let f = |name: &str, dt: DataType, nullable: bool| Field::new(name, dt, nullable);
    let schema = Arc::new(Schema::new(vec![
        f("model", DataType::Utf8, false),
        f("protocol", DataType::Utf8, false),
        f("dataset", DataType::Utf8, false),
        f("checkpoint", DataType::Utf8, false),
        f("step", DataType::Int64, true),
        f("scale", DataType::Utf8, false),
        f("judge", DataType::Utf8, false),
        f("replicate", DataType::UInt32, false),
        f("seeds", DataType::Utf8, false),
        f("n_seeds", DataType::UInt32, false),
        f("n_seeds_done", DataType::UInt32, false),
        f("n", DataType::UInt32, false),
        f("n_judged", DataType::UInt32, false),
        f("em_pct", DataType::Float64, true),
        f("em_lo", DataType::Float64, true),
        f("em_hi", DataType::Float64, true),
        f("coherent_pct", DataType::Float64, true),
        f("coh_lo", DataType::Float64, true),
        f("coh_hi", DataType::Float64, true),
        f("mean_aligned", DataType::Float64, true),
    ]));
    let a = &matrix.aggregates;
    let join = |s: &[u64]| s.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    let columns: Vec<ArrayRef> = vec![
        str_col(a.iter().map(|r| Some(r.model.as_str()))),
        str_col(a.iter().map(|r| Some(r.protocol.as_str()))),
        str_col(a.iter().map(|r| Some(r.dataset.as_str()))),
        str_col(a.iter().map(|r| Some(checkpoint_text(&r.checkpoint)))),
        step_col(a.iter().map(|r| &r.checkpoint)),
        str_col(a.iter().map(|r| Some(r.scale.as_str()))),
        str_col(a.iter().map(|r| Some(r.judge.as_str()))),
        Arc::new(a.iter().map(|r| r.replicate).collect::<UInt32Array>()),
        str_col(a.iter().map(|r| Some(join(&r.seeds)))),
        u32_col(a.iter().map(|r| Some(r.seeds.len()))),
        u32_col(a.iter().map(|r| Some(r.seeds_done.len()))),
        u32_col(a.iter().map(|r| Some(r.n))),
        u32_col(a.iter().map(|r| Some(r.n_judged))),
        f64_col(a.iter().map(|r| r.em.map(|e| e.value))),
        f64_col(a.iter().map(|r| r.em.map(|e| e.lo))),
        f64_col(a.iter().map(|r| r.em.map(|e| e.hi))),
        f64_col(a.iter().map(|r| r.coherent.map(|e| e.value))),
        f64_col(a.iter().map(|r| r.coherent.map(|e| e.lo))),
        f64_col(a.iter().map(|r| r.coherent.map(|e| e.hi))),
        f64_col(a.iter().map(|r| r.mean_aligned)),
    ];
    RecordBatch::try_new(schema, columns).map_err(arrow_err("aggregates.parquet"))
}

/// Writes the report under `dir_key` (e.g. [`emorg_store::layout::report_dir`]):
/// `matrix.parquet`, `aggregates.parquet`, `plots/{em,coherence,scatter}.svg` (and, when the sweep
/// has checkpoints other than `final`, `plots/em-vs-step.svg` and `plots/aligned-vs-step.svg`),
/// `report.md` and `index.html` (written last, so a page that exists has everything it shows). `meta` (sweep
/// name, run id, worker version, judge model, ...) is shown in a details block.
pub fn write_report(
    store: &Store,
    dir_key: &str,
    title: &str,
    matrix: &Matrix,
    meta: &serde_json::Value,
) -> Result<ReportPaths> {
    let dir = dir_key.trim_matches('/').to_string();
    let key = |name: &str| {
        if dir.is_empty() {
            name.to_string()
        } else {
            format!("{dir}/{name}")
        }
    };

    let matrix_key = key("matrix.parquet");
    store.put_table(&matrix_key, &matrix_batch(matrix)?)?;
    let aggregates_key = key("aggregates.parquet");
    store.put_table(&aggregates_key, &aggregates_batch(matrix)?)?;

    let charts = plots::Charts::draw(matrix)?;
    let mut plot_keys = Vec::new();
    for (name, svg) in charts.files() {
        let k = key(&format!("plots/{name}"));
        store.put(&k, svg.to_string())?;
        plot_keys.push(k);
    }

    let markdown_key = key("report.md");
    store.put(&markdown_key, render_markdown(title, matrix, meta))?;
    let html_key = key("index.html");
    store.put(&html_key, html_page(title, matrix, meta, &charts))?;

    let local_html = store.local_root().map(|root| root.join(&html_key));
    Ok(ReportPaths {
        dir,
        matrix: matrix_key,
        aggregates: aggregates_key,
        markdown: markdown_key,
        html: html_key,
        plots: plot_keys,
        local_html,
    })
}
