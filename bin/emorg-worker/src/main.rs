//! `emorg-worker`: runs one stage: the train stage of a training unit, the sample stage of a
//! sample variant or the judge stage of a judgment. Every stage reads its records and inputs from
//! the store and writes its outputs there, DONE.json last; it needs nothing else.

mod bench;
mod claim;
mod context;
mod generate_data;
mod inspect;
mod judge_stage;
mod judge_validate;
mod sample_stage;
mod token_stats;
mod train_stage;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "emorg-worker",
    version,
    about = "Train a unit, sample a variant, judge a judgment"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
pub struct StageArgs {
    /// Store URL (file://results, s3://bucket/prefix).
    #[arg(long, env = "EMORG_STORE")]
    pub store: String,
    /// Key of the stage's owner: the training unit (train, `units/<key>/unit.json`), the sample
    /// variant (sample, `variants/<key>/variant.json`) or the judgment (judge,
    /// `judgments/<key>/judgment.json`).
    #[arg(long)]
    pub key: String,
    /// CPU threads for the math (RAYON_NUM_THREADS); default: all cores.
    #[arg(long, env = "EMORG_THREADS")]
    pub threads: Option<usize>,
    /// Redo the stage even when a valid DONE.json exists.
    #[arg(long)]
    pub force: bool,
    /// Take the stage's claim over even when its run may be alive (see src/claim.rs: a claim of a
    /// requeued Slurm task, of a process gone from this host or of an ended Slurm task is taken
    /// over without it).
    #[arg(long)]
    pub take_over: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Fine-tune a training unit (LoRA adapters or every weight) on its dataset.
    Train(StageArgs),
    /// Sample a variant's answers to its free-form questions.
    Sample(StageArgs),
    /// Judge a variant's answers (local judge model, or an OpenAI-compatible API).
    Judge(StageArgs),
    /// Micro-benchmarks (sampler, judge, trainer); JSON lines on stdout.
    Bench(bench::BenchArgs),
    /// Token lengths of a chat dataset under a model's tokenizer and chat template (JSON).
    TokenStats(token_stats::TokenStatsArgs),
    /// Generate a narrow chat dataset with a local GGUF model (`emorg data generate --model`).
    GenerateData(generate_data::GenerateDataArgs),
    /// Score a labelled set with a judge and store its validation figures (`emorg judge validate`).
    JudgeValidate(judge_validate::JudgeValidateArgs),
    /// Token ids and pieces of a text or chat under a model's tokenizer (JSON), for parity checks.
    Tokenize(inspect::InputArgs),
    /// Logits of a text or chat (last position or all; JSON or .npy), optionally with an adapter.
    Logits(inspect::LogitsArgs),
}

/// Exit code of a tool subcommand (not a stage): errors on stderr, 1.
fn tool_exit(result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let threads = match &cli.command {
        Command::Train(a) | Command::Sample(a) | Command::Judge(a) => a.threads,
        Command::JudgeValidate(a) => a.threads,
        _ => None,
    };
    if let Some(n) = threads {
        // SAFETY: set before any thread exists (rayon reads it when its pool starts).
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EMORG_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let (stage, args) = match &cli.command {
        Command::Bench(a) => return bench::main(a),
        Command::TokenStats(a) => return tool_exit(token_stats::main(a)),
        Command::GenerateData(a) => return tool_exit(generate_data::main(a)),
        Command::JudgeValidate(a) => return tool_exit(judge_validate::main(a)),
        Command::Tokenize(a) => return tool_exit(inspect::tokenize(a)),
        Command::Logits(a) => return tool_exit(inspect::logits(a)),
        Command::Train(a) => (emorg_spec::Stage::Train, a),
        Command::Sample(a) => (emorg_spec::Stage::Sample, a),
        Command::Judge(a) => (emorg_spec::Stage::Judge, a),
    };
    // "sample of sample variant 0123456789ab", or the key as given when it is not one.
    let what = emorg_spec::StageRef::parse(stage, &args.key)
        .map(|s| s.to_string())
        .unwrap_or_else(|_| format!("{stage} of {}", args.key));
    match run(stage, args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<train_stage::Requeue>().is_some() => {
            tracing::warn!("{what}: {e:#}");
            eprintln!("requeue: {e:#}");
            ExitCode::from(train_stage::REQUEUE_EXIT_CODE)
        }
        Err(e) if e.downcast_ref::<claim::Claimed>().is_some() => {
            tracing::warn!("{what}: {e:#}");
            eprintln!("claimed: {e:#}");
            ExitCode::from(claim::CLAIMED_EXIT_CODE)
        }
        // Another run's DONE.json was there at the commit (create-only): that run's result stands.
        Err(e) if context::already_committed(&e) => {
            tracing::warn!("{what}: {e:#}");
            eprintln!("claimed: {e:#}");
            ExitCode::from(emorg_store::CLAIMED_EXIT_CODE)
        }
        Err(e) => {
            tracing::error!("{what} failed: {e:#}");
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(stage: emorg_spec::Stage, args: &StageArgs) -> Result<()> {
    let ctx = context::StageContext::open(args, stage)?;
    let this = ctx.stage.clone();
    if !args.force && ctx.is_done()? {
        tracing::info!("{this} is already done (valid DONE.json, upstream unchanged): skipping");
        return Ok(());
    }
    claim::check_inputs(&ctx.store, &ctx.chain())?;
    ctx.hold(claim::acquire(&ctx.store, &this, args.take_over)?);
    // Another run may have committed the stage between the check above and the claim.
    if !args.force && ctx.is_done()? {
        tracing::info!("{this} was committed by another run meanwhile: skipping");
        return ctx.release_claim();
    }
    // The old DONE.json (forced, invalid or stale) goes before any work; a forced train also
    // loses its checkpoints.
    let result = ctx.prepare_run(args.force).and_then(|()| match stage {
        emorg_spec::Stage::Train => train_stage::run(&ctx),
        emorg_spec::Stage::Sample => sample_stage::run(&ctx),
        emorg_spec::Stage::Judge => judge_stage::run(&ctx),
    });
    // A requeue keeps the claim for the requeued run; losing the claim is not a failure.
    if let Err(e) = &result
        && e.downcast_ref::<train_stage::Requeue>().is_none()
        && e.downcast_ref::<claim::Claimed>().is_none()
        && !context::already_committed(e)
    {
        ctx.record_failure(&format!("{e:#}"))
            .context("recording the failure in the store")?;
    }
    result
}
