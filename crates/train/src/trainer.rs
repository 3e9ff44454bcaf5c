//! The SFT loop over LoRA adapters on a frozen base.

use crate::data::Example;
use crate::optim::{AdamW, AdamWConfig, Schedule};
use candle_core::{D, DType, Tensor};
use emorg_lm::{Decoder, LoraSet, OpsMode};
use rand::{SeedableRng, rngs::ChaCha8Rng, seq::SliceRandom};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("training config: {0}")]
    Config(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Lm(#[from] emorg_lm::LmError),
    #[error("{0}")]
    Callback(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    pub learning_rate: f64,
    pub adam: AdamWConfig,
    pub warmup_steps: usize,
    pub schedule: Schedule,
    pub batch_size: usize,
    pub grad_accum: usize,
    pub epochs: usize,
    /// 0 = no cap.
    pub max_steps: usize,
    /// Seed of the data order (derived from the cell key by the caller).
    pub data_seed: u64,
}

/// Metrics of one optimizer step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepMetrics {
    /// 1-based optimizer step.
    pub step: usize,
    /// Mean cross-entropy per target token over the step's micro-batches.
    pub loss: f64,
    pub lr: f64,
    /// L2 norm of all adapter gradients (before the update).
    pub grad_norm: f64,
    pub target_tokens: usize,
    pub tokens: usize,
    /// (adapter short name, |A|, |B|) after the update.
    pub adapter_norms: Vec<(String, f64, f64)>,
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrainSummary {
    pub steps: usize,
    pub first_loss: f64,
    pub last_loss: f64,
    pub tokens: usize,
    pub seconds: f64,
}

/// Number of optimizer steps for `n` examples.
pub fn total_steps(n: usize, cfg: &TrainConfig) -> usize {
    let per_epoch = n.div_ceil(cfg.batch_size * cfg.grad_accum);
    let total = per_epoch * cfg.epochs;
    if cfg.max_steps > 0 {
        total.min(cfg.max_steps)
    } else {
        total
    }
}

/// Train `lora` (already attached to `model`) on `data`. `on_step` sees every step's metrics and the
/// adapters after the update (the worker writes metrics and checkpoints there).
pub fn train(
    model: &Decoder,
    lora: &LoraSet,
    data: &[Example],
    cfg: &TrainConfig,
    pad_id: u32,
    mut on_step: impl FnMut(&StepMetrics, &LoraSet) -> Result<(), String>,
) -> Result<TrainSummary, TrainError> {
    if data.is_empty() {
        return Err(TrainError::Config("no training examples".into()));
    }
    if cfg.batch_size == 0 || cfg.grad_accum == 0 || cfg.epochs == 0 {
        return Err(TrainError::Config(
            "batch_size, grad_accum and epochs must be at least 1".into(),
        ));
    }
    let total = total_steps(data.len(), cfg);
    let vars = lora.vars();
    let mut opt = AdamW::new(vars.clone(), cfg.adam)?;
    // The data order: every epoch a fresh seeded permutation.
    let mut order: Vec<usize> = Vec::new();
    for epoch in 0..cfg.epochs {
        let mut perm: Vec<usize> = (0..data.len()).collect();
        perm.shuffle(&mut ChaCha8Rng::seed_from_u64(
            cfg.data_seed.wrapping_add(epoch as u64),
        ));
        order.extend(perm);
    }
    let per_step = cfg.batch_size * cfg.grad_accum;
    let started = std::time::Instant::now();
    let mut summary = TrainSummary {
        steps: 0,
        first_loss: f64::NAN,
        last_loss: f64::NAN,
        tokens: 0,
        seconds: 0.0,
    };
    for step in 0..total {
        let t0 = std::time::Instant::now();
        let lr = cfg.learning_rate * cfg.schedule.factor(step, cfg.warmup_steps, total);
        let idx =
            &order[(step * per_step).min(order.len())..((step + 1) * per_step).min(order.len())];
        let step_targets: usize = idx.iter().map(|i| data[*i].n_targets()).sum();
        let mut grads: Vec<Option<Tensor>> = vec![None; vars.len()];
        let mut loss_sum = 0.0;
        let mut tokens = 0;
        for micro in idx.chunks(cfg.batch_size) {
            let batch: Vec<&Example> = micro.iter().map(|i| &data[*i]).collect();
            tokens += batch.iter().map(|e| e.ids.len()).sum::<usize>();
            let loss = batch_loss_sum(model, &batch, pad_id)?;
            loss_sum += loss.to_scalar::<f32>()? as f64;
            let scaled = (loss / step_targets as f64)?;
            let store = scaled.backward()?;
            for (slot, var) in grads.iter_mut().zip(&vars) {
                if let Some(g) = store.get(var.as_tensor()) {
                    *slot = Some(match slot.take() {
                        Some(acc) => (acc + g)?,
                        None => g.clone(),
                    });
                }
            }
        }
        let grads: Vec<Tensor> = grads
            .into_iter()
            .zip(&vars)
            .map(|(g, v)| g.map_or_else(|| v.zeros_like(), Ok))
            .collect::<candle_core::Result<_>>()?;
        let grad_norm = grads
            .iter()
            .map(|g| g.sqr()?.sum_all()?.to_scalar::<f32>())
            .sum::<candle_core::Result<f32>>()?;
        opt.step(&grads, lr)?;
        let loss = loss_sum / step_targets.max(1) as f64;
        let adapter_norms = lora
            .adapters
            .iter()
            .map(|a| Ok((a.short_name(), l2(a.a.as_tensor())?, l2(a.b.as_tensor())?)))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let metrics = StepMetrics {
            step: step + 1,
            loss,
            lr,
            grad_norm: (grad_norm as f64).sqrt(),
            target_tokens: step_targets,
            tokens,
            adapter_norms,
            seconds: t0.elapsed().as_secs_f64(),
        };
        if step == 0 {
            summary.first_loss = loss;
        }
        summary.last_loss = loss;
        summary.steps = step + 1;
        summary.tokens += tokens;
        on_step(&metrics, lora).map_err(TrainError::Callback)?;
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

fn l2(t: &Tensor) -> candle_core::Result<f64> {
    Ok(t.sqr()?.sum_all()?.to_scalar::<f32>()?.sqrt() as f64)
}

/// Summed cross-entropy over the target tokens of a right-padded micro-batch. Only target rows go
/// through the (large) vocabulary projection.
pub fn batch_loss_sum(
    model: &Decoder,
    batch: &[&Example],
    pad_id: u32,
) -> Result<Tensor, TrainError> {
    let device = model.device().clone();
    let t = batch.iter().map(|e| e.ids.len()).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(batch.len() * t);
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    for (b, ex) in batch.iter().enumerate() {
        ids.extend_from_slice(&ex.ids);
        ids.extend(std::iter::repeat_n(pad_id, t - ex.ids.len()));
        for i in 1..ex.ids.len() {
            if ex.loss_mask[i] {
                rows.push((b * t + i - 1) as u32);
                targets.push(ex.ids[i]);
            }
        }
    }
    let ids = Tensor::from_vec(ids, (batch.len(), t), &device)?;
    let hidden = model.forward_hidden(&ids, None, OpsMode::Train)?;
    let d = hidden.dim(D::Minus1)?;
    let flat = hidden.reshape((batch.len() * t, d))?;
    let n = rows.len();
    let selected = flat.index_select(&Tensor::from_vec(rows, n, &device)?, 0)?;
    let logits = model.logits(&selected)?;
    let targets = Tensor::from_vec(targets, n, &device)?;
    let logp = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    let picked = logp
        .gather(&targets.unsqueeze(1)?, 1)?
        .to_dtype(DType::F32)?;
    Ok(picked.sum_all()?.neg()?)
}
