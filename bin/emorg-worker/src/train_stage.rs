//! `train`: LoRA fine-tuning of the cell's model on its dataset; adapters, checkpoints and metrics
//! to the store.

use crate::context::StageContext;
use anyhow::{Context as _, Result, bail};
use emorg_lm::{Decoder, LoraSet, Message, ModelFiles, WeightMode};
use emorg_spec::ProtocolKind;
use emorg_store::arrow::array::{ArrayRef, Float64Array, RecordBatch, UInt64Array};
use emorg_store::arrow::datatypes::{DataType, Field, Schema};
use emorg_store::layout;
use emorg_train::{
    AdamWConfig, Schedule, StepMetrics, TrainConfig, prepare_examples, split_holdout, train,
};
use std::collections::BTreeMap;
use std::sync::Arc;

pub fn run(ctx: &StageContext) -> Result<()> {
    let cell = &ctx.cell;
    if cell.protocol.kind != ProtocolKind::Lora {
        bail!("protocol `{}` does not train", cell.protocol.name);
    }
    let lora_spec = cell
        .protocol
        .lora
        .as_ref()
        .context("a lora protocol needs its [lora] settings")?;
    let spec = cell
        .protocol
        .train
        .as_ref()
        .context("a training protocol needs [train] settings")?;
    let dataset = cell
        .dataset
        .as_ref()
        .context("a training protocol needs a dataset")?;

    let model_path = ctx.model_path(&cell.model)?;
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
    let holdout_seed = ctx.seed("holdout");
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
        "cell {}: {} train examples ({} truncated at {} tokens, {} target tokens), {} held out",
        ctx.key,
        prep.examples,
        prep.truncated,
        spec.max_seq_len,
        prep.target_tokens,
        hold_idx.len()
    );

    let lora_cfg = crate::context::lora_config(lora_spec)?;
    let init_seed = ctx.seed("lora-init");
    let lora = LoraSet::init(lora_cfg, &model.cfg, init_seed, &device)?;
    model.attach_lora(&lora, 1.0);
    let data_seed = ctx.seed("data-order");
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
    };
    let total = emorg_train::trainer::total_steps(train_data.len(), &cfg);
    let hold_before = holdout_loss(&model, &hold_data, tokenizer.eos_id)?;
    tracing::info!(
        "training {} adapters ({} params) for {total} steps; holdout loss {hold_before:.4}",
        lora.adapters.len(),
        lora.n_params()
    );

    let base_name = cell.model.name.clone();
    let mut rows: Vec<StepMetrics> = Vec::new();
    let summary = train(
        &model,
        &lora,
        &train_data,
        &cfg,
        tokenizer.eos_id,
        |m, set| {
            tracing::info!(
                "step {}/{total} loss {:.4} lr {:.2e} grad_norm {:.4} ({:.1} tok/s)",
                m.step,
                m.loss,
                m.lr,
                m.grad_norm,
                m.tokens as f64 / m.seconds
            );
            rows.push(m.clone());
            if spec.checkpoint_every > 0 && m.step % spec.checkpoint_every == 0 && m.step < total {
                write_adapter(ctx, &format!("ckpt/{:06}", m.step), set, &base_name)
                    .map_err(|e| format!("{e:#}"))?;
            }
            Ok(())
        },
    )?;
    let hold_after = holdout_loss(&model, &hold_data, tokenizer.eos_id)?;
    tracing::info!("holdout loss {hold_before:.4} -> {hold_after:.4}");

    write_adapter(ctx, "adapter", &lora, &base_name)?;
    ctx.put_output(
        "metrics.parquet",
        emorg_store::table::to_parquet(&metrics_table(&rows)?)?,
    )?;
    let mut inputs = BTreeMap::new();
    inputs.insert("model".into(), cell.model.gguf_sha256.clone());
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
            "first_loss": summary.first_loss,
            "last_loss": summary.last_loss,
            "holdout_loss_before": hold_before,
            "holdout_loss_after": hold_after,
            "train_tokens": summary.tokens,
            "seconds": summary.seconds,
            "tokens_per_second": summary.tokens as f64 / summary.seconds,
            "examples": prep,
            "lora_params": lora.n_params(),
        }),
    )
}

fn write_adapter(ctx: &StageContext, dir: &str, set: &LoraSet, base: &str) -> Result<()> {
    ctx.put_output(
        &format!("{dir}/adapter_model.safetensors"),
        set.to_safetensors()?,
    )?;
    ctx.put_output(
        &format!("{dir}/adapter_config.json"),
        serde_json::to_vec_pretty(&set.peft_config_json(base))?,
    )?;
    Ok(())
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
    let mut fields = vec![
        Field::new("step", DataType::UInt64, false),
        Field::new("loss", DataType::Float64, false),
        Field::new("lr", DataType::Float64, false),
        Field::new("grad_norm", DataType::Float64, false),
        Field::new("tokens", DataType::UInt64, false),
        Field::new("target_tokens", DataType::UInt64, false),
        Field::new("seconds", DataType::Float64, false),
    ];
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|r| r.step as u64),
        )),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.loss))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.lr))),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| r.grad_norm),
        )),
        Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|r| r.tokens as u64),
        )),
        Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|r| r.target_tokens as u64),
        )),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| r.seconds),
        )),
    ];
    let names: Vec<String> = rows
        .first()
        .map(|r| r.adapter_norms.iter().map(|a| a.0.clone()).collect())
        .unwrap_or_default();
    for (i, name) in names.iter().enumerate() {
        fields.push(Field::new(
            format!("a_norm/{name}"),
            DataType::Float64,
            false,
        ));
        cols.push(Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| r.adapter_norms[i].1),
        )));
        fields.push(Field::new(
            format!("b_norm/{name}"),
            DataType::Float64,
            false,
        ));
        cols.push(Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| r.adapter_norms[i].2),
        )));
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}
