//! Loading a sweep file as the command line gives it (file, environment, `--set`).

use anyhow::Result;
use emorg_spec::{LoadOptions, Replicate, Sweep};

use crate::SweepArgs;

/// Loads a sweep file with the process environment and `--set` arguments (plus `extra` sets).
pub fn load_sweep(args: &SweepArgs, extra: &[String]) -> Result<Sweep> {
    let mut sets = args.set.clone();
    sets.extend(extra.iter().cloned());
    Ok(Sweep::load(&args.file, &LoadOptions::from_process(sets))?)
}

/// Loads and resolves a sweep. A papers' dataset named without a path is never assumed present:
/// on a terminal, emorg asks for the path of the user's unlocked copy (and verifies it like any
/// other); elsewhere the error says how to pass it (`--set datasets.X.path=...`).
pub fn load_and_resolve(
    args: &SweepArgs,
    extra: &[String],
    resolver: &dyn emorg_spec::Resolver,
) -> Result<(Sweep, emorg_spec::Resolution)> {
    load_and_resolve_with(args, extra, resolver, Replicate::default())
}

/// [`load_and_resolve`] with the `--replicate` salts of the identities.
pub fn load_and_resolve_with(
    args: &SweepArgs,
    extra: &[String],
    resolver: &dyn emorg_spec::Resolver,
    replicate: Replicate,
) -> Result<(Sweep, emorg_spec::Resolution)> {
    use std::io::{BufRead, IsTerminal, Write};
    let mut extra = extra.to_vec();
    let mut asked = false;
    loop {
        let mut sweep = load_sweep(args, &extra)?;
        sweep.replicate = replicate;
        let err = match emorg_spec::resolve_full(&sweep, resolver) {
            Ok(resolution) => return Ok((sweep, resolution)),
            Err(e) => e,
        };
        // Paths of the papers' datasets that the sweep names without one.
        let mut missing: Vec<String> = err
            .diagnostics
            .iter()
            .filter(|d| d.message.contains("emorg does not ship"))
            .filter_map(|d| {
                d.key
                    .as_deref()?
                    .strip_prefix("datasets.")?
                    .strip_suffix(".path")
            })
            .map(str::to_string)
            .collect();
        missing.sort();
        missing.dedup();
        if asked || missing.is_empty() || !std::io::stdin().is_terminal() {
            return Err(err.into());
        }
        for name in missing {
            let paper = sweep.file.datasets[&name].paper.clone().unwrap_or_default();
            eprint!(
                "dataset `{name}` is the papers' `{paper}` (never shipped with emorg; see docs/DATA.md).\n\
                 Path to your unlocked copy (empty to stop): "
            );
            std::io::stderr().flush().ok();
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            let path = line.trim();
            if path.is_empty() {
                return Err(err.into());
            }
            extra.push(format!("datasets.{name}.path={path}"));
        }
        asked = true;
    }
}
