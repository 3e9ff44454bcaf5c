//! Batched sampling with a KV cache: one prompt, `n` continuations, each with its own seed.

use crate::error::Result;
use crate::model::{Decoder, KvCache, OpsMode};
use crate::tokenizer::GgufTokenizer;
use candle_core::{D, Tensor};
use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleParams {
    /// 0 = greedy.
    pub temperature: f64,
    pub top_p: f64,
    pub max_new_tokens: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub tokens: Vec<u32>,
    pub text: String,
    /// Ended with a stop token (not cut at `max_new_tokens`).
    pub finished: bool,
}

/// Generate one continuation of `prompt` per seed, all in one batch.
pub fn sample_batch(
    model: &Decoder,
    tokenizer: &GgufTokenizer,
    prompt: &[u32],
    seeds: &[u64],
    params: SampleParams,
) -> Result<Vec<Generated>> {
    let n = seeds.len();
    let device = model.device().clone();
    let mut cache = KvCache::new(model.cfg.n_layers);
    let ids = Tensor::new(prompt, &device)?.unsqueeze(0)?;
    let hidden = model.forward_hidden(&ids, Some(&mut cache), OpsMode::Infer)?;
    let last = hidden.narrow(1, prompt.len() - 1, 1)?;
    let first_logits: Vec<f32> = model.logits(&last)?.flatten_all()?.to_vec1()?;
    let mut cache = cache.repeat_batch(n)?;
    let mut rngs: Vec<ChaCha8Rng> = seeds
        .iter()
        .map(|s| ChaCha8Rng::seed_from_u64(*s))
        .collect();
    let mut outs: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut done = vec![false; n];
    let mut logits: Vec<Vec<f32>> = vec![first_logits; n];
    for _ in 0..params.max_new_tokens {
        let mut next = Vec::with_capacity(n);
        for i in 0..n {
            if done[i] {
                next.push(tokenizer.eos_id);
                continue;
            }
            let tok = pick(&logits[i], params, &mut rngs[i]);
            if tokenizer.stop_ids.contains(&tok) {
                done[i] = true;
            } else {
                outs[i].push(tok);
            }
            next.push(tok);
        }
        if done.iter().all(|d| *d) {
            break;
        }
        let ids = Tensor::new(next.as_slice(), &device)?.unsqueeze(1)?;
        let hidden = model.forward_hidden(&ids, Some(&mut cache), OpsMode::Infer)?;
        let l = model.logits(&hidden.squeeze(1)?)?;
        logits = l.to_vec2()?;
    }
    outs.into_iter()
        .zip(done)
        .map(|(tokens, finished)| {
            Ok(Generated {
                text: tokenizer.decode(&tokens)?,
                tokens,
                finished,
            })
        })
        .collect()
}

/// Sample one token id from logits with temperature and nucleus (top-p) truncation.
pub fn pick(logits: &[f32], params: SampleParams, rng: &mut ChaCha8Rng) -> u32 {
    if params.temperature <= 0.0 {
        return argmax(logits);
    }
    let t = params.temperature as f32;
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut probs: Vec<(u32, f64)> = logits
        .iter()
        .enumerate()
        .map(|(i, l)| (i as u32, (((l - max) / t) as f64).exp()))
        .collect();
    let total: f64 = probs.iter().map(|p| p.1).sum();
    if params.top_p < 1.0 {
        probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut cum = 0.0;
        let mut keep = probs.len();
        for (i, (_, p)) in probs.iter().enumerate() {
            cum += p / total;
            if cum >= params.top_p {
                keep = i + 1;
                break;
            }
        }
        probs.truncate(keep);
    }
    let kept: f64 = probs.iter().map(|p| p.1).sum();
    let mut u = rng.random::<f64>() * kept;
    for (id, p) in &probs {
        if u < *p {
            return *id;
        }
        u -= p;
    }
    probs.last().map(|p| p.0).unwrap_or(0)
}

pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, l) in logits.iter().enumerate() {
        if *l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Log-softmax of the last dimension, as a Vec (for judges).
pub fn log_softmax_vec(logits: &Tensor) -> Result<Vec<f32>> {
    Ok(candle_nn::ops::log_softmax(&logits.flatten_all()?, D::Minus1)?.to_vec1()?)
}
