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
    /// Clip the global gradient L2 norm to this before the update (0 = no clipping), as
    /// PyTorch's `clip_grad_norm_` (factor `max / (norm + 1e-6)` when the norm exceeds it).
    pub max_grad_norm: f64,
    /// Activation checkpointing: keep only each layer's input during the forward pass and
    /// recompute the layer's activations during the backward pass (one more forward per step,
    /// activation memory of one layer instead of all of them).
    pub activation_checkpointing: bool,
}

/// Metrics of one optimizer step.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepMetrics {
    /// 1-based optimizer step.
    pub step: usize,
    /// Mean cross-entropy per target token over the step's micro-batches.
    pub loss: f64,
    pub lr: f64,
    /// L2 norm of all trainable gradients (before clipping and the update).
    pub grad_norm: f64,
    /// Whether the gradients were clipped to `max_grad_norm` at this step.
    pub clipped: bool,
    pub target_tokens: usize,
    pub tokens: usize,
    /// (adapter short name, |A|, |B|) after the update.
    pub adapter_norms: Vec<(String, f64, f64)>,
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrainSummary {
    /// Steps done in total (including those before a resume).
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

/// What the step callback sees after each optimizer update.
pub struct StepView<'a> {
    pub metrics: &'a StepMetrics,
    /// The adapters (LoRA training; `None` for full fine-tuning).
    pub lora: Option<&'a LoraSet>,
    /// The optimizer after the update (parameters and moments, for a checkpoint).
    pub opt: &'a AdamW,
    pub total_steps: usize,
    /// Examples of the seeded data order consumed so far (the data cursor).
    pub examples_consumed: usize,
    /// A stop was requested: this is the last step of this run; checkpoint now to resume later.
    pub stopping: bool,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainEnd {
    /// Every step was done.
    Finished,
    /// Stopped after `step` steps on request (see [`train`]'s `stop`).
    Stopped { step: usize },
}

/// Train `lora` (already attached to `model`) on `data`. `on_step` sees every step's metrics, the
/// adapters and the optimizer after the update (the worker writes metrics and checkpoints there).
///
/// `resume` continues from a checkpoint ([`crate::checkpoint::restore`] has put its parameters into
/// the adapters): steps `resume.step + 1..` run with the same learning rates, data and moments as
/// an uninterrupted run, so the end result is bit for bit the same. `stop` is polled after each
/// step; once it is set the callback is told (`stopping`) and the run returns
/// [`TrainEnd::Stopped`].
#[allow(clippy::too_many_arguments)]
pub fn train(
    model: &Decoder,
    lora: &LoraSet,
    data: &[Example],
    cfg: &TrainConfig,
    pad_id: u32,
    resume: Option<crate::checkpoint::ResumeState>,
    stop: Option<&std::sync::atomic::AtomicBool>,
    on_step: impl FnMut(&StepView) -> Result<(), String>,
) -> Result<(TrainSummary, TrainEnd), TrainError> {
    train_params(
        model,
        Params::Lora(lora),
        data,
        cfg,
        pad_id,
        resume,
        stop,
        on_step,
    )
}

/// What is trained.
#[derive(Clone, Copy)]
pub enum Params<'a> {
    /// LoRA adapters attached to the model (A then B of each adapter).
    Lora(&'a LoraSet),
    /// Every weight of the model ([`Decoder::make_trainable`]), by HF name.
    Full(&'a [(String, candle_core::Var)]),
}

impl Params<'_> {
    pub fn vars(&self) -> Vec<candle_core::Var> {
        match self {
            Params::Lora(l) => l.vars(),
            Params::Full(v) => v.iter().map(|(_, v)| v.clone()).collect(),
        }
    }
}

/// The order in which training consumes `n` examples: every epoch a fresh permutation seeded by
/// `data_seed + epoch`; step `i` takes the `batch_size * grad_accum` entries from `i * that`.
pub fn step_order(n: usize, cfg: &TrainConfig) -> Vec<usize> {
    let mut order: Vec<usize> = Vec::with_capacity(n * cfg.epochs);
    for epoch in 0..cfg.epochs {
        let mut perm: Vec<usize> = (0..n).collect();
        perm.shuffle(&mut ChaCha8Rng::seed_from_u64(
            cfg.data_seed.wrapping_add(epoch as u64),
        ));
        order.extend(perm);
    }
    order
}

/// [`train`] for either kind of [`Params`].
#[allow(clippy::too_many_arguments)]
pub fn train_params(
    model: &Decoder,
    params: Params,
    data: &[Example],
    cfg: &TrainConfig,
    pad_id: u32,
    resume: Option<crate::checkpoint::ResumeState>,
    stop: Option<&std::sync::atomic::AtomicBool>,
    mut on_step: impl FnMut(&StepView) -> Result<(), String>,
) -> Result<(TrainSummary, TrainEnd), TrainError> {
    let lora = match params {
        Params::Lora(l) => Some(l),
        Params::Full(_) => None,
    };
    if data.is_empty() {
        return Err(TrainError::Config("no training examples".into()));
    }
    if cfg.batch_size == 0 || cfg.grad_accum == 0 || cfg.epochs == 0 {
        return Err(TrainError::Config(
            "batch_size, grad_accum and epochs must be at least 1".into(),
        ));
    }
    let total = total_steps(data.len(), cfg);
    let vars = params.vars();
    let mut opt = AdamW::new(vars.clone(), cfg.adam)?;
    let start = match resume {
        None => 0,
        Some(r) => {
            if r.step > total
                || r.params.len() != vars.len()
                || r.m.len() != vars.len()
                || r.v.len() != vars.len()
            {
                return Err(TrainError::Config(format!(
                    "cannot resume at step {} of {total} with {} moments for {} parameters",
                    r.step,
                    r.m.len(),
                    vars.len()
                )));
            }
            for (i, p) in r.params.iter().enumerate() {
                opt.set_param_f32(i, p)?;
            }
            opt.m = r.m;
            opt.v = r.v;
            opt.t = r.adam_t;
            r.step
        }
    };
    let order = step_order(data.len(), cfg);
    let per_step = cfg.batch_size * cfg.grad_accum;
    let started = std::time::Instant::now();
    let mut summary = TrainSummary {
        steps: start,
        first_loss: f64::NAN,
        last_loss: f64::NAN,
        tokens: 0,
        seconds: 0.0,
    };
    let stop_requested = || stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst));
    if start < total && stop_requested() {
        return Ok((summary, TrainEnd::Stopped { step: start }));
    }
    for step in start..total {
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
            let (loss, micro_grads) = micro_batch_grads(
                model,
                &batch,
                pad_id,
                &vars,
                step_targets as f64,
                cfg.activation_checkpointing,
            )?;
            loss_sum += loss;
            for (slot, g) in grads.iter_mut().zip(micro_grads) {
                if let Some(g) = g {
                    *slot = Some(match slot.take() {
                        Some(acc) => (acc + g)?,
                        None => g,
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
            .map(|g| g.to_dtype(DType::F32)?.sqr()?.sum_all()?.to_scalar::<f32>())
            .sum::<candle_core::Result<f32>>()?;
        let grad_norm = (grad_norm as f64).sqrt();
        let clipped = cfg.max_grad_norm > 0.0 && grad_norm > cfg.max_grad_norm;
        let grads = if clipped {
            let factor = cfg.max_grad_norm / (grad_norm + 1e-6);
            grads
                .iter()
                .map(|g| g * factor)
                .collect::<candle_core::Result<Vec<_>>>()?
        } else {
            grads
        };
        opt.step(&grads, lr)?;
        let loss = loss_sum / step_targets.max(1) as f64;
        let adapter_norms = lora
            .map_or(&[][..], |l| &l.adapters[..])
            .iter()
            .map(|a| Ok((a.short_name(), l2(a.a.as_tensor())?, l2(a.b.as_tensor())?)))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let metrics = StepMetrics {
            step: step + 1,
            loss,
            lr,
            grad_norm,
            clipped,
            target_tokens: step_targets,
            tokens,
            adapter_norms,
            seconds: t0.elapsed().as_secs_f64(),
        };
        if step == start {
            summary.first_loss = loss;
        }
        summary.last_loss = loss;
        summary.steps = step + 1;
        summary.tokens += tokens;
        let stopping = step + 1 < total && stop_requested();
        on_step(&StepView {
            metrics: &metrics,
            lora,
            opt: &opt,
            total_steps: total,
            examples_consumed: ((step + 1) * per_step).min(order.len()),
            stopping,
        })
        .map_err(TrainError::Callback)?;
        if stopping {
            summary.seconds = started.elapsed().as_secs_f64();
            return Ok((summary, TrainEnd::Stopped { step: step + 1 }));
        }
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok((summary, TrainEnd::Finished))
}

fn l2(t: &Tensor) -> candle_core::Result<f64> {
    Ok(t.sqr()?.sum_all()?.to_scalar::<f32>()?.sqrt() as f64)
}

/// One micro-batch: its summed cross-entropy, and the gradients of that sum divided by `denom`
/// for each of `vars` (`None` where a var gets none). With `checkpointing` the layers' activations
/// are not kept: each layer's input is, and the backward pass goes layer by layer from the top,
/// recomputing the layer and back-propagating `sum(layer_output * grad_of_output)`, whose
/// gradients are the layer's vector-Jacobian products (the same as one whole-graph backward, up to
/// the order in which a tied embedding's two gradients are added).
pub fn micro_batch_grads(
    model: &Decoder,
    batch: &[&Example],
    pad_id: u32,
    vars: &[candle_core::Var],
    denom: f64,
    checkpointing: bool,
) -> Result<(f64, Vec<Option<Tensor>>), TrainError> {
    let mut grads: Vec<Option<Tensor>> = vec![None; vars.len()];
    let mut collect = |store: &candle_core::backprop::GradStore| -> candle_core::Result<()> {
        for (slot, var) in grads.iter_mut().zip(vars) {
            if let Some(g) = store.get(var.as_tensor()) {
                let g = g.detach();
                *slot = Some(match slot.take() {
                    Some(acc) => (acc + g)?,
                    None => g,
                });
            }
        }
        Ok(())
    };
    let inputs = BatchInputs::new(model, batch, pad_id)?;
    if !checkpointing {
        let hidden = model.forward_hidden(&inputs.ids, None, OpsMode::Train)?;
        let loss = inputs.loss_sum(model, &hidden)?;
        let value = loss.to_scalar::<f32>()? as f64;
        collect(&(loss / denom)?.backward()?)?;
        return Ok((value, grads));
    }
    let pos = model.positions(inputs.ids.dim(1)?, 0)?;
    let embedded = model.embed_ids(&inputs.ids)?;
    // Forward: keep each layer's input, detached, so the layer's graph is freed at once.
    let mut layer_inputs = Vec::with_capacity(model.n_layers());
    let mut x = embedded.detach();
    for l in 0..model.n_layers() {
        let (y, _) = model.block_forward(l, &x, &pos, None, OpsMode::Train)?;
        layer_inputs.push(x);
        x = y.detach();
    }
    // Head: the last layer's output as a leaf, so its gradient can be read.
    let leaf = candle_core::Var::from_tensor(&x)?;
    let loss = inputs.loss_sum(model, &model.final_norm(leaf.as_tensor(), OpsMode::Train)?)?;
    let value = loss.to_scalar::<f32>()? as f64;
    let store = (loss / denom)?.backward()?;
    collect(&store)?;
    let mut upstream = grad_of(&store, &leaf)?;
    drop(store);
    for (l, input) in layer_inputs.iter().enumerate().rev() {
        let leaf = candle_core::Var::from_tensor(input)?;
        let (y, _) = model.block_forward(l, leaf.as_tensor(), &pos, None, OpsMode::Train)?;
        let store = (y * &upstream)?.sum_all()?.backward()?;
        collect(&store)?;
        upstream = grad_of(&store, &leaf)?;
    }
    collect(&(embedded * &upstream)?.sum_all()?.backward()?)?;
    Ok((value, grads))
}

fn grad_of(
    store: &candle_core::backprop::GradStore,
    leaf: &candle_core::Var,
) -> candle_core::Result<Tensor> {
    match store.get(leaf.as_tensor()) {
        Some(g) => Ok(g.detach()),
        // No path from the loss (no target token in the batch): a zero gradient.
        None => leaf.zeros_like(),
    }
}

/// A right-padded micro-batch: token ids (b, t) and, for every target token, its row in the
/// flattened (b * t) hidden states of the position before it and its id.
struct BatchInputs {
    ids: Tensor,
    rows: Tensor,
    targets: Tensor,
}

impl BatchInputs {
    fn new(model: &Decoder, batch: &[&Example], pad_id: u32) -> candle_core::Result<Self> {
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
        let n = rows.len();
        Ok(BatchInputs {
            ids: Tensor::from_vec(ids, (batch.len(), t), &device)?,
            rows: Tensor::from_vec(rows, n, &device)?,
            targets: Tensor::from_vec(targets, n, &device)?,
        })
    }

    /// Summed cross-entropy of the targets given final-normed hidden states (b, t, d). Only
    /// target rows go through the (large) vocabulary projection; the log-softmax is taken in f32
    /// whatever the model's dtype.
    fn loss_sum(&self, model: &Decoder, hidden: &Tensor) -> Result<Tensor, TrainError> {
        let d = hidden.dim(D::Minus1)?;
        let flat = hidden.reshape((hidden.elem_count() / d, d))?;
        let selected = flat.index_select(&self.rows, 0)?;
        let logits = model.logits(&selected)?.to_dtype(DType::F32)?;
        let logp = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        let picked = logp.gather(&self.targets.unsqueeze(1)?, 1)?;
        Ok(picked.sum_all()?.neg()?)
    }
}

/// Summed cross-entropy over the target tokens of a right-padded micro-batch.
pub fn batch_loss_sum(
    model: &Decoder,
    batch: &[&Example],
    pad_id: u32,
) -> Result<Tensor, TrainError> {
    let inputs = BatchInputs::new(model, batch, pad_id)?;
    let hidden = model.forward_hidden(&inputs.ids, None, OpsMode::Train)?;
    inputs.loss_sum(model, &hidden)
}
