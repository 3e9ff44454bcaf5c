//! From chat conversations to token ids and loss masks.

use emorg_lm::{ChatTemplate, GgufTokenizer, Message};
use rand::{SeedableRng, rngs::ChaCha8Rng, seq::SliceRandom};

/// One tokenised training example. `loss_mask[i]` says whether token `i` is a target (it lies in an
/// assistant span); position `i - 1` predicts it.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub ids: Vec<u32>,
    pub loss_mask: Vec<bool>,
}

impl Example {
    pub fn n_targets(&self) -> usize {
        self.loss_mask.iter().skip(1).filter(|m| **m).count()
    }
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct PrepStats {
    pub examples: usize,
    /// Examples cut at `max_seq_len` (their tail is not trained on).
    pub truncated: usize,
    /// Examples dropped because no target token survived truncation.
    pub dropped: usize,
    pub target_tokens: usize,
    pub total_tokens: usize,
}

/// Render, tokenise and mask every conversation. Loss goes on tokens whose first byte lies inside
/// an assistant span found by [`ChatTemplate::render_with_spans`].
pub fn prepare_examples(
    conversations: &[Vec<Message>],
    template: &ChatTemplate,
    tokenizer: &GgufTokenizer,
    max_seq_len: usize,
) -> emorg_lm::Result<(Vec<Example>, PrepStats)> {
    let mut out = Vec::with_capacity(conversations.len());
    let mut stats = PrepStats::default();
    for conv in conversations {
        let rendered = template.render_with_spans(conv)?;
        let (mut ids, offsets) = tokenizer.encode_with_offsets(&rendered.text)?;
        let mut loss_mask: Vec<bool> = offsets
            .iter()
            .map(|(start, end)| {
                end > start && rendered.assistant_spans.iter().any(|s| s.contains(start))
            })
            .collect();
        // Templates that write BOS themselves (Gemma's, Llama-3's) must not get a second one.
        if tokenizer.add_bos
            && let Some(bos) = tokenizer.bos_id
            && ids.first() != Some(&bos)
        {
            ids.insert(0, bos);
            loss_mask.insert(0, false);
        }
        if ids.len() > max_seq_len {
            ids.truncate(max_seq_len);
            loss_mask.truncate(max_seq_len);
            stats.truncated += 1;
        }
        let ex = Example { ids, loss_mask };
        if ex.n_targets() == 0 {
            stats.dropped += 1;
            continue;
        }
        stats.target_tokens += ex.n_targets();
        stats.total_tokens += ex.ids.len();
        out.push(ex);
    }
    stats.examples = out.len();
    Ok((out, stats))
}

/// Seeded split: returns (train indices, holdout indices), each in ascending order.
pub fn split_holdout(n: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let n_hold = ((n as f64) * fraction).round() as usize;
    let mut hold: Vec<usize> = idx[..n_hold.min(n)].to_vec();
    let mut train: Vec<usize> = idx[n_hold.min(n)..].to_vec();
    hold.sort_unstable();
    train.sort_unstable();
    (train, hold)
}
