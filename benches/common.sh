# Shared by benches/inference.sh and benches/train.sh (sourced): paths, the build, a machine record.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=../infra/env.sh
source infra/env.sh
EMORG_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/emorg"
MODEL="${MODEL:-$EMORG_MODELS/smollm2-135m-instruct.gguf}"
JUDGE="${JUDGE:-$EMORG_MODELS/qwen2.5-coder-1.5b-instruct.gguf}"
THREADS="${THREADS:-2 1}"
REPS="${REPS:-3}"
WORKER="$CARGO_TARGET_DIR/release/emorg-worker"

build_worker() {
    if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
        cargo build --release -p emorg-worker >&2
    fi
    [[ -x "$WORKER" ]] || { echo "no $WORKER: build it first" >&2; exit 1; }
}

# out_dir NAME: a fresh results folder outside the repository (override with OUT=...).
out_dir() {
    OUT="${OUT:-$EMORG_CACHE/bench/$1-$(date -u +%Y%m%dT%H%M%SZ)}"
    mkdir -p "$OUT"
    {
        echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
        echo "nproc: $(nproc)"
        echo "cpu: $(lscpu | grep 'Model name' | sed 's/Model name: *//')"
        echo "memory: $(free -g | awk '/Mem:/ {print $2 " GiB"}')"
        echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo none)$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
        echo "rustc: $(rustc --version)"
        echo "model: $MODEL ($(stat -c %s "$MODEL") bytes)"
        echo "judge: $JUDGE ($(stat -c %s "$JUDGE") bytes)"
        echo "threads: $THREADS, reps: $REPS (median of the repetitions)"
    } > "$OUT/machine.txt"
    echo "results in $OUT" >&2
}

# note LABEL: the load average before a run, into $OUT/uptime.log (and stderr).
note() {
    echo "$(date -u +%H:%M:%S) $1: $(uptime)" | tee -a "$OUT/uptime.log" >&2
}
