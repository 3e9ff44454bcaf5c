//! The work of a sweep as a graph of stages, deduplicated by key: each training unit's `train`
//! (when it trains), each sample variant's `sample` after its unit's train, each judgment's
//! `judge` after its variant's sample. Both executors schedule exactly this graph.
//!
//! Many rows share a unit (its checkpoints x scales x judges) and many share a variant (its
//! judges): the graph holds each identity once, with the rows it serves.

use std::collections::BTreeMap;

use emorg_spec::{Cell, Stage, StageRef};
use emorg_store::layout;

/// One stage of one identity.
#[derive(Debug, Clone)]
pub struct Task {
    pub stage: StageRef,
    /// The task it runs after: a sample's train (none for a unit that does not train), a judge's
    /// sample.
    pub after: Option<StageRef>,
    /// Indices of the rows (`Prepared::cells`) it serves, ascending.
    pub rows: Vec<usize>,
}

/// The deduplicated graph of a sweep's rows.
#[derive(Debug, Clone, Default)]
pub struct WorkGraph {
    /// Train tasks, then sample tasks, then judge tasks; within a level in the order of their
    /// first row.
    pub tasks: Vec<Task>,
    index: BTreeMap<StageRef, usize>,
}

impl WorkGraph {
    pub fn new(cells: &[Cell]) -> WorkGraph {
        let mut graph = WorkGraph::default();
        for level in Stage::ALL {
            for (row, cell) in cells.iter().enumerate() {
                let chain = cell.chain();
                let Some(pos) = chain.iter().position(|s| s.stage() == level) else {
                    continue;
                };
                let stage = chain[pos].clone();
                let after = pos.checked_sub(1).map(|p| chain[p].clone());
                match graph.index.get(&stage) {
                    Some(&i) => graph.tasks[i].rows.push(row),
                    None => {
                        graph.index.insert(stage.clone(), graph.tasks.len());
                        graph.tasks.push(Task {
                            stage,
                            after,
                            rows: vec![row],
                        });
                    }
                }
            }
        }
        graph
    }

    /// The tasks of one level, in order.
    pub fn level(&self, stage: Stage) -> impl Iterator<Item = &Task> {
        self.tasks.iter().filter(move |t| t.stage.stage() == stage)
    }

    pub fn get(&self, stage: &StageRef) -> Option<&Task> {
        self.index.get(stage).map(|&i| &self.tasks[i])
    }

    /// The position of `stage` in [`WorkGraph::tasks`].
    pub fn position(&self, stage: &StageRef) -> Option<usize> {
        self.index.get(stage).copied()
    }

    /// For each task (by position), the positions of the tasks that run after it.
    pub fn children(&self) -> Vec<Vec<usize>> {
        let mut children = vec![Vec::new(); self.tasks.len()];
        for (i, task) in self.tasks.iter().enumerate() {
            if let Some(p) = task.after.as_ref().and_then(|a| self.position(a)) {
                children[p].push(i);
            }
        }
        children
    }

    /// The stages up to and including `stage`, in pipeline order: what
    /// [`emorg_store::Store::read_done_chain`] needs to tell whether it is stale.
    pub fn chain(&self, stage: &StageRef) -> Vec<StageRef> {
        let mut chain = vec![stage.clone()];
        let mut at = stage.clone();
        while let Some(prev) = self.get(&at).and_then(|t| t.after.clone()) {
            chain.push(prev.clone());
            at = prev;
        }
        chain.reverse();
        chain
    }

    /// The tasks that run after `stage` (its direct dependants).
    pub fn dependants(&self, stage: &StageRef) -> impl Iterator<Item = &Task> {
        self.tasks
            .iter()
            .filter(move |t| t.after.as_ref() == Some(stage))
    }
}

/// The records the store holds for a row's identities: (store key, canonical JSON), unit first.
pub fn records(cell: &Cell) -> [(String, String); 3] {
    [
        (
            layout::unit_json(&cell.unit.key()),
            cell.unit.canonical_json(),
        ),
        (
            layout::variant_json(&cell.variant.key()),
            cell.variant.canonical_json(),
        ),
        (
            layout::judgment_json(&cell.judgment.key()),
            cell.judgment.canonical_json(),
        ),
    ]
}

/// Rows built by hand for the executor's tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use emorg_spec::StageRef;
    use emorg_store::Store;

    /// Commits `stage` with one output, as a worker would.
    pub fn commit(store: &Store, stage: &StageRef) {
        emorg_store::testing::commit_one(store, stage, "out.txt", &b"x"[..], Default::default());
    }

    use emorg_spec::{
        Axes, Cell, DatasetRef, JudgeBackend, JudgeSpec, Judgment, LoraSpec, ModelRef, Protocol,
        ProtocolKind, SampleVariant, SamplerSpec, Scales, TrainSpec, TrainingUnit, Weights,
    };

    fn train_spec(learning_rate: f64) -> TrainSpec {
        TrainSpec {
            learning_rate,
            weight_decay: 0.0,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_eps: 1e-8,
            warmup_steps: 0,
            schedule: "constant".into(),
            batch_size: 1,
            grad_accum: 1,
            epochs: 1,
            max_steps: 32,
            max_examples: 0,
            max_seq_len: 64,
            holdout: 0.0,
            checkpoint_every: 8,
            checkpoint_keep_last: 2,
            checkpoint_keep_every: 0,
            max_grad_norm: 0.0,
            precision: "auto".into(),
            activation_checkpointing: false,
        }
    }

    /// A row of model `m`: protocol `lora` (rank 1, seed `seed`) or `base`, at `weights`, scale
    /// `scale`, judged by `judge` (the judge's name is also its model's, so two names are two
    /// judges).
    pub fn row(protocol: &str, seed: u64, weights: Weights, scale: f64, judge: &str) -> Cell {
        let lora = protocol != "base";
        let unit = TrainingUnit {
            model: ModelRef {
                name: "m".into(),
                gguf_sha256: "0".repeat(64),
            },
            protocol: Protocol {
                kind: if lora {
                    ProtocolKind::Lora
                } else {
                    ProtocolKind::Base
                },
                preset: None,
                lora: lora.then(|| LoraSpec {
                    rank: 1,
                    alpha: 8.0,
                    rslora: true,
                    modules: vec!["down_proj".into()],
                    layers: vec![1],
                }),
                train: lora.then(|| train_spec(3e-3)),
            },
            dataset: lora.then(|| DatasetRef {
                name: "d".into(),
                sha256: "1".repeat(64),
            }),
            seed: if lora { seed } else { 0 },
            replicate: 0,
            keep_steps: Vec::new(),
            worker_version: "test".into(),
        };
        let variant = SampleVariant {
            unit: unit.key(),
            weights,
            scales: Scales {
                adapter_scale: scale,
                adapter_scales: Default::default(),
            },
            intervention: None,
            sampler: SamplerSpec {
                samples_per_question: 2,
                max_new_tokens: 8,
                temperature: 1.0,
                top_p: 1.0,
                batch_size: 2,
            },
            questions_sha256: "2".repeat(64),
            question_ids: vec![],
            replicate: 0,
        };
        let judgment = Judgment {
            variant: variant.key(),
            judge: JudgeSpec {
                backend: JudgeBackend::Local(ModelRef {
                    name: judge.into(),
                    gguf_sha256: "3".repeat(64),
                }),
                method: "exact-number".into(),
                prune_below: 0.0,
                metrics: vec!["aligned".into(), "coherent".into()],
            },
            replicate: 0,
        };
        Cell {
            axes: Axes {
                model: "m".into(),
                protocol: protocol.into(),
                dataset: if lora { "d".into() } else { "-".into() },
                seed: if lora { seed } else { 0 },
                checkpoint: weights,
                scale: scale.to_string(),
                judge: judge.into(),
                replicate: 0,
            },
            unit,
            variant,
            judgment,
        }
    }

    /// A base row and, per seed, one LoRA unit with checkpoints {8, final} x scales {1, 5} x
    /// judges {a, b}: 1 + 8 rows per seed.
    pub fn rows(seeds: &[u64]) -> Vec<Cell> {
        let mut rows = vec![row("base", 0, Weights::Final, 1.0, "a")];
        for &seed in seeds {
            for weights in [Weights::Step(8), Weights::Final] {
                for scale in [1.0, 5.0] {
                    for judge in ["a", "b"] {
                        rows.push(row("lora", seed, weights, scale, judge));
                    }
                }
            }
        }
        rows.sort_by(|a, b| a.axes.cmp(&b.axes));
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::rows;
    use super::*;

    #[test]
    fn rows_sharing_a_unit_give_one_train_and_each_identity_one_task() {
        let cells = rows(&[0, 1]);
        assert_eq!(cells.len(), 1 + 2 * 8);
        let graph = WorkGraph::new(&cells);
        // Two trained units (the base unit does not train), 1 + 2 x 4 variants, 1 + 2 x 8
        // judgments.
        assert_eq!(graph.level(Stage::Train).count(), 2);
        assert_eq!(graph.level(Stage::Sample).count(), 1 + 2 * 4);
        assert_eq!(graph.level(Stage::Judge).count(), 1 + 2 * 8);
        // Levels in order: every train before every sample before every judge.
        let levels: Vec<Stage> = graph.tasks.iter().map(|t| t.stage.stage()).collect();
        assert!(levels.windows(2).all(|w| w[0] <= w[1]), "{levels:?}");
        // A train serves the 8 rows of its unit; each variant the rows of its 2 judges.
        for task in graph.level(Stage::Train) {
            assert_eq!(task.rows.len(), 8);
            assert!(task.after.is_none());
            let unit = cells[task.rows[0]].unit_key();
            assert!(task.rows.iter().all(|&r| cells[r].unit_key() == unit));
        }
        for task in graph.level(Stage::Judge) {
            assert_eq!(task.rows.len(), 1);
        }
        for (i, task) in graph.tasks.iter().enumerate() {
            assert_eq!(graph.position(&task.stage), Some(i));
        }
    }

    #[test]
    fn variants_run_after_their_units_train_and_a_base_variant_after_nothing() {
        let cells = rows(&[0, 1]);
        let graph = WorkGraph::new(&cells);
        for task in graph.level(Stage::Sample) {
            let cell = &cells[task.rows[0]];
            if cell.trains() {
                assert_eq!(task.after, Some(StageRef::Train(cell.unit_key())));
            } else {
                assert_eq!(task.after, None, "a base unit's variant runs after nothing");
            }
        }
        for task in graph.level(Stage::Judge) {
            let cell = &cells[task.rows[0]];
            assert_eq!(task.after, Some(StageRef::Sample(cell.variant_key())));
        }
        // Dependants: each trained unit has its 4 variants; children() agrees.
        let children = graph.children();
        for task in graph.level(Stage::Train) {
            assert_eq!(graph.dependants(&task.stage).count(), 4);
            let i = graph.position(&task.stage).unwrap();
            assert_eq!(children[i].len(), 4);
        }
    }

    #[test]
    fn a_judges_chain_is_train_sample_judge_and_a_base_judges_is_sample_judge() {
        let cells = rows(&[0]);
        let graph = WorkGraph::new(&cells);
        for cell in &cells {
            let judge = StageRef::Judge(cell.judgment_key());
            let chain = graph.chain(&judge);
            assert_eq!(chain, cell.chain());
            if cell.trains() {
                assert_eq!(
                    chain,
                    vec![
                        StageRef::Train(cell.unit_key()),
                        StageRef::Sample(cell.variant_key()),
                        judge.clone(),
                    ]
                );
            } else {
                assert_eq!(chain.len(), 2);
            }
        }
    }

    #[test]
    fn records_are_the_identities_canonical_json_under_their_keys() {
        let cells = rows(&[0]);
        let [unit, variant, judgment] = records(&cells[1]);
        assert_eq!(unit.0, layout::unit_json(&cells[1].unit_key()));
        assert_eq!(unit.1, cells[1].unit.canonical_json());
        assert_eq!(variant.0, layout::variant_json(&cells[1].variant_key()));
        assert_eq!(judgment.0, layout::judgment_json(&cells[1].judgment_key()));
    }
}
