//! The layout of a submission: which job arrays, which stage at which array index, and which array
//! each one runs after. Pure (no store, no Slurm): [`plan`] takes the work graph, the stages to
//! run and each task's resource profile.
//!
//! # Why this layout
//!
//! A stage runs after the stage it reads (sample after its unit's train, judge after its
//! variant's sample), element-wise: `--dependency=aftercorr:<array>` lets task `i` of an array
//! start once task `i` of the array it depends on has completed successfully, and cancels it
//! (`--kill-on-invalid-dep=yes`) when that task failed. So a stage and the stage it runs after
//! must have the same array index, and an array holds at most one stage per index.
//!
//! Measured on the local Slurm 22.05 cluster (infra/slurm-local.sh): a dependent array whose
//! indices are a *subset* of its dependency's is element-wise as above (train `0-3` with task 1
//! failing, sample `0,2-3` aftercorr on it: all three samples ran; judge `2` aftercorr on that
//! sample array ran after sample 2). An index the dependency does *not* have is not free to run:
//! it waits for the whole dependency array and is cancelled when any task of it fails (train
//! `0-2` with task 1 failing, sample `0-1,4,7-8`: samples 4, 7 and 8 stayed pending while the
//! train tasks ran and were cancelled with `DependencyNeverSatisfied` together with sample 1). So
//! work that needs no upstream stage cannot share an array with work that does (it would wait for
//! and fail with unrelated tasks), and a unit's several variants cannot share one array. Hence
//! three kinds of chunks, by the first stage of a chain that is not done (its *root*):
//!
//! - **train-rooted** (units whose train runs): index `i` is the chunk's `i`-th unit. One train
//!   array; per *variant slot* `v` one sample array holding the `v`-th sample to run of each unit
//!   that has one (at the unit's index: a subset, `aftercorr` on the train array); per (variant
//!   slot, judge slot `j`) one judge array holding the `j`-th judge to run of those samples
//!   (`aftercorr` on that sample array).
//! - **sample-rooted** (samples whose unit does not train, or whose train is done): index `i` is
//!   the chunk's `i`-th variant. One sample array without dependency; per judge slot one judge
//!   array (`aftercorr` on it).
//! - **judge-rooted** (judges whose sample is done): one judge array without dependency.
//!
//! Each kind is grouped by resource profile (the `[slurm.protocols]` name of the task's first row,
//! or `default`), and split in chunks of at most MaxArraySize roots (indices `0..n`, all below
//! MaxArraySize). An array also splits by profile when a stage's profile differs from its root's
//! (two protocol names with the same settings share a unit). The number of arrays is therefore
//! per chunk `1 + V + V x J` (train-rooted), `1 + J` (sample-rooted) or `1` (judge-rooted), with
//! V the most variants a unit runs and J the most judges a variant runs; it does not grow with the
//! number of units below MaxArraySize. A 500-unit x 10-variant x 1-judge sweep is 21 arrays.

use std::collections::{BTreeMap, BTreeSet};

use emorg_exec::{Task, WorkGraph};
use emorg_spec::{Stage, StageRef};

/// One job array of a planned submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedArray {
    /// `<chunk>-<stage>[-v<slot>][-j<slot>][-<profile>]`: the script, keys file and logs.
    pub name: String,
    pub stage: Stage,
    /// The resource profile (`render::profile_of`): `default`, a `[slurm.protocols]` name, or
    /// `<model>@[protocol]` for a `[slurm.models]` name.
    pub profile: String,
    /// (array index, the stage it runs), by ascending index.
    pub tasks: Vec<(usize, StageRef)>,
    /// The array of the same chunk this one runs after element-wise (its position in
    /// [`PlannedChunk::arrays`]); its indices hold every index of this one.
    pub after: Option<usize>,
}

impl PlannedArray {
    pub fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.tasks.iter().map(|(i, _)| *i)
    }
}

/// Arrays that share an index space: stages at one index form a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedChunk {
    /// `c<NNN>-<profile>`.
    pub name: String,
    /// The profile of the chunk's roots.
    pub profile: String,
    /// The level of the chunk's roots: train, sample or judge (see the module documentation).
    pub root: Stage,
    /// Arrays in submission order: each after the one it depends on.
    pub arrays: Vec<PlannedArray>,
}

/// Key of an array within a train-rooted chunk: (variant slot, sample profile, judge slot,
/// judge profile); `None` where it does not apply.
type ArrayKey = (Stage, Option<usize>, String, Option<usize>, String);

/// Lays out `run` (stages of `graph` to submit; every stage in it whose upstream stage is not
/// done must have that upstream stage in it too) as chunks of job arrays, roots split at
/// `max_array_size`.
pub fn plan(
    graph: &WorkGraph,
    run: &BTreeSet<StageRef>,
    profile: &dyn Fn(&Task) -> String,
    max_array_size: usize,
) -> Vec<PlannedChunk> {
    let max = max_array_size.max(1);
    let runs = |s: &StageRef| run.contains(s);
    // The stages to run after each one, in graph order.
    let children = graph.children();
    let next = |t: &Task| -> Vec<&Task> {
        graph
            .position(&t.stage)
            .map(|p| {
                children[p]
                    .iter()
                    .map(|&c| &graph.tasks[c])
                    .filter(|c| runs(&c.stage))
                    .collect()
            })
            .unwrap_or_default()
    };
    // Roots by (level, profile), in graph order.
    let mut roots: BTreeMap<(Stage, String), Vec<&Task>> = BTreeMap::new();
    for task in graph.tasks.iter().filter(|t| runs(&t.stage)) {
        if task.after.as_ref().is_some_and(runs) {
            continue;
        }
        roots
            .entry((task.stage.stage(), profile(task)))
            .or_default()
            .push(task);
    }

    let mut chunks = Vec::new();
    for ((level, root_profile), tasks) in roots {
        for part in tasks.chunks(max) {
            let name = format!("c{:03}-{root_profile}", chunks.len());
            let mut arrays: BTreeMap<ArrayKey, Vec<(usize, StageRef)>> = BTreeMap::new();
            let mut push = |key: ArrayKey, i: usize, s: &StageRef| {
                arrays.entry(key).or_default().push((i, s.clone()));
            };
            for (i, root) in part.iter().enumerate() {
                let rp = root_profile.clone();
                match level {
                    Stage::Train => {
                        push(
                            (Stage::Train, None, rp, None, String::new()),
                            i,
                            &root.stage,
                        );
                        for (v, sample) in next(root).into_iter().enumerate() {
                            let sp = profile(sample);
                            push(
                                (Stage::Sample, Some(v), sp.clone(), None, String::new()),
                                i,
                                &sample.stage,
                            );
                            for (j, judge) in next(sample).into_iter().enumerate() {
                                let key =
                                    (Stage::Judge, Some(v), sp.clone(), Some(j), profile(judge));
                                push(key, i, &judge.stage);
                            }
                        }
                    }
                    Stage::Sample => {
                        push(
                            (Stage::Sample, None, rp.clone(), None, String::new()),
                            i,
                            &root.stage,
                        );
                        for (j, judge) in next(root).into_iter().enumerate() {
                            push(
                                (Stage::Judge, None, rp.clone(), Some(j), profile(judge)),
                                i,
                                &judge.stage,
                            );
                        }
                    }
                    Stage::Judge => {
                        push(
                            (Stage::Judge, None, String::new(), None, rp),
                            i,
                            &root.stage,
                        );
                    }
                }
            }
            // BTreeMap order is submission order: train, then samples, then judges (Stage's
            // order), each after the array it depends on.
            let keys: Vec<ArrayKey> = arrays.keys().cloned().collect();
            let mut planned = Vec::with_capacity(arrays.len());
            let mut names = BTreeSet::new();
            for (key, tasks) in arrays {
                let (stage, v, sp, j, jp) = key.clone();
                let (array_profile, after) = match stage {
                    Stage::Train => (sp.clone(), None),
                    Stage::Sample => {
                        let after = (level == Stage::Train).then(|| {
                            keys.iter()
                                .position(|k| k.0 == Stage::Train)
                                .expect("a train-rooted chunk has a train array")
                        });
                        (sp.clone(), after)
                    }
                    Stage::Judge => {
                        let after = (level != Stage::Judge).then(|| {
                            keys.iter()
                                .position(|k| k.0 == Stage::Sample && k.1 == v && k.2 == sp)
                                .expect("a judge array has its sample array")
                        });
                        (jp, after)
                    }
                };
                let mut array_name = format!("{name}-{stage}");
                if let Some(v) = v {
                    array_name.push_str(&format!("-v{v}"));
                }
                if let Some(j) = j {
                    array_name.push_str(&format!("-j{j}"));
                }
                if stage == Stage::Judge && level == Stage::Train && sp != root_profile {
                    array_name.push_str(&format!("-{sp}"));
                }
                if array_profile != root_profile {
                    array_name.push_str(&format!("-{array_profile}"));
                }
                while !names.insert(array_name.clone()) {
                    array_name.push('+');
                }
                planned.push(PlannedArray {
                    name: array_name,
                    stage,
                    profile: array_profile,
                    tasks,
                    after,
                });
            }
            chunks.push(PlannedChunk {
                name,
                profile: root_profile.clone(),
                root: level,
                arrays: planned,
            });
        }
    }
    chunks
}

/// The `--array` value of `indices` (ascending): runs of consecutive indices as ranges,
/// `0-4,7,9-12`.
pub fn array_spec(indices: impl IntoIterator<Item = usize>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut run: Option<(usize, usize)> = None;
    let flush = |run: (usize, usize), out: &mut Vec<String>| {
        out.push(if run.0 == run.1 {
            run.0.to_string()
        } else {
            format!("{}-{}", run.0, run.1)
        });
    };
    for i in indices {
        run = match run {
            Some((a, b)) if i == b + 1 => Some((a, i)),
            Some(r) => {
                flush(r, &mut out);
                Some((i, i))
            }
            None => Some((i, i)),
        };
    }
    if let Some(r) = run {
        flush(r, &mut out);
    }
    out.join(",")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testing::rows;
    use emorg_spec::Cell;

    fn all(graph: &WorkGraph) -> BTreeSet<StageRef> {
        graph.tasks.iter().map(|t| t.stage.clone()).collect()
    }

    fn by_protocol(cells: &[Cell]) -> impl Fn(&Task) -> String + '_ {
        move |t: &Task| cells[t.rows[0]].axes.protocol.clone()
    }

    /// Every dependent array's indices are a subset of its dependency's, and at each index the
    /// dependency holds the stage this one runs after.
    fn check_alignment(graph: &WorkGraph, chunks: &[PlannedChunk]) {
        for c in chunks {
            for a in &c.arrays {
                let Some(after) = a.after else {
                    continue;
                };
                let dep: BTreeMap<usize, &StageRef> =
                    c.arrays[after].tasks.iter().map(|(i, s)| (*i, s)).collect();
                for (i, s) in &a.tasks {
                    let up = graph.get(s).unwrap().after.as_ref().unwrap();
                    assert_eq!(dep.get(i), Some(&up), "{} index {i}", a.name);
                }
            }
        }
    }

    #[test]
    fn a_lora_unit_with_two_checkpoints_and_two_judges_is_one_train_two_sample_four_judge_arrays() {
        let cells = rows(1, 2, 2, false, "r1");
        let graph = WorkGraph::new(&cells);
        let chunks = plan(&graph, &all(&graph), &by_protocol(&cells), 1001);
        assert_eq!(chunks.len(), 1);
        let c = &chunks[0];
        assert_eq!(c.root, Stage::Train);
        let names: Vec<&str> = c.arrays.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "c000-r1-train",
                "c000-r1-sample-v0",
                "c000-r1-sample-v1",
                "c000-r1-judge-v0-j0",
                "c000-r1-judge-v0-j1",
                "c000-r1-judge-v1-j0",
                "c000-r1-judge-v1-j1",
            ]
        );
        let after: Vec<Option<usize>> = c.arrays.iter().map(|a| a.after).collect();
        assert_eq!(
            after,
            [None, Some(0), Some(0), Some(1), Some(1), Some(2), Some(2)]
        );
        check_alignment(&graph, &chunks);
    }

    #[test]
    fn arrays_do_not_grow_with_units_and_split_at_max_array_size() {
        let cells = rows(500, 10, 1, false, "r1");
        let graph = WorkGraph::new(&cells);
        let chunks = plan(&graph, &all(&graph), &by_protocol(&cells), 1001);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].arrays.len(), 21);
        assert!(chunks[0].arrays.iter().all(|a| a.tasks.len() == 500));
        assert_eq!(array_spec(chunks[0].arrays[5].indices()), "0-499");
        check_alignment(&graph, &chunks);

        let chunks = plan(&graph, &all(&graph), &by_protocol(&cells), 200);
        assert_eq!(chunks.len(), 3);
        let sizes: Vec<usize> = chunks.iter().map(|c| c.arrays[0].tasks.len()).collect();
        assert_eq!(sizes, [200, 200, 100]);
        for c in &chunks {
            assert!(c.arrays.iter().all(|a| a.indices().all(|i| i < 200)));
        }
        check_alignment(&graph, &chunks);
    }

    #[test]
    fn done_upstream_stages_make_sample_and_judge_rooted_chunks() {
        // Unit 0: train done, both samples to run. Unit 1: train and sample v0 done, the judge of
        // v0 and everything of v1 to run. Plus a base unit (no train).
        let mut cells = rows(2, 2, 1, false, "r1");
        cells.extend(rows(1, 1, 1, true, "base"));
        let graph = WorkGraph::new(&cells);
        let u1 = cells[2].unit_key();
        let done: BTreeSet<StageRef> = [
            StageRef::Train(cells[0].unit_key()),
            StageRef::Train(u1),
            StageRef::Sample(cells[2].variant_key()),
        ]
        .into();
        let run: BTreeSet<StageRef> = all(&graph).difference(&done).cloned().collect();
        let chunks = plan(&graph, &run, &by_protocol(&cells), 1001);
        type Shape<'a> = (Stage, &'a str, Vec<(&'a str, usize, Option<usize>)>);
        let shape: Vec<Shape> = chunks
            .iter()
            .map(|c| {
                (
                    c.root,
                    c.profile.as_str(),
                    c.arrays
                        .iter()
                        .map(|a| (a.name.as_str(), a.tasks.len(), a.after))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                (
                    Stage::Sample,
                    "base",
                    vec![
                        ("c000-base-sample", 1, None),
                        ("c000-base-judge-j0", 1, Some(0))
                    ]
                ),
                (
                    Stage::Sample,
                    "r1",
                    vec![
                        ("c001-r1-sample", 3, None),
                        ("c001-r1-judge-j0", 3, Some(0))
                    ]
                ),
                (Stage::Judge, "r1", vec![("c002-r1-judge", 1, None)]),
            ]
        );
        check_alignment(&graph, &chunks);
    }

    #[test]
    fn units_with_fewer_variants_leave_gaps_in_later_slots() {
        // Unit 0 runs two samples, unit 1 one (its other is done), unit 2 two.
        let cells = rows(3, 2, 1, false, "r1");
        let graph = WorkGraph::new(&cells);
        let skip = StageRef::Sample(cells[2].variant_key());
        let skip_judge = StageRef::Judge(cells[2].judgment_key());
        let run: BTreeSet<StageRef> = all(&graph)
            .into_iter()
            .filter(|s| *s != skip && *s != skip_judge)
            .collect();
        let chunks = plan(&graph, &run, &by_protocol(&cells), 1001);
        assert_eq!(chunks.len(), 1);
        let specs: Vec<(String, String)> = chunks[0]
            .arrays
            .iter()
            .map(|a| (a.name.clone(), array_spec(a.indices())))
            .collect();
        assert_eq!(
            specs,
            [
                ("c000-r1-train".to_string(), "0-2".to_string()),
                ("c000-r1-sample-v0".into(), "0-2".into()),
                ("c000-r1-sample-v1".into(), "0,2".into()),
                ("c000-r1-judge-v0-j0".into(), "0-2".into()),
                ("c000-r1-judge-v1-j0".into(), "0,2".into()),
            ]
        );
        check_alignment(&graph, &chunks);
    }

    #[test]
    fn array_specs_compress_runs() {
        assert_eq!(array_spec([0, 1, 2, 3, 4, 7, 9, 10, 11, 12]), "0-4,7,9-12");
        assert_eq!(array_spec([5]), "5");
        assert_eq!(array_spec([]), "");
    }
}
