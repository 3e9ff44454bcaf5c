//! Rendering a submission: the stages that need work ([`stages_to_run`]), laid out as chunks of
//! job arrays ([`crate::plan`]), and per array a keys file and an sbatch script written from the
//! templates ([`write_scripts`]). Nothing here talks to Slurm.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use emorg_exec::{Task, WorkGraph};
use emorg_spec::{Cell, StageRef, Sweep};
use emorg_store::Store;

use crate::plan::{PlannedChunk, array_spec};
use crate::states::StoreStates;
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

/// The resource profile of a task, from the model and protocol of its first row (a unit's rows
/// share both): `default` when `[slurm.models]` and `[slurm.protocols]` name neither, the protocol
/// when only it is named, `<model>@` or `<model>@<protocol>` when the model is (`@` is refused in
/// those names, so [`profile_parts`] reads it back).
pub fn profile_of(sweep: &Sweep, cells: &[Cell], task: &Task) -> String {
    let axes = &cells[task.rows[0]].axes;
    let slurm = &sweep.file.slurm;
    let protocol = slurm
        .protocols
        .contains_key(&axes.protocol)
        .then_some(axes.protocol.as_str());
    match (slurm.models.contains_key(&axes.model), protocol) {
        (false, None) => "default".to_string(),
        (false, Some(p)) => p.to_string(),
        (true, p) => format!("{}@{}", axes.model, p.unwrap_or_default()),
    }
}

/// (model, protocol) of a profile named by [`profile_of`]; `""` for one it does not name.
pub fn profile_parts(profile: &str) -> (&str, &str) {
    match profile.split_once('@') {
        Some(parts) => parts,
        None if profile == "default" => ("", ""),
        None => ("", profile),
    }
}

/// The stages of `graph` that are not done (of `only` and the not-done stages they run after,
/// when `only` is given), in graph order.
pub fn stages_to_run(
    store: &Store,
    graph: &WorkGraph,
    only: Option<&BTreeSet<StageRef>>,
) -> Result<BTreeSet<StageRef>> {
    let mut states = StoreStates::new(store, graph);
    let mut run = BTreeSet::new();
    for task in &graph.tasks {
        match only {
            None => {
                if !states.is_done(&task.stage)? {
                    run.insert(task.stage.clone());
                }
            }
            Some(o) if o.contains(&task.stage) => {
                for stage in graph.chain(&task.stage) {
                    if !run.contains(&stage) && !states.is_done(&stage)? {
                        run.insert(stage);
                    }
                }
            }
            Some(_) => {}
        }
    }
    Ok(run)
}

/// Writes the keys files and scripts of the planned chunks into `dir`; returns the chunks (no job
/// ids). Array `a`'s keys file holds at line `i + 1` the key of the stage at index `i` (empty
/// lines for the indices it does not have).
pub fn write_scripts(
    sweep: &Sweep,
    templates: &Templates,
    planned: &[PlannedChunk],
    dir: &Path,
    store_url: &str,
    worker: &str,
) -> Result<Vec<Chunk>> {
    let s = &sweep.file.slurm;
    std::fs::create_dir_all(dir.join("logs"))
        .with_context(|| format!("cannot create {}", dir.join("logs").display()))?;
    let mut out = Vec::with_capacity(planned.len());
    for chunk in planned {
        let mut jobs: Vec<ArrayJob> = Vec::with_capacity(chunk.arrays.len());
        for array in &chunk.arrays {
            let stage = array.stage;
            let keys_file = dir.join(format!("{}.keys", array.name));
            let mut keys = String::new();
            let mut line = 0;
            for (i, s) in &array.tasks {
                while line < *i {
                    keys.push('\n');
                    line += 1;
                }
                keys.push_str(s.key());
                keys.push('\n');
                line += 1;
            }
            std::fs::write(&keys_file, keys)
                .with_context(|| format!("cannot write {}", keys_file.display()))?;
            let (model, protocol) = profile_parts(&array.profile);
            let r = s.effective(model, protocol, stage);
            let spec = array_spec(array.indices());
            let output = dir
                .join("logs")
                .join(format!("{}-%A_%a.out", array.name))
                .display()
                .to_string();
            let ctx = ScriptContext {
                sweep: sweep.file.name.clone(),
                stage: stage.as_str().to_string(),
                job_name: format!("emorg-{}-{stage}", sweep.file.name),
                array: match s.throttle {
                    Some(t) => format!("{spec}%{t}"),
                    None => spec,
                },
                n_tasks: array.tasks.len(),
                output: output.clone(),
                keys_file: keys_file.display().to_string(),
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
            let script = dir.join(format!("{}.sbatch", array.name));
            check_no_secrets(&script, &text)?;
            std::fs::write(&script, text)
                .with_context(|| format!("cannot write {}", script.display()))?;
            jobs.push(ArrayJob {
                name: array.name.clone(),
                stage,
                profile: array.profile.clone(),
                job_id: String::new(),
                script: script.display().to_string(),
                output,
                keys_file: keys_file.display().to_string(),
                tasks: array.tasks.clone(),
                after: array.after.map(|a| chunk.arrays[a].name.clone()),
                dependency: None,
            });
        }
        out.push(Chunk {
            name: chunk.name.clone(),
            profile: chunk.profile.clone(),
            root: chunk.root,
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
    use emorg_spec::Stage;

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
        let chunk = PlannedChunk {
            name: "c000-default".into(),
            profile: "default".into(),
            root: Stage::Train,
            arrays: vec![crate::plan::PlannedArray {
                name: "c000-default-train".into(),
                stage: Stage::Train,
                profile: "default".into(),
                tasks: vec![(0, StageRef::parse(Stage::Train, &"a".repeat(64)).unwrap())],
                after: None,
            }],
        };
        let e = write_scripts(
            &sweep,
            &templates_for(&sweep).unwrap(),
            &[chunk],
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

    /// Commits `stage` with one output; `read` names upstream stages whose output it read.
    fn commit(store: &Store, stage: &StageRef, read: &[&StageRef]) {
        let entry = store
            .put_output(stage, "out.txt", format!("{stage}").into_bytes())
            .unwrap();
        let inputs = read
            .iter()
            .map(|up| {
                let m = match store.read_done(up).unwrap() {
                    emorg_store::DoneState::Valid(m) => m,
                    other => panic!("{up} is not done: {other:?}"),
                };
                (
                    emorg_store::upstream_input_key(up, "out.txt"),
                    m.output("out.txt").unwrap().sha256.clone(),
                )
            })
            .collect();
        store
            .commit_stage(&emorg_store::Manifest {
                owner: stage.clone(),
                outputs: vec![entry],
                inputs,
                seeds: Default::default(),
                worker_version: "test".into(),
                started_at: chrono::Utc::now(),
                finished_at: chrono::Utc::now(),
                host: "test".into(),
                metrics: serde_json::Value::Null,
            })
            .unwrap();
    }

    #[test]
    fn stages_to_run_skip_done_ones_add_upstream_of_only_and_rerun_stale_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("file://{}", dir.path().display())).unwrap();
        // One unit, two checkpoints, one judge.
        let cells = crate::testing::rows(1, 2, 1, false, "r1");
        let graph = WorkGraph::new(&cells);
        let train = StageRef::Train(cells[0].unit_key());
        let (s0, s1) = (
            StageRef::Sample(cells[0].variant_key()),
            StageRef::Sample(cells[1].variant_key()),
        );
        let (j0, j1) = (
            StageRef::Judge(cells[0].judgment_key()),
            StageRef::Judge(cells[1].judgment_key()),
        );
        let all = |only| stages_to_run(&store, &graph, only).unwrap();
        assert_eq!(all(None).len(), 5);

        commit(&store, &train, &[]);
        commit(&store, &s0, &[&train]);
        assert_eq!(all(None), [s1.clone(), j0.clone(), j1.clone()].into());
        // `only` a judge: it and the not-done sample it needs, nothing else.
        let only_j1: BTreeSet<StageRef> = [j1.clone()].into();
        assert_eq!(all(Some(&only_j1)), [s1.clone(), j1.clone()].into());
        let only_s0: BTreeSet<StageRef> = [s0.clone()].into();
        assert_eq!(all(Some(&only_s0)), BTreeSet::new());

        // The train output changes (a forced rerun): the sample that read it is stale and runs
        // again, with its judge.
        store.delete(&emorg_store::layout::done(&train)).unwrap();
        let stale = all(None);
        assert!(stale.contains(&train) && stale.contains(&s0), "{stale:?}");
        assert_eq!(stale.len(), 5);
    }

    #[test]
    fn render_writes_one_script_and_keys_file_per_array_with_the_keys_at_their_indices() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("file://{}", dir.path().join("store").display())).unwrap();
        let cells = crate::testing::rows(3, 2, 2, false, "r1");
        let graph = WorkGraph::new(&cells);
        // Every judgment but those of unit 1's second variant (rows 6 and 7): that slot has a
        // gap at index 1.
        let only: BTreeSet<StageRef> = cells
            .iter()
            .enumerate()
            .filter(|(i, _)| ![6, 7].contains(i))
            .map(|(_, c)| StageRef::Judge(c.judgment_key()))
            .collect();
        let text = "name = \"s\"\n[matrix]\nmodel = [\"m\"]\nprotocol = [\"p\"]\ndataset = [\"d\"]\n\
             [models.m]\nregistry = \"smollm2-135m-instruct\"\n[datasets.d]\npath = \"d.jsonl\"\n\
             [protocols.p]\nkind = \"lora\"\nrank = 1\nmodules = [\"down_proj\"]\n\
             [slurm]\nthrottle = 4\nworker = \"/opt/emorg-worker\"\n";
        let sweep = Sweep::from_text("s.toml", text.to_string(), &Default::default()).unwrap();
        let executor = crate::SlurmExecutor::new(&sweep, 1001).unwrap();
        let out = dir.path().join("out");
        let r = executor
            .render(
                &sweep,
                &cells,
                &graph,
                &store,
                Some(&only),
                &out,
                "file:///s",
            )
            .unwrap();
        assert_eq!(r.stages, 3 + 5 + 10);
        let jobs: Vec<(&str, Option<&str>)> = r
            .jobs()
            .map(|j| (j.name.as_str(), j.after.as_deref()))
            .collect();
        assert_eq!(
            jobs,
            [
                ("c000-default-train", None),
                ("c000-default-sample-v0", Some("c000-default-train")),
                ("c000-default-sample-v1", Some("c000-default-train")),
                ("c000-default-judge-v0-j0", Some("c000-default-sample-v0")),
                ("c000-default-judge-v0-j1", Some("c000-default-sample-v0")),
                ("c000-default-judge-v1-j0", Some("c000-default-sample-v1")),
                ("c000-default-judge-v1-j1", Some("c000-default-sample-v1")),
            ]
        );
        let job = r
            .jobs()
            .find(|j| j.name == "c000-default-sample-v1")
            .unwrap();
        let keys = std::fs::read_to_string(&job.keys_file).unwrap();
        let lines: Vec<&str> = keys.lines().collect();
        assert_eq!(
            lines,
            [
                cells[2].variant_key().as_str(),
                "",
                cells[10].variant_key().as_str()
            ]
        );
        let script = std::fs::read_to_string(&job.script).unwrap();
        assert!(
            script.lines().any(|l| l == "#SBATCH --array=0,2%4"),
            "{script}"
        );
        assert!(
            script.contains("/opt/emorg-worker sample --store file:///s --key \"$key\""),
            "{script}"
        );
    }
}
