//! Rendering a submission: the cells that need work, grouped by (resource profile, stages left)
//! and split at MaxArraySize into chunks; per chunk a cells file and one sbatch script per stage,
//! written from the templates. Nothing here talks to Slurm.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use emorg_exec::{StageState, stage_state};
use emorg_spec::{Cell, Stage, Sweep};
use emorg_store::Store;

use crate::submission::{ArrayJob, Chunk};
use crate::template::{ScriptContext, Templates};

/// `file://relative` made absolute: array tasks may not start in this directory.
pub fn absolute_store_url(url: &str) -> Result<String> {
    if let Some(rest) = url.strip_prefix("file://")
        && !rest.starts_with('/')
    {
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        return Ok(format!("file://{}", cwd.join(rest).display()));
    }
    Ok(url.to_string())
}

/// `[slurm].state_dir`, else `<cache>/emorg/slurm`.
pub fn state_dir(sweep: &Sweep) -> PathBuf {
    match &sweep.file.slurm.state_dir {
        Some(d) => {
            let p = sweep.resolve_path(d);
            std::path::absolute(&p).unwrap_or(p)
        }
        None => dirs::cache_dir()
            .unwrap_or_else(|| PathBuf::from(".cache"))
            .join("emorg")
            .join("slurm"),
    }
}

/// A planned chunk: (profile, stages, cell keys in index order).
pub type PlannedChunk = (String, Vec<Stage>, Vec<String>);
/// The stages of a group and its cell keys.
type GroupCells = (Vec<Stage>, Vec<String>);

/// One cell that needs work, and the stages it needs.
pub struct Pending<'a> {
    pub cell: &'a Cell,
    pub key: String,
    pub stages: Vec<Stage>,
}

/// The cells (of `only`, when given) with a stage that is not done, and those stages.
pub fn pending_cells<'a>(
    store: &Store,
    cells: &'a [Cell],
    only: Option<&BTreeSet<String>>,
) -> Result<Vec<Pending<'a>>> {
    let mut out = Vec::new();
    for cell in cells {
        let key = cell.key();
        if only.is_some_and(|o| !o.contains(&key)) {
            continue;
        }
        let mut stages = Vec::new();
        for stage in cell.stages() {
            if stage_state(store, &key, stage)? != StageState::Done {
                stages.push(stage);
            }
        }
        if !stages.is_empty() {
            out.push(Pending { cell, key, stages });
        }
    }
    Ok(out)
}

/// Groups pending cells by (profile, stages) and splits the groups at `max_array_size`.
pub fn plan_chunks(
    sweep: &Sweep,
    pending: &[Pending<'_>],
    max_array_size: usize,
) -> Vec<PlannedChunk> {
    let mut groups: BTreeMap<(String, Vec<&'static str>), GroupCells> = BTreeMap::new();
    for p in pending {
        let profile = if sweep
            .file
            .slurm
            .protocols
            .contains_key(&p.cell.axes.protocol)
        {
            p.cell.axes.protocol.clone()
        } else {
            "default".to_string()
        };
        let names = p.stages.iter().map(|s| s.as_str()).collect();
        groups
            .entry((profile, names))
            .or_insert_with(|| (p.stages.clone(), Vec::new()))
            .1
            .push(p.key.clone());
    }
    let mut out = Vec::new();
    for ((profile, _), (stages, keys)) in groups {
        for chunk in keys.chunks(max_array_size.max(1)) {
            out.push((profile.clone(), stages.clone(), chunk.to_vec()));
        }
    }
    out
}

/// Writes the scripts and cells files of a submission into `dir`; returns the chunks (no job ids).
#[allow(clippy::too_many_arguments)]
pub fn write_scripts(
    sweep: &Sweep,
    templates: &Templates,
    chunks: &[PlannedChunk],
    dir: &Path,
    store_url: &str,
    worker: &str,
) -> Result<Vec<Chunk>> {
    let s = &sweep.file.slurm;
    std::fs::create_dir_all(dir.join("logs"))
        .with_context(|| format!("cannot create {}", dir.join("logs").display()))?;
    let mut out = Vec::new();
    for (n, (profile, stages, keys)) in chunks.iter().enumerate() {
        let name = format!("c{n:03}-{profile}");
        let cells_file = dir.join(format!("{name}.cells"));
        std::fs::write(&cells_file, keys.join("\n") + "\n")
            .with_context(|| format!("cannot write {}", cells_file.display()))?;
        let protocol = if profile == "default" { "" } else { profile };
        let mut jobs = Vec::new();
        for &stage in stages {
            let r = s.effective(protocol, stage);
            let last = keys.len() - 1;
            let array = match s.throttle {
                Some(t) => format!("0-{last}%{t}"),
                None => format!("0-{last}"),
            };
            let output = dir
                .join("logs")
                .join(format!("{name}-{stage}-%A_%a.out"))
                .display()
                .to_string();
            let ctx = ScriptContext {
                sweep: sweep.file.name.clone(),
                stage: stage.as_str().to_string(),
                job_name: format!("emorg-{}-{stage}", sweep.file.name),
                array,
                n_cells: keys.len(),
                output: output.clone(),
                cells_file: cells_file.display().to_string(),
                worker: worker.to_string(),
                store_url: store_url.to_string(),
                threads: r.worker_threads(),
                grace_s: s.grace_s(),
                max_requeues: s.max_requeues(),
                emorg_version: env!("CARGO_PKG_VERSION").to_string(),
                partition: r.partition.clone(),
                account: r.account.clone(),
                qos: r.qos.clone(),
                time: r.time.clone(),
                mem: r.mem.clone(),
                cpus_per_task: r.cpus_per_task,
                gpus: r.gpus.clone(),
                gres: r.gres.clone(),
                constraint: r.constraint.clone(),
                exclusive: r.exclusive.unwrap_or(false),
                setup: r.setup.clone(),
                env: r.env.clone(),
                extra: r.extra.clone(),
            };
            let text = templates.render(stage, &ctx)?;
            let script = dir.join(format!("{name}-{stage}.sbatch"));
            check_no_secrets(&script, &text)?;
            std::fs::write(&script, text)
                .with_context(|| format!("cannot write {}", script.display()))?;
            jobs.push(ArrayJob {
                stage,
                job_id: String::new(),
                script: script.display().to_string(),
                output,
                dependency: None,
            });
        }
        out.push(Chunk {
            name,
            profile: profile.clone(),
            cells: keys.clone(),
            cells_file: cells_file.display().to_string(),
            jobs,
        });
    }
    Ok(out)
}

/// Refuses a rendered job script that holds a secret (the sweep's checks refuse secrets in its
/// values already; a template of `[slurm].templates` may still hold one), naming the script and
/// the line and never the value. Job scripts are readable by whoever can read the state directory
/// and by Slurm's accounting.
pub fn check_no_secrets(script: &Path, text: &str) -> Result<()> {
    let found = emorg_spec::secrets::find_all(text);
    if found.is_empty() {
        return Ok(());
    }
    let places: Vec<String> = found
        .iter()
        .map(|f| format!("{}:{}:{}: {}", script.display(), f.line, f.column, f.kind))
        .collect();
    anyhow::bail!(
        "refusing to write a job script that holds a secret: {}; job scripts carry no secrets: \
         export them in the shell that runs `emorg submit` (sbatch passes the environment to the \
         job)",
        places.join("; ")
    )
}

/// The sweep's `[slurm].templates` directory, else the built-in templates.
pub fn templates_for(sweep: &Sweep) -> Result<Templates> {
    let dir = sweep
        .file
        .slurm
        .templates
        .as_ref()
        .map(|d| sweep.resolve_path(d));
    Templates::load(dir.as_deref())
}

/// The worker path the scripts run: `[slurm].worker`, else this machine's worker, absolute.
pub fn worker_for(sweep: &Sweep) -> Result<String> {
    Ok(match &sweep.file.slurm.worker {
        Some(w) => w.clone(),
        None => {
            let w = emorg_exec::worker_path()?;
            std::path::absolute(&w).unwrap_or(w).display().to_string()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_become_absolute() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            absolute_store_url("file://results").unwrap(),
            format!("file://{}", cwd.join("results").display())
        );
        assert_eq!(absolute_store_url("file:///x").unwrap(), "file:///x");
        assert_eq!(absolute_store_url("s3://b/p").unwrap(), "s3://b/p");
    }

    #[test]
    fn a_script_holding_a_secret_is_refused_naming_its_line() {
        let script = Path::new("/state/s/c000-default-train.sbatch");
        check_no_secrets(
            script,
            "#!/bin/bash\nmodule load cuda/12.4\nexport HF_HOME=/scratch/hf\n",
        )
        .unwrap();
        let e = check_no_secrets(
            script,
            "#!/bin/bash\nmodule load cuda/12.4\n  export HF_TOKEN='MARKER'\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("/state/s/c000-default-train.sbatch:3:19: a secret assigned"),
            "{e}"
        );
        assert!(!e.contains("MARKER"), "{e}");
    }

    #[test]
    fn a_template_with_a_secret_writes_no_script() {
        let dir = tempfile::tempdir().unwrap();
        let templates = dir.path().join("templates");
        std::fs::create_dir_all(&templates).unwrap();
        std::fs::write(
            templates.join("train.sbatch.j2"),
            "{% extends \"base.sbatch.j2\" %}{% block setup %}\nexport GH=ghp_MARKERabcdefghijklmnopqrstuvwxyz012345\n{% endblock %}",
        )
        .unwrap();
        let text = format!(
            "name = \"s\"\n[matrix]\nmodel = [\"m\"]\nprotocol = [\"p\"]\ndataset = [\"d\"]\n\
             [models.m]\nregistry = \"smollm2-135m-instruct\"\n[datasets.d]\npath = \"d.jsonl\"\n\
             [protocols.p]\nkind = \"lora\"\nrank = 1\nmodules = [\"down_proj\"]\n\
             [slurm]\ntemplates = \"{}\"\n",
            templates.display()
        );
        let sweep = Sweep::from_text("s.toml", text, &Default::default()).unwrap();
        let out = dir.path().join("out");
        let e = write_scripts(
            &sweep,
            &templates_for(&sweep).unwrap(),
            &[("default".into(), vec![Stage::Train], vec!["a".repeat(64)])],
            &out,
            "file:///tmp/store",
            "/opt/emorg-worker",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(&format!(
                "{}:",
                out.join("c000-default-train.sbatch").display()
            )) && e.contains("a GitHub token"),
            "{e}"
        );
        assert!(!e.contains("MARKER"), "{e}");
        assert!(!out.join("c000-default-train.sbatch").exists());
    }
}
