//! `sample`: a variant's answers to its free-form questions, from its unit's model with the
//! weights (final or a kept step) and adapter scales the variant names.

use crate::context::{StageContext, asked_questions};
use anyhow::{Context as _, Result, bail};
use emorg_lm::generate::{SampleParams, sample_batch};
use emorg_lm::{LoraSet, Message, ModelFiles, WeightMode};
use emorg_spec::{ProtocolKind, Weights};
use emorg_store::tables::{self, ResponseRow, TableRow};
use emorg_store::{Manifest, layout};
use std::collections::BTreeMap;

/// The train stage's final LoRA adapter, as the sample stage reads it.
const ADAPTER: &str = "adapter/adapter_model.safetensors";
/// The adapter file under `steps/<step:08>/`.
const STEP_ADAPTER_FILE: &str = "adapter_model.safetensors";

/// The steps at which a train DONE.json lists `file` (`steps/<step:08>/<file>`).
fn listed_steps(train: &Manifest, file: &str) -> Vec<usize> {
    let mut steps: Vec<usize> = train
        .outputs
        .iter()
        .filter_map(|o| {
            let rest = o.name.strip_prefix("steps/")?;
            let (step, name) = rest.split_once('/')?;
            (name == file).then(|| step.parse().ok())?
        })
        .collect();
    steps.sort_unstable();
    steps
}

/// The name of the train output a variant samples with (full weights or a LoRA adapter, final or
/// kept at a step).
fn weights_output(ctx: &StageContext, train: &Manifest, full: bool) -> Result<String> {
    let variant = ctx.variant()?;
    let (file, what, none) = if full {
        (
            crate::train_stage::FULL_STEP_FILE,
            "full weights",
            "none (the unit's keep_steps is empty)",
        )
    } else {
        (
            STEP_ADAPTER_FILE,
            "adapter",
            "none (train.checkpoint_every is 0)",
        )
    };
    let Weights::Step(n) = variant.weights else {
        return Ok(if full {
            crate::train_stage::FULL_MODEL
        } else {
            ADAPTER
        }
        .to_string());
    };
    let name = layout::step_adapter_name(n, file);
    if train.output(&name).is_none() {
        let steps = listed_steps(train, file);
        let has = if steps.is_empty() {
            none.to_string()
        } else {
            steps
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        bail!(
            "{} asks for the {what} at step {n} of training unit {}, which kept none at that \
             step: its train DONE.json ({}) lists the steps {has}",
            ctx.stage,
            ctx.unit_key(),
            layout::done(&train.owner)
        );
    }
    Ok(name)
}

pub fn run(ctx: &StageContext) -> Result<()> {
    let unit = &ctx.unit;
    let variant = ctx.variant()?;
    let full = unit.protocol.kind == ProtocolKind::Full;
    let lora = unit.trains() && unit.protocol.kind == ProtocolKind::Lora;
    if !lora && !variant.scales.is_identity() {
        bail!(
            "{} scales LoRA adapters, but training unit {} has none (protocol kind {:?})",
            ctx.stage,
            ctx.unit_key().short(),
            unit.protocol.kind
        );
    }
    if !unit.trains() && variant.weights != Weights::Final {
        bail!(
            "{} asks for {} weights of training unit {}, a base model that does not train",
            ctx.stage,
            variant.weights,
            ctx.unit_key().short()
        );
    }
    let mut inputs = BTreeMap::new();
    inputs.insert("model".to_string(), unit.model.gguf_sha256.clone());
    inputs.insert("questions".to_string(), variant.questions_sha256.clone());
    // What train wrote, read first (before any model loads, so a mismatch fails at once) and
    // only when its bytes hash to what train's DONE.json records; the hash goes into this
    // stage's inputs (under its store key), which makes this stage stale when train is redone
    // with other results. "weights" and "adapter" repeat it under short names.
    let trained = match ctx.train_stage() {
        Some(train_stage) => {
            let train = ctx.require_done(&train_stage)?;
            let name = weights_output(ctx, &train, full)?;
            let bytes = ctx.read_upstream(&train, &name, &mut inputs)?;
            let sha = inputs[&emorg_store::upstream_input_key(&train_stage, &name)].clone();
            inputs.insert(if full { "weights" } else { "adapter" }.to_string(), sha);
            Some(bytes)
        }
        None => None,
    };
    let model_path = ctx.model_path(&unit.model)?;
    let files = ModelFiles::open(&model_path)?;
    let device = crate::context::device()?;
    // A full fine-tune's weights replace the model's, dense f32 as trained; otherwise the fast
    // quantized path.
    let mode = if full {
        WeightMode::Dense
    } else {
        WeightMode::Quantized
    };
    let mut model = files.decoder(mode, &device)?;
    if full {
        let bytes = trained.as_ref().context("full weights read above")?;
        let tensors = emorg_lm::candle_core::safetensors::load_buffer(bytes, &device)?;
        model.load_hf_weights(&tensors.into_iter().collect())?;
    }
    let ModelFiles {
        tokenizer,
        template,
        ..
    } = files;
    let _adapter = if lora {
        let bytes = trained.as_ref().context("adapter read above")?;
        let spec = unit.protocol.lora.as_ref().context("lora settings")?;
        let cfg = crate::context::lora_config(spec)?;
        let set = LoraSet::from_safetensors(cfg, bytes, &device)?;
        let scales = &variant.scales;
        let names: Vec<String> = set.adapters.iter().map(|a| a.short_name()).collect();
        if let Some(unknown) = scales.adapter_scales.keys().find(|k| !names.contains(k)) {
            bail!(
                "the variant's adapter_scales names `{unknown}`, which is not an adapter of training unit {} (its adapters: {})",
                ctx.unit_key().short(),
                names.join(", ")
            );
        }
        if !scales.is_identity() {
            tracing::info!(
                "adapter factors: {} by default, {:?}",
                scales.adapter_scale,
                scales.adapter_scales
            );
        }
        model.attach_lora_scaled(&set, |ad| {
            scales
                .adapter_scales
                .get(&ad.short_name())
                .copied()
                .unwrap_or(scales.adapter_scale)
        });
        Some(set)
    } else {
        None
    };
    tracing::info!(
        "{}: {} weights of training unit {}",
        ctx.stage,
        variant.weights,
        ctx.unit_key().short()
    );

    let questions = asked_questions(ctx)?;
    let sampler = &variant.sampler;
    let params = SampleParams {
        temperature: sampler.temperature,
        top_p: sampler.top_p,
        max_new_tokens: sampler.max_new_tokens,
    };
    let mut rows = Vec::new();
    let mut by_id: BTreeMap<&str, Vec<&crate::context::AskedQuestion>> = BTreeMap::new();
    for q in &questions {
        by_id.entry(q.id.as_str()).or_default().push(q);
    }
    let started = std::time::Instant::now();
    let mut generated_tokens = 0usize;
    for (id, paraphrases) in &by_id {
        // Sample i asks paraphrase i mod P, so every paraphrase is used.
        for (p, q) in paraphrases.iter().enumerate() {
            let samples: Vec<u32> = (0..sampler.samples_per_question as u32)
                .filter(|i| *i as usize % paraphrases.len() == p)
                .collect();
            let mut msgs = Vec::new();
            if let Some(s) = &q.system {
                msgs.push(Message::new("system", s));
            }
            msgs.push(Message::new("user", &q.text));
            let prompt = tokenizer.encode(&template.render(&msgs, true)?)?;
            for chunk in samples.chunks(sampler.batch_size.max(1)) {
                let seeds: Vec<u64> = chunk
                    .iter()
                    .map(|i| variant.derive_seed(&format!("{id}/{i}")))
                    .collect();
                let t0 = std::time::Instant::now();
                let outs = sample_batch(&model, &tokenizer, &prompt, &seeds, params)?;
                let n: usize = outs.iter().map(|o| o.tokens.len()).sum();
                generated_tokens += n;
                tracing::info!(
                    "{id}: {} samples, {n} tokens in {:.1}s",
                    outs.len(),
                    t0.elapsed().as_secs_f64()
                );
                for ((i, seed), o) in chunk.iter().zip(&seeds).zip(outs) {
                    rows.push(ResponseRow {
                        question_id: id.to_string(),
                        paraphrase: q.paraphrase_index as u32,
                        sample: *i,
                        seed: *seed,
                        question: q.text.clone(),
                        response: o.text,
                        n_tokens: o.tokens.len() as u32,
                        finished: o.finished,
                    });
                }
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    ctx.put_output(
        tables::RESPONSES,
        emorg_store::table::to_parquet(&ResponseRow::to_batch(&rows)?)?,
    )?;
    // Every sample's seed is in responses.parquet (derive_seed(variant key, "sample",
    // "<question id>/<i>")).
    ctx.commit(
        inputs,
        BTreeMap::new(),
        serde_json::json!({
            "responses": rows.len(),
            "generated_tokens": generated_tokens,
            "seconds": seconds,
            "tokens_per_second": generated_tokens as f64 / seconds,
            "unfinished": rows.iter().filter(|r| !r.finished).count(),
        }),
    )
}
