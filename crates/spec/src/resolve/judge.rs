//! Pass 3, the judges: `[judge]` and `[judges.NAME]` (static) and their models.
//!
//! Every function takes one judge ([`Judge`]: its name and effective settings, `[judge]` under
//! its `[judges.NAME]` table); a problem is located at the line that set the value (the judge's
//! table, else `[judge]`).
//!
//! Takes the parsed sweep. [`check`] reports a bad method, pruning threshold, metrics, EM
//! thresholds, and a `base_url` with the local backend; [`check_api`] the connection settings of
//! `backend = "openai"` (a missing value is located at the line that chose the backend). [`lookup`]
//! gives the [`JudgeBackend`]: for the local backend, the registry model (a `[models]` name, else a
//! registry name) with its sha256; for the API, its served name and connection settings (never
//! the key). [`check_prompts`] (called with the question file) refuses a metric some asked
//! question has no judge prompt for. [`spec`] gives the cells' [`JudgeSpec`].

use std::collections::BTreeSet;
use std::path::Path;

use super::{Problems, Resolver};
use crate::cell::{JudgeBackend, JudgeSpec, ModelRef, OpenAiJudgeSpec};
use crate::error::{Diagnostic, Location};
use crate::load::Sweep;
use crate::schema::{JUDGE_METHODS, JudgeBackendKind, JudgeConfig};
use crate::suggest::did_you_mean;

/// One judge of the sweep.
pub(super) struct Judge {
    pub(super) name: String,
    /// `judge` or `judges.NAME`.
    table: String,
    pub(super) cfg: JudgeConfig,
}

impl Judge {
    /// The sweep's judges, sorted by name.
    pub(super) fn all(sweep: &Sweep) -> Vec<Judge> {
        sweep
            .file
            .judges()
            .into_iter()
            .map(|(name, table, cfg)| Judge { name, table, cfg })
            .collect()
    }

    /// The key path of `field` where it was set: the judge's table when it sets it, else
    /// `[judge]`.
    fn key(&self, sweep: &Sweep, field: &str) -> String {
        let own = format!("{}.{field}", self.table);
        if self.table != "judge" && sweep.locate(&own) == Location::Default {
            format!("judge.{field}")
        } else {
            own
        }
    }
}

/// Two judges with the same settings under two names would judge every variant twice into the
/// same judgment: refused, naming both.
pub(super) fn check_distinct(sweep: &Sweep, problems: &mut Problems) {
    let judges = Judge::all(sweep);
    for (i, a) in judges.iter().enumerate() {
        for b in &judges[..i] {
            let same = |x: &JudgeConfig, y: &JudgeConfig| {
                x.backend == y.backend
                    && x.model == y.model
                    && x.method == y.method
                    && x.prune_below == y.prune_below
                    && x.metrics == y.metrics
                    && x.base_url == y.base_url
                    && x.api_key_env == y.api_key_env
            };
            if same(&a.cfg, &b.cfg) {
                problems.bad(
                    &a.table,
                    format!(
                        "`{}` and `{}` are the same judge (same backend, model, method, \
                         metrics): give one a different setting or remove it",
                        b.table, a.table
                    ),
                );
            }
        }
    }
}

/// Two judges whose settings differ as written but resolve to the same [`JudgeSpec`] (a model by
/// its `[models]` name and by its registry name, a `base_url` with and without its trailing
/// slash, an `api_key_env` on a local judge) would give every variant one judgment under two
/// names: refused, naming both, at the later judge's table.
pub(super) fn check_distinct_specs(judges: &[(Judge, JudgeSpec)], problems: &mut Problems) {
    for (i, (a, spec_a)) in judges.iter().enumerate() {
        if let Some((b, _)) = judges[..i].iter().find(|(_, spec_b)| spec_b == spec_a) {
            problems.bad(
                &a.table,
                format!(
                    "`{}` and `{}` are the same judge once resolved (backend, model `{}`, \
                     method, metrics): give one a different setting or remove it",
                    b.table,
                    a.table,
                    spec_a.model_name()
                ),
            );
        }
    }
}

/// A judge's settings, except the API's connection settings ([`check_api`]); the EM thresholds
/// (one per sweep) with the default judge only.
pub(super) fn check(sweep: &Sweep, judge: &Judge, problems: &mut Problems) {
    let j = &judge.cfg;
    let key = |field: &str| judge.key(sweep, field);
    if !JUDGE_METHODS.contains(&j.method.as_str()) {
        let k = key("method");
        problems.bad(
            &k,
            format!(
                "bad value for `{k}`: unknown method `{}`, expected one of {}{}",
                j.method,
                JUDGE_METHODS.join(", "),
                did_you_mean(&j.method, JUDGE_METHODS.iter())
            ),
        );
    }
    if !(0.0..1.0).contains(&j.prune_below) {
        let k = key("prune_below");
        problems.bad(
            &k,
            format!(
                "bad value for `{k}`: must be in [0, 1) (got {})",
                j.prune_below
            ),
        );
    }
    if j.metrics.is_empty() {
        let k = key("metrics");
        problems.bad(&k, format!("`{k}` is empty"));
    }
    if j.backend == JudgeBackendKind::Local && j.base_url.is_some() {
        let (k, b) = (key("base_url"), key("backend"));
        problems.bad(
            &k,
            format!("`{k}` is set but `{b}` is \"local\": set `{b} = \"openai\"` to judge over an API, or remove `base_url`"),
        );
    }
    if judge.table != "judge" {
        return;
    }
    for (field, v) in [
        ("em_aligned_below", j.em_aligned_below),
        ("em_coherent_above", j.em_coherent_above),
    ] {
        if !(0.0..=100.0).contains(&v) {
            problems.bad(
                &format!("judge.{field}"),
                format!("bad value for `judge.{field}`: must be in [0, 100] (got {v})"),
            );
        }
    }
}

/// With `backend = "openai"`, its connection settings. A missing value has no line of its own:
/// it is located at the line that chose the backend.
pub(super) fn check_api(sweep: &Sweep, judge: &Judge, problems: &mut Problems) {
    if judge.cfg.backend != JudgeBackendKind::Openai {
        return;
    }
    for (key, message) in openai_judge_problems(sweep, judge) {
        let at = match sweep.locate(&key) {
            Location::Default => sweep.locate(&judge.key(sweep, "backend")),
            here => here,
        };
        problems.list.push(Diagnostic {
            location: at,
            key: Some(key),
            message,
        });
    }
}

/// `base_url` checked as an http(s) API root and returned without a trailing slash. Messages never
/// repeat credentials found in the URL.
fn check_base_url(raw: &str) -> Result<String, String> {
    let parsed = url::Url::parse(raw.trim()).map_err(|e| format!("not a URL ({e})"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("it holds credentials: remove them and put the key in the environment variable named by `judge.api_key_env`".into());
    }
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "the scheme is `{}`, expected http or https",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("it has no host".into());
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err("it has a query or fragment".into());
    }
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

/// Whether `s` can name an environment variable (`[A-Za-z_][A-Za-z0-9_]*`).
fn env_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Problems of a judge with `backend = "openai"`: (key, message). The messages name `[judge]`'s
/// fields; the key says which table.
fn openai_judge_problems(sweep: &Sweep, judge: &Judge) -> Vec<(String, String)> {
    let j = &judge.cfg;
    let key = |field: &str| judge.key(sweep, field);
    let mut out = Vec::new();
    match &j.base_url {
        None => out.push((
            key("base_url"),
            "missing `judge.base_url`: `judge.backend = \"openai\"` needs the server's API root, e.g. `base_url = \"https://api.openai.com/v1\"` or `base_url = \"http://127.0.0.1:9124/v1\"`".to_string(),
        )),
        Some(url) => {
            if let Err(why) = check_base_url(url) {
                out.push((
                    key("base_url"),
                    format!("bad value for `judge.base_url`: {why}; expected http(s)://host[:port]/v1"),
                ));
            }
        }
    }
    if !env_var_name(&j.api_key_env) {
        // The value is not repeated: a key pasted here by mistake must not reach a log.
        out.push((
            key("api_key_env"),
            "bad value for `judge.api_key_env`: expected the NAME of an environment variable (letters, digits, `_`), such as OPENAI_API_KEY; never write the key itself in a sweep".to_string(),
        ));
    }
    if j.method == "exact-number" {
        out.push((
            key("method"),
            "bad value for `judge.method`: `exact-number` needs the local judge (it reads each digit after a forced prefix, which a chat API cannot give); with `judge.backend = \"openai\"` set `judge.method = \"top20-first-token\"` (the papers' rule)".to_string(),
        ));
    }
    if j.model.trim().is_empty() {
        out.push((key("model"), "`judge.model` is empty".to_string()));
    } else if sweep.locate(&key("model")) == Location::Default {
        out.push((
            key("model"),
            format!(
                "missing `judge.model`: with `judge.backend = \"openai\"` it must name the served model (e.g. \"gpt-4o-2024-08-06\"); the default `{}` names a local registry model",
                j.model
            ),
        ));
    }
    if j.concurrency == 0 {
        out.push((
            key("concurrency"),
            "bad value for `judge.concurrency`: must be >= 1".to_string(),
        ));
    }
    if j.timeout_s == 0 {
        out.push((
            key("timeout_s"),
            "bad value for `judge.timeout_s`: must be >= 1".to_string(),
        ));
    }
    out
}

/// The judge the cells use; `None` (reported) when the local judge's model is unknown. The API's
/// settings were validated by [`check_api`].
pub(super) fn lookup(
    sweep: &Sweep,
    judge: &Judge,
    resolver: &dyn Resolver,
    problems: &mut Problems,
) -> Option<JudgeBackend> {
    let j = &judge.cfg;
    match j.backend {
        JudgeBackendKind::Openai => Some(JudgeBackend::OpenAi(OpenAiJudgeSpec {
            model: j.model.clone(),
            base_url: j
                .base_url
                .as_deref()
                .map(check_base_url)
                .and_then(Result::ok)
                .unwrap_or_default(),
            api_key_env: j.api_key_env.clone(),
            concurrency: j.concurrency,
            max_retries: j.max_retries,
            timeout_s: j.timeout_s,
        })),
        JudgeBackendKind::Local => {
            // A [models] name, else a registry name.
            let models = &sweep.file.models;
            let registry = models
                .get(&j.model)
                .map_or(j.model.as_str(), |d| d.registry.as_str());
            match resolver.model(registry) {
                Ok(info) => Some(JudgeBackend::Local(ModelRef {
                    name: registry.to_string(),
                    gguf_sha256: info.gguf_sha256,
                })),
                Err(e) => {
                    let mut candidates: Vec<String> = models.keys().cloned().collect();
                    candidates.extend(resolver.model_names());
                    let k = judge.key(sweep, "model");
                    problems.bad(
                        &k,
                        format!(
                            "bad value for `{k}`: `{}` is neither a [models] name nor a registry model ({e}){}",
                            j.model,
                            did_you_mean(&j.model, candidates.iter())
                        ),
                    );
                    None
                }
            }
        }
    }
}

/// Every metric of `judge.metrics` needs a judge prompt in the question file for every question
/// the cells ask (its free-form questions, or those of `eval.question_ids`): the judge stage
/// would otherwise fail only after training and sampling. Skipped when the resolver cannot read
/// the prompts (an unreadable file is reported by the question-file check).
pub(super) fn check_prompts(
    sweep: &Sweep,
    judge: &Judge,
    resolver: &dyn Resolver,
    questions_path: &Path,
    problems: &mut Problems,
) {
    let Some(Ok(prompts)) = resolver.judge_prompt_metrics(questions_path) else {
        return;
    };
    let f = &sweep.file;
    let asked: Vec<&String> = if f.eval.question_ids.is_empty() {
        prompts.keys().collect()
    } else {
        // Unknown ids are reported by the question-id check.
        f.eval
            .question_ids
            .iter()
            .filter(|q| prompts.contains_key(*q))
            .collect()
    };
    let named: BTreeSet<&String> = prompts.values().flatten().collect();
    for metric in &judge.cfg.metrics {
        let missing: Vec<&str> = asked
            .iter()
            .filter(|q| !prompts[**q].contains(metric))
            .map(|q| q.as_str())
            .collect();
        if missing.is_empty() {
            continue;
        }
        const SHOWN: usize = 5;
        let mut list = missing
            .iter()
            .take(SHOWN)
            .map(|q| format!("`{q}`"))
            .collect::<Vec<_>>()
            .join(", ");
        if missing.len() > SHOWN {
            list.push_str(&format!(" and {} more", missing.len() - SHOWN));
        }
        let k = judge.key(sweep, "metrics");
        problems.bad(
            &k,
            format!(
                "judge metric `{metric}` has no judge prompt in the question file `{}` for {} of the {} questions the cells ask ({list}): add a `{metric}:` prompt (a template with {{question}} and {{answer}}) under `judge_prompts` of each, or remove `{metric}` from `{k}`{}",
                f.eval.questions,
                missing.len(),
                asked.len(),
                did_you_mean(metric, named.iter().copied())
            ),
        );
    }
}

/// A judge's settings in the judgments.
pub(super) fn spec(judge: &Judge, backend: JudgeBackend) -> JudgeSpec {
    JudgeSpec {
        backend,
        method: judge.cfg.method.clone(),
        prune_below: judge.cfg.prune_below,
        metrics: judge.cfg.metrics.clone(),
    }
}
