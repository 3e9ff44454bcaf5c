#!/usr/bin/env bash
# Builds emorg-worker with `--features cuda` on a machine that has neither a GPU nor a CUDA
# toolkit (CI, a laptop, a cluster login node). The CUDA 13.0 compiler and libraries come from
# NVIDIA's PyPI wheels, installed once into the user's cache; libcuda (the driver, which no wheel
# ships) is replaced at link time by a locally built stub whose every call returns
# CUDA_ERROR_STUB_LIBRARY, as NVIDIA's own stub does. On a GPU node the real driver is used at run
# time. 13.0 on purpose: candle loads its kernels as PTX, and a 13.0 driver (the GPU nodes run
# 580.x) cannot load the newer PTX that nvcc 13.1+ writes. Facts: docs/ARCHITECTURE.md (Device).
#
#   infra/cuda-build.sh [build]   install the toolkit if needed, build, print the binary's path
#   infra/cuda-build.sh toolkit   only install the toolkit and the stub (idempotent)
#   infra/cuda-build.sh env       print the exports for building, and for starting the binary here
#   infra/cuda-build.sh test-env  print only what the worker's GPU-less test reads (for infra/test.sh)
#   infra/cuda-build.sh run ARGS  run the cuda-built worker with the stub driver (GPU-less nodes only)
#
# Settings: EMORG_CUDA_HOME (use this real toolkit instead of the wheels, e.g. /usr/local/cuda on a
# GPU node; it must be CUDA 11.4..13.4 with nvcc, cublas, curand, nvrtc), EMORG_CUDA_TARGET_DIR
# (cargo's target dir, default <cache>/emorg/target-cuda; separate from the CPU build's because the
# features differ), CUDA_COMPUTE_CAP (GPU architecture for candle's kernels: nvidia-smi's if it
# works, else 90 = H100/H200, whose `sm_90a` code runs on nothing else; 80 for A100),
# CUDAFORGE_THREADS (parallel nvcc jobs, default all cores), EMORG_PYTHON (default python3).
# A cold build takes ~20 min on 2 quiet cores (the 15 mmq kernels are most of it; 71 min measured
# under nice with other builds on the same 2 cores); reruns are seconds.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
readonly HERE
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/emorg"
readonly CACHE
readonly PYTHON="${EMORG_PYTHON:-python3}"
# The pinned wheels (CUDA 13.0). The stamp below is keyed by this list and the stub recipe, so
# changing either reinstalls.
readonly WHEELS=(
  nvidia-cuda-nvcc==13.0.88
  nvidia-cuda-crt==13.0.88
  nvidia-nvvm==13.0.88
  nvidia-cuda-runtime==13.0.96
  nvidia-cuda-cccl==13.0.85
  nvidia-cuda-nvrtc==13.0.88
  nvidia-cublas==13.1.1.3
  nvidia-curand==10.4.0.35
)
readonly STUB_RECIPE=1 # bump when the stub or the symlinks below change
readonly TOOLKIT_DIR="$CACHE/cuda-13.0"
readonly STAMP="$TOOLKIT_DIR/.emorg-toolkit"
readonly TARGET_DIR="${EMORG_CUDA_TARGET_DIR:-$CACHE/target-cuda}"
readonly WORKER="$TARGET_DIR/release/emorg-worker"
if [[ -n ${EMORG_CUDA_HOME:-} ]]; then
  CUDA_HOME="$EMORG_CUDA_HOME" # a real toolkit: libraries in lib64, NVIDIA's driver stub in lib64/stubs
  CUDA_LIB="$CUDA_HOME/lib64"
else
  CUDA_HOME="$TOOLKIT_DIR/nvidia/cu13"
  CUDA_LIB="$CUDA_HOME/lib"
fi
readonly CUDA_LIB # CUDA_HOME is exported again by build_exports
readonly STUBS="$CUDA_LIB/stubs"

say() { echo "cuda-build: $*" >&2; }
die() {
  say "ERROR: $*"
  exit 1
}

toolkit_key() { printf '%s\n' "${WHEELS[@]}" "stub-recipe=$STUB_RECIPE" | sha256sum | cut -d' ' -f1; }

# The wheel toolkit is complete and was installed from exactly the pinned list.
toolkit_ok() {
  [[ -x $CUDA_HOME/bin/nvcc ]] && [[ -f $STUBS/libcuda.so.1 ]] \
    && [[ -f $STAMP ]] && [[ "$(<"$STAMP")" == "$(toolkit_key)" ]]
}

# A real driver on this node (then the stub must never be on the loader path).
has_real_driver() { [[ -e /proc/driver/nvidia/version ]]; }

install_toolkit() {
  if [[ -n ${EMORG_CUDA_HOME:-} ]]; then
    [[ -x $CUDA_HOME/bin/nvcc ]] || die "EMORG_CUDA_HOME=$CUDA_HOME has no bin/nvcc; point it at a CUDA toolkit, or unset it to use the PyPI wheels"
    # A real toolkit ships lib64/stubs/libcuda.so; cudarc looks in lib/stubs and lib64/stubs.
    [[ -e $STUBS/libcuda.so ]] || has_real_driver \
      || die "EMORG_CUDA_HOME=$CUDA_HOME has no lib64/stubs/libcuda.so and this node has no driver: nothing to link -lcuda against"
    return
  fi
  mkdir -p "$CACHE"
  exec 9>"$CACHE/cuda-13.0.lock"
  flock 9 # one installer at a time; a second caller waits, then finds the stamp
  toolkit_ok && return
  command -v gcc >/dev/null || die "gcc is needed (to preprocess cuda.h and build the libcuda stub, and by nvcc)"
  say "installing the CUDA 13.0 wheels into $TOOLKIT_DIR (~680 MB download, 1.2 GB unpacked)"
  local fresh="$TOOLKIT_DIR.partial"
  rm -rf "$fresh"
  # --target (not unzip): it keeps the execute bits of bin/nvcc and friends.
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps --no-compile \
    --target "$fresh" "${WHEELS[@]}" || die "pip could not install the CUDA wheels (needs PyPI)"
  local home="$fresh/nvidia/cu13"
  [[ -x $home/bin/nvcc ]] || die "the wheels did not produce $home/bin/nvcc"
  (
    cd "$home/lib"
    for l in cudart cublas cublasLt nvrtc; do ln -sf "lib$l.so.13" "lib$l.so"; done
    ln -sf libcurand.so.10 libcurand.so
  )
  ln -sfn lib "$home/lib64"
  # The stub driver: one `int cuX(void) { return 34; }` per cu* function declared in cuda.h.
  mkdir -p "$home/lib/stubs"
  gcc -E -P -I "$home/include" "$home/include/cuda.h" \
    | grep -oE '\bcu[A-Za-z0-9_]+[[:space:]]*\(' | sed 's/[[:space:]]*($//' | sort -u \
    | sed 's/.*/int &(void) { return 34; } \/* CUDA_ERROR_STUB_LIBRARY *\//' >"$fresh/cuda_stub.c"
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$home/lib/stubs/libcuda.so" "$fresh/cuda_stub.c"
  ln -sf libcuda.so "$home/lib/stubs/libcuda.so.1"
  toolkit_key >"$fresh/.emorg-toolkit"
  rm -rf "$TOOLKIT_DIR"
  mv "$fresh" "$TOOLKIT_DIR"
  say "toolkit ready: $CUDA_HOME ($(grep -c . "$TOOLKIT_DIR/cuda_stub.c") stub driver functions)"
}

compute_cap() {
  if [[ -n ${CUDA_COMPUTE_CAP:-} ]]; then
    echo "$CUDA_COMPUTE_CAP"
  elif cap="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d .)" && [[ -n $cap ]]; then
    echo "$cap"
  else
    echo 90
  fi
}

build_exports() {
  cat <<EOF
export CUDA_HOME='$CUDA_HOME' CUDA_PATH='$CUDA_HOME' CUDA_ROOT='$CUDA_HOME'
export PATH='$CUDA_HOME/bin':"\$PATH"
export CUDA_COMPUTE_CAP='$(compute_cap)' CUDAFORGE_THREADS='${CUDAFORGE_THREADS:-$(nproc)}'
EOF
}

# The loader path the cuda-built worker needs on a node WITHOUT a GPU: the toolkit's cublas,
# curand and cudart, and the stub driver. On a GPU node only the toolkit's lib (if its cublas etc.
# are not installed system-wide), never the stub: it would shadow the real libcuda.
stub_library_path() { echo "$CUDA_LIB:$STUBS"; }

print_env() {
  echo "# CUDA 13.0 toolkit for building emorg-worker --features cuda (infra/cuda-build.sh)"
  build_exports
  echo "# The cuda-built worker (present only after \`infra/cuda-build.sh build\`)."
  echo "export EMORG_CUDA_WORKER='$WORKER'"
  if has_real_driver; then
    echo "# This node has an NVIDIA driver: start the worker with the real libcuda, and put only"
    echo "# '$CUDA_LIB' on LD_LIBRARY_PATH if cublas/curand/cudart 13 are not installed."
    echo "# Never put '$STUBS' on the loader path here: the stub would shadow the real driver."
  else
    echo "# No GPU driver on this node. To start the worker here it needs the stub driver on the"
    echo "# loader path, set only for that process (NEVER on a GPU node, and never exported"
    echo "# globally, where it would shadow the real libcuda for every program):"
    echo "#   LD_LIBRARY_PATH=\"\$EMORG_CUDA_STUB_LIBRARY_PATH\" \"\$EMORG_CUDA_WORKER\" ..."
    echo "export EMORG_CUDA_STUB_LIBRARY_PATH='$(stub_library_path)'"
    if [[ -x $WORKER ]]; then
      echo "# The worker's GPU-less-node test (bin/emorg-worker/tests/cuda_build.rs) runs when this is set."
      echo "export EMORG_TEST_CUDA_WORKER='$WORKER'"
    fi
  fi
}

# The two variables tests/cuda_build.rs reads; nothing else enters the caller's environment.
print_test_env() {
  has_real_driver && {
    echo "# a real NVIDIA driver is present: the GPU-less test of the cuda build does not apply"
    return
  }
  [[ -x $WORKER ]] || die "$WORKER is not built; run infra/cuda-build.sh build first"
  echo "export EMORG_TEST_CUDA_WORKER='$WORKER'"
  echo "export EMORG_CUDA_STUB_LIBRARY_PATH='$(stub_library_path)'"
}

# Every crate's CUDA path is compiled: candle-core and candle-nn get `cuda`, and so does every
# workspace crate that has a `cuda` feature (a new one the worker does not forward is an error).
check_cuda_features() {
  local crates pkg
  crates="$(cargo metadata --locked --no-deps --format-version 1 | "$PYTHON" -c '
import json, sys
print(" ".join(p["name"] for p in json.load(sys.stdin)["packages"] if "cuda" in p["features"] and p["name"] != "emorg-worker"))')"
  for pkg in candle-core candle-nn $crates; do
    cargo tree --locked -p emorg-worker --features cuda -e features -i "$pkg" 2>/dev/null \
      | grep -q "$pkg feature \"cuda\"" \
      || die "emorg-worker's cuda feature does not enable $pkg/cuda: forward it in bin/emorg-worker/Cargo.toml"
  done
  say "cuda enabled in: candle-core candle-nn $crates"
}

build() {
  command -v cargo >/dev/null || die "cargo is needed"
  install_toolkit
  eval "$(build_exports)"
  export CARGO_TARGET_DIR="$TARGET_DIR"
  say "building emorg-worker --features cuda into $CARGO_TARGET_DIR (CUDA_HOME=$CUDA_HOME, CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP; a cold build is 20-70 min on 2 cores)"
  (cd "$HERE/.." && check_cuda_features && cargo build --release --locked -p emorg-worker --features cuda)
  # Proof that the CUDA path was compiled and linked in, not silently left out.
  readelf -d "$WORKER" | grep -q 'NEEDED.*libcuda\.so\.1' \
    || die "$WORKER does not link libcuda.so.1: the cuda feature did not reach candle"
  say "built $WORKER ($(du -h "$WORKER" | cut -f1))"
  echo "$WORKER"
}

run_worker() {
  has_real_driver && die "this node has an NVIDIA driver: run $WORKER directly (the stub would shadow the real libcuda)"
  [[ -x $WORKER ]] || die "$WORKER is not built; run infra/cuda-build.sh build first"
  LD_LIBRARY_PATH="$(stub_library_path)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$WORKER" "$@"
}

case "${1:-build}" in
  build) build ;;
  toolkit) install_toolkit ;;
  env) print_env ;;
  test-env) print_test_env ;;
  run)
    shift
    run_worker "$@"
    ;;
  *) die "unknown command '$1' (build | toolkit | env | test-env | run ARGS)" ;;
esac
