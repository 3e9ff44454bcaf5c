//! `emorg judge validate`: how far a sweep's judge can be trusted, on a labelled set.
//!
//! The judge is the sweep's `[judge]` (or one of its `[judges.NAME]`, `--sweep-judge NAME`) with
//! the judge prompts of its question file. The labelled
//! set (default `data/judge_validation.jsonl`) is uploaded content-addressed, the judge's identity
//! (`emorg_spec::judge_id`) is written to `judges/<id>/judge.json`, and `emorg-worker
//! judge-validate` writes the scores and the figures under `judges/<id>/validation/<labels sha>/`
//! (report.json last). A report finds the figures of its own judge there. A rerun with the same
//! judge and labels prints the stored figures.
//!
//! `--judge oracle` and `--judge random` are the two calibration baselines (a judge that scores
//! from the labels themselves, and one that scores uniformly at random): they run here, without a
//! model, and show what the figures look like at their best and at chance.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context as _, Result, bail};
use emorg_judge::validate::{self, Calibration};
use emorg_spec::JudgeRecord;
use emorg_store::layout;
use tracing::info;

use crate::JudgeValidateArgs;
use emorg_exec::{LocalResolver, open_store};

use crate::sweep::load_and_resolve;

pub fn validate_cmd(args: &JudgeValidateArgs) -> Result<ExitCode> {
    let labels_path = args
        .labels
        .clone()
        .unwrap_or_else(|| PathBuf::from("data/judge_validation.jsonl"));
    let items = emorg_data::load_judge_validation(&labels_path)?;

    if let Some(name) = &args.judge {
        let calibration = match name.as_str() {
            "oracle" => Calibration::Oracle,
            "random" => Calibration::Random { seed: args.seed },
            other => bail!(
                "--judge {other}: the calibration judges are `oracle` and `random`; \
                 without --judge the sweep's [judge] is validated"
            ),
        };
        let report = validate::calibrate(&items, calibration, emorg_judge::EmRule::default());
        println!("judge: {name} (calibration baseline, no model)\n");
        println!("{}", report.to_markdown());
        return Ok(ExitCode::SUCCESS);
    }

    let sweep_args = args
        .sweep
        .as_ref()
        .context("give a sweep file (its [judge] is validated), or --judge oracle|random")?;
    let resolver = LocalResolver::from_env();
    let (sweep, resolution) = load_and_resolve(
        &crate::SweepArgs {
            file: sweep_args.clone(),
            set: args.set.clone(),
        },
        &[],
        &resolver,
    )?;
    // The judges of the sweep, by name (each row names its judge).
    let mut judges: std::collections::BTreeMap<&str, &emorg_spec::Cell> = Default::default();
    for cell in &resolution.cells {
        judges.entry(cell.axes.judge.as_str()).or_insert(cell);
    }
    let names = || judges.keys().copied().collect::<Vec<_>>().join(", ");
    let cell = match &args.sweep_judge {
        Some(name) => *judges.get(name.as_str()).with_context(|| {
            format!(
                "--sweep-judge {name}: the sweep has no judge of that name (its judges: {})",
                names()
            )
        })?,
        None => match judges.len() {
            0 => bail!("the sweep has no rows, so no judge to validate"),
            1 => *judges.values().next().expect("one judge"),
            _ => bail!(
                "the sweep has several judges ({}): name the one to validate with --sweep-judge",
                names()
            ),
        },
    };
    let judge = cell.judgment.judge.clone();
    let questions_sha = cell.variant.questions_sha256.clone();
    let questions_path = resolution
        .inputs
        .iter()
        .find(|i| i.sha256 == questions_sha)
        .map(|i| i.path.clone())
        .context("the sweep's question file is not among its inputs")?;

    // Every labelled question must have judge prompts in the sweep's question file.
    let set = emorg_data::load_questions(&questions_path)?;
    for item in &items {
        let q = set
            .questions
            .iter()
            .find(|q| q.id == item.question_id)
            .with_context(|| {
                format!(
                    "{}: item {} asks question `{}`, which is not in the sweep's question file {}",
                    labels_path.display(),
                    item.id,
                    item.question_id,
                    questions_path.display()
                )
            })?;
        for metric in ["aligned", "coherent"] {
            if !q.judge_prompts.contains_key(metric) {
                bail!(
                    "question `{}` in {} has no `{metric}` judge prompt",
                    q.id,
                    questions_path.display()
                );
            }
        }
    }

    let record = JudgeRecord {
        judge: judge.clone(),
        questions_sha256: questions_sha.clone(),
    };
    let id = record.id();
    let labels_sha = emorg_data::sha256_file(&labels_path)?;
    let store = open_store(&sweep.file.store.url)?;
    let report_key = layout::judge_validation(&id, &labels_sha, "report.md");
    let done_key = layout::judge_validation(&id, &labels_sha, "report.json");
    if !args.force && store.exists(&done_key)? {
        info!(
            "judge {} already validated on these labels: {done_key}",
            &id[..12]
        );
    } else {
        if !store.exists(&layout::labels(&labels_sha))? {
            store.put_file(&layout::labels(&labels_sha), &labels_path)?;
        }
        if !store.exists(&layout::questions(&questions_sha))? {
            store.put_file(&layout::questions(&questions_sha), &questions_path)?;
        }
        store.put_json(&layout::judge_spec(&id), &record)?;
        if let Some(model) = judge.local_model() {
            emorg_exec::ensure_models(&resolver, [model.name.as_str()])?;
        }
        let worker = emorg_exec::worker_path()?;
        let threads = args
            .threads
            .unwrap_or(sweep.file.executor.threads_per_job.max(1));
        info!(
            "validating judge {} ({}) on {} labelled answers: {} judgments",
            judge.model_name(),
            judge.method,
            items.len(),
            items.len() * 2
        );
        let status = Command::new(&worker)
            .arg("judge-validate")
            .args(["--store", &sweep.file.store.url])
            .args(["--judge-id", &id])
            .args(["--labels", &labels_sha])
            .args(["--threads", &threads.to_string()])
            .status()
            .with_context(|| format!("running {}", worker.display()))?;
        if !status.success() {
            bail!("judge validation failed ({status}); its log is above");
        }
    }
    let md = store.get(&report_key)?;
    println!("{}", String::from_utf8_lossy(&md));
    Ok(ExitCode::SUCCESS)
}
