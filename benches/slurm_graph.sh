#!/usr/bin/env bash
# Render + submit of the three-level work graph of a 500-unit x 10-variant sweep (500 train, 5,000
# sample and 5,000 judge stages) to the local Slurm (infra/slurm-local.sh start): wall time and
# sbatch calls, printed by an ignored test of emorg-slurm (crates/slurm/tests/render_submit_bench.rs).
# The jobs are submitted held and cancelled after each repetition, so nothing runs; the cancelled
# array tasks stay in slurmctld's job table for MinJobAge (600 s), and the local cluster's
# MaxJobCount is 100,000: about 9 repetitions of the default size fit in 10 minutes.
#
#   BENCH_UNITS=500 BENCH_VARIANTS=10 BENCH_JUDGES=1 BENCH_REPS=3 benches/slurm_graph.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/env.sh
eval "$(infra/slurm-local.sh env)"
exec cargo test --release -p emorg-slurm --test render_submit_bench -- --ignored --nocapture
