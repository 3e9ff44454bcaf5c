//! `generate-data`: `emorg data generate` with a local GGUF model. The loop (prompting, parsing,
//! checks, deduplication, resume) is emorg_data::generate; this file only supplies the model.

use anyhow::{Context as _, Result};
use emorg_data::generate::{Completer, GenerateOptions, GenerationTask, generate};
use emorg_lm::generate::{SampleParams, sample_batch};
use emorg_lm::{ChatTemplate, Decoder, GgufTokenizer, Message, ModelFiles, WeightMode};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct GenerateDataArgs {
    /// The generating model's GGUF file.
    #[arg(long)]
    pub model: PathBuf,
    /// The generation task (TOML: task, behaviour, n_per_request, [[examples]]).
    #[arg(long)]
    pub task: PathBuf,
    /// Output chat JSONL (appended to; a rerun resumes).
    #[arg(long)]
    pub out: PathBuf,
    /// Stop when the output holds this many rows.
    #[arg(long)]
    pub rows: usize,
    /// Give up after this many requests.
    #[arg(long, default_value_t = 1000)]
    pub max_requests: u64,
    /// Completions per request (sampled together in one batch).
    #[arg(long, default_value_t = 1)]
    pub completions: usize,
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f64,
    #[arg(long, default_value_t = 1000)]
    pub max_new_tokens: usize,
    /// Base seed; every request's sampling seeds derive from it, the task and the request number.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

struct LocalCompleter {
    model: Decoder,
    tokenizer: GgufTokenizer,
    template: ChatTemplate,
    params: SampleParams,
    seed_base: String,
}

/// Generation starts inside the format (`User:`), which small models otherwise often miss.
const PREFILL: &str = "User:";

impl Completer for LocalCompleter {
    fn complete(
        &mut self,
        system: &str,
        user: &str,
        n: usize,
        request: u64,
    ) -> std::result::Result<Vec<String>, String> {
        let run = || -> Result<Vec<String>> {
            let mut prompt = self.template.render(
                &[Message::new("system", system), Message::new("user", user)],
                true,
            )?;
            prompt.push_str(PREFILL);
            let ids = self.tokenizer.encode(&prompt)?;
            let seeds: Vec<u64> = (0..n)
                .map(|j| {
                    let d = Sha256::digest(format!("{}/{request}/{j}", self.seed_base));
                    u64::from_le_bytes(d[..8].try_into().expect("32 bytes"))
                })
                .collect();
            let out = sample_batch(&self.model, &self.tokenizer, &ids, &seeds, self.params)?;
            Ok(out
                .into_iter()
                .map(|g| format!("{PREFILL}{}", g.text))
                .collect())
        };
        run().map_err(|e| format!("{e:#}"))
    }
}

pub fn main(args: &GenerateDataArgs) -> Result<()> {
    let task = GenerationTask::load(&args.task)?;
    let files = ModelFiles::open(&args.model)
        .with_context(|| format!("opening model {}", args.model.display()))?;
    let model = files.decoder(WeightMode::Quantized, &crate::context::device()?)?;
    let ModelFiles {
        tokenizer,
        template,
        ..
    } = files;
    let mut completer = LocalCompleter {
        model,
        tokenizer,
        template,
        params: SampleParams {
            temperature: args.temperature,
            top_p: args.top_p,
            max_new_tokens: args.max_new_tokens,
        },
        seed_base: format!("{}/{}", args.seed, task.sha256()),
    };
    let opts = GenerateOptions {
        target_rows: args.rows,
        max_requests: args.max_requests,
        completions_per_request: args.completions,
    };
    let started = std::time::Instant::now();
    let p = generate(&task, &args.out, &opts, &mut completer, |p| {
        tracing::info!(
            "request {}: {}/{} rows ({} parsed, {} duplicates, {} rejected) {:.0}s",
            p.requests_done,
            p.rows,
            args.rows,
            p.parsed,
            p.duplicates,
            p.rejected,
            started.elapsed().as_secs_f64()
        );
    })?;
    println!("{}", serde_json::to_string(&p)?);
    Ok(())
}
