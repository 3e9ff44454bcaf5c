//! `emorg models ...` and `emorg data ...`.

use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use emorg_data::generate::{Completer, GenerateOptions, GenerationTask};
use emorg_models::{CacheState, FetchOptions, Registry, render_table};

use crate::{DataCmd, GenerateArgs, ModelsCmd};

pub fn models(cmd: &ModelsCmd) -> Result<ExitCode> {
    let registry = Registry::from_env();
    match cmd {
        ModelsCmd::List => {
            println!("cache: {}", registry.cache_dir().display());
            println!("{}", render_table(&registry.list()));
        }
        ModelsCmd::Fetch { name, force } => {
            let names: Vec<String> = match name {
                Some(n) => vec![n.clone()],
                None => registry.names().into_iter().map(str::to_string).collect(),
            };
            for n in names {
                let report = registry.fetch(&n, &FetchOptions { force: *force })?;
                println!("{report}");
            }
        }
        ModelsCmd::Verify { name } => {
            let names: Vec<String> = match name {
                Some(n) => vec![n.clone()],
                None => registry
                    .list()
                    .into_iter()
                    .filter(|s| s.state != CacheState::Missing)
                    .map(|s| s.name)
                    .collect(),
            };
            if names.is_empty() {
                println!(
                    "no model in the cache ({}); run `emorg models fetch NAME`",
                    registry.cache_dir().display()
                );
            }
            let mut bad = 0;
            for n in names {
                match registry.verify(&n) {
                    Ok(report) => println!("{report}"),
                    Err(e) => {
                        println!("{n}: FAILED: {e}");
                        bad += 1;
                    }
                }
            }
            if bad > 0 {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn data(cmd: &DataCmd) -> Result<ExitCode> {
    match cmd {
        DataCmd::Generate(args) => generate(args),
        DataCmd::Papers => {
            println!("{:<24} {:>6}  {:<30} sha256", "name", "rows", "file");
            for d in emorg_spec::PAPER_DATASETS {
                println!("{:<24} {:>6}  {:<30} {}", d.name, d.rows, d.file, d.sha256);
            }
            println!(
                "\nemorg never ships or downloads these: name one in a sweep with \
                 `[datasets.X] paper = \"NAME\"` and give the path of your unlocked copy (docs/DATA.md)."
            );
            Ok(ExitCode::SUCCESS)
        }
        DataCmd::Validate {
            file,
            model,
            max_len,
        } => {
            let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
            if matches!(ext, "yaml" | "yml") {
                return match emorg_data::load_questions(file) {
                    Ok(set) => {
                        let free: Vec<&str> = set.free_form().map(|q| q.id.as_str()).collect();
                        println!(
                            "{}: {} questions, {} free-form: {}",
                            file.display(),
                            set.questions.len(),
                            free.len(),
                            free.join(", ")
                        );
                        Ok(ExitCode::SUCCESS)
                    }
                    Err(e) => {
                        println!("{e}");
                        Ok(ExitCode::from(1))
                    }
                };
            }
            let report = emorg_data::validate_chat_jsonl(file);
            println!("{report}");
            if let Ok(sha) = emorg_data::sha256_file(file) {
                match emorg_spec::PAPER_DATASETS.iter().find(|d| d.sha256 == sha) {
                    Some(d) => println!(
                        "sha256 {sha}: the papers' `{}` ({} rows), verified",
                        d.name, d.rows
                    ),
                    None => println!("sha256 {sha}"),
                }
            }
            if report.has_errors() {
                return Ok(ExitCode::from(1));
            }
            if let Some(model) = model {
                let max_len = max_len.unwrap_or(emorg_spec::Defaults::default().train.max_seq_len);
                token_lengths(file, model, max_len)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Token lengths under `model`'s tokenizer and chat template, measured by `emorg-worker
/// token-stats` (the launcher links no model code); rows over `max_len` are warnings.
fn token_lengths(file: &std::path::Path, model: &str, max_len: usize) -> Result<()> {
    let registry = Registry::from_env();
    let gguf = registry.path(model).with_context(|| {
        format!("model `{model}` for token lengths (fetch it with `emorg models fetch {model}`)")
    })?;
    let worker = emorg_exec::worker_path()?;
    let out = std::process::Command::new(&worker)
        .arg("token-stats")
        .arg("--model")
        .arg(&gguf)
        .arg("--file")
        .arg(file)
        .arg("--max-len")
        .arg(max_len.to_string())
        .output()
        .with_context(|| format!("running {}", worker.display()))?;
    if !out.status.success() {
        bail!(
            "{} token-stats failed: {}",
            worker.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("parsing the output of {} token-stats", worker.display()))?;
    let t = &stats["tokens"];
    println!(
        "tokens per row ({model}, chat template applied): min {} / median {} / p90 {} / p99 {} / max {} (mean {:.1})",
        t["min"],
        t["p50"],
        t["p90"],
        t["p99"],
        t["max"],
        t["mean"].as_f64().unwrap_or(0.0)
    );
    let truncated = stats["truncated"].as_u64().unwrap_or(0);
    if truncated == 0 {
        println!("no row is longer than {max_len} tokens");
    } else {
        let lines: Vec<String> = stats["truncated_lines"]
            .as_array()
            .map(|a| a.iter().take(20).map(|v| v.to_string()).collect())
            .unwrap_or_default();
        println!(
            "{}: warning: {truncated} of {} rows are longer than {max_len} tokens and would be truncated (lines {}{})",
            file.display(),
            stats["rows"],
            lines.join(", "),
            if truncated > 20 { ", ..." } else { "" }
        );
    }
    Ok(())
}

/// `emorg data generate`: a local model runs in emorg-worker (the launcher links no model code).
fn generate(args: &GenerateArgs) -> Result<ExitCode> {
    // Check the task here, so a bad file fails before a model is loaded.
    let task = emorg_data::generate::GenerationTask::load(&args.task)?;
    let Some(model) = &args.model else {
        return generate_with_endpoint(args, &task);
    };
    let gguf = Registry::from_env()
        .path(model)
        .with_context(|| format!("model `{model}` (fetch it with `emorg models fetch {model}`)"))?;
    let worker = emorg_exec::worker_path()?;
    let status = std::process::Command::new(&worker)
        .arg("generate-data")
        .arg("--model")
        .arg(&gguf)
        .arg("--task")
        .arg(&args.task)
        .arg("--out")
        .arg(&args.out)
        .args(["--rows", &args.rows.to_string()])
        .args(["--max-requests", &args.max_requests.to_string()])
        .args(["--completions", &args.completions.to_string()])
        .args(["--temperature", &args.temperature.to_string()])
        .args(["--max-new-tokens", &args.max_new_tokens.to_string()])
        .args(["--seed", &args.seed.to_string()])
        .status()
        .with_context(|| format!("running {}", worker.display()))?;
    if !status.success() {
        return Ok(ExitCode::from(1));
    }
    let report = emorg_data::validate_chat_jsonl(&args.out);
    println!("{report}");
    Ok(if report.has_errors() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// An OpenAI-compatible endpoint as a [`Completer`]: chat completions, `n` choices per request.
struct EndpointCompleter {
    client: emorg_oai::Client,
    model: String,
    temperature: f64,
    max_tokens: u32,
}

impl Completer for EndpointCompleter {
    fn complete(
        &mut self,
        system: &str,
        user: &str,
        n: usize,
        request: u64,
    ) -> std::result::Result<Vec<String>, String> {
        let req = emorg_oai::ChatRequest {
            temperature: Some(self.temperature),
            max_tokens: Some(self.max_tokens),
            n: Some(n as u32),
            // Servers that honour a seed make a redone request reproduce its rows.
            seed: Some(request),
            ..emorg_oai::ChatRequest::new(
                self.model.clone(),
                vec![
                    emorg_oai::ChatMessage::system(system),
                    emorg_oai::ChatMessage::user(user),
                ],
            )
        };
        let resp = self.client.chat(&req).map_err(|e| e.to_string())?;
        Ok(resp.choices.iter().map(|c| c.text().to_string()).collect())
    }
}

fn generate_with_endpoint(args: &GenerateArgs, task: &GenerationTask) -> Result<ExitCode> {
    let endpoint = args
        .endpoint
        .as_ref()
        .context("give --model NAME (a local model) or --endpoint URL --api-model NAME")?;
    let api_model = args
        .api_model
        .clone()
        .context("--endpoint needs --api-model (the served model's name)")?;
    let client = emorg_oai::Client::new(emorg_oai::ClientConfig {
        api_key: emorg_oai::ApiKey::from_env(&args.api_key_env),
        ..emorg_oai::ClientConfig::new(endpoint.clone())
    })?;
    let mut completer = EndpointCompleter {
        client,
        model: api_model,
        temperature: args.temperature,
        max_tokens: args.max_new_tokens as u32,
    };
    let opts = GenerateOptions {
        target_rows: args.rows,
        max_requests: args.max_requests,
        completions_per_request: args.completions,
    };
    let bar = indicatif::ProgressBar::new(args.rows as u64);
    let progress = emorg_data::generate::generate(task, &args.out, &opts, &mut completer, |p| {
        bar.set_position(p.rows as u64);
        bar.set_message(format!(
            "{} requests, {} duplicates, {} rejected",
            p.requests_done, p.duplicates, p.rejected
        ));
        if !crate::logging::bars() {
            tracing::info!(
                "request {}: {}/{} rows ({} duplicates, {} rejected)",
                p.requests_done,
                p.rows,
                args.rows,
                p.duplicates,
                p.rejected
            );
        }
    })?;
    bar.finish_and_clear();
    println!("{}", serde_json::to_string(&progress)?);
    let report = emorg_data::validate_chat_jsonl(&args.out);
    println!("{report}");
    Ok(if report.has_errors() || progress.rows < args.rows {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
