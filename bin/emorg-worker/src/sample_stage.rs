//! `sample`: answers to the cell's free-form questions from the (adapted) model.

use crate::context::{StageContext, asked_questions};
use anyhow::{Context as _, Result};
use emorg_lm::generate::{SampleParams, sample_batch};
use emorg_lm::{LoraSet, Message, ModelFiles, WeightMode};
use emorg_spec::Stage;
use emorg_store::arrow::array::{
    ArrayRef, BooleanArray, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use emorg_store::arrow::datatypes::{DataType, Field, Schema};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The train stage's LoRA adapter, as the sample stage reads it.
const ADAPTER: &str = "adapter/adapter_model.safetensors";

struct Row {
    question_id: String,
    paraphrase: u32,
    sample: u32,
    seed: u64,
    question: String,
    response: String,
    n_tokens: u32,
    finished: bool,
}

pub fn run(ctx: &StageContext) -> Result<()> {
    let cell = &ctx.cell;
    let full = cell.protocol.kind == emorg_spec::ProtocolKind::Full;
    let lora = cell.trains() && cell.protocol.kind == emorg_spec::ProtocolKind::Lora;
    let mut inputs = BTreeMap::new();
    inputs.insert("model".to_string(), cell.model.gguf_sha256.clone());
    inputs.insert("questions".to_string(), cell.eval.questions_sha256.clone());
    // What train wrote, read first (before any model loads, so a mismatch fails at once) and
    // only when its bytes hash to what train's DONE.json records; the hash goes into this
    // stage's inputs (`train/<name>`), which makes this stage stale when train is redone with
    // other results. "weights" and "adapter" repeat it under the names earlier manifests used.
    let trained = if full || lora {
        let (name, alias) = if full {
            (crate::train_stage::FULL_MODEL, "weights")
        } else {
            (ADAPTER, "adapter")
        };
        let bytes = ctx.read_upstream(Stage::Train, name, &mut inputs)?;
        let sha = inputs[&emorg_store::upstream_input_key(Stage::Train.dir(), name)].clone();
        inputs.insert(alias.to_string(), sha);
        Some(bytes)
    } else {
        None
    };
    let model_path = ctx.model_path(&cell.model)?;
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
        let spec = cell.protocol.lora.as_ref().context("lora settings")?;
        let cfg = crate::context::lora_config(spec)?;
        let set = LoraSet::from_safetensors(cfg, bytes, &device)?;
        let eval = &cell.eval;
        let names: Vec<String> = set.adapters.iter().map(|a| a.short_name()).collect();
        if let Some(unknown) = eval.adapter_scales.keys().find(|k| !names.contains(k)) {
            anyhow::bail!(
                "eval.adapter_scales names `{unknown}`, which is not an adapter of this cell (its adapters: {})",
                names.join(", ")
            );
        }
        if eval.adapter_scale != 1.0 || !eval.adapter_scales.is_empty() {
            tracing::info!(
                "adapter factors: {} by default, {:?}",
                eval.adapter_scale,
                eval.adapter_scales
            );
        }
        model.attach_lora_scaled(&set, |ad| {
            eval.adapter_scales
                .get(&ad.short_name())
                .copied()
                .unwrap_or(eval.adapter_scale)
        });
        Some(set)
    } else {
        None
    };

    let questions = asked_questions(ctx)?;
    let eval = &cell.eval;
    let params = SampleParams {
        temperature: eval.temperature,
        top_p: eval.top_p,
        max_new_tokens: eval.max_new_tokens,
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
            let samples: Vec<u32> = (0..eval.samples_per_question as u32)
                .filter(|i| *i as usize % paraphrases.len() == p)
                .collect();
            let mut msgs = Vec::new();
            if let Some(s) = &q.system {
                msgs.push(Message::new("system", s));
            }
            msgs.push(Message::new("user", &q.text));
            let prompt = tokenizer.encode(&template.render(&msgs, true)?)?;
            for chunk in samples.chunks(eval.batch_size.max(1)) {
                let seeds: Vec<u64> = chunk
                    .iter()
                    .map(|i| ctx.seed(&format!("{id}/{i}")))
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
                    rows.push(Row {
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
        "responses.parquet",
        emorg_store::table::to_parquet(&table(&rows)?)?,
    )?;
    // Every sample's seed is in responses.parquet (derive_seed(cell key, "sample", "<question id>/<i>")).
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

fn table(rows: &[Row]) -> Result<RecordBatch> {
    let schema = Schema::new(vec![
        Field::new("question_id", DataType::Utf8, false),
        Field::new("paraphrase", DataType::UInt32, false),
        Field::new("sample", DataType::UInt32, false),
        Field::new("seed", DataType::UInt64, false),
        Field::new("question", DataType::Utf8, false),
        Field::new("response", DataType::Utf8, false),
        Field::new("n_tokens", DataType::UInt32, false),
        Field::new("finished", DataType::Boolean, false),
    ]);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.question_id.as_str()),
        )),
        Arc::new(UInt32Array::from_iter_values(
            rows.iter().map(|r| r.paraphrase),
        )),
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.sample))),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.seed))),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.question.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.response.as_str()),
        )),
        Arc::new(UInt32Array::from_iter_values(
            rows.iter().map(|r| r.n_tokens),
        )),
        Arc::new(BooleanArray::from(
            rows.iter().map(|r| r.finished).collect::<Vec<_>>(),
        )),
    ];
    Ok(RecordBatch::try_new(Arc::new(schema), cols)?)
}
