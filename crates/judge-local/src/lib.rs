//! A local GGUF judge: the exact probability of each number string "0".."100".
//!
//! This crate holds the judge's candle code, apart from `emorg-judge` (scores, EM rules, the cache
//! and the OpenAI-compatible backend, no candle), so that the launcher, which depends on
//! `emorg-judge`, never links candle even when built together with the worker.
//!
//! Qwen, SmolLM2 and Gemma tokenizers split numbers into single digits, so the first token of the
//! reply carries only the first digit (the papers' top-20 first-token rule then scores every answer
//! between 4.6 and 6.7). Here the reply "85" has probability p("8") p("5" | "8") p(non-digit | "85"),
//! computed by branching the KV cache over digit prefixes: one batched forward per extra digit.
//!
//! Pruning bound: a digit prefix whose probability is below `prune_below` is not expanded; its mass
//! is recorded in [`NumberDistribution::pruned_mass`], so the unresolved mass of one judgment is at
//! most 1 + 10 + 1 = 12 prefixes x `prune_below` (and exactly reported).
//!
//! Every judgment of one question shares the chat template, the instructions and the question as a
//! prefix; its KV cache is computed once and reused across that question's answers.

mod cache;

pub use cache::LocalJudgeIdentity;

use candle_core::{Device, Tensor};
use emorg_judge::NumberDistribution;
use emorg_lm::{
    ChatTemplate, Decoder, GgufTokenizer, KvCache, Message, ModelFiles, OpsMode, WeightMode,
};
use std::path::Path;

/// How a distribution over numbers is read from the judge (defined in `emorg-judge`; re-exported
/// here for callers of the local judge).
pub use emorg_judge::JudgeMethod;

pub struct LocalJudge {
    model: Decoder,
    tokenizer: GgufTokenizer,
    template: ChatTemplate,
    /// Token id of each ASCII digit.
    digit_ids: [u32; 10],
    /// Whether a token's text starts with an ASCII digit (the reply continues the number).
    starts_with_digit: Vec<bool>,
    pub prune_below: f64,
    pub method: JudgeMethod,
    /// The last prefix computed (token ids and cache): the next question's prefix reuses the part
    /// it shares (with instructions first, that is the whole instruction block).
    last_prefix: std::cell::RefCell<Option<(Vec<u32>, KvCache)>>,
}

const ANSWER_SENTINEL: &str = "\u{1}EMORG_ANSWER\u{1}";

impl LocalJudge {
    pub fn load(
        path: &Path,
        method: JudgeMethod,
        prune_below: f64,
        device: &Device,
    ) -> emorg_lm::Result<Self> {
        let files = ModelFiles::open(path)?;
        let model = files.decoder(WeightMode::Quantized, device)?;
        let ModelFiles {
            tokenizer,
            template,
            ..
        } = files;
        let mut digit_ids = [0u32; 10];
        for (d, slot) in digit_ids.iter_mut().enumerate() {
            let ids = tokenizer.encode(&d.to_string())?;
            if ids.len() != 1 {
                return Err(emorg_lm::LmError::Tokenizer(format!(
                    "digit {d} is not a single token in the judge's vocabulary"
                )));
            }
            *slot = ids[0];
        }
        let starts_with_digit = tokenizer
            .pieces
            .iter()
            .map(|p| p.starts_with(|c: char| c.is_ascii_digit()))
            .collect();
        Ok(LocalJudge {
            model,
            tokenizer,
            template,
            digit_ids,
            starts_with_digit,
            prune_below,
            method,
            last_prefix: Default::default(),
        })
    }

    /// The judge prompt as the judge model sees it (its own chat template, generation prompt on).
    pub fn render(
        &self,
        prompt_template: &str,
        question: &str,
        answer: &str,
    ) -> emorg_lm::Result<String> {
        let user = emorg_data::render_judge_prompt(prompt_template, question, answer);
        self.template.render(&[Message::new("user", &user)], true)
    }

    /// Judge `answers` to one `question` with one judge prompt template (`{question}`, `{answer}`).
    pub fn judge_question(
        &self,
        prompt_template: &str,
        question: &str,
        answers: &[&str],
    ) -> emorg_lm::Result<Vec<NumberDistribution>> {
        let with_sentinel = self.render(prompt_template, question, ANSWER_SENTINEL)?;
        let prefix_text = match with_sentinel.find(ANSWER_SENTINEL) {
            Some(at) => &with_sentinel[..at],
            None => "",
        };
        let prefix_ids = self.tokenizer.encode(prefix_text)?;
        let prefix_cache = self.prefix_cache(&prefix_ids)?;
        answers
            .iter()
            .map(|answer| {
                let ids =
                    self.tokenizer
                        .encode(&self.render(prompt_template, question, answer)?)?;
                // Reuse the cached prefix up to where the token ids still agree.
                let common = prefix_ids
                    .iter()
                    .zip(&ids)
                    .take_while(|(a, b)| a == b)
                    .count()
                    .min(ids.len() - 1);
                let mut cache = prefix_cache.clone();
                cache.truncate(common)?;
                let logits = self.forward(&ids[common..], &mut cache)?;
                match self.method {
                    JudgeMethod::ExactNumber => self.exact_numbers(&logits, &cache),
                    JudgeMethod::Top20FirstToken => Ok(self.top20(&logits[0])),
                }
            })
            .collect()
    }

    /// The KV cache of `ids`, extending the part shared with the previous prefix.
    fn prefix_cache(&self, ids: &[u32]) -> emorg_lm::Result<KvCache> {
        let mut last = self.last_prefix.borrow_mut();
        let (mut cache, common) = match last.as_ref() {
            Some((prev, cache)) => {
                let common = prev.iter().zip(ids).take_while(|(a, b)| a == b).count();
                let mut c = cache.clone();
                c.truncate(common)?;
                (c, common)
            }
            None => (KvCache::new(self.model.cfg.n_layers), 0),
        };
        if common < ids.len() {
            self.forward(&ids[common..], &mut cache)?;
        }
        *last = Some((ids.to_vec(), cache.clone()));
        Ok(cache)
    }

    /// Forward `ids` after the cache; returns the last position's logits per batch row.
    fn forward(&self, ids: &[u32], cache: &mut KvCache) -> emorg_lm::Result<Vec<Vec<f32>>> {
        let t = Tensor::new(ids, self.model.device())?.unsqueeze(0)?;
        let h = self.model.forward_hidden(&t, Some(cache), OpsMode::Infer)?;
        let last = h.narrow(1, ids.len() - 1, 1)?.squeeze(1)?;
        Ok(self.model.logits(&last)?.to_vec2()?)
    }

    /// One more token per row: row `r` of `cache` continued with `tokens[r]`.
    fn step(&self, cache: &mut KvCache, tokens: &[u32]) -> emorg_lm::Result<Vec<Vec<f32>>> {
        let t = Tensor::new(tokens, self.model.device())?.unsqueeze(1)?;
        let h = self.model.forward_hidden(&t, Some(cache), OpsMode::Infer)?;
        Ok(self.model.logits(&h.squeeze(1)?)?.to_vec2()?)
    }

    fn probs(logits: &[f32]) -> Vec<f64> {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let exps: Vec<f64> = logits.iter().map(|l| (*l as f64 - max).exp()).collect();
        let z: f64 = exps.iter().sum();
        exps.into_iter().map(|e| e / z).collect()
    }

    fn stop_mass(&self, p: &[f64]) -> f64 {
        1.0 - p
            .iter()
            .zip(&self.starts_with_digit)
            .filter(|(_, d)| **d)
            .map(|(p, _)| p)
            .sum::<f64>()
    }

    fn exact_numbers(
        &self,
        first_logits: &[Vec<f32>],
        cache: &KvCache,
    ) -> emorg_lm::Result<NumberDistribution> {
        let mut dist = NumberDistribution::zeros();
        let p0 = Self::probs(&first_logits[0]);
        // Level 1: expand every first digit above the bound.
        let firsts: Vec<usize> = (0..10)
            .filter(|d| p0[self.digit_ids[*d] as usize] >= self.prune_below)
            .collect();
        dist.pruned_mass += (0..10)
            .filter(|d| !firsts.contains(d))
            .map(|d| p0[self.digit_ids[d] as usize])
            .sum::<f64>();
        if firsts.is_empty() {
            return Ok(dist);
        }
        let mut c1 = cache.repeat_batch(firsts.len())?;
        let tokens: Vec<u32> = firsts.iter().map(|d| self.digit_ids[*d]).collect();
        let l1 = self.step(&mut c1, &tokens)?;
        // Level 2: numbers "d" end here; "de" (d >= 1) continue.
        let mut seconds: Vec<(usize, usize, usize, f64)> = Vec::new(); // (row in c1, d, e, prob of "de")
        for (row, &d) in firsts.iter().enumerate() {
            let pd = p0[self.digit_ids[d] as usize];
            let p1 = Self::probs(&l1[row]);
            dist.probs[d] += pd * self.stop_mass(&p1);
            if d == 0 {
                continue; // "0" followed by a digit is not a number in 0..=100
            }
            for e in 0..10 {
                let pde = pd * p1[self.digit_ids[e] as usize];
                if pde >= self.prune_below {
                    seconds.push((row, d, e, pde));
                } else {
                    dist.pruned_mass += pde;
                }
            }
        }
        if seconds.is_empty() {
            return Ok(dist);
        }
        let rows: Vec<u32> = seconds.iter().map(|s| s.0 as u32).collect();
        let mut c2 = c1.select_rows(&rows)?;
        let tokens: Vec<u32> = seconds.iter().map(|s| self.digit_ids[s.2]).collect();
        let l2 = self.step(&mut c2, &tokens)?;
        // Level 3: two-digit numbers end here; only "100" may continue.
        for (i, &(_, d, e, pde)) in seconds.iter().enumerate() {
            let p2 = Self::probs(&l2[i]);
            dist.probs[d * 10 + e] += pde * self.stop_mass(&p2);
            if d == 1 && e == 0 {
                let p100 = pde * p2[self.digit_ids[0] as usize];
                if p100 >= self.prune_below {
                    let mut c3 = c2.select_rows(&[i as u32])?;
                    let l3 = self.step(&mut c3, &[self.digit_ids[0]])?;
                    dist.probs[100] += p100 * self.stop_mass(&Self::probs(&l3[0]));
                } else {
                    dist.pruned_mass += p100;
                }
            }
        }
        Ok(dist)
    }

    fn top20(&self, logits: &[f32]) -> NumberDistribution {
        let p = Self::probs(logits);
        let mut idx: Vec<usize> = (0..p.len()).collect();
        idx.sort_by(|a, b| p[*b].total_cmp(&p[*a]));
        NumberDistribution::from_top_logprobs(
            idx.iter()
                .take(20)
                .map(|i| (self.tokenizer.pieces[*i].as_str(), p[*i].ln())),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use emorg_lm::testing::{TinySpec, write_tiny_gguf};

    /// With no pruning, the branched distribution equals the brute-force product of conditional
    /// probabilities computed from full forwards without any cache reuse.
    #[test]
    fn branching_equals_brute_force_on_a_tiny_model() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        write_tiny_gguf(
            &path,
            TinySpec {
                qwen2: true,
                seed: 9,
                ..Default::default()
            },
        )
        .unwrap();
        let judge = LocalJudge::load(&path, JudgeMethod::ExactNumber, 0.0, &Device::Cpu).unwrap();
        let template = "Rate this.\n[Q]{question}[/Q]\n[A]{answer}[/A]\nNumber:";
        let answers = ["fine answer", "another one, longer than the first"];
        // Two questions in a row: the second reuses the instruction prefix cached by the first.
        for question in ["What now?", "Where to?"] {
            let dists = judge.judge_question(template, question, &answers).unwrap();
            for (answer, dist) in answers.iter().zip(&dists) {
                let prompt = judge
                    .tokenizer
                    .encode(&judge.render(template, question, answer).unwrap())
                    .unwrap();
                let mut total = 0.0;
                for n in [0usize, 7, 10, 42, 99, 100] {
                    let digits: Vec<u32> = n
                        .to_string()
                        .bytes()
                        .map(|b| judge.digit_ids[(b - b'0') as usize])
                        .collect();
                    let mut seq = prompt.clone();
                    let mut p = 1.0;
                    for d in &digits {
                        let mut cache = KvCache::new(judge.model.cfg.n_layers);
                        let l = judge.forward(&seq, &mut cache).unwrap();
                        p *= LocalJudge::probs(&l[0])[*d as usize];
                        seq.push(*d);
                    }
                    let mut cache = KvCache::new(judge.model.cfg.n_layers);
                    let l = judge.forward(&seq, &mut cache).unwrap();
                    p *= judge.stop_mass(&LocalJudge::probs(&l[0]));
                    assert!(
                        (dist.probs[n] - p).abs() < 1e-6 * p.max(1e-3),
                        "n={n}: branched {} vs brute {p}",
                        dist.probs[n]
                    );
                    total += p;
                }
                assert!(total > 0.0);
                assert_eq!(dist.pruned_mass, 0.0);
            }
        }
    }
}
