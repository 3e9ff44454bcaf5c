//! `judge`: scores for every sampled answer with the local judge model.

use crate::context::{StageContext, asked_questions};
use anyhow::{Context as _, Result, bail};
use emorg_judge::local::{JudgeMethod, LocalJudge};
use emorg_judge::{EmRule, NumberDistribution};
use emorg_spec::Stage;
use emorg_store::arrow::array::{
    Array, ArrayRef, Float64Array, RecordBatch, StringArray, UInt32Array,
};
use emorg_store::arrow::datatypes::{DataType, Field, Schema};
use emorg_store::layout;
use std::collections::BTreeMap;
use std::sync::Arc;

pub fn run(ctx: &StageContext) -> Result<()> {
    let cell = &ctx.cell;
    let sample = ctx.require_done(Stage::Sample)?;
    let responses_entry = sample
        .output("responses.parquet")
        .context("the sample stage lists no responses.parquet")?;
    let responses = ctx.store.get_table(&layout::stage_key(
        &ctx.key,
        Stage::Sample.dir(),
        "responses.parquet",
    ))?;
    let col = |name: &str| {
        responses
            .column_by_name(name)
            .with_context(|| format!("responses.parquet has no `{name}`"))
    };
    let qid = col("question_id")?
        .as_any()
        .downcast_ref::<StringArray>()
        .context("question_id")?
        .clone();
    let para = col("paraphrase")?
        .as_any()
        .downcast_ref::<UInt32Array>()
        .context("paraphrase")?
        .clone();
    let samp = col("sample")?
        .as_any()
        .downcast_ref::<UInt32Array>()
        .context("sample")?
        .clone();
    let question = col("question")?
        .as_any()
        .downcast_ref::<StringArray>()
        .context("question")?
        .clone();
    let answer = col("response")?
        .as_any()
        .downcast_ref::<StringArray>()
        .context("response")?
        .clone();
    let n = responses.num_rows();

    let judge_spec = &cell.judge;
    let method = JudgeMethod::parse(&judge_spec.method).with_context(|| {
        format!(
            "judge method `{}` (expected exact-number or top20-first-token)",
            judge_spec.method
        )
    })?;
    let path = ctx.model_path(&judge_spec.model)?;
    let t_load = std::time::Instant::now();
    let judge = LocalJudge::load(
        &path,
        method,
        judge_spec.prune_below,
        &crate::context::device()?,
    )?;
    tracing::info!(
        "judge {} loaded in {:.1}s",
        judge_spec.model.name,
        t_load.elapsed().as_secs_f64()
    );

    let prompts: BTreeMap<String, BTreeMap<String, String>> = asked_questions(ctx)?
        .into_iter()
        .map(|q| (q.id, q.judge_prompts))
        .collect();
    // Rows grouped by (question id, paraphrase): they share the judge prompt's prefix.
    let mut groups: BTreeMap<(String, u32), Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        groups
            .entry((qid.value(i).to_string(), para.value(i)))
            .or_default()
            .push(i);
    }
    let mut dists: BTreeMap<String, Vec<Option<NumberDistribution>>> = judge_spec
        .metrics
        .iter()
        .map(|m| (m.clone(), vec![None; n]))
        .collect();
    let started = std::time::Instant::now();
    let mut done = 0usize;
    for metric in &judge_spec.metrics {
        for ((id, _), rows) in &groups {
            let template = prompts
                .get(id)
                .and_then(|p| p.get(metric))
                .with_context(|| {
                    format!("question `{id}` has no judge prompt for metric `{metric}`")
                })?;
            let q = question.value(rows[0]);
            let answers: Vec<&str> = rows.iter().map(|i| answer.value(*i)).collect();
            let t0 = std::time::Instant::now();
            let out = judge.judge_question(template, q, &answers)?;
            done += rows.len();
            tracing::info!(
                "{metric} {id}: {} answers in {:.1}s ({done}/{} judgments)",
                rows.len(),
                t0.elapsed().as_secs_f64(),
                n * judge_spec.metrics.len()
            );
            for (i, d) in rows.iter().zip(out) {
                dists.get_mut(metric).expect("metric present")[*i] = Some(d);
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();

    let mut fields = vec![
        Field::new("question_id", DataType::Utf8, false),
        Field::new("paraphrase", DataType::UInt32, false),
        Field::new("sample", DataType::UInt32, false),
    ];
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(qid.clone()),
        Arc::new(para.clone()),
        Arc::new(samp.clone()),
    ];
    let mut scores: BTreeMap<&str, Vec<Option<f64>>> = BTreeMap::new();
    for metric in &judge_spec.metrics {
        let ds = &dists[metric];
        let s: Vec<_> = ds
            .iter()
            .map(|d| d.as_ref().expect("every row judged").score())
            .collect();
        fields.push(Field::new(metric, DataType::Float64, true));
        cols.push(Arc::new(Float64Array::from(
            s.iter().map(|x| x.value).collect::<Vec<_>>(),
        )));
        fields.push(Field::new(
            format!("{metric}_number_mass"),
            DataType::Float64,
            false,
        ));
        cols.push(Arc::new(Float64Array::from_iter_values(
            s.iter().map(|x| x.number_mass),
        )));
        fields.push(Field::new(
            format!("{metric}_pruned_mass"),
            DataType::Float64,
            false,
        ));
        cols.push(Arc::new(Float64Array::from_iter_values(
            ds.iter().map(|d| d.as_ref().map_or(0.0, |d| d.pruned_mass)),
        )));
        fields.push(Field::new(format!("{metric}_top"), DataType::Utf8, false));
        cols.push(Arc::new(StringArray::from_iter_values(
            s.iter()
                .map(|x| serde_json::to_string(&x.top).unwrap_or_default()),
        )));
        scores.insert(metric.as_str(), s.iter().map(|x| x.value).collect());
    }
    let table = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?;
    if table.num_rows() != n {
        bail!(
            "scores table has {} rows for {n} responses",
            table.num_rows()
        );
    }
    ctx.put_output("scores.parquet", emorg_store::table::to_parquet(&table)?)?;

    // A summary in the manifest; the report recomputes everything from scores.parquet.
    let rule = EmRule::default();
    let (aligned, coherent) = (scores.get("aligned"), scores.get("coherent"));
    let em: Vec<bool> = match (aligned, coherent) {
        (Some(a), Some(c)) => a
            .iter()
            .zip(c)
            .filter_map(|(a, c)| rule.classify(*a, *c))
            .collect(),
        _ => Vec::new(),
    };
    let mut inputs = BTreeMap::new();
    inputs.insert(
        "judge_model".to_string(),
        judge_spec.model.gguf_sha256.clone(),
    );
    inputs.insert("responses".to_string(), responses_entry.sha256.clone());
    ctx.commit(
        inputs,
        BTreeMap::new(),
        serde_json::json!({
            "judgments": n * judge_spec.metrics.len(),
            "seconds": seconds,
            "seconds_per_judgment": seconds / (n * judge_spec.metrics.len()).max(1) as f64,
            "judged": em.len(),
            "em_fraction": if em.is_empty() { None } else { Some(em.iter().filter(|e| **e).count() as f64 / em.len() as f64) },
            "method": judge_spec.method,
            "prune_below": judge_spec.prune_below,
        }),
    )
}
