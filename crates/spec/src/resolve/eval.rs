//! Pass 3, sampling: `[eval]` (static) and the question file.
//!
//! Takes the parsed sweep. [`check`] reports bad sampling values and adapter factors. [`lookup`]
//! hashes the question file (adding it to the inputs) and, when the resolver can read it, checks
//! `question_ids` and (through [`super::judge::check_prompts`]) the judge metrics' prompts
//! against it; it gives the file's sha256. [`spec`] gives the cells' [`EvalSpec`].

use super::{Files, InputFile, InputKind, Problems, Resolver};
use crate::cell::EvalSpec;
use crate::load::Sweep;
use crate::schema::SweepFile;
use crate::suggest::did_you_mean;

/// `[eval]`.
pub(super) fn check(sweep: &Sweep, problems: &mut Problems) {
    let e = &sweep.file.eval;
    for (field, v) in [
        ("samples_per_question", e.samples_per_question),
        ("max_new_tokens", e.max_new_tokens),
        ("batch_size", e.batch_size),
    ] {
        if v == 0 {
            problems.bad(
                &format!("eval.{field}"),
                format!("bad value for `eval.{field}`: must be >= 1"),
            );
        }
    }
    if !(e.temperature.is_finite() && e.temperature >= 0.0) {
        problems.bad(
            "eval.temperature",
            format!(
                "bad value for `eval.temperature`: must be >= 0 (got {})",
                e.temperature
            ),
        );
    }
    for (k, v) in std::iter::once(("eval.adapter_scale".to_string(), e.adapter_scale)).chain(
        e.adapter_scales
            .iter()
            .map(|(name, v)| (format!("eval.adapter_scales.{name}"), *v)),
    ) {
        if !v.is_finite() {
            problems.bad(
                &k,
                format!("bad value for `{k}`: must be a finite number (got {v})"),
            );
        }
    }
    if !(e.top_p > 0.0 && e.top_p <= 1.0) {
        problems.bad(
            "eval.top_p",
            format!(
                "bad value for `eval.top_p`: must be in (0, 1] (got {})",
                e.top_p
            ),
        );
    }
}

/// The question file's sha256, and its ids checked; `None` when the file cannot be read.
pub(super) fn lookup(
    sweep: &Sweep,
    resolver: &dyn Resolver,
    files: &mut Files,
    problems: &mut Problems,
) -> Option<String> {
    let f = &sweep.file;
    let questions_path = sweep.resolve_path(&f.eval.questions);
    let sha = match files.sha256(&questions_path) {
        Ok(sha) => sha,
        Err(e) => {
            problems.bad(
                "eval.questions",
                format!(
                    "cannot read the question file `{}`: {e}",
                    questions_path.display()
                ),
            );
            return None;
        }
    };
    files.inputs.insert(InputFile {
        kind: InputKind::Questions,
        name: "eval.questions".into(),
        path: questions_path.clone(),
        sha256: sha.clone(),
    });
    match resolver.question_ids(&questions_path) {
        None => {}
        Some(Ok(ids)) => {
            for q in &f.eval.question_ids {
                if !ids.contains(q) {
                    problems.bad(
                        "eval.question_ids",
                        format!(
                            "unknown question id `{q}` in `eval.question_ids` (not in `{}`){}",
                            f.eval.questions,
                            did_you_mean(q, ids.iter())
                        ),
                    );
                }
            }
        }
        Some(Err(e)) => problems.bad(
            "eval.questions",
            format!("bad question file `{}`: {e}", questions_path.display()),
        ),
    }
    super::judge::check_prompts(sweep, resolver, &questions_path, problems);
    Some(sha)
}

/// The cells' sampling settings.
pub(super) fn spec(f: &SweepFile, questions_sha256: String) -> EvalSpec {
    EvalSpec {
        questions_sha256,
        question_ids: f.eval.question_ids.clone(),
        samples_per_question: f.eval.samples_per_question,
        max_new_tokens: f.eval.max_new_tokens,
        temperature: f.eval.temperature,
        top_p: f.eval.top_p,
        batch_size: f.eval.batch_size,
        adapter_scale: f.eval.adapter_scale,
        adapter_scales: f.eval.adapter_scales.clone(),
    }
}
