# shellcheck shell=bash
# Shared settings for emorg's scripts (sourced). Build outputs and models live in the user's cache
# directory so that a fresh clone (or a CI rerun) reuses them instead of rebuilding everything.
EMORG_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/emorg"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$EMORG_CACHE/target}"
export EMORG_MODELS="${EMORG_MODELS:-$EMORG_CACHE/models}"
EMORG_BIN="$CARGO_TARGET_DIR/release"
export EMORG_WORKER="${EMORG_WORKER:-$EMORG_BIN/emorg-worker}"
