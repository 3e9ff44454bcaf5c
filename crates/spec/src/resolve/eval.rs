//! Pass 3, sampling: `[eval]` (static), the question file, and the evaluation axes.
//!
//! Takes the parsed sweep. [`check`] reports bad sampling values, adapter factors and checkpoint
//! syntax. [`weights`] gives each training point's checkpoints, refusing steps no unit can have,
//! and [`check_kinds`] scales or checkpoints on units that have no adapter. [`lookup`]
//! hashes the question file (adding it to the inputs) and, when the resolver can read it, checks
//! `question_ids` and (through [`super::judge::check_prompts`]) the judge metrics' prompts
//! against it; it gives the file's sha256. [`spec`] gives the cells' [`EvalSpec`].

use std::collections::{BTreeMap, BTreeSet};

use super::datasets::Datasets;
use super::defaults::cell_train;
use super::expand::Point;
use super::models::Models;
use super::{Files, InputFile, InputKind, Problems, Resolver};
use crate::cell::{ProtocolKind, SamplerSpec, Scales, TrainSpec, Weights};
use crate::load::Sweep;
use crate::schema::{CheckpointItem, CheckpointSel, SweepFile};
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
    let scales = e.adapter_scale.values();
    if scales.is_empty() {
        problems.bad(
            "eval.adapter_scale",
            "`eval.adapter_scale` is an empty list: give at least one factor (1 is the adapter as trained)",
        );
    }
    let mut seen = Vec::new();
    for v in &scales {
        if seen.contains(v) {
            problems.bad(
                "eval.adapter_scale",
                format!("`eval.adapter_scale` lists the factor {v} twice"),
            );
        }
        seen.push(*v);
    }
    for (k, v) in scales
        .iter()
        .map(|v| ("eval.adapter_scale".to_string(), *v))
        .chain(
            e.adapter_scales
                .iter()
                .map(|(name, v)| (format!("eval.adapter_scales.{name}"), *v)),
        )
    {
        if !v.is_finite() {
            problems.bad(
                &k,
                format!("bad value for `{k}`: must be a finite number (got {v})"),
            );
        }
    }
    check_checkpoint_syntax(&e.checkpoints, problems);
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
    if let Some(name) = &f.eval.paper {
        match crate::papers::paper_questions(name) {
            None => problems.bad(
                "eval.paper",
                format!(
                    "unknown papers' question file `{name}` in `eval.paper`, expected one of {}{}",
                    crate::papers::PAPER_QUESTIONS
                        .iter()
                        .map(|q| q.name)
                        .collect::<Vec<_>>()
                        .join(", "),
                    did_you_mean(name, crate::papers::PAPER_QUESTIONS.iter().map(|q| &q.name))
                ),
            ),
            Some(q) if q.sha256 != sha => problems.bad(
                "eval.questions",
                format!(
                    "`eval.paper` = `{name}` asks for the papers' question file ({}; sha256 {}), \
                     but `{}` has sha256 {sha}: emorg does not ship it, so set `eval.questions` to \
                     the path of your copy (see docs/DATA.md)",
                    q.source,
                    q.sha256,
                    questions_path.display()
                ),
            ),
            Some(_) => {}
        }
    }
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
    for judge in super::judge::Judge::all(sweep) {
        super::judge::check_prompts(sweep, &judge, resolver, &questions_path, problems);
    }
    Some(sha)
}

/// `eval.checkpoints`: `"final"`, `"every:N"` with N >= 1, or a list of steps and `"final"`
/// without repeats.
fn check_checkpoint_syntax(sel: &CheckpointSel, problems: &mut Problems) {
    const EXPECTED: &str = "expected \"every:N\" (N >= 1), \"final\", or a list of steps and \"final\" such as [8, 16, \"final\"]";
    match sel {
        CheckpointSel::Spec(s) if s == "final" => {}
        CheckpointSel::Spec(s) => {
            if let Some(Err(_)) | None = sel.every() {
                problems.bad(
                    "eval.checkpoints",
                    format!("bad value for `eval.checkpoints`: {s:?}; {EXPECTED}"),
                );
            }
        }
        CheckpointSel::List(items) => {
            if items.is_empty() {
                problems.bad(
                    "eval.checkpoints",
                    format!("`eval.checkpoints` is an empty list; {EXPECTED}"),
                );
            }
            let mut seen = BTreeSet::new();
            for item in items {
                let w = match item {
                    CheckpointItem::Step(n) => Weights::Step(*n as usize),
                    CheckpointItem::Name(s) if s == "final" => Weights::Final,
                    CheckpointItem::Name(s) => {
                        problems.bad(
                            "eval.checkpoints",
                            format!("bad entry {s:?} in `eval.checkpoints`; {EXPECTED}"),
                        );
                        continue;
                    }
                };
                if !seen.insert(w) {
                    problems.bad(
                        "eval.checkpoints",
                        format!("`eval.checkpoints` lists {w} twice"),
                    );
                }
            }
        }
    }
}

/// Optimizer steps a unit of `train` on `rows` dataset rows takes at most: the trainer's count
/// (`emorg_train::trainer::total_steps` over the rows the holdout and `max_examples` leave), an
/// upper bound since the trainer drops examples with no target token left after truncation.
pub(crate) fn planned_steps(rows: usize, train: &TrainSpec) -> usize {
    let held = ((rows as f64) * train.holdout).round() as usize;
    let mut n = rows.saturating_sub(held);
    if train.max_examples > 0 {
        n = n.min(train.max_examples);
    }
    let per_epoch = n.div_ceil((train.batch_size * train.grad_accum).max(1));
    let total = per_epoch * train.epochs;
    if train.max_steps > 0 {
        total.min(train.max_steps)
    } else {
        total
    }
}

/// Scales apply to adapters: a scale axis other than `[1]` with a protocol that has none (base,
/// full) is refused.
pub(super) fn check_kinds(sweep: &Sweep, points: &BTreeSet<Point>, problems: &mut Problems) {
    let f = &sweep.file;
    let scaled_all = f.eval.adapter_scale.values().iter().any(|v| *v != 1.0);
    let scaled = scaled_all || f.eval.adapter_scales.values().any(|v| *v != 1.0);
    // Located where the scaling was written: the per-adapter table when it alone scales.
    let scale_key = if scaled_all {
        "eval.adapter_scale"
    } else {
        "eval.adapter_scales"
    };
    let mut reported = BTreeSet::new();
    for p in points {
        let Some(kind) = f
            .protocols
            .get(&p.protocol)
            .and_then(|d| d.effective_kind())
        else {
            continue;
        };
        if kind != ProtocolKind::Lora && scaled && reported.insert((&p.protocol, "scale")) {
            let what = if kind == ProtocolKind::Base {
                "a base model has no adapter to scale"
            } else {
                "full fine-tuning has no adapter to scale"
            };
            problems.bad(
                scale_key,
                format!(
                    "`{scale_key}` scales LoRA adapters, but protocol `{}` is of kind {}: {what}; evaluate it in a sweep without adapter scales, or drop it from `matrix.protocol`",
                    p.protocol,
                    kind_name(kind)
                ),
            );
        }
    }
}

fn kind_name(kind: ProtocolKind) -> &'static str {
    match kind {
        ProtocolKind::Base => "base",
        ProtocolKind::Lora => "lora",
        ProtocolKind::Full => "full",
    }
}

/// The checkpoints each training point's unit is evaluated at: `final` for a unit that does not
/// train; else `eval.checkpoints`, every step checked against the unit's training: for LoRA a
/// multiple of `checkpoint_every` (the adapters kept; a full fine-tune keeps exactly the steps
/// asked for, within `executor.full_checkpoint_budget_gb`), and not beyond its last step (`max_steps`, or the
/// steps its dataset gives when the resolver can count rows). `every:N` gives 0, N, 2N, ...
/// below the last step, and `final`. Its count is known only here, so the rows it gives are
/// bounded here by `executor.max_cells` (before anything is expanded), as
/// [`super::expand::check_size`] bounds the other axes.
pub(super) fn weights(
    sweep: &Sweep,
    points: &BTreeSet<Point>,
    datasets: &Datasets,
    models: &Models<'_>,
    resolver: &dyn Resolver,
    problems: &mut Problems,
) -> BTreeMap<Point, Vec<Weights>> {
    let f = &sweep.file;
    let mut out = BTreeMap::new();
    let mut rows_of: BTreeMap<String, Option<usize>> = BTreeMap::new();
    let mut reported = BTreeSet::new();
    for p in points {
        let kind = f
            .protocols
            .get(&p.protocol)
            .and_then(|d| d.effective_kind());
        let full = kind == Some(ProtocolKind::Full);
        if kind != Some(ProtocolKind::Lora) && !full {
            out.insert(p.clone(), vec![Weights::Final]);
            continue;
        }
        let Ok((def, preset_train)) = f.protocols[&p.protocol].expanded() else {
            continue;
        };
        if !datasets.contains_key(p.dataset.as_str()) {
            continue; // reported by the dataset lookup
        }
        let train = cell_train(f, &def, &preset_train, &p.dataset);
        let rows = *rows_of.entry(p.dataset.clone()).or_insert_with(|| {
            let path = f.datasets[&p.dataset].path.as_ref()?;
            resolver.dataset_rows(&sweep.resolve_path(path))?.ok()
        });
        let last = match rows {
            Some(rows) => Some(planned_steps(rows, &train)),
            None if train.max_steps > 0 => Some(train.max_steps),
            None => None,
        };
        let weights = unit_weights(
            &f.eval.checkpoints,
            &train,
            full,
            last,
            f.executor.max_cells,
        )
        .and_then(|w| match models.get(p.model.as_str()) {
            Some((_, info)) if full => {
                within_budget(w, info.n_params, f.executor.full_checkpoint_budget_gb)
            }
            _ => Ok(w),
        });
        match weights {
            Ok(w) => {
                out.insert(p.clone(), w);
            }
            Err(why) => {
                if reported.insert((p.protocol.clone(), p.dataset.clone(), why.clone())) {
                    problems.bad(
                        "eval.checkpoints",
                        format!(
                            "`eval.checkpoints` for protocol `{}` on dataset `{}`: {why}",
                            p.protocol, p.dataset
                        ),
                    );
                }
            }
        }
    }
    if reported.is_empty() {
        check_rows(sweep, &out, problems);
    }
    out
}

/// A full fine-tune's kept steps `w` within `executor.full_checkpoint_budget_gb`: each kept step
/// is the whole model in f32 (`n_params` x 4 bytes).
fn within_budget(w: Vec<Weights>, n_params: u64, budget_gb: f64) -> Result<Vec<Weights>, String> {
    let steps = w.iter().filter(|w| w.step().is_some()).count() as u64;
    let bytes = steps.saturating_mul(n_params.saturating_mul(4));
    let budget = (budget_gb.max(0.0) * 1e9) as u64;
    if bytes > budget {
        return Err(format!(
            "full fine-tuning keeps the whole model (f32, {} bytes) at each of the {steps} steps \
             asked for: {bytes} bytes, more than `executor.full_checkpoint_budget_gb` = \
             {budget_gb} ({budget} bytes): ask for fewer steps, or raise the budget",
            n_params * 4
        ));
    }
    Ok(w)
}

/// The rows the checkpoints give (each unit's checkpoints x the scales x the judges) within
/// `executor.max_cells`.
fn check_rows(sweep: &Sweep, weights: &BTreeMap<Point, Vec<Weights>>, problems: &mut Problems) {
    let f = &sweep.file;
    let (scales, judges) = (scales(f).len().max(1), f.judges().len().max(1));
    let rows = weights
        .values()
        .fold(0u128, |acc, w| acc.saturating_add(w.len() as u128))
        .saturating_mul((scales * judges) as u128);
    if rows > f.executor.max_cells as u128 {
        problems.bad(
            "eval.checkpoints",
            format!(
                "`eval.checkpoints` gives the sweep {rows} rows ({} units x their checkpoints x \
                 {scales} scales x {judges} judges), more than `executor.max_cells` = {}: ask for \
                 fewer checkpoints (a larger N in `every:N`), or raise `executor.max_cells`",
                weights.len(),
                f.executor.max_cells
            ),
        );
    }
}

/// The checkpoints of one unit whose last step is `last` (`None`: not known at plan time). A LoRA
/// unit keeps the adapter of every `checkpoint_every`-th step, so steps must be multiples of it;
/// a full fine-tune (`full`) keeps exactly the steps asked for. `every:N` is refused when it
/// alone gives more than `limit` checkpoints, before they are listed.
fn unit_weights(
    sel: &CheckpointSel,
    train: &TrainSpec,
    full: bool,
    last: Option<usize>,
    limit: usize,
) -> Result<Vec<Weights>, String> {
    let every = train.checkpoint_every;
    let need_every = |step: usize| -> Result<(), String> {
        if full {
            return Ok(());
        }
        if every == 0 {
            return Err(format!(
                "step {step} needs the adapter kept at that step: set `train.checkpoint_every` (in `[train]` or the protocol's `train`) to a divisor of it"
            ));
        }
        if !step.is_multiple_of(every) {
            return Err(format!(
                "step {step} is not a multiple of `train.checkpoint_every` = {every}, so no adapter is kept at it: use a multiple, or change `checkpoint_every`"
            ));
        }
        Ok(())
    };
    let within = |step: usize| -> Result<(), String> {
        match last {
            Some(last) if step > last => Err(format!(
                "step {step} is beyond the unit's last step {last} (from `train.max_steps` or the dataset's rows): no weights can exist at it"
            )),
            _ => Ok(()),
        }
    };
    match sel {
        CheckpointSel::Spec(s) if s == "final" => Ok(vec![Weights::Final]),
        CheckpointSel::Spec(_) => {
            let Some(Ok(n)) = sel.every() else {
                return Ok(vec![Weights::Final]); // reported by check()
            };
            let Some(last) = last else {
                return Err(format!(
                    "`every:{n}` needs the number of steps, which is not known at plan time here: set `train.max_steps`"
                ));
            };
            need_every(n)?;
            let count = last.div_ceil(n).saturating_add(1);
            if count > limit {
                return Err(format!(
                    "`every:{n}` over the unit's {last} steps gives {count} checkpoints, more than \
                     `executor.max_cells` = {limit}: use a larger N, or a list of steps"
                ));
            }
            let mut w: Vec<Weights> = (0..last).step_by(n).map(Weights::Step).collect();
            w.push(Weights::Final);
            Ok(w)
        }
        CheckpointSel::List(items) => {
            let mut w = Vec::new();
            for item in items {
                match item {
                    CheckpointItem::Step(n) => {
                        let step = *n as usize;
                        if step > 0 || every == 0 {
                            need_every(step)?;
                        }
                        within(step)?;
                        w.push(Weights::Step(step));
                    }
                    CheckpointItem::Name(s) if s == "final" => w.push(Weights::Final),
                    CheckpointItem::Name(_) => {} // reported by check()
                }
            }
            w.sort();
            w.dedup();
            Ok(w)
        }
    }
}

/// The scale axis: (label as written, scales), deduplicated, in the order written.
pub(super) fn scales(f: &SweepFile) -> Vec<(String, Scales)> {
    let mut out: Vec<(String, Scales)> = Vec::new();
    for v in f.eval.adapter_scale.values() {
        let label = format!("{v}");
        if out.iter().any(|(l, _)| *l == label) {
            continue;
        }
        out.push((
            label,
            Scales {
                adapter_scale: v,
                adapter_scales: f.eval.adapter_scales.clone(),
            },
        ));
    }
    out
}

/// The variants' sampler settings.
pub(super) fn sampler(f: &SweepFile) -> SamplerSpec {
    SamplerSpec {
        samples_per_question: f.eval.samples_per_question,
        max_new_tokens: f.eval.max_new_tokens,
        temperature: f.eval.temperature,
        top_p: f.eval.top_p,
        batch_size: f.eval.batch_size,
    }
}
