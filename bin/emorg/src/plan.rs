//! `emorg plan`: the training units of a sweep with their variants and judgments, the state of
//! their stages in the store, what would run, and (`--explain`) why, at the level it reruns.
//!
//! `--explain` compares with the sweep record of the last run (`sweeps/<name>/latest.json`),
//! matching rows by axes: a unit by (model, protocol, dataset, seed, replicate), a variant by
//! those and (checkpoint, scale), a judgment by those and the judge. A changed unit reruns
//! everything of it (`train + all`), a changed or new variant its sample and judges
//! (`sample + judge`), a changed or new judgment its judge (`judge only`).

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Result;
use emorg_exec::{
    LocalResolver, RecordRow, StageState, SweepRecord, WorkGraph, open_store, stage_state,
};
use emorg_spec::{Axes, Cell, Stage, StageRef, Weights, explain_values};

use crate::PlanArgs;
use crate::sweep::load_and_resolve_with;

/// Left-aligned text table.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// A training unit of the sweep with its variants, as positions in the graph.
struct UnitView {
    /// A row of the unit (its first).
    row: usize,
    /// Its train task (none for a unit that does not train).
    train: Option<usize>,
    variants: Vec<VariantView>,
}

struct VariantView {
    row: usize,
    sample: usize,
    /// Its judge tasks.
    judges: Vec<usize>,
}

/// The units of the graph in the order of their first row.
fn units(cells: &[Cell], graph: &WorkGraph) -> Vec<UnitView> {
    let children = graph.children();
    let mut units: Vec<UnitView> = Vec::new();
    let mut by_key = BTreeMap::new();
    for task in graph.level(Stage::Sample) {
        let row = task.rows[0];
        let cell = &cells[row];
        let sample = graph.position(&task.stage).expect("a task of the graph");
        let u = *by_key.entry(cell.unit_key()).or_insert_with(|| {
            units.push(UnitView {
                row,
                train: graph.position(&StageRef::Train(cell.unit_key())),
                variants: Vec::new(),
            });
            units.len() - 1
        });
        units[u].variants.push(VariantView {
            row,
            sample,
            judges: children[sample].clone(),
        });
    }
    units
}

/// The axes that identify a unit in the record.
type UnitAxes = (String, String, String, u64, u32);
/// ... a variant.
type VariantAxes = (UnitAxes, Weights, String);

fn unit_axes(a: &Axes) -> UnitAxes {
    (
        a.model.clone(),
        a.protocol.clone(),
        a.dataset.clone(),
        a.seed,
        a.replicate,
    )
}

fn variant_axes(a: &Axes) -> VariantAxes {
    (unit_axes(a), a.checkpoint, a.scale.clone())
}

/// The previous run's rows, by unit, variant and judgment axes (the first row of each).
struct Previous<'a> {
    record: &'a SweepRecord,
    units: BTreeMap<UnitAxes, &'a RecordRow>,
    variants: BTreeMap<VariantAxes, &'a RecordRow>,
    judgments: BTreeMap<&'a Axes, &'a RecordRow>,
}

impl<'a> Previous<'a> {
    fn new(record: &'a SweepRecord) -> Previous<'a> {
        let mut p = Previous {
            record,
            units: BTreeMap::new(),
            variants: BTreeMap::new(),
            judgments: BTreeMap::new(),
        };
        for row in &record.rows {
            p.units.entry(unit_axes(&row.axes)).or_insert(row);
            p.variants.entry(variant_axes(&row.axes)).or_insert(row);
            p.judgments.entry(&row.axes).or_insert(row);
        }
        p
    }
}

/// The JSON paths that changed between two identities, leaving out the key of the identity
/// upstream (`unit` of a variant, `variant` of a judgment): that change is told at its level.
fn changes(
    previous: Option<&serde_json::Value>,
    current: &serde_json::Value,
    skip: &str,
) -> String {
    let Some(previous) = previous else {
        return "changed (the previous record lacks it)".into();
    };
    let strip = |v: &serde_json::Value| {
        let mut v = v.clone();
        if let Some(map) = v.as_object_mut() {
            map.remove(skip);
        }
        v
    };
    let diffs = explain_values(&strip(previous), &strip(current));
    if diffs.is_empty() {
        "key changed".into()
    } else {
        diffs.join("; ")
    }
}

/// Why a stage of unchanged identity would run: its state in the store.
fn state_reason(stage: Stage, state: &StageState) -> String {
    match state {
        StageState::Failed => format!("{stage} failed"),
        StageState::Invalid(reason) => format!("{stage} DONE.json invalid: {reason}"),
        StageState::Stale(reason) => format!("{stage} stale: {reason}"),
        _ => format!("{stage} not done"),
    }
}

fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("an identity serialises")
}

/// `(1 train, 10 sample, 20 judge)`.
fn counts(train: usize, sample: usize, judge: usize) -> String {
    let mut parts = Vec::new();
    if train > 0 {
        parts.push(format!("{train} train"));
    }
    if sample > 0 {
        parts.push(format!("{sample} sample"));
    }
    if judge > 0 {
        parts.push(format!("{judge} judge"));
    }
    format!("({})", parts.join(", "))
}

/// Groups `(what, why)` lines by `why` (first seen first): one line per reason, naming up to
/// four of what it concerns.
fn grouped(lines: Vec<(String, String)>, noun: &str) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (what, why) in lines {
        if !groups.contains_key(&why) {
            order.push(why.clone());
        }
        groups.entry(why).or_default().push(what);
    }
    order
        .into_iter()
        .map(|why| {
            let whats = &groups[&why];
            if whats.len() == 1 {
                format!("{}: {why}", whats[0])
            } else {
                let shown: Vec<&str> = whats.iter().take(4).map(String::as_str).collect();
                let more = if whats.len() > 4 {
                    format!(", +{} more", whats.len() - 4)
                } else {
                    String::new()
                };
                format!(
                    "{} {noun}s ({}{more}): {why}",
                    whats.len(),
                    shown.join(", ")
                )
            }
        })
        .collect()
}

pub fn plan(args: &PlanArgs) -> Result<ExitCode> {
    let (sweep, resolution) = load_and_resolve_with(
        &args.sweep,
        &[],
        &LocalResolver::from_env(),
        args.rerun.replicate(),
    )?;
    let cells = resolution.cells;
    let store = open_store(&sweep.file.store.url)?;
    store.check_layout()?;
    let graph = WorkGraph::new(&cells);
    let states: Vec<StageState> = graph
        .tasks
        .iter()
        .map(|t| stage_state(&store, &graph.chain(&t.stage)))
        .collect::<Result<_>>()?;
    // What would run: every stage not done, within --only's and --cell's selection when given.
    let selection = args.rerun.selection(&store, &graph, &cells)?;
    let waiting = selection.as_ref().map_or(0, |s| s.waiting.len());
    let launched = selection.map(|s| s.only);
    let runs: Vec<bool> = graph
        .tasks
        .iter()
        .zip(&states)
        .map(|(t, s)| !s.is_done() && launched.as_ref().is_none_or(|l| l.contains(&t.stage)))
        .collect();
    let units = units(&cells, &graph);

    let level_count = |stage: Stage| graph.level(stage).count();
    let run_count = |stage: Stage| {
        graph
            .tasks
            .iter()
            .zip(&runs)
            .filter(|(t, r)| **r && t.stage.stage() == stage)
            .count()
    };
    let to_run = runs.iter().filter(|r| **r).count();
    println!(
        "sweep {}: {} rows: {} units ({} train), {} variants, {} judgments; to run: {} train, {} \
         sample, {} judge ({to_run} stages); store {}",
        sweep.file.name,
        cells.len(),
        units.len(),
        level_count(Stage::Train),
        level_count(Stage::Sample),
        level_count(Stage::Judge),
        run_count(Stage::Train),
        run_count(Stage::Sample),
        run_count(Stage::Judge),
        sweep.file.store.url
    );
    if let (Some(level), true) = (args.rerun.level(), waiting > 0) {
        println!(
            "--only {level}: {waiting} stages left out, since a stage before that level they need \
             is not done"
        );
    }

    let done_of = |tasks: &mut dyn Iterator<Item = usize>| {
        let (mut done, mut all) = (0, 0);
        for i in tasks {
            all += 1;
            done += usize::from(states[i].is_done());
        }
        format!("{done}/{all}")
    };
    let mut rows = Vec::new();
    for u in &units {
        let a = &cells[u.row].axes;
        let mut seed = a.seed.to_string();
        if a.replicate > 0 {
            seed.push_str(&format!(" r{}", a.replicate));
        }
        let stages: Vec<usize> = u
            .train
            .into_iter()
            .chain(
                u.variants
                    .iter()
                    .flat_map(|v| std::iter::once(v.sample).chain(v.judges.iter().copied())),
            )
            .collect();
        let n_run = stages.iter().filter(|&&i| runs[i]).count();
        rows.push(vec![
            a.model.clone(),
            a.protocol.clone(),
            a.dataset.clone(),
            seed,
            cells[u.row].unit_key().short().to_string(),
            u.train.map_or("-".to_string(), |i| states[i].to_string()),
            done_of(&mut u.variants.iter().map(|v| v.sample)),
            done_of(&mut u.variants.iter().flat_map(|v| v.judges.iter().copied())),
            if n_run == 0 {
                "no".into()
            } else {
                n_run.to_string()
            },
        ]);
    }
    println!(
        "{}",
        table(
            &[
                "MODEL", "PROTOCOL", "DATASET", "SEED", "UNIT", "TRAIN", "SAMPLE", "JUDGE", "RUN"
            ],
            &rows
        )
    );

    if args.explain {
        let record = SweepRecord::load(&store, &sweep.file.name)?;
        let previous = record.as_ref().map(Previous::new);
        println!("\nwhy:");
        for line in explain(&cells, &graph, &units, &states, &runs, previous.as_ref()) {
            println!("  {line}");
        }
        if to_run == 0 {
            println!("\nnothing to run: every stage is done");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The `--explain` lines: per unit a line, and below it (indented) one per reason its variants or
/// judgments would run for.
fn explain(
    cells: &[Cell],
    graph: &WorkGraph,
    units: &[UnitView],
    states: &[StageState],
    runs: &[bool],
    previous: Option<&Previous>,
) -> Vec<String> {
    let mut out = Vec::new();
    for u in units {
        let cell = &cells[u.row];
        let a = &cell.axes;
        let mut label = format!("{}/{}/{}/seed{}", a.model, a.protocol, a.dataset, a.seed);
        if a.replicate > 0 {
            label.push_str(&format!("/r{}", a.replicate));
        }
        let head = format!("{label} (unit {})", cell.unit_key().short());
        let samples = u.variants.iter().filter(|v| runs[v.sample]).count();
        let judges = u
            .variants
            .iter()
            .flat_map(|v| &v.judges)
            .filter(|&&j| runs[j])
            .count();
        let train = u.train.is_some_and(|t| runs[t]);
        if !train && samples == 0 && judges == 0 {
            out.push(format!("{head}: done"));
            continue;
        }
        let all = counts(usize::from(train), samples, judges);
        let level = if cell.trains() {
            "train + all"
        } else {
            "sample + judge"
        };
        let prev_unit = previous.and_then(|p| p.units.get(&unit_axes(a)).map(|r| (p, *r)));
        // The unit: new, changed, or its train not done.
        let unit_why = match prev_unit {
            None => Some(format!("new {all}")),
            Some((p, row)) if row.unit_key != cell.unit_key() => Some(format!(
                "{level}: {} {all}",
                changes(p.record.units.get(&row.unit_key), &json(&cell.unit), "")
            )),
            Some(_) if train => Some(format!(
                "{level}: {} {all}",
                state_reason(Stage::Train, &states[u.train.expect("train runs")])
            )),
            Some(_) => None,
        };
        if let Some(why) = unit_why
            && (train || samples == u.variants.len())
        {
            out.push(format!("{head}: {why}"));
            continue;
        }
        out.push(format!("{head}: {}", counts(0, samples, judges)));

        let mut variant_lines = Vec::new();
        let mut judge_lines = Vec::new();
        for v in &u.variants {
            let vcell = &cells[v.row];
            let vlabel = format!("{} x{}", vcell.axes.checkpoint, vcell.axes.scale);
            if runs[v.sample] {
                let why = match previous
                    .and_then(|p| p.variants.get(&variant_axes(&vcell.axes)).map(|r| (p, *r)))
                {
                    None => "sample + judge: new".to_string(),
                    Some((p, row)) if row.variant_key != vcell.variant_key() => {
                        let what = if row.unit_key != vcell.unit_key() {
                            format!(
                                "unit {}",
                                changes(p.record.units.get(&row.unit_key), &json(&vcell.unit), "")
                            )
                        } else {
                            changes(
                                p.record.variants.get(&row.variant_key),
                                &json(&vcell.variant),
                                "unit",
                            )
                        };
                        format!("sample + judge: {what}")
                    }
                    Some(_) => format!(
                        "sample + judge: {}",
                        state_reason(Stage::Sample, &states[v.sample])
                    ),
                };
                variant_lines.push((vlabel, why));
                continue;
            }
            for &j in v.judges.iter().filter(|&&j| runs[j]) {
                let jcell = &cells[graph.tasks[j].rows[0]];
                let name = &jcell.axes.judge;
                let why = match previous.and_then(|p| p.judgments.get(&jcell.axes).map(|r| (p, *r)))
                {
                    None => format!("judge only: judge '{name}' added"),
                    Some((p, row)) if row.judgment_key != jcell.judgment_key() => {
                        let what = if row.variant_key != jcell.variant_key() {
                            "its variant changed (the new one is sampled)".to_string()
                        } else {
                            changes(
                                p.record.judgments.get(&row.judgment_key),
                                &json(&jcell.judgment),
                                "variant",
                            )
                        };
                        format!("judge only: judge '{name}': {what}")
                    }
                    Some(_) => format!(
                        "judge only: judge '{name}': {}",
                        state_reason(Stage::Judge, &states[j])
                    ),
                };
                judge_lines.push((format!("{vlabel} judge {name}"), why));
            }
        }
        for line in grouped(variant_lines, "variant")
            .into_iter()
            .chain(grouped(judge_lines, "judgment"))
        {
            out.push(format!("  {line}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    use emorg_spec::{LoadOptions, ModelInfo, Resolver, Sweep};

    /// Two models and fixed file hashes.
    struct Fake;

    impl Resolver for Fake {
        fn model(&self, name: &str) -> Result<ModelInfo, String> {
            Ok(ModelInfo {
                gguf_sha256: if name == "small" { "a" } else { "b" }.repeat(64),
                n_layers: 30,
                n_params: 134_515_008,
            })
        }
        fn file_sha256(&self, _path: &Path) -> Result<String, String> {
            Ok("1".repeat(64))
        }
    }

    const SWEEP: &str = r#"name = "t"
[matrix]
model = ["m"]
protocol = ["r1", "r2"]
dataset = ["d"]
seed = [0]
[models.m]
registry = "small"
[models.judge]
registry = "small"
[models.judge2]
registry = "big"
[datasets.d]
path = "d.jsonl"
[protocols.r1]
kind = "lora"
rank = 1
alpha = 8.0
modules = ["down_proj"]
layers = [0.5]
[protocols.r2]
kind = "lora"
rank = 1
alpha = 16.0
modules = ["down_proj"]
layers = [0.5]
[train]
learning_rate = 3e-3
max_steps = 16
checkpoint_every = 8
[eval]
questions = "q.yaml"
checkpoints = [8, "final"]
adapter_scale = [1, 5]
samples_per_question = 2
[judge]
model = "judge"
"#;

    fn resolve(text: &str, sets: &[&str]) -> (Sweep, Vec<Cell>) {
        let opts = LoadOptions {
            env: vec![],
            sets: sets.iter().map(|s| s.to_string()).collect(),
            base_dir: Some("/repo".into()),
        };
        let sweep =
            Sweep::from_text("t.toml", text.to_string(), &opts).unwrap_or_else(|e| panic!("{e}"));
        let cells = emorg_spec::resolve(&sweep, &Fake).unwrap_or_else(|e| panic!("{e}"));
        (sweep, cells)
    }

    /// The `--explain` lines of `new` after a run of `old` that did all its stages.
    fn explained(old: (&str, &[&str]), new: (&str, &[&str])) -> Vec<String> {
        let (sweep, cells) = resolve(old.0, old.1);
        let record = SweepRecord::new(&sweep, &cells, "memory://");
        let done: BTreeSet<StageRef> = WorkGraph::new(&cells)
            .tasks
            .into_iter()
            .map(|t| t.stage)
            .collect();
        let (_, cells) = resolve(new.0, new.1);
        let graph = WorkGraph::new(&cells);
        let states: Vec<StageState> = graph
            .tasks
            .iter()
            .map(|t| {
                if done.contains(&t.stage) {
                    StageState::Done
                } else {
                    StageState::Missing
                }
            })
            .collect();
        let runs: Vec<bool> = states.iter().map(|s| !s.is_done()).collect();
        let units = units(&cells, &graph);
        let previous = Previous::new(&record);
        explain(&cells, &graph, &units, &states, &runs, Some(&previous))
    }

    fn heads(lines: &[String]) -> Vec<&str> {
        lines
            .iter()
            .map(|l| l.split(" (unit ").next().unwrap())
            .collect()
    }

    #[test]
    fn explain_tells_each_change_at_the_level_it_reruns() {
        // Nothing changed: every unit is done.
        let lines = explained((SWEEP, &[]), (SWEEP, &[]));
        assert_eq!(heads(&lines), ["m/r1/d/seed0", "m/r2/d/seed0"]);
        assert!(lines.iter().all(|l| l.ends_with(": done")), "{lines:#?}");

        // A second judge: judge stages only, one per variant, named; the first judge keeps its
        // key under its new name.
        let two_judges = format!("{SWEEP}[judges.default]\n[judges.big]\nmodel = \"judge2\"\n");
        let lines = explained((SWEEP, &[]), (&two_judges, &[]));
        assert_eq!(lines.len(), 4, "{lines:#?}");
        for unit in [&lines[0], &lines[2]] {
            assert!(unit.ends_with(": (4 judge)"), "{lines:#?}");
        }
        for judges in [&lines[1], &lines[3]] {
            assert_eq!(
                judges,
                "  4 judgments (final x1 judge big, final x5 judge big, step-8 x1 judge big, \
                 step-8 x5 judge big): judge only: judge 'big' added"
            );
        }

        // Samples per question: sample + judge of every variant, the units untouched.
        let lines = explained((SWEEP, &[]), (SWEEP, &["eval.samples_per_question=4"]));
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(lines[0].ends_with(": (4 sample, 4 judge)"), "{lines:#?}");
        assert_eq!(
            lines[1],
            "  4 variants (final x1, final x5, step-8 x1, step-8 x5): sample + judge: \
             sampler.samples_per_question: 2 -> 4"
        );

        // A scale added: the new variants only, as new.
        let lines = explained((SWEEP, &[]), (SWEEP, &["eval.adapter_scale=[1, 5, 10]"]));
        assert!(lines[0].ends_with(": (2 sample, 2 judge)"), "{lines:#?}");
        assert_eq!(
            lines[1],
            "  2 variants (final x10, step-8 x10): sample + judge: new"
        );

        // One protocol's learning rate: train + all of that unit only.
        let lines = explained(
            (SWEEP, &[]),
            (SWEEP, &["protocols.r1.train.learning_rate=2e-3"]),
        );
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(
            lines[0].ends_with(
                ": train + all: protocol.train.learning_rate: 0.003 -> 0.002 \
                 (1 train, 4 sample, 4 judge)"
            ),
            "{lines:#?}"
        );
        assert!(lines[1].ends_with(": done"), "{lines:#?}");

        // A new seed: new units.
        let lines = explained((SWEEP, &[]), (SWEEP, &["matrix.seed=[0, 1]"]));
        let whys: Vec<&str> = lines
            .iter()
            .map(|l| l.split("): ").nth(1).unwrap())
            .collect();
        assert_eq!(
            whys,
            [
                "done",
                "new (1 train, 4 sample, 4 judge)",
                "done",
                "new (1 train, 4 sample, 4 judge)"
            ]
        );
    }

    #[test]
    fn lines_with_one_reason_are_grouped_naming_up_to_four() {
        let lines: Vec<(String, String)> = (0..6)
            .map(|i| (format!("step-{i} x1"), "sample + judge: new".to_string()))
            .chain([("final x5".to_string(), "sample + judge: x".to_string())])
            .collect();
        assert_eq!(
            grouped(lines, "variant"),
            vec![
                "6 variants (step-0 x1, step-1 x1, step-2 x1, step-3 x1, +2 more): sample + judge: new",
                "final x5: sample + judge: x",
            ]
        );
    }

    #[test]
    fn changes_leave_out_the_upstream_key() {
        let a = serde_json::json!({"unit": "a", "sampler": {"samples_per_question": 8}});
        let b = serde_json::json!({"unit": "b", "sampler": {"samples_per_question": 50}});
        assert_eq!(
            changes(Some(&a), &b, "unit"),
            "sampler.samples_per_question: 8 -> 50"
        );
        assert_eq!(changes(Some(&a), &a, "unit"), "key changed");
        assert_eq!(counts(1, 10, 20), "(1 train, 10 sample, 20 judge)");
        assert_eq!(counts(0, 0, 2), "(2 judge)");
    }
}
