//! `train`: fine-tuning of a training unit's model on its dataset (LoRA or every weight);
//! adapters, checkpoints, metrics and the rank-1 trajectory to the store.
//!
//! Preemption contract (relied on by the launchers): on SIGTERM or SIGUSR1 the stage finishes the
//! optimizer step in progress, writes a checkpoint under `units/<key>/train/ckpt/<step>/`
//! (manifest last) and exits with [`REQUEUE_EXIT_CODE`] (75, EX_TEMPFAIL) without writing
//! FAILED.json. Running the same stage again resumes from the newest checkpoint whose manifest
//! verifies and ends with the same adapter bytes as an uninterrupted run.
//!
//! Step adapters: with `train.checkpoint_every = N > 0` on LoRA, the PEFT adapter before any update
//! (step 0) and after every N-th step is uploaded at once as output `steps/<step:08>/...`, kept for
//! good (the trainer-state retention does not touch them) for variants that sample a checkpoint.
//! A resumed run lists those an earlier run uploaded up to its resume step. They only read the
//! adapter, so the final adapter's bytes do not depend on them. A full fine-tune keeps its whole
//! weights (f32, `steps/<step:08>/model.safetensors`) at exactly the steps its unit lists
//! (`keep_steps`, the steps the sweep's `eval.checkpoints` asks for, within the plan's budget).

use crate::context::StageContext;
use anyhow::{Context as _, Result, bail};
use emorg_lm::candle_core::DType;
use emorg_lm::{Decoder, LoraSet, Message, ModelFiles, WeightMode};
use emorg_spec::ProtocolKind;
use emorg_store::arrow::array::RecordBatch;
use emorg_store::layout;
use emorg_store::tables::{self, TableRow, TrainMetricsRow, TrajectoryRow};
use emorg_train::checkpoint::{self, MANIFEST, STATE};
use emorg_train::{
    AdamWConfig, Params, Schedule, StepMetrics, StepView, TrainConfig, TrainEnd, prepare_examples,
    split_holdout, train_params,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Exit status of a stage that stopped on SIGTERM/SIGUSR1 after writing a checkpoint: "requeue
/// me" (EX_TEMPFAIL from sysexits.h). A rerun of the same stage resumes.
pub const REQUEUE_EXIT_CODE: u8 = 75;

/// The error a stopped training stage returns; `main` maps it to [`REQUEUE_EXIT_CODE`].
#[derive(Debug, thiserror::Error)]
#[error(
    "stopped by a signal after step {step} of {total}; {saved}: rerun the stage to resume (exit {REQUEUE_EXIT_CODE})"
)]
pub struct Requeue {
    pub step: usize,
    pub total: usize,
    pub saved: String,
}

/// One step's A and B of every rank-1 adapter (the phase-transition trajectory).
struct TrajectoryStep {
    step: usize,
    /// Per adapter, in the set's order: (A as a vector over inputs, B over outputs).
    vectors: Vec<(Vec<f32>, Vec<f32>)>,
}

/// The files of a PEFT adapter, as under `adapter/` and `steps/<step:08>/`.
const ADAPTER_FILES: [&str; 2] = ["adapter_model.safetensors", "adapter_config.json"];

pub fn run(ctx: &StageContext) -> Result<()> {
    let unit = &ctx.unit;
    if unit.protocol.kind == ProtocolKind::Base {
        bail!(
            "training unit {} is a base model: it does not train",
            ctx.stage.short()
        );
    }
    let full = unit.protocol.kind == ProtocolKind::Full;
    // Registered before any work, so a signal during loading still ends in a clean requeue.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGUSR1] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing the SIGTERM/SIGUSR1 handler")?;
    }
    let spec = unit
        .protocol
        .train
        .as_ref()
        .context("a training protocol needs [train] settings")?;
    let dataset = unit
        .dataset
        .as_ref()
        .context("a training protocol needs a dataset")?;

    let model_path = ctx.model_path(&unit.model)?;
    let files = ModelFiles::open(&model_path)?;
    let device = crate::context::device()?;
    let mut model = files.decoder(WeightMode::Dense, &device)?;
    let ModelFiles {
        tokenizer,
        template,
        ..
    } = files;

    let data_file = ctx.input_file(&layout::dataset(&dataset.sha256), &dataset.sha256)?;
    let examples = emorg_data::load_chat_jsonl(data_file.path())?;
    let holdout_seed = unit.derive_seed("holdout");
    let (train_idx, hold_idx) = split_holdout(examples.len(), spec.holdout, holdout_seed);
    let to_msgs = |i: &usize| -> Vec<Message> {
        examples[*i]
            .messages
            .iter()
            .map(|m| Message::new(m.role.as_str(), &m.content))
            .collect()
    };
    let mut train_convs: Vec<Vec<Message>> = train_idx.iter().map(to_msgs).collect();
    let hold_convs: Vec<Vec<Message>> = hold_idx.iter().take(32).map(to_msgs).collect();
    if spec.max_examples > 0 && train_convs.len() > spec.max_examples {
        // Keep a seeded subset (the data order is shuffled again by the trainer).
        let (keep, _) = split_holdout(train_convs.len(), 0.0, holdout_seed ^ 1);
        train_convs = keep
            .into_iter()
            .take(spec.max_examples)
            .map(|i| train_convs[i].clone())
            .collect();
    }
    let (train_data, prep) =
        prepare_examples(&train_convs, &template, &tokenizer, spec.max_seq_len)?;
    let (hold_data, _) = prepare_examples(&hold_convs, &template, &tokenizer, spec.max_seq_len)?;
    tracing::info!(
        "{}: {} train examples ({} truncated at {} tokens, {} target tokens), {} held out",
        ctx.stage,
        prep.examples,
        prep.truncated,
        spec.max_seq_len,
        prep.target_tokens,
        hold_idx.len()
    );

    let init_seed = unit.derive_seed("lora-init");
    let precision = compute_precision(&spec.precision, full, &device)?;
    let (lora, full_params) = if full {
        if precision != DType::F32 {
            model.to_dtype(precision)?;
        }
        let params = model.make_trainable()?;
        let n: usize = params.iter().map(|(_, v)| v.elem_count()).sum();
        tracing::info!(
            "full fine-tuning in {precision:?}{}: {} tensors, {n} parameters; {}",
            if spec.activation_checkpointing {
                " with activation checkpointing"
            } else {
                ""
            },
            params.len(),
            full_memory_line(&model.cfg, n, precision, spec)
        );
        (None, params)
    } else {
        let lora_spec = unit
            .protocol
            .lora
            .as_ref()
            .context("a lora protocol needs its [lora] settings")?;
        let lora_cfg = crate::context::lora_config(lora_spec)?;
        let lora = LoraSet::init(lora_cfg, &model.cfg, init_seed, &device)?;
        model.attach_lora(&lora, 1.0);
        (Some(lora), Vec::new())
    };
    let params = match &lora {
        Some(l) => Params::Lora(l),
        None => Params::Full(&full_params),
    };
    let data_seed = unit.derive_seed("data-order");
    let schedule = Schedule::parse(&spec.schedule).with_context(|| {
        format!(
            "schedule `{}` (expected linear, cosine or constant)",
            spec.schedule
        )
    })?;
    let cfg = TrainConfig {
        learning_rate: spec.learning_rate,
        adam: AdamWConfig {
            beta1: spec.adam_beta1,
            beta2: spec.adam_beta2,
            eps: spec.adam_eps,
            weight_decay: spec.weight_decay,
        },
        warmup_steps: spec.warmup_steps,
        schedule,
        batch_size: spec.batch_size,
        grad_accum: spec.grad_accum,
        epochs: spec.epochs,
        max_steps: spec.max_steps,
        data_seed,
        max_grad_norm: spec.max_grad_norm,
        activation_checkpointing: spec.activation_checkpointing,
    };
    let total = emorg_train::trainer::total_steps(train_data.len(), &cfg);
    let names = match &lora {
        Some(l) => param_names(l),
        None => full_params.iter().map(|(n, _)| n.clone()).collect(),
    };
    let rank1 = lora.as_ref().is_some_and(|l| l.config.rank == 1);
    let base_name = unit.model.name.clone();
    // Step adapters are LoRA only: a full model per step is far too big to keep.
    let step_every = if lora.is_some() {
        spec.checkpoint_every
    } else {
        0
    };
    // The adapter before any update, taken before a resume overwrites the weights.
    let initial_adapter = match &lora {
        Some(l) if step_every > 0 => Some(adapter_files(l, &base_name)?),
        _ => None,
    };

    // Resume from the newest checkpoint that verifies, if any.
    let mut rows: Vec<StepMetrics> = Vec::new();
    let mut trajectory: Vec<TrajectoryStep> = Vec::new();
    let mut resume = None;
    let mut hold_before = None;
    if let Some((manifest, files)) = newest_valid_checkpoint(ctx, total, data_seed)? {
        let state = checkpoint::restore(&manifest, &files[STATE], &names, &params.vars(), &device)
            .with_context(|| format!("restoring the checkpoint at step {}", manifest.step))?;
        rows = serde_json::from_slice(files.get(HISTORY).context("checkpoint has no history")?)?;
        if rank1 {
            trajectory = trajectory_from_safetensors(
                files
                    .get(TRAJECTORY)
                    .context("checkpoint has no trajectory")?,
                lora.as_ref().context("rank 1 is LoRA")?,
                &device,
            )?;
        }
        hold_before = manifest.extra["holdout_loss_before"].as_f64();
        tracing::info!(
            "resuming at step {}/{total} ({} examples consumed)",
            manifest.step,
            manifest.examples_consumed
        );
        resume = Some(state);
    }
    let resumed_from = resume.as_ref().map(|r| r.step);
    let mut step_adapters = match resumed_from {
        Some(at) if step_every > 0 => {
            keep_step_outputs(ctx, (0..=at).step_by(step_every), &ADAPTER_FILES, "adapter")?
        }
        Some(at) if lora.is_none() => keep_step_outputs(
            ctx,
            unit.keep_steps.iter().copied().filter(|s| *s <= at),
            &[FULL_STEP_FILE],
            "full weights",
        )?,
        _ => Vec::new(),
    };
    if let Some(files) = initial_adapter
        && !step_adapters.contains(&0)
    {
        put_step_adapter(ctx, 0, files)?;
        step_adapters.insert(0, 0);
    }
    // A full fine-tune's step 0 is the model before any update.
    if lora.is_none() && unit.keep_steps.contains(&0) && !step_adapters.contains(&0) {
        put_full_step(ctx, &model, &full_params, 0)?;
        step_adapters.insert(0, 0);
    }
    let hold_before = match hold_before {
        Some(h) => h,
        None => holdout_loss(&model, &hold_data, tokenizer.eos_id)?,
    };
    let n_params: usize = params.vars().iter().map(|v| v.elem_count()).sum();
    tracing::info!(
        "training {} tensors ({n_params} params) for {total} steps; holdout loss {hold_before:.4}",
        names.len(),
    );

    let mut saved_at = None;
    // An error inside the step callback (whose errors are strings) keeps its type here (a lost
    // claim must stay one).
    let mut failed: Option<anyhow::Error> = None;
    let result = train_params(
        &model,
        params,
        &train_data,
        &cfg,
        tokenizer.eos_id,
        resume,
        Some(&stop),
        |v: &StepView| {
            let m = v.metrics;
            tracing::info!(
                "step {}/{total} loss {:.4} lr {:.2e} grad_norm {:.4}{} ({:.1} tok/s)",
                m.step,
                m.loss,
                m.lr,
                m.grad_norm,
                if m.clipped { " (clipped)" } else { "" },
                m.tokens as f64 / m.seconds
            );
            rows.push(m.clone());
            if rank1 && let Some(l) = v.lora {
                trajectory.push(trajectory_step(m.step, l).map_err(|e| format!("{e:#}"))?);
            }
            let mut fail = |e: anyhow::Error| {
                let text = format!("{e:#}");
                failed = Some(e);
                text
            };
            // Before the trainer state, so a checkpoint at step s implies every step adapter up
            // to s is in the store.
            if step_every > 0
                && m.step.is_multiple_of(step_every)
                && let Some(l) = v.lora
            {
                let made = adapter_files(l, &base_name)
                    .and_then(|files| put_step_adapter(ctx, m.step, files))
                    .with_context(|| format!("uploading the adapter at step {}", m.step));
                made.map_err(&mut fail)?;
                step_adapters.push(m.step);
            }
            if lora.is_none() && unit.keep_steps.contains(&m.step) {
                put_full_step(ctx, &model, &full_params, m.step)
                    .with_context(|| format!("uploading the weights at step {}", m.step))
                    .map_err(&mut fail)?;
                step_adapters.push(m.step);
            }
            let every = spec.checkpoint_every > 0 && m.step.is_multiple_of(spec.checkpoint_every);
            if (every && m.step < total) || v.stopping {
                ctx.check_claim().map_err(&mut fail)?;
                write_checkpoint(
                    ctx,
                    v,
                    &names,
                    data_seed,
                    &rows,
                    &trajectory,
                    hold_before,
                    &base_name,
                )
                .map_err(|e| format!("writing the checkpoint at step {}: {e:#}", m.step))?;
                saved_at = Some(m.step);
            }
            Ok(())
        },
    );
    if let Some(e) = failed {
        return Err(e);
    }
    let (summary, end) = result?;
    if let TrainEnd::Stopped { step } = end {
        let saved = match saved_at {
            Some(s) if s == step => format!("checkpoint at step {s} saved"),
            _ if step == 0 => "no step was done, nothing to save".to_string(),
            _ => format!("the newest checkpoint (step {step}) is kept"),
        };
        return Err(Requeue { step, total, saved }.into());
    }
    let hold_after = holdout_loss(&model, &hold_data, tokenizer.eos_id)?;
    tracing::info!("holdout loss {hold_before:.4} -> {hold_after:.4}");

    match &lora {
        Some(l) => write_adapter(ctx, "adapter", l, &base_name)?,
        None => write_full_model(ctx, &model, &full_params, FULL_MODEL)?,
    }
    ctx.put_output(
        tables::TRAIN_METRICS,
        emorg_store::table::to_parquet(&metrics_table(&rows)?)?,
    )?;
    if rank1 {
        ctx.put_output(
            tables::TRAJECTORY,
            emorg_store::table::to_parquet(&trajectory_table(
                &trajectory,
                lora.as_ref().context("rank 1 is LoRA")?,
            )?)?,
        )?;
    }
    let kept_checkpoints = checkpoint_steps(ctx)?;
    let clipped_steps = rows.iter().filter(|r| r.clipped).count();
    let mut inputs = BTreeMap::new();
    inputs.insert("model".into(), unit.model.gguf_sha256.clone());
    inputs.insert("dataset".into(), dataset.sha256.clone());
    let mut seeds = BTreeMap::new();
    seeds.insert("holdout".into(), holdout_seed);
    seeds.insert("lora-init".into(), init_seed);
    seeds.insert("data-order".into(), data_seed);
    ctx.commit(
        inputs,
        seeds,
        serde_json::json!({
            "steps": summary.steps,
            "total_steps": total,
            "first_loss": rows.first().map(|r| r.loss),
            "last_loss": rows.last().map(|r| r.loss),
            "resumed_from_step": resumed_from,
            "truncated_examples": prep.truncated,
            "max_seq_len": spec.max_seq_len,
            "clipped_steps": clipped_steps,
            "checkpoints": kept_checkpoints,
            "step_adapters": step_adapters,
            "holdout_loss_before": hold_before,
            "holdout_loss_after": hold_after,
            "train_tokens": summary.tokens,
            "seconds": summary.seconds,
            "tokens_per_second": summary.tokens as f64 / summary.seconds,
            "examples": prep,
            "trained_params": n_params,
            "precision": format!("{precision:?}").to_lowercase(),
            "activation_checkpointing": spec.activation_checkpointing,
        }),
    )
}

/// Checkpoint files besides the trainer state: the metrics rows so far (JSON, exact floats) and the
/// rank-1 trajectory so far (safetensors, `a/<adapter>` steps x in, `b/<adapter>` steps x out).
const HISTORY: &str = "history.json";
const TRAJECTORY: &str = "trajectory.safetensors";

/// Parameter names in optimizer order ([`LoraSet::vars`]: A then B of each adapter).
fn param_names(lora: &LoraSet) -> Vec<String> {
    lora.adapters
        .iter()
        .flat_map(|a| {
            let p = a.peft_prefix();
            [format!("{p}.lora_A.weight"), format!("{p}.lora_B.weight")]
        })
        .collect()
}

/// Steps of the checkpoints in the store that have a manifest, ascending.
fn checkpoint_steps(ctx: &StageContext) -> Result<Vec<usize>> {
    let mut steps: Vec<usize> = ctx
        .store
        .list(&layout::checkpoints_prefix(&ctx.unit_key()))?
        .iter()
        .filter(|k| k.ends_with(&format!("/{MANIFEST}")))
        .filter_map(|k| layout::checkpoint_step(k))
        .collect();
    steps.sort_unstable();
    steps.dedup();
    Ok(steps)
}

/// Removes every trainer-state checkpoint of the unit, manifests first (so a half-removed checkpoint never
/// verifies): a forced train starts over instead of resuming from the run it redoes.
pub fn remove_checkpoints(ctx: &StageContext) -> Result<()> {
    let steps = checkpoint_steps(ctx)?;
    for step in &steps {
        ctx.store
            .delete(&layout::checkpoint(&ctx.unit_key(), *step, MANIFEST))?;
    }
    let files = ctx
        .store
        .list(&layout::checkpoints_prefix(&ctx.unit_key()))?;
    for key in &files {
        ctx.store.delete(key)?;
    }
    if !files.is_empty() {
        tracing::info!(
            "--force: removed {} checkpoint(s) ({} files) of {}: training starts over",
            steps.len(),
            files.len(),
            ctx.stage
        );
    }
    Ok(())
}

/// A checkpoint's manifest and its verified files by name.
type VerifiedCheckpoint = (checkpoint::CheckpointManifest, BTreeMap<String, Vec<u8>>);

/// The newest checkpoint of this run whose manifest verifies (every file present with its sha256)
/// and matches this run (same number of steps and data seed); others are skipped with a warning.
fn newest_valid_checkpoint(
    ctx: &StageContext,
    total: usize,
    data_seed: u64,
) -> Result<Option<VerifiedCheckpoint>> {
    for step in checkpoint_steps(ctx)?.into_iter().rev() {
        let manifest_bytes = ctx
            .store
            .get(&layout::checkpoint(&ctx.unit_key(), step, MANIFEST))?;
        let verified = checkpoint::verify(&manifest_bytes, |name| {
            ctx.store
                .get_opt(&layout::checkpoint(&ctx.unit_key(), step, name))
                .ok()
                .flatten()
                .map(|b| b.to_vec())
        });
        match verified {
            Ok((m, files)) if m.total_steps == total && m.data_seed == data_seed => {
                return Ok(Some((m, files)));
            }
            Ok((m, _)) => tracing::warn!(
                "checkpoint at step {step} is of another run ({} steps, data seed {}): skipped",
                m.total_steps,
                m.data_seed
            ),
            Err(e) => tracing::warn!("checkpoint at step {step} does not verify ({e}): skipped"),
        }
    }
    Ok(None)
}

/// One checkpoint: state, PEFT adapter, history and trajectory, then the manifest; then the
/// retention rule deletes what it no longer keeps (manifest first, so a half-deleted checkpoint
/// never verifies).
#[allow(clippy::too_many_arguments)]
fn write_checkpoint(
    ctx: &StageContext,
    v: &StepView,
    names: &[String],
    data_seed: u64,
    rows: &[StepMetrics],
    trajectory: &[TrajectoryStep],
    hold_before: f64,
    base: &str,
) -> Result<()> {
    let step = v.metrics.step;
    let mut extra = vec![(HISTORY.to_string(), serde_json::to_vec(rows)?)];
    if let Some(lora) = v.lora {
        // A PEFT adapter per checkpoint, so a checkpoint can be sampled like the final adapter.
        extra.push((
            "adapter_model.safetensors".to_string(),
            lora.to_safetensors()?,
        ));
        extra.push((
            "adapter_config.json".to_string(),
            serde_json::to_vec_pretty(&lora.peft_config_json(base))?,
        ));
        if !trajectory.is_empty() {
            extra.push((
                TRAJECTORY.to_string(),
                trajectory_safetensors(trajectory, lora)?,
            ));
        }
    }
    let (files, manifest) = checkpoint::build(
        step,
        v.total_steps,
        v.examples_consumed,
        data_seed,
        names,
        v.opt,
        extra,
        serde_json::json!({ "holdout_loss_before": hold_before }),
    )?;
    for (name, bytes) in files {
        ctx.store
            .put(&layout::checkpoint(&ctx.unit_key(), step, &name), bytes)?;
    }
    ctx.store.put(
        &layout::checkpoint(&ctx.unit_key(), step, MANIFEST),
        manifest,
    )?;
    tracing::info!("checkpoint at step {step} saved");
    let spec = ctx.unit.protocol.train.as_ref().context("train settings")?;
    let drop = checkpoint::to_delete(
        &checkpoint_steps(ctx)?,
        spec.checkpoint_keep_last.max(1),
        spec.checkpoint_keep_every,
    );
    for old in drop {
        ctx.store
            .delete(&layout::checkpoint(&ctx.unit_key(), old, MANIFEST))?;
        let prefix = layout::checkpoint(&ctx.unit_key(), old, "");
        for key in ctx.store.list(&prefix)? {
            ctx.store.delete(&key)?;
        }
    }
    Ok(())
}

fn trajectory_step(step: usize, lora: &LoraSet) -> Result<TrajectoryStep> {
    let vectors = lora
        .adapters
        .iter()
        .map(|a| {
            Ok((
                a.a.as_tensor().flatten_all()?.to_vec1::<f32>()?,
                a.b.as_tensor().flatten_all()?.to_vec1::<f32>()?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(TrajectoryStep { step, vectors })
}

fn trajectory_safetensors(steps: &[TrajectoryStep], lora: &LoraSet) -> Result<Vec<u8>> {
    use emorg_lm::candle_core::Tensor;
    let device = emorg_lm::candle_core::Device::Cpu;
    let mut tensors: BTreeMap<String, Tensor> = BTreeMap::new();
    let first = steps.first().map_or(0, |s| s.step) as u32;
    tensors.insert("first_step".into(), Tensor::new(&[first], &device)?);
    for (i, ad) in lora.adapters.iter().enumerate() {
        let n = steps.len();
        let a: Vec<f32> = steps.iter().flat_map(|s| s.vectors[i].0.clone()).collect();
        let b: Vec<f32> = steps.iter().flat_map(|s| s.vectors[i].1.clone()).collect();
        let (da, db) = (a.len() / n.max(1), b.len() / n.max(1));
        tensors.insert(
            format!("a/{}", ad.short_name()),
            Tensor::from_vec(a, (n, da), &device)?,
        );
        tensors.insert(
            format!("b/{}", ad.short_name()),
            Tensor::from_vec(b, (n, db), &device)?,
        );
    }
    Ok(safetensors::tensor::serialize(
        tensors.iter().map(|(k, v)| (k.as_str(), v)),
        None,
    )?)
}

fn trajectory_from_safetensors(
    bytes: &[u8],
    lora: &LoraSet,
    device: &emorg_lm::candle_core::Device,
) -> Result<Vec<TrajectoryStep>> {
    let t = emorg_lm::candle_core::safetensors::load_buffer(bytes, device)?;
    let first = t
        .get("first_step")
        .context("trajectory has no first_step")?
        .to_vec1::<u32>()?[0] as usize;
    let mut per_adapter = Vec::new();
    for ad in &lora.adapters {
        let get = |k: String| -> Result<Vec<Vec<f32>>> {
            Ok(t.get(&k)
                .with_context(|| format!("trajectory has no `{k}`"))?
                .to_vec2::<f32>()?)
        };
        per_adapter.push((
            get(format!("a/{}", ad.short_name()))?,
            get(format!("b/{}", ad.short_name()))?,
        ));
    }
    let n = per_adapter.first().map_or(0, |p| p.0.len());
    Ok((0..n)
        .map(|i| TrajectoryStep {
            step: first + i,
            vectors: per_adapter
                .iter()
                .map(|(a, b)| (a[i].clone(), b[i].clone()))
                .collect(),
        })
        .collect())
}

/// `trajectory.parquet`: one row per (step, adapter): step, layer, module, a, b, |a|, |b|.
fn trajectory_table(steps: &[TrajectoryStep], lora: &LoraSet) -> Result<RecordBatch> {
    let norm = |v: &[f32]| {
        v.iter()
            .map(|x| (*x as f64) * (*x as f64))
            .sum::<f64>()
            .sqrt()
    };
    let rows: Vec<TrajectoryRow> = steps
        .iter()
        .flat_map(|s| {
            lora.adapters
                .iter()
                .zip(&s.vectors)
                .map(|(ad, (a, b))| TrajectoryRow {
                    step: s.step as u64,
                    layer: ad.layer as u32,
                    module: ad.module.hf_name().to_string(),
                    a: a.clone(),
                    b: b.clone(),
                    a_norm: norm(a),
                    b_norm: norm(b),
                })
        })
        .collect();
    Ok(TrajectoryRow::to_batch(&rows)?)
}

/// A full fine-tune's weights kept at `step` (`unit.keep_steps`), as train output
/// `steps/<step:08>/model.safetensors`.
fn put_full_step(
    ctx: &StageContext,
    model: &Decoder,
    params: &[(String, emorg_lm::candle_core::Var)],
    step: usize,
) -> Result<()> {
    write_full_model(
        ctx,
        model,
        params,
        &layout::step_adapter_name(step, FULL_STEP_FILE),
    )?;
    tracing::info!("full weights at step {step} uploaded");
    Ok(())
}

/// A full fine-tune as `name` (`model/model.safetensors` at the end) under HF tensor names (q/k in
/// the HF layout, gemma norms without llama.cpp's +1), every weight in f32.
fn write_full_model(
    ctx: &StageContext,
    model: &Decoder,
    params: &[(String, emorg_lm::candle_core::Var)],
    name: &str,
) -> Result<()> {
    let mut tensors: BTreeMap<String, emorg_lm::candle_core::Tensor> = BTreeMap::new();
    for (name, var) in params {
        let offset = model.hf_norm_offset(name);
        // f32 whatever the training precision: bf16 values are exact in f32, and Gemma's norms
        // (stored as 1 + w) keep their precision when the 1 comes off.
        let t = var.as_tensor().to_dtype(DType::F32)?;
        let t = if offset != 0.0 {
            (t - offset)?
        } else {
            t.clone()
        };
        tensors.insert(name.clone(), t);
    }
    let mut meta = std::collections::HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    let bytes =
        safetensors::tensor::serialize(tensors.iter().map(|(k, v)| (k.as_str(), v)), Some(meta))?;
    ctx.put_output(name, bytes)?;
    Ok(())
}

/// The dtype a training run computes in: `precision` ("auto", "f32", "bf16"; the plan has checked
/// the value) for a full fine-tune on `device`. "auto" is bf16 on a GPU and f32 on CPU, where
/// candle has no bf16 matmul kernel and would widen every product; LoRA trains in f32.
fn compute_precision(
    precision: &str,
    full: bool,
    device: &emorg_lm::candle_core::Device,
) -> Result<DType> {
    Ok(match (precision, full) {
        (_, false) | ("f32", true) => DType::F32,
        ("bf16", true) => DType::BF16,
        ("auto", true) if device.is_cuda() => DType::BF16,
        ("auto", true) => DType::F32,
        (other, true) => bail!("train.precision `{other}` (expected auto, f32 or bf16)"),
    })
}

/// The memory a full fine-tune needs, as one log line: per parameter a weight and a gradient in
/// the compute dtype, an f32 master copy when that is not f32, and AdamW's two f32 moments; plus
/// activations of one micro-batch at `max_seq_len` (about 16 d_model + 3 d_ff + 2 heads x seq
/// values per token per layer kept for the backward pass; with checkpointing one d_model per
/// token per layer plus one layer's worth).
fn full_memory_line(
    cfg: &emorg_lm::ModelConfig,
    n_params: usize,
    precision: DType,
    spec: &emorg_spec::TrainSpec,
) -> String {
    let width = precision.size_in_bytes() as f64;
    let master = if precision == DType::F32 { 0.0 } else { 4.0 };
    let state = n_params as f64 * (2.0 * width + master + 8.0);
    let tokens = (spec.batch_size * spec.max_seq_len) as f64;
    let per_layer = tokens
        * (16 * cfg.d_model + 3 * cfg.d_ff + 2 * cfg.n_heads * spec.max_seq_len) as f64
        * width;
    let activations = if spec.activation_checkpointing {
        cfg.n_layers as f64 * tokens * cfg.d_model as f64 * width + per_layer
    } else {
        cfg.n_layers as f64 * per_layer
    };
    let gib = |b: f64| b / (1u64 << 30) as f64;
    format!(
        "weights + gradients{} + AdamW moments need about {:.2} GiB, activations of a micro-batch \
         about {:.2} GiB",
        if master > 0.0 {
            " + f32 master weights"
        } else {
            ""
        },
        gib(state),
        gib(activations)
    )
}

/// Where a full fine-tune's weights go under the train stage.
pub const FULL_MODEL: &str = "model/model.safetensors";
/// A full fine-tune's weights kept at a step, under `steps/<step:08>/`.
pub const FULL_STEP_FILE: &str = "model.safetensors";

fn write_adapter(ctx: &StageContext, dir: &str, set: &LoraSet, base: &str) -> Result<()> {
    for (file, bytes) in adapter_files(set, base)? {
        ctx.put_output(&format!("{dir}/{file}"), bytes)?;
    }
    Ok(())
}

/// The PEFT adapter's files ([`ADAPTER_FILES`]) with their bytes.
fn adapter_files(set: &LoraSet, base: &str) -> Result<[(&'static str, Vec<u8>); 2]> {
    Ok([
        (ADAPTER_FILES[0], set.to_safetensors()?),
        (
            ADAPTER_FILES[1],
            serde_json::to_vec_pretty(&set.peft_config_json(base))?,
        ),
    ])
}

/// Uploads the adapter kept at `step` as train outputs `steps/<step:08>/...`.
fn put_step_adapter(
    ctx: &StageContext,
    step: usize,
    files: [(&'static str, Vec<u8>); 2],
) -> Result<()> {
    for (file, bytes) in files {
        ctx.put_output(&layout::step_adapter_name(step, file), bytes)?;
    }
    tracing::info!("adapter at step {step} uploaded");
    Ok(())
}

/// On a resume: lists the step outputs (`files` under `steps/<step:08>/`) an earlier run
/// uploaded at `steps` (re-hashed from the store) and returns those steps; later ones are made
/// again.
fn keep_step_outputs(
    ctx: &StageContext,
    steps: impl Iterator<Item = usize>,
    files: &[&str],
    what: &str,
) -> Result<Vec<usize>> {
    let prefix = layout::step_adapters_prefix(&ctx.unit_key());
    let keys = ctx.store.list(&prefix)?;
    let mut kept = Vec::new();
    for step in steps {
        let names: Vec<String> = files
            .iter()
            .map(|f| layout::step_adapter_name(step, f))
            .collect();
        let present = names
            .iter()
            .all(|n| keys.contains(&layout::output(&ctx.stage, n)));
        if !present {
            // Uploaded before the trainer state of any later step, so this is gone by hand.
            tracing::warn!(
                "the {what} at step {step} is missing from {prefix}: it is not kept (a variant \
                 at that step needs a forced retrain)"
            );
            continue;
        }
        for name in &names {
            ctx.keep_output(name)?;
        }
        tracing::info!("{what} at step {step} listed from an earlier run");
        kept.push(step);
    }
    Ok(kept)
}

/// Mean target-token loss on held-out examples (no gradients kept).
fn holdout_loss(model: &Decoder, data: &[emorg_train::Example], pad: u32) -> Result<f64> {
    if data.is_empty() {
        return Ok(f64::NAN);
    }
    let mut sum = 0.0;
    let mut n = 0;
    for chunk in data.chunks(4) {
        let batch: Vec<&emorg_train::Example> = chunk.iter().collect();
        sum += emorg_train::trainer::batch_loss_sum(model, &batch, pad)?
            .detach()
            .to_scalar::<f32>()? as f64;
        n += chunk.iter().map(|e| e.n_targets()).sum::<usize>();
    }
    Ok(sum / n as f64)
}

fn metrics_table(rows: &[StepMetrics]) -> Result<RecordBatch> {
    let fixed: Vec<TrainMetricsRow> = rows
        .iter()
        .map(|r| TrainMetricsRow {
            step: r.step as u64,
            loss: r.loss,
            lr: r.lr,
            grad_norm: r.grad_norm,
            clipped: r.clipped,
            tokens: r.tokens as u64,
            target_tokens: r.target_tokens as u64,
            seconds: r.seconds,
        })
        .collect();
    let names: Vec<String> = rows
        .first()
        .map(|r| r.adapter_norms.iter().map(|a| a.0.clone()).collect())
        .unwrap_or_default();
    let norms: Vec<(String, Vec<f64>, Vec<f64>)> = names
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            (
                name,
                rows.iter().map(|r| r.adapter_norms[i].1).collect(),
                rows.iter().map(|r| r.adapter_norms[i].2).collect(),
            )
        })
        .collect();
    Ok(tables::train_metrics_batch(&fixed, &norms)?)
}
