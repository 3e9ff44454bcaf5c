//! `emorg`: the launcher and aggregator CLI.
//!
//! Thin by design: argument parsing, progress and exit codes here; the work is in the library
//! crates (emorg-spec, emorg-store, emorg-models, emorg-data, emorg-report, and the executors:
//! emorg-exec's local one and emorg-slurm's).
//!
//! Exit codes: 0 success; 1 the work ran but something failed (a stage, a validation, the report);
//! 2 the command could not run (bad sweep file, bad arguments, store unreachable, ...).

mod judge;
mod logging;
mod plan;
mod report;
mod run;
mod slurm;
mod sweep;
mod tools;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use emorg_spec::{Replicate, Stage};

#[derive(Parser, Debug)]
#[command(
    name = "emorg",
    version,
    about = "Model organisms of emergent misalignment: plan, run and report sweeps"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Resolve a sweep and show, per training unit, the state of its stages in the store and what
    /// would run (`--explain`: why, at the level it reruns).
    Plan(PlanArgs),
    /// Run a sweep locally: upload inputs, run the stages that are not done (each unit's train,
    /// then its variants' samples, then their judges) as emorg-worker subprocesses, then build the
    /// report.
    Run(RunArgs),
    /// Build a sweep's robustness report from the store.
    Report(ReportArgs),
    /// The built-in model registry and its local cache (EMORG_MODELS).
    #[command(subcommand)]
    Models(ModelsCmd),
    /// Datasets and question sets.
    #[command(subcommand)]
    Data(DataCmd),
    /// Judges: how far their scores can be trusted.
    #[command(subcommand)]
    Judge(JudgeCmd),
    /// Write the Slurm job scripts `submit` would send (for inspection), without submitting.
    Render(RenderArgs),
    /// Submit a sweep to Slurm: job arrays of the train, sample and judge stages that need work
    /// (each unit trained once, each variant sampled once), later arrays depending element-wise on
    /// earlier ones; exits at once (`--wait` to follow).
    Submit(SubmitArgs),
    /// Each row's stages: done/failed from the store, pending/running/failed/cancelled from Slurm.
    Status(StatusArgs),
    /// A row's stage logs (the Slurm log of its last submission, else the store's copy).
    Logs(LogsArgs),
    /// Cancel a sweep's pending and running Slurm jobs.
    Cancel(CancelArgs),
    /// Submit again the failed stages and those after them (`--failed`).
    Rerun(RerunArgs),
}

#[derive(Args, Debug)]
pub struct RenderArgs {
    #[command(flatten)]
    pub sweep: SweepArgs,
    /// Directory for the scripts and keys files (default: slurm-render/<sweep>).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub sweep: SweepArgs,
    #[command(flatten)]
    pub rerun: RerunOpts,
    /// Wait until no task is pending or running, then print the status (exit 1 if a stage failed).
    #[arg(long)]
    pub wait: bool,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub sweep: SweepArgs,
    /// Only these rows: a key prefix (4+ hex characters) of a unit, variant or judgment, or
    /// AXIS=VALUE[,AXIS=VALUE].
    #[arg(long)]
    pub cell: Vec<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    #[command(flatten)]
    pub sweep: SweepArgs,
    /// The row: a key prefix (4+ hex characters) of a unit, variant or judgment, or
    /// AXIS=VALUE[,AXIS=VALUE].
    pub cell: String,
    /// train, sample or judge (default: every stage of the row).
    pub stage: Option<String>,
}

#[derive(Args, Debug)]
pub struct CancelArgs {
    #[command(flatten)]
    pub sweep: SweepArgs,
}

#[derive(Args, Debug)]
pub struct RerunArgs {
    #[command(flatten)]
    pub sweep: SweepArgs,
    /// Rerun the stages that failed (failed, timed out, out of memory, node failure; not cancelled
    /// ones) and those after them.
    #[arg(long, required = true)]
    pub failed: bool,
    /// Wait as for `submit --wait`.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Subcommand, Debug)]
pub enum JudgeCmd {
    /// Score a labelled set of answers with a sweep's judge and report AUROC, Spearman, the EM
    /// confusion matrix and the share of judgments the 0.25 rule drops; stored in the sweep's store,
    /// where reports pick the figures up.
    Validate(JudgeValidateArgs),
}

#[derive(Args, Debug)]
pub struct JudgeValidateArgs {
    /// The sweep whose judge (`[judge]`, or one of `[judges.NAME]` with --sweep-judge; and its
    /// question file, for the judge prompts) is validated.
    #[arg(required_unless_present = "judge")]
    pub sweep: Option<PathBuf>,
    /// Overrides for the sweep file, as for `plan`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// A calibration baseline instead of the sweep's judge: `oracle` (scores from the labels) or
    /// `random` (uniform scores).
    #[arg(long, value_name = "oracle|random")]
    pub judge: Option<String>,
    /// The labelled set (JSONL: id, question_id, question, answer, label).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Seed of the random baseline.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Threads for the judge (default: [executor].threads_per_job).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Judge again even when figures for this judge and these labels are stored.
    #[arg(long)]
    pub force: bool,
    /// With several `[judges.NAME]` tables, the one to validate (`default` names `[judge]` in a
    /// sweep without `[judges]`).
    #[arg(long, value_name = "NAME", conflicts_with = "judge")]
    pub sweep_judge: Option<String>,
}

/// A sweep file and its `--set` overrides.
#[derive(Args, Debug, Clone)]
pub struct SweepArgs {
    /// The sweep file (TOML). Relative paths inside it are relative to the current directory.
    pub file: PathBuf,
    /// Override a setting: `--set train.learning_rate=1e-3` (value parsed as TOML, else a string).
    /// Beats the file and EMORG_<SECTION>__<KEY> environment variables.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// The level `--only` launches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnlyLevel {
    /// Samples and their judges.
    Sample,
    /// Judges.
    Judge,
}

impl OnlyLevel {
    pub fn stage(self) -> Stage {
        match self {
            OnlyLevel::Sample => Stage::Sample,
            OnlyLevel::Judge => Stage::Judge,
        }
    }
}

/// `--replicate N` and `--only sample|judge`: reruns on demand, never over committed work.
#[derive(Args, Debug, Clone, Default)]
pub struct RerunOpts {
    /// The same work again with new seeds: N is a salt in the training unit keys (with --only,
    /// in the sample variant or judgment keys instead). Replicate 0 is the original work; no
    /// other replicate touches it.
    #[arg(long, value_name = "N")]
    pub replicate: Option<u32>,
    /// Launch only this level and those after it: `sample` (samples and their judges) or `judge`.
    /// Stages done already are not run again, and stages whose earlier level is not done are
    /// left out. With --replicate N: new variants of the same trained units (`sample`), or new
    /// judgments of the same answers (`judge`).
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub only: Option<OnlyLevel>,
    /// Launch only the stages of these rows (repeatable; a row matching any is launched): a key
    /// prefix (4+ hex characters) of a training unit, sample variant or judgment, or
    /// AXIS=VALUE[,AXIS=VALUE] (model, protocol, dataset, seed, checkpoint, scale, judge,
    /// replicate). With --only, only that level and after. The sweep record stays the whole
    /// sweep.
    #[arg(long = "cell", value_name = "SELECTOR")]
    pub cells: Vec<String>,
}

impl RerunOpts {
    /// The replicate salts these options give.
    pub fn replicate(&self) -> Replicate {
        let n = self.replicate.unwrap_or(0);
        match self.only {
            None => Replicate {
                unit: n,
                ..Replicate::default()
            },
            Some(OnlyLevel::Sample) => Replicate {
                sample: n,
                ..Replicate::default()
            },
            Some(OnlyLevel::Judge) => Replicate {
                judge: n,
                ..Replicate::default()
            },
        }
    }

    /// The first level launched, with --only.
    pub fn level(&self) -> Option<Stage> {
        self.only.map(OnlyLevel::stage)
    }

    /// What `--only` and `--cell` leave to launch of `graph` (`None`: everything). A selector
    /// that is malformed or matches no row of `cells` is an error.
    pub fn selection(
        &self,
        store: &emorg_store::Store,
        graph: &emorg_exec::WorkGraph,
        cells: &[emorg_spec::Cell],
    ) -> anyhow::Result<Option<emorg_exec::LevelSelection>> {
        let rows = if self.cells.is_empty() {
            None
        } else {
            Some(emorg_exec::rows::select_indices(cells, &self.cells)?)
        };
        emorg_exec::select_launch(store, graph, self.level(), rows.as_ref())
    }
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub sweep: SweepArgs,
    /// Per training unit and per variant that would run, say why, at the level it reruns: new,
    /// which inputs changed since the last run (`judge only`, `sample + judge`, `train + all`),
    /// or the state of the stage (failed, stale, ...).
    #[arg(long)]
    pub explain: bool,
    #[command(flatten)]
    pub rerun: RerunOpts,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub sweep: SweepArgs,
    #[command(flatten)]
    pub rerun: RerunOpts,
    /// Stages run at the same time (default: [executor].parallel).
    #[arg(long)]
    pub parallel: Option<usize>,
    /// Threads per worker (default: [executor].threads_per_job).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Take over the claims of stages another run may still hold (a run on another machine that
    /// died without releasing them; a live holder's result will then not be committed).
    #[arg(long)]
    pub take_over: bool,
    /// Do not build the report at the end.
    #[arg(long)]
    pub no_report: bool,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The sweep file (its name, [store] and [judge] thresholds are used).
    #[arg(required_unless_present = "sweep", conflicts_with = "sweep")]
    pub file: Option<PathBuf>,
    /// The sweep by name (its record in the store gives the rows and thresholds).
    #[arg(long)]
    pub sweep: Option<String>,
    /// Store the report is written to (default: the sweep's [store].url, else file://results).
    #[arg(long)]
    pub store: Option<String>,
    /// Store the sweep record and results are read from (default: the same as --store).
    #[arg(long)]
    pub from: Option<String>,
    /// Overrides for the sweep file, as for `plan`.
    #[arg(long = "set", value_name = "KEY=VALUE", requires = "file")]
    pub set: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum ModelsCmd {
    /// Download and verify a model (every built-in model when no name is given).
    Fetch {
        name: Option<String>,
        /// Download again even if a verified file is present.
        #[arg(long)]
        force: bool,
    },
    /// The registry with each model's cache state.
    List,
    /// Re-hash cached model files (every cached model when no name is given).
    Verify { name: Option<String> },
}

#[derive(Subcommand, Debug)]
pub enum DataCmd {
    /// Check a chat JSONL dataset (or a question-set YAML); exit 1 when it has errors.
    ///
    /// With --model, also the token length of each row under that model's tokenizer and chat
    /// template (as training renders it) and how many rows --max-len would truncate.
    Validate {
        file: PathBuf,
        /// A registry model (`emorg models list`) whose tokenizer measures the rows.
        #[arg(long)]
        model: Option<String>,
        /// Training sequence length for the truncation count (default: the built-in [train]).
        #[arg(long, requires = "model")]
        max_len: Option<usize>,
    },
    /// The papers' datasets emorg knows by name (rows and published sha256; never shipped).
    Papers,
    /// Generate a narrow chat dataset with a capable model (a local GGUF or an OpenAI-compatible
    /// endpoint): validated, deduplicated, resumable (rerun the same command to continue).
    Generate(GenerateArgs),
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// The generation task (TOML: task, behaviour, n_per_request, [[examples]]; see data/generation/).
    #[arg(long)]
    pub task: PathBuf,
    /// Output chat JSONL; its progress is kept in `<out>.progress.json`.
    #[arg(long)]
    pub out: PathBuf,
    /// Stop when the output holds this many rows.
    #[arg(long)]
    pub rows: usize,
    /// A local registry model (`emorg models list`) generates.
    #[arg(
        long,
        conflicts_with = "endpoint",
        required_unless_present = "endpoint"
    )]
    pub model: Option<String>,
    /// An OpenAI-compatible endpoint generates (base URL, e.g. http://host:8000/v1).
    #[arg(long, requires = "api_model")]
    pub endpoint: Option<String>,
    /// The endpoint's model name.
    #[arg(long)]
    pub api_model: Option<String>,
    /// Environment variable that holds the endpoint's API key (unset: no key is sent).
    #[arg(long, default_value = "OPENAI_API_KEY")]
    pub api_key_env: String,
    /// Completions per request.
    #[arg(long, default_value_t = 1)]
    pub completions: usize,
    /// Give up after this many requests.
    #[arg(long, default_value_t = 1000)]
    pub max_requests: u64,
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    #[arg(long, default_value_t = 1000)]
    pub max_new_tokens: usize,
    /// Base seed of a local model's sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init();
    let result = match cli.cmd {
        Cmd::Plan(args) => plan::plan(&args),
        Cmd::Run(args) => run::run(&args),
        Cmd::Report(args) => report::report_cmd(&args),
        Cmd::Models(cmd) => tools::models(&cmd),
        Cmd::Data(cmd) => tools::data(&cmd),
        Cmd::Judge(JudgeCmd::Validate(args)) => judge::validate_cmd(&args),
        Cmd::Render(args) => slurm::render(&args),
        Cmd::Submit(args) => slurm::submit_sweep_with(&args.sweep, &args.rerun, None, args.wait),
        Cmd::Status(args) => slurm::status(&args),
        Cmd::Logs(args) => slurm::logs(&args),
        Cmd::Cancel(args) => slurm::cancel(&args),
        Cmd::Rerun(args) => slurm::rerun(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            logging::suspend(|| eprintln!("error: {e:#}"));
            ExitCode::from(2)
        }
    }
}
