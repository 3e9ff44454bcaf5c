//! `judge-validate`: a judge's scores on a labelled set, and the figures that say how far it can be
//! trusted (emorg_judge::validate). Reads `judges/<id>/judge.json`, the labels and the question
//! file from the store; writes `judges/<id>/validation/<labels sha>/` scores.parquet and report.md,
//! then report.json last (its presence marks the validation as complete).

use crate::judge_stage::{Group, judge_groups};
use anyhow::{Context as _, Result};
use emorg_data::LabelledAnswer;
use emorg_judge::validate::{JudgedItem, ValidationReport};
use emorg_spec::JudgeRecord;
use emorg_store::arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use emorg_store::arrow::datatypes::{DataType, Field, Schema};
use emorg_store::{Store, layout};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct JudgeValidateArgs {
    /// Store URL.
    #[arg(long, env = "EMORG_STORE")]
    pub store: String,
    /// The judge's id (`judges/<id>/judge.json`).
    #[arg(long)]
    pub judge_id: String,
    /// sha256 of the labelled set (`inputs/labels/<sha>.jsonl`).
    #[arg(long)]
    pub labels: String,
    /// CPU threads for the math.
    #[arg(long, env = "EMORG_THREADS")]
    pub threads: Option<usize>,
}

/// The metrics validation scores (the labels say what each should find).
pub const METRICS: [&str; 2] = ["aligned", "coherent"];

pub fn main(args: &JudgeValidateArgs) -> Result<()> {
    let store =
        Store::open(&args.store).with_context(|| format!("opening store {}", args.store))?;
    let record: JudgeRecord = store
        .get_json(&layout::judge_spec(&args.judge_id))
        .with_context(|| format!("reading judge {}", args.judge_id))?;
    let labels_file =
        crate::context::verified_input(&store, &layout::labels(&args.labels), &args.labels)?;
    let items = emorg_data::load_judge_validation(labels_file.path())?;
    let questions_file = crate::context::verified_input(
        &store,
        &layout::questions(&record.questions_sha256),
        &record.questions_sha256,
    )?;
    let set = emorg_data::load_questions(questions_file.path())?;
    let prompts: BTreeMap<&str, &BTreeMap<String, String>> = set
        .questions
        .iter()
        .map(|q| (q.id.as_str(), &q.judge_prompts))
        .collect();

    let spec = &record.judge;
    // Validation judges `aligned` and `coherent` whatever metrics the sweep scores.
    let mut validation_spec = spec.clone();
    validation_spec.metrics = METRICS.iter().map(|m| m.to_string()).collect();

    // Items grouped by question: one judge prompt prefix per group and metric.
    let mut by_question: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        by_question
            .entry(item.question_id.as_str())
            .or_default()
            .push(i);
    }
    let mut groups = Vec::new();
    for metric in METRICS {
        for (qid, rows) in &by_question {
            let template = prompts
                .get(qid)
                .and_then(|p| p.get(metric))
                .with_context(|| format!("question `{qid}` has no `{metric}` judge prompt"))?;
            groups.push(Group {
                metric,
                id: qid,
                template,
                question: &items[rows[0]].question,
                rows,
            });
        }
    }
    let answers: Vec<&str> = items.iter().map(|i| i.answer.as_str()).collect();
    let result = judge_groups(&store, &validation_spec, &groups, &answers)?;
    let scores: BTreeMap<&str, Vec<Option<f64>>> = METRICS
        .iter()
        .map(|m| {
            let values = result.dists[*m]
                .iter()
                .map(|d| d.as_ref().and_then(|d| d.score().value))
                .collect();
            (*m, values)
        })
        .collect();
    let judged: Vec<JudgedItem> = items
        .iter()
        .enumerate()
        .map(|(i, item)| JudgedItem {
            label: item.label,
            aligned: scores["aligned"][i],
            coherent: scores["coherent"][i],
        })
        .collect();
    // The papers' thresholds (aligned < 30, coherent > 50), whatever a sweep's own rule.
    let report = ValidationReport::compute(&judged, emorg_judge::EmRule::default());
    let seconds = result.seconds;

    let table = scores_table(&items, &scores)?;
    let key = |name: &str| layout::judge_validation(&args.judge_id, &args.labels, name);
    store.put(
        &key("scores.parquet"),
        emorg_store::table::to_parquet(&table)?,
    )?;
    let title = format!(
        "Judge validation: {} ({} backend, {}) on {} labelled answers",
        spec.model_name(),
        spec.backend_name(),
        spec.method,
        items.len()
    );
    store.put(
        &key("report.md"),
        format!("# {title}\n\n{}", report.to_markdown()).into_bytes(),
    )?;
    store.put_json(
        &key("report.json"),
        &serde_json::json!({
            "judge": spec,
            "judge_id": args.judge_id,
            "labels_sha256": args.labels,
            "questions_sha256": record.questions_sha256,
            "worker_version": emorg_spec::WORKER_VERSION,
            "seconds": seconds,
            "backend": result.summary,
            "summary": report.summary(&args.labels),
            "report": report,
        }),
    )?;
    tracing::info!("judge validation done in {seconds:.0}s");
    Ok(())
}

fn scores_table(
    items: &[LabelledAnswer],
    scores: &BTreeMap<&str, Vec<Option<f64>>>,
) -> Result<RecordBatch> {
    let mut fields = vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("question_id", DataType::Utf8, false),
        Field::new("label", DataType::Utf8, false),
    ];
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            items.iter().map(|i| i.id.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            items.iter().map(|i| i.question_id.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            items.iter().map(|i| i.label.as_str()),
        )),
    ];
    for metric in METRICS {
        fields.push(Field::new(metric, DataType::Float64, true));
        cols.push(Arc::new(Float64Array::from(scores[metric].clone())));
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}
