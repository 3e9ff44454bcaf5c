//! What every executor does before a stage runs: check the inputs, fetch the models, upload the
//! inputs and the record of each unit, variant and judgment (`unit.json`, `variant.json`,
//! `judgment.json`) to the store. The result, [`Prepared`], is what an
//! [`Executor`](crate::Executor) is given.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use emorg_models::{CacheState, FetchOptions};
use emorg_spec::{Cell, InputKind, Resolution, Sweep};
use emorg_store::{Store, layout};
use tracing::{info, warn};

use crate::graph::WorkGraph;
use crate::record::open_store;
use crate::resolver::LocalResolver;

/// A sweep whose inputs and identities are in the store: ready for an executor.
pub struct Prepared {
    pub sweep: Sweep,
    /// The rows of the sweep, sorted by axes.
    pub cells: Vec<Cell>,
    /// Their stages, deduplicated: what the executors schedule.
    pub graph: WorkGraph,
    pub store: Store,
    /// The store URL as the sweep gives it.
    pub store_url: String,
}

/// The worker binary: `EMORG_WORKER`, else `emorg-worker` next to this executable.
pub fn worker_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("EMORG_WORKER").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("cannot find the current executable")?;
    let worker = exe.with_file_name(format!("emorg-worker{}", std::env::consts::EXE_SUFFIX));
    if worker.is_file() {
        Ok(worker)
    } else {
        bail!(
            "the worker binary is not at {} (build it with `cargo build --release -p emorg-worker`, \
             or set EMORG_WORKER to its path)",
            worker.display()
        )
    }
}

/// Fetches the registry models that are not in the local cache (the worker reads them there).
pub fn ensure_models<'a>(
    resolver: &LocalResolver,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<()> {
    for name in names {
        let entry = resolver.registry.get(name)?;
        match resolver.registry.cache_state(entry) {
            CacheState::Missing | CacheState::Corrupt => {
                info!(
                    "fetching model {name} into {}",
                    resolver.registry.cache_dir().display()
                );
                let report = resolver.registry.fetch(name, &FetchOptions::default())?;
                info!("{report}");
            }
            CacheState::Verified | CacheState::Unverified => {}
        }
    }
    Ok(())
}

/// Checks the inputs (chat JSONL, question file), fetches missing models into the local cache,
/// checks the store's layout (writing `layout.json` into a new store), uploads the inputs
/// (content-addressed) and the record of every unit, variant and judgment (skipped when
/// present).
pub fn prepare(sweep: Sweep, resolution: Resolution, resolver: &LocalResolver) -> Result<Prepared> {
    // Inputs must be sound before anything is uploaded.
    for input in &resolution.inputs {
        match input.kind {
            InputKind::Dataset => {
                let report = emorg_data::validate_chat_jsonl(&input.path);
                if report.has_errors() {
                    bail!(
                        "dataset `{}` is not valid chat JSONL:\n{report}",
                        input.name
                    );
                }
                if report.warnings().next().is_some() {
                    warn!("dataset `{}`:\n{report}", input.name);
                }
            }
            InputKind::Questions => {
                emorg_data::load_questions(&input.path)?;
            }
        }
    }

    // Models in the local cache (the worker reads them from there).
    let mut models: BTreeSet<&str> = resolution
        .cells
        .iter()
        .map(|c| c.unit.model.name.as_str())
        .collect();
    // A judge behind an API needs no local model.
    models.extend(
        resolution
            .cells
            .iter()
            .filter_map(|c| c.judgment.judge.local_model())
            .map(|m| m.name.as_str()),
    );
    ensure_models(resolver, models)?;

    let url = sweep.file.store.url.clone();
    let store = open_store(&url)?;
    store.ensure_layout()?;
    for input in &resolution.inputs {
        let key = match input.kind {
            InputKind::Dataset => layout::dataset(&input.sha256),
            InputKind::Questions => layout::questions(&input.sha256),
        };
        if !store.exists(&key)? {
            store
                .put_file(&key, &input.path)
                .with_context(|| format!("cannot upload {}", input.path.display()))?;
            info!("uploaded {} to {key}", input.path.display());
        }
    }
    let mut written = BTreeSet::new();
    for cell in &resolution.cells {
        for (key, json) in crate::graph::records(cell) {
            if written.insert(key.clone()) && !store.exists(&key)? {
                store.put(&key, json.into_bytes())?;
            }
        }
    }
    Ok(Prepared {
        sweep,
        graph: WorkGraph::new(&resolution.cells),
        cells: resolution.cells,
        store,
        store_url: url,
    })
}
