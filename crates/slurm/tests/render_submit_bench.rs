//! Benchmark (ignored; prints): render and submit a synthetic 500-unit x 10-variant x 1-judge
//! sweep (500 train + 5,000 sample + 5,000 judge stages) to the local Slurm cluster
//! (infra/slurm-local.sh start; eval "$(infra/slurm-local.sh env)"), its jobs held
//! (`[slurm] extra = ["--hold"]`) and cancelled after each repetition, so nothing runs.
//!
//!   cargo test --release -p emorg-slurm --test render_submit_bench -- --ignored --nocapture
//!
//! Environment: BENCH_UNITS (500), BENCH_VARIANTS (10), BENCH_JUDGES (1), BENCH_REPS (3).
//! Measured: `render` alone (the store read for every stage's state, the layout, the scripts and
//! keys files) and `launch` (the same, then the `sbatch --test-only` checks, the `sbatch` calls
//! and the submission record), wall time in this process; the empty `file://` store means every
//! stage needs work.

use std::time::Instant;

use emorg_exec::{Executor, Prepared, WorkGraph};
use emorg_slurm::{SlurmExecutor, Templates, cli};
use emorg_spec::Sweep;
use emorg_store::Store;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
#[ignore = "a benchmark against the local Slurm cluster; run with --ignored --nocapture"]
fn render_and_submit_500_units_x_10_variants() {
    if std::env::var("EMORG_TEST_SLURM").as_deref() != Ok("1") {
        eprintln!(
            "skipped: EMORG_TEST_SLURM is not 1 (infra/slurm-local.sh start; eval \"$(infra/slurm-local.sh env)\")"
        );
        return;
    }
    let (units, variants, judges) = (
        env("BENCH_UNITS", 500),
        env("BENCH_VARIANTS", 10),
        env("BENCH_JUDGES", 1),
    );
    let reps = env("BENCH_REPS", 3);
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "name = \"bench-graph\"\n[matrix]\nmodel = [\"m\"]\nprotocol = [\"r1\"]\ndataset = [\"d\"]\n\
         [models.m]\nregistry = \"smollm2-135m-instruct\"\n[datasets.d]\npath = \"d.jsonl\"\n\
         [protocols.r1]\nkind = \"lora\"\nrank = 1\nmodules = [\"down_proj\"]\n\
         [store]\nurl = \"file://{store}\"\n\
         [slurm]\nstate_dir = \"{state}\"\nthrottle = 100\nextra = [\"--hold\"]\nworker = \"/bin/true\"\n",
        store = dir.path().join("store").display(),
        state = dir.path().join("slurm").display(),
    );
    let sweep = Sweep::from_text("bench.toml", text, &Default::default()).unwrap();
    let t0 = Instant::now();
    let cells = emorg_slurm::testing::rows(units, variants, judges, false, "r1");
    let rows_s = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let graph = WorkGraph::new(&cells);
    let graph_s = t0.elapsed().as_secs_f64();
    let store_url = format!("file://{}", dir.path().join("store").display());
    let store = Store::open(&store_url).unwrap();
    let executor = SlurmExecutor {
        templates: Templates::load(None).unwrap(),
        worker: "/bin/true".into(),
        max_array_size: cli::max_array_size().unwrap(),
    };
    println!(
        "sweep: {units} units x {variants} variants x {judges} judges = {} rows, {} stages; MaxArraySize {}; \
         (not timed below: the rows built in {rows_s:.3} s, their work graph in {graph_s:.3} s)",
        cells.len(),
        graph.tasks.len(),
        executor.max_array_size
    );

    let mut render_s = Vec::new();
    for rep in 0..reps {
        let t0 = Instant::now();
        let r = executor
            .render(
                &sweep,
                &cells,
                &graph,
                &store,
                None,
                &dir.path().join(format!("render-{rep}")),
                &store_url,
            )
            .unwrap();
        render_s.push(t0.elapsed().as_secs_f64());
        assert_eq!(r.stages, graph.tasks.len());
    }

    let prepared = Prepared {
        sweep,
        cells,
        graph,
        store,
        store_url,
    };
    let mut launch_s = Vec::new();
    for _ in 0..reps {
        let t0 = Instant::now();
        let sub = executor.launch(&prepared, None).unwrap().unwrap();
        launch_s.push(t0.elapsed().as_secs_f64());
        let ids: Vec<String> = sub.jobs().map(|j| j.job_id.clone()).collect();
        let arrays = ids.len();
        let tasks_queued = cli::squeue(&ids).unwrap().len();
        cli::scancel(&ids).unwrap();
        println!(
            "launch: {:.3} s, {} sbatch calls ({} --test-only + {} submissions), {} arrays in {} chunks, {} stages; squeue saw {} held tasks",
            launch_s.last().unwrap(),
            sub.sbatch_calls,
            sub.sbatch_calls - arrays,
            arrays,
            arrays,
            sub.chunks.len(),
            sub.stages(),
            tasks_queued
        );
        assert_eq!(sub.stages(), prepared.graph.tasks.len());
        assert_eq!(tasks_queued, sub.stages());
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    println!(
        "render: median {:.3} s of {render_s:.3?}; render + submit (launch): median {:.3} s of {launch_s:.3?}",
        median(&render_s),
        median(&launch_s),
    );
}
