//! `judge`: scores for every answer of a variant, by the judgment's judge backend: the local GGUF
//! judge (candle) or a judge behind an OpenAI-compatible API. Both cache their judgments in the
//! store (`judge-cache/...`), so re-judging identical answers with the same judge costs nothing.

use crate::context::{StageContext, asked_questions};
use anyhow::{Context as _, Result};
use emorg_judge::openai::OpenAiJudge;
use emorg_judge::{CacheError, EmRule, JudgmentCache, JudgmentKey as CacheKey, NumberDistribution};
use emorg_judge_local::{JudgeMethod, LocalJudge, LocalJudgeIdentity};
use emorg_spec::{JudgeBackend, JudgeSpec, ModelRef, OpenAiJudgeSpec};
use emorg_store::tables::{
    ALIGNED, COHERENT, MetricScores, RESPONSES, ResponseRow, SCORES, ScoreRowId, TableRow,
    scores_batch,
};
use emorg_store::{Store, layout};
use std::collections::BTreeMap;

/// One judge prompt's worth of answers: the rows of one (question id, paraphrase) for one metric.
pub struct Group<'a> {
    pub metric: &'a str,
    pub id: &'a str,
    pub template: &'a str,
    pub question: &'a str,
    pub rows: &'a [usize],
}

/// Distributions per metric (indexed by answer row), and what the backend reports about itself
/// for the manifest.
pub struct Judged {
    pub dists: BTreeMap<String, Vec<Option<NumberDistribution>>>,
    pub summary: serde_json::Map<String, serde_json::Value>,
    pub inputs: BTreeMap<String, String>,
    /// Time spent judging (after loading the judge).
    pub seconds: f64,
}

/// Every group judged by `spec`'s backend (the judge stage and judge validation share this).
pub fn judge_groups(
    store: &Store,
    spec: &JudgeSpec,
    groups: &[Group],
    answers: &[&str],
) -> Result<Judged> {
    let method = JudgeMethod::parse(&spec.method).with_context(|| {
        format!(
            "judge method `{}` (expected exact-number or top20-first-token)",
            spec.method
        )
    })?;
    match &spec.backend {
        JudgeBackend::Local(model) => judge_local(store, spec, model, method, groups, answers),
        JudgeBackend::OpenAi(api) => judge_openai(store, spec, api, method, groups, answers),
    }
}

pub fn run(ctx: &StageContext) -> Result<()> {
    let judgment = ctx
        .judgment
        .as_ref()
        .context("the judge stage reads a judgment")?;
    let sample_stage = ctx.sample_stage().context("a judgment judges a variant")?;
    // Read only when its bytes hash to what sample's DONE.json records; the hash goes into this
    // stage's inputs (under its store key; also as "responses"), which makes this stage stale
    // when sample is redone with other answers.
    let sample = ctx.require_done(&sample_stage)?;
    let mut upstream = BTreeMap::new();
    let responses_bytes = ctx.read_upstream(&sample, RESPONSES, &mut upstream)?;
    let responses_sha =
        upstream[&emorg_store::upstream_input_key(&sample_stage, RESPONSES)].clone();
    let responses = emorg_store::table::from_parquet(responses_bytes)
        .map_err(anyhow::Error::from)
        .and_then(|batch| Ok(ResponseRow::from_batch(&batch)?))
        .with_context(|| format!("reading {}", layout::output(&sample_stage, RESPONSES)))?;
    let n = responses.len();

    let judge_spec = &judgment.judge;
    let prompts: BTreeMap<String, BTreeMap<String, String>> = asked_questions(ctx)?
        .into_iter()
        .map(|q| (q.id, q.judge_prompts))
        .collect();
    // Rows grouped by (question id, paraphrase): they share the judge prompt's prefix.
    let mut by_question: BTreeMap<(String, u32), Vec<usize>> = BTreeMap::new();
    for (i, r) in responses.iter().enumerate() {
        by_question
            .entry((r.question_id.clone(), r.paraphrase))
            .or_default()
            .push(i);
    }
    let mut groups = Vec::new();
    for metric in &judge_spec.metrics {
        for ((id, _), rows) in &by_question {
            let template = prompts
                .get(id)
                .and_then(|p| p.get(metric))
                .with_context(|| {
                    format!("question `{id}` has no judge prompt for metric `{metric}`")
                })?;
            groups.push(Group {
                metric,
                id,
                template,
                question: &responses[rows[0]].question,
                rows,
            });
        }
    }
    let answers: Vec<&str> = responses.iter().map(|r| r.response.as_str()).collect();

    let judged = judge_groups(&ctx.store, judge_spec, &groups, &answers)?;
    let (dists, seconds) = (judged.dists, judged.seconds);

    let ids: Vec<ScoreRowId> = responses
        .iter()
        .map(|r| ScoreRowId {
            question_id: r.question_id.clone(),
            paraphrase: r.paraphrase,
            sample: r.sample,
        })
        .collect();
    let mut columns = Vec::new();
    let mut scores: BTreeMap<&str, Vec<Option<f64>>> = BTreeMap::new();
    for metric in &judge_spec.metrics {
        let ds = &dists[metric];
        let s: Vec<_> = ds
            .iter()
            .map(|d| d.as_ref().expect("every row judged").score())
            .collect();
        columns.push(MetricScores {
            metric: metric.clone(),
            value: s.iter().map(|x| x.value).collect(),
            number_mass: s.iter().map(|x| x.number_mass).collect(),
            pruned_mass: ds
                .iter()
                .map(|d| d.as_ref().map_or(0.0, |d| d.pruned_mass))
                .collect(),
            top: s
                .iter()
                .map(|x| serde_json::to_string(&x.top).unwrap_or_default())
                .collect(),
        });
        scores.insert(metric.as_str(), s.iter().map(|x| x.value).collect());
    }
    // Every metric column has one value per answer, or building the batch fails.
    let table = scores_batch(&ids, &columns)?;
    ctx.put_output(SCORES, emorg_store::table::to_parquet(&table)?)?;

    // A summary in the manifest; the report recomputes everything from scores.parquet.
    let rule = EmRule::default();
    let (aligned, coherent) = (scores.get(ALIGNED), scores.get(COHERENT));
    let em: Vec<bool> = match (aligned, coherent) {
        (Some(a), Some(c)) => a
            .iter()
            .zip(c)
            .filter_map(|(a, c)| rule.classify(*a, *c))
            .collect(),
        _ => Vec::new(),
    };
    let mut inputs = judged.inputs;
    inputs.extend(upstream);
    inputs.insert("responses".to_string(), responses_sha);
    let judgments = n * judge_spec.metrics.len();
    let mut summary = serde_json::json!({
        "judgments": judgments,
        "seconds": seconds,
        "seconds_per_judgment": seconds / judgments.max(1) as f64,
        "judged": em.len(),
        "em_fraction": if em.is_empty() { None } else { Some(em.iter().filter(|e| **e).count() as f64 / em.len() as f64) },
        "method": judge_spec.method,
    });
    summary
        .as_object_mut()
        .expect("a JSON object")
        .extend(judged.summary);
    ctx.commit(inputs, BTreeMap::new(), summary)
}

/// Every group with the local GGUF judge, one (question, metric) prefix at a time. Each judgment
/// is first looked up in the store's cache by the judge's identity and the judge prompt
/// ([`LocalJudgeIdentity`]); the judge model is loaded only when some judgment is not there, and
/// every new judgment is put there.
fn judge_local(
    store: &Store,
    judge_spec: &JudgeSpec,
    model: &ModelRef,
    method: JudgeMethod,
    groups: &[Group],
    answers: &[&str],
) -> Result<Judged> {
    let cache = StoreCache { store };
    let started = std::time::Instant::now();
    let mut dists = empty_dists(&judge_spec.metrics, answers.len());
    // Per group, the rows the cache could not answer and their keys.
    let mut todo: Vec<(&Group, Vec<(usize, CacheKey)>)> = Vec::new();
    let (mut hits, mut total) = (0usize, 0usize);
    for g in groups {
        let identity = LocalJudgeIdentity {
            model: model.name.clone(),
            gguf_sha256: model.gguf_sha256.clone(),
            method,
            prune_below: judge_spec.prune_below,
            metric: g.metric.to_string(),
            numerics: emorg_spec::WORKER_VERSION.to_string(),
        };
        let mut missing = Vec::new();
        for &i in g.rows {
            total += 1;
            let key = identity.cache_key(g.template, g.question, answers[i]);
            match cache
                .get(&key)
                .map_err(|e| anyhow::anyhow!("reading the judgment cache: {e}"))?
            {
                Some(d) => {
                    dists.get_mut(g.metric).expect("metric present")[i] = Some(d);
                    hits += 1;
                }
                None => missing.push((i, key)),
            }
        }
        if !missing.is_empty() {
            todo.push((g, missing));
        }
    }
    let misses = total - hits;
    let mut cache_write_errors = 0usize;
    tracing::info!("{total} judgments: {hits} from the cache, {misses} by the local judge");
    if misses > 0 {
        let path = crate::context::model_path(model)?;
        let t_load = std::time::Instant::now();
        let judge = LocalJudge::load(
            &path,
            method,
            judge_spec.prune_below,
            &crate::context::device()?,
        )?;
        tracing::info!(
            "judge {} loaded in {:.1}s",
            model.name,
            t_load.elapsed().as_secs_f64()
        );
        let mut done = 0usize;
        for (g, missing) in &todo {
            let group_answers: Vec<&str> = missing.iter().map(|(i, _)| answers[*i]).collect();
            let t0 = std::time::Instant::now();
            let out = judge.judge_question(g.template, g.question, &group_answers)?;
            done += missing.len();
            tracing::info!(
                "{} {}: {} answers in {:.1}s ({done}/{misses} judgments)",
                g.metric,
                g.id,
                missing.len(),
                t0.elapsed().as_secs_f64(),
            );
            for ((i, key), d) in missing.iter().zip(out) {
                // The cache only saves a later re-judging: a refused write costs that, not
                // this stage's scores (counted in the manifest, the first one logged).
                if let Err(e) = cache.put(key, &d) {
                    if cache_write_errors == 0 {
                        tracing::warn!("cannot write the judgment cache (judging goes on): {e}");
                    }
                    cache_write_errors += 1;
                }
                dists.get_mut(g.metric).expect("metric present")[*i] = Some(d);
            }
        }
    }
    let summary = serde_json::json!({
        "backend": "local",
        "judge_model": model.name,
        "prune_below": judge_spec.prune_below,
        "cache_hits": hits,
        "cache_misses": misses,
        "cache_write_errors": cache_write_errors,
    });
    Ok(Judged {
        dists,
        summary: into_map(summary),
        inputs: BTreeMap::from([("judge_model".to_string(), model.gguf_sha256.clone())]),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Every group over the OpenAI-compatible API, all judgments in one queue (`concurrency` at a
/// time), answered from the store's judgment cache where possible.
fn judge_openai(
    store: &Store,
    judge_spec: &JudgeSpec,
    spec: &OpenAiJudgeSpec,
    method: JudgeMethod,
    groups: &[Group],
    answers: &[&str],
) -> Result<Judged> {
    // The key is read here and handed to the client only; it is never logged or stored.
    let api_key = emorg_oai::ApiKey::from_env(&spec.api_key_env);
    if api_key.is_none() {
        tracing::info!(
            "{} is not set: requests to {} go without an API key",
            spec.api_key_env,
            spec.base_url
        );
    }
    let client = emorg_oai::Client::new(emorg_oai::ClientConfig {
        api_key,
        timeout: std::time::Duration::from_secs(spec.timeout_s),
        max_retries: spec.max_retries,
        ..emorg_oai::ClientConfig::new(&spec.base_url)
    })?;
    let judge = OpenAiJudge::new(client, &spec.model, method, spec.concurrency)?;
    let mut prompts = Vec::new();
    let mut slots = Vec::new();
    for g in groups {
        for &i in g.rows {
            prompts.push(OpenAiJudge::render(g.template, g.question, answers[i]));
            slots.push((g.metric, i));
        }
    }
    let cache = StoreCache { store };
    let started = std::time::Instant::now();
    let result = judge.judge_prompts(&prompts, &cache).with_context(|| {
        format!(
            "judging with `{}` at {} (finished judgments are cached in the store: a rerun resumes)",
            spec.model, spec.base_url
        )
    })?;
    let stats = result.stats;
    tracing::info!(
        "{} judgments: {} from the cache, {} over the API ({} duplicates), {} HTTP requests",
        stats.judgments,
        stats.cache_hits,
        stats.cache_misses,
        stats.duplicates,
        stats.requests
    );
    let mut dists = empty_dists(&judge_spec.metrics, answers.len());
    for ((metric, i), d) in slots.into_iter().zip(result.distributions) {
        dists.get_mut(metric).expect("metric present")[i] = Some(d);
    }
    let summary = serde_json::json!({
        "backend": "openai",
        "judge_model": spec.model,
        "base_url": spec.base_url,
        "concurrency": spec.concurrency,
        "cache_hits": stats.cache_hits,
        "cache_misses": stats.cache_misses,
        "duplicates": stats.duplicates,
        "requests": stats.requests,
    });
    Ok(Judged {
        dists,
        summary: into_map(summary),
        inputs: BTreeMap::new(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn empty_dists(metrics: &[String], n: usize) -> BTreeMap<String, Vec<Option<NumberDistribution>>> {
    metrics.iter().map(|m| (m.clone(), vec![None; n])).collect()
}

fn into_map(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match v {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// The judgment cache in the results store: `judge-cache/<model>/<method>/<h[..2]>/<h>.json`,
/// each holding one [`NumberDistribution`] as JSON. Shared by every judgment and sweep on the
/// store, for API and local judges alike.
struct StoreCache<'a> {
    store: &'a Store,
}

impl StoreCache<'_> {
    fn key(key: &CacheKey) -> String {
        layout::judgment_cache(&key.model_slug(), key.method().as_str(), key.hash())
    }
}

impl JudgmentCache for StoreCache<'_> {
    fn get(&self, key: &CacheKey) -> Result<Option<NumberDistribution>, CacheError> {
        let at = Self::key(key);
        let Some(bytes) = self.store.get_opt(&at)? else {
            return Ok(None);
        };
        match serde_json::from_slice::<NumberDistribution>(&bytes) {
            Ok(d) if d.probs.len() == 101 => Ok(Some(d)),
            _ => {
                tracing::warn!("ignoring the unreadable cached judgment {at}: judging it again");
                Ok(None)
            }
        }
    }

    fn put(&self, key: &CacheKey, dist: &NumberDistribution) -> Result<(), CacheError> {
        self.store.put_json(&Self::key(key), dist)?;
        Ok(())
    }
}
