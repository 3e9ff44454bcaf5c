#!/usr/bin/env bash
# The Python reference stack the parity and interop tests compare emorg against: PyTorch,
# Hugging Face transformers (with its GGUF reader), tokenizers and PEFT, pinned in
# infra/py-reference-requirements.txt and installed from PyPI into a virtualenv in the user's cache
# (installed once; reused by CI reruns and fresh clones).
#
#   infra/py-reference.sh install   create or update the virtualenv (idempotent)
#   infra/py-reference.sh python    print the path of its python (installing first if needed)
#   infra/py-reference.sh env       print `export EMORG_TEST_PY=...` for the tests
#
# Settings: EMORG_PYTHON (default python3, >= 3.10).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
readonly HERE
readonly REQUIREMENTS="$HERE/py-reference-requirements.txt"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/emorg"
readonly CACHE
readonly VENV="$CACHE/py-reference-venv"
readonly PY="$VENV/bin/python"
readonly STAMP="$VENV/.emorg-requirements.sha256"
readonly LOG="$CACHE/py-reference-install.log"
readonly PYTHON="${EMORG_PYTHON:-python3}"

say() { echo "py-reference: $*" >&2; }
die() {
  say "ERROR: $*"
  exit 1
}

requirements_hash() { sha256sum "$REQUIREMENTS" | cut -d' ' -f1; }

installed_ok() {
  [[ -x $PY ]] && [[ -f $STAMP ]] && [[ "$(<"$STAMP")" == "$(requirements_hash)" ]] \
    && "$PY" -c 'import torch, transformers, peft, tokenizers, safetensors, gguf' 2>/dev/null
}

install() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/py-reference.lock"
  flock 9
  if installed_ok; then
    return 0
  fi
  command -v "$PYTHON" >/dev/null || die "$PYTHON not found; the reference stack needs Python >= 3.10"
  say "installing the Python reference stack into $VENV (first time only; several minutes; log: $LOG)"
  local t0=$SECONDS
  rm -f "$STAMP"
  { [[ -x $PY ]] || "$PYTHON" -m venv "$VENV"; } >"$LOG" 2>&1 || die "cannot create $VENV (log: $LOG)"
  if ! "$PY" -m pip install --disable-pip-version-check -r "$REQUIREMENTS" >>"$LOG" 2>&1; then
    tail -n 30 "$LOG" >&2
    die "pip install -r $REQUIREMENTS failed (log: $LOG)"
  fi
  requirements_hash >"$STAMP"
  installed_ok || die "the packages in $VENV do not import (log: $LOG)"
  say "installed in $((SECONDS - t0)) s"
}

case "${1:-}" in
  install) install ;;
  python)
    install
    echo "$PY"
    ;;
  env)
    install
    echo "export EMORG_TEST_PY=$PY"
    ;;
  *)
    echo "usage: $0 install|python|env" >&2
    exit 2
    ;;
esac
