//! Supervised fine-tuning of LoRA adapters on chat data.
//!
//! - [`data`]: chat examples rendered with the model's template, loss masks on assistant spans,
//!   seeded holdout split and data order.
//! - [`optim`]: decoupled AdamW with moments we own (so a trainer state can be saved and resumed;
//!   candle-nn's AdamW keeps them private) and the warmup/decay schedules.
//! - [`trainer`]: the loop: micro-batches, gradient accumulation, metrics per optimizer step,
//!   resume from a checkpoint and stop on request.
//! - [`checkpoint`]: trainer-state checkpoints (parameters, AdamW moments, step, data cursor) with
//!   a manifest of sha256s written last, and the keep-last/keep-every retention rule.

pub mod checkpoint;
pub mod data;
pub mod optim;
pub mod trainer;

pub use data::{Example, PrepStats, prepare_examples, split_holdout};
pub use optim::{AdamW, AdamWConfig, Schedule};
pub use trainer::{
    Params, StepMetrics, StepView, TrainConfig, TrainEnd, TrainError, TrainSummary, train,
    train_params,
};
