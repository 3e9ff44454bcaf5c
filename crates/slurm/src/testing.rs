//! Synthetic sweep rows for tests and the render/submit benchmark (no sweep file, no store).

use emorg_spec::{
    Axes, Cell, JudgeBackend, JudgeSpec, Judgment, ModelRef, Protocol, ProtocolKind, SampleVariant,
    SamplerSpec, Scales, TrainingUnit, Weights,
};

/// The rows of `units` training units (base ones when `base`: no train stage), each sampled at
/// `variants` checkpoints (steps 0, 8, ..., then `final`), each judged by `judges` judges; the
/// protocol axis is `protocol`.
pub fn rows(units: usize, variants: usize, judges: usize, base: bool, protocol: &str) -> Vec<Cell> {
    let mut cells = Vec::with_capacity(units * variants * judges);
    for u in 0..units {
        let unit = TrainingUnit {
            model: ModelRef {
                name: "m".into(),
                gguf_sha256: "0".repeat(64),
            },
            protocol: Protocol {
                kind: if base {
                    ProtocolKind::Base
                } else {
                    ProtocolKind::Lora
                },
                preset: Some(protocol.into()),
                lora: None,
                train: None,
            },
            dataset: None,
            seed: u as u64,
            replicate: 0,
            keep_steps: Vec::new(),
            worker_version: "test".into(),
        };
        let unit_key = unit.key();
        for v in 0..variants {
            let weights = if v + 1 == variants {
                Weights::Final
            } else {
                Weights::Step(v * 8)
            };
            let variant = SampleVariant {
                unit: unit_key.clone(),
                weights,
                scales: Scales::identity(),
                intervention: None,
                sampler: SamplerSpec {
                    samples_per_question: 1,
                    max_new_tokens: 8,
                    temperature: 1.0,
                    top_p: 1.0,
                    batch_size: 1,
                },
                questions_sha256: "1".repeat(64),
                question_ids: vec![],
                replicate: 0,
            };
            let variant_key = variant.key();
            for j in 0..judges {
                let judgment = Judgment {
                    variant: variant_key.clone(),
                    judge: JudgeSpec {
                        backend: JudgeBackend::Local(ModelRef {
                            name: format!("judge{j}"),
                            gguf_sha256: "2".repeat(64),
                        }),
                        method: "exact-number".into(),
                        prune_below: 0.0,
                        metrics: vec!["aligned".into()],
                    },
                    replicate: 0,
                };
                cells.push(Cell {
                    axes: Axes {
                        model: "m".into(),
                        protocol: protocol.into(),
                        dataset: "-".into(),
                        seed: u as u64,
                        checkpoint: weights,
                        scale: "1".into(),
                        judge: format!("judge{j}"),
                        replicate: 0,
                    },
                    unit: unit.clone(),
                    variant: variant.clone(),
                    judgment,
                });
            }
        }
    }
    cells
}
