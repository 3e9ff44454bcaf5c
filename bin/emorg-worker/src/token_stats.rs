//! `token-stats`: token lengths of a chat dataset as the trainer would see them (the model's own
//! chat template and tokenizer, the same rendering as `train`), and how many rows `--max-len`
//! would truncate. Used by `emorg data validate --model`. Prints one JSON object on stdout; never
//! prints the data itself (the papers' datasets must not leak into logs).

use anyhow::{Context as _, Result};
use emorg_lm::{Message, ModelFiles};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct TokenStatsArgs {
    /// The model's GGUF file (its tokenizer and chat template are used; weights are not loaded).
    #[arg(long)]
    pub model: PathBuf,
    /// Chat JSONL dataset.
    #[arg(long)]
    pub file: PathBuf,
    /// Training sequence length: rows longer than this would be truncated.
    #[arg(long)]
    pub max_len: usize,
}

pub fn main(args: &TokenStatsArgs) -> Result<()> {
    let ModelFiles {
        tokenizer,
        template,
        ..
    } = ModelFiles::open(&args.model)
        .with_context(|| format!("opening model {}", args.model.display()))?;
    let examples = emorg_data::load_chat_jsonl(&args.file)?;
    let conversations: Vec<Vec<Message>> = examples
        .iter()
        .map(|e| {
            e.messages
                .iter()
                .map(|m| Message::new(m.role.as_str(), &m.content))
                .collect()
        })
        .collect();
    // No truncation here: the full lengths, compared with --max-len below.
    let (prepared, _) =
        emorg_train::prepare_examples(&conversations, &template, &tokenizer, usize::MAX)?;
    let lengths: Vec<usize> = prepared.iter().map(|e| e.ids.len()).collect();
    let mut sorted = lengths.clone();
    sorted.sort_unstable();
    let pct = |p: f64| -> usize {
        if sorted.is_empty() {
            0
        } else {
            sorted[((p * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1)]
        }
    };
    // Line numbers of over-long rows: load_chat_jsonl keeps file order and skips blank lines.
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let line_numbers: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, _)| i + 1)
        .collect();
    anyhow::ensure!(
        line_numbers.len() == lengths.len(),
        "{}: {} non-blank lines but {} examples",
        args.file.display(),
        line_numbers.len(),
        lengths.len()
    );
    let over: Vec<usize> = line_numbers
        .iter()
        .zip(&lengths)
        .filter(|(_, n)| **n > args.max_len)
        .map(|(line, _)| *line)
        .collect();
    let total: usize = lengths.iter().sum();
    let out = serde_json::json!({
        "model": args.model.file_name().map(|n| n.to_string_lossy().to_string()),
        "rows": lengths.len(),
        "max_len": args.max_len,
        "tokens": {
            "min": sorted.first().copied().unwrap_or(0),
            "p50": pct(0.5),
            "p90": pct(0.9),
            "p99": pct(0.99),
            "max": sorted.last().copied().unwrap_or(0),
            "mean": if lengths.is_empty() { 0.0 } else { total as f64 / lengths.len() as f64 },
            "total": total,
        },
        "truncated": over.len(),
        "truncated_lines": over,
    });
    println!("{out}");
    Ok(())
}
