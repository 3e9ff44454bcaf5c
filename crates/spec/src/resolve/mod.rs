//! From a sweep file to fully resolved cells, in four passes.
//!
//! 1. **Parse** ([`crate::load`]): takes the file, the `EMORG_*` environment and the `--set`
//!    arguments; gives a [`Sweep`] whose [`SweepFile`](crate::SweepFile) has them layered over the
//!    built-in defaults, every value locatable (file and line, variable or argument).
//! 2. **Defaults and presets** ([`defaults`]): takes a protocol table; gives its effective values
//!    (the preset applied, unset LoRA fields defaulted, training hyper-parameters by precedence).
//!    The other passes read protocols only through it.
//! 3. **Per-axis checks**, one module per part of the sweep, each reporting every problem it finds
//!    as a [`Diagnostic`] at a key path. Those that need nothing outside the file run at the end of
//!    parsing ([`check_static`], called by [`Sweep::load`]): [`credentials`] (no secret anywhere in
//!    the sweep, whichever layer it comes from), [`matrix`], [`protocols`], [`train`],
//!    [`datasets`], [`eval`], [`judge`], [`executor`] (with `[store]`) and [`crate::slurm`]. Those
//!    that need the outside world run in [`resolve_full`] through a [`Resolver`]: registry models
//!    ([`models`]), the judge, the question file, the dataset files and their pins, the layers of
//!    each LoRA protocol on each model.
//! 4. **Cell expansion** ([`expand`]): takes the checked sweep and what the lookups found; gives the
//!    axis tuples (product, minus `exclude`, plus `include`; computed first, so that the lookups
//!    check only what the cells use) and, when no check failed, one [`Cell`] per tuple.
//!
//! Protocols of kind `base` do not train: they ignore the dataset axis (their cells have dataset
//! `"-"`, no [`DatasetRef`](crate::DatasetRef) and no train spec) and are deduplicated. Cells come
//! out sorted by their axes.

mod credentials;
mod datasets;
mod defaults;
mod eval;
mod executor;
mod expand;
mod judge;
mod matrix;
mod models;
mod protocols;
mod train;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::cell::Cell;
use crate::error::{Diagnostic, SpecError};
use crate::load::Sweep;

/// What resolution needs to know about a registry model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    pub gguf_sha256: String,
    pub n_layers: usize,
    /// Elements over all the weights (a full fine-tune keeps this many f32 values per kept step).
    pub n_params: u64,
}

/// The outside world, as resolution sees it (implemented by the CLI over emorg-models and
/// emorg-data; tests use a fake).
pub trait Resolver {
    /// A model of the built-in registry by name.
    fn model(&self, registry_name: &str) -> Result<ModelInfo, String>;
    /// Registry names, for "did you mean" suggestions.
    fn model_names(&self) -> Vec<String> {
        Vec::new()
    }
    /// sha256 (lowercase hex) of a local file.
    fn file_sha256(&self, path: &Path) -> Result<String, String>;
    /// The ids of the questions in a question file, when the resolver can read them (used to check
    /// `eval.question_ids`); `None` skips the check.
    fn question_ids(&self, _path: &Path) -> Option<Result<Vec<String>, String>> {
        None
    }
    /// For each free-form question of a question file (by id), the metrics it has a judge prompt
    /// for, when the resolver can read them (used to check `judge.metrics` at plan time, rather
    /// than in the judge stage after training and sampling); `None` skips the check.
    fn judge_prompt_metrics(&self, _path: &Path) -> Option<Result<QuestionMetrics, String>> {
        None
    }
    /// The number of rows of a chat JSONL dataset, when the resolver can count them (used to
    /// know a unit's last step for `eval.checkpoints`); `None` when it cannot.
    fn dataset_rows(&self, _path: &Path) -> Option<Result<usize, String>> {
        None
    }
}

/// Question id -> the metrics its `judge_prompts` name ([`Resolver::judge_prompt_metrics`]).
pub type QuestionMetrics = std::collections::BTreeMap<String, BTreeSet<String>>;

/// Kind of a local input file that the workers read from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum InputKind {
    Dataset,
    Questions,
}

/// A local file that cells refer to by sha256.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct InputFile {
    pub kind: InputKind,
    /// The dataset name, or `eval.questions`.
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
}

/// Cells and the input files they need.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub cells: Vec<Cell>,
    /// Every dataset and question file the cells use, deduplicated, sorted.
    pub inputs: Vec<InputFile>,
}

/// The resolved cells of a sweep, sorted by axes.
pub fn resolve(sweep: &Sweep, resolver: &dyn Resolver) -> Result<Vec<Cell>, SpecError> {
    resolve_full(sweep, resolver).map(|r| r.cells)
}

/// Pass 3, the part that needs nothing outside the file (run by [`Sweep::load`]): every problem,
/// the secrets first, then in the order of the file's parts.
pub(crate) fn check_static(sweep: &Sweep) -> Vec<Diagnostic> {
    let secrets = credentials::check(sweep);
    let mut problems = Problems::new(sweep);
    matrix::check(sweep, &mut problems);
    protocols::check(sweep, &mut problems);
    train::check(sweep, &mut problems);
    datasets::check(sweep, &mut problems);
    eval::check(sweep, &mut problems);
    let judges = judge::Judge::all(sweep);
    for j in &judges {
        judge::check(sweep, j, &mut problems);
    }
    judge::check_distinct(sweep, &mut problems);
    executor::check(sweep, &mut problems);
    // Located on their own (a missing value points at the line that chose the backend); listed
    // after the others.
    for j in &judges {
        judge::check_api(sweep, j, &mut problems);
    }
    let mut out = problems.list;
    out.extend(crate::slurm::check_slurm(sweep));
    // The secrets check never quotes a secret; another check's message about the same value
    // could (a directive check quoting the value): such a message is left out.
    out.retain(|d| !secrets.quoted_in(d));
    let mut all = secrets.diagnostics;
    all.extend(out);
    all
}

/// The resolved cells and the input files they use.
pub fn resolve_full(sweep: &Sweep, resolver: &dyn Resolver) -> Result<Resolution, SpecError> {
    let mut problems = Problems::new(sweep);
    if !expand::check_size(sweep, &mut problems) {
        return Err(problems.into_error());
    }
    let points = expand::points(sweep);
    if points.is_empty() {
        problems.bad("matrix", "the matrix gives no cells");
        return Err(problems.into_error());
    }

    // Pass 3 through the resolver, over what the cells use. The order is the order of the report.
    let mut files = Files::new(resolver);
    let models = models::lookup(sweep, &points, resolver, &mut problems);
    let judges: Vec<_> = judge::Judge::all(sweep)
        .into_iter()
        .map(|j| {
            let backend = judge::lookup(sweep, &j, resolver, &mut problems);
            (j, backend)
        })
        .collect();
    let questions_sha = eval::lookup(sweep, resolver, &mut files, &mut problems);
    let datasets = datasets::lookup(sweep, &points, &mut files, &mut problems);
    let layers = protocols::lookup_layers(sweep, &points, &models, &mut problems);
    eval::check_kinds(sweep, &points, &mut problems);
    let weights = eval::weights(sweep, &points, &datasets, &models, resolver, &mut problems);
    if !problems.list.is_empty() {
        return Err(problems.into_error());
    }
    let Some(questions_sha256) = questions_sha else {
        unreachable!("problems were reported above")
    };
    let judges: Vec<_> = judges
        .into_iter()
        .map(|(j, backend)| {
            let spec = judge::spec(&j, backend.expect("problems were reported above"));
            (j, spec)
        })
        .collect();
    judge::check_distinct_specs(&judges, &mut problems);
    if !problems.list.is_empty() {
        return Err(problems.into_error());
    }
    let judges = judges.into_iter().map(|(j, spec)| (j.name, spec)).collect();

    // Pass 4.
    let found = expand::Found {
        models,
        datasets,
        layers,
        sampler: eval::sampler(&sweep.file),
        questions_sha256,
        scales: eval::scales(&sweep.file),
        weights,
        judges,
    };
    Ok(Resolution {
        cells: expand::cells(sweep, &points, &found),
        inputs: files.inputs.into_iter().collect(),
    })
}

/// The problems a pass finds, in order, each located at its key path in the sweep.
struct Problems<'s> {
    sweep: &'s Sweep,
    list: Vec<Diagnostic>,
}

impl<'s> Problems<'s> {
    fn new(sweep: &'s Sweep) -> Self {
        Problems {
            sweep,
            list: Vec::new(),
        }
    }

    /// A problem with the value at `key`, located where that value comes from.
    fn bad(&mut self, key: &str, message: impl Into<String>) {
        self.list.push(self.sweep.diag(key, message));
    }

    fn into_error(self) -> SpecError {
        SpecError {
            diagnostics: self.list,
        }
    }
}

/// The local files the cells read: each hashed once, however many cells use it, and the set of
/// them that goes into the [`Resolution`].
struct Files<'r> {
    resolver: &'r dyn Resolver,
    hashes: HashMap<PathBuf, Result<String, String>>,
    inputs: BTreeSet<InputFile>,
}

impl<'r> Files<'r> {
    fn new(resolver: &'r dyn Resolver) -> Self {
        Files {
            resolver,
            hashes: HashMap::new(),
            inputs: BTreeSet::new(),
        }
    }

    /// The file's sha256 (the resolver's answer, remembered).
    fn sha256(&mut self, path: &Path) -> Result<String, String> {
        self.hashes
            .entry(path.to_path_buf())
            .or_insert_with(|| self.resolver.file_sha256(path))
            .clone()
    }
}
