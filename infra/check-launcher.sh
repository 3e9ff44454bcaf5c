#!/usr/bin/env bash
# The launcher (`emorg`, bin/emorg) never links candle, also when it is built together with the
# worker (infra/quickstart.sh and infra/test.sh build both at once, and cargo unifies features across
# one build: a candle feature on any crate the launcher depends on, enabled by the worker, would be
# compiled into `emorg` too).
#
#   infra/check-launcher.sh [BINARY]   BINARY: the built launcher, default $CARGO_TARGET_DIR/release/emorg
#
# 1. The workspace-wide inverse dependency tree of candle-core (normal edges; once with the features
#    the workspace build enables, once with every feature of every crate) has no path into the
#    `emorg` package. (`cargo tree -p emorg` alone resolves features for that package only and
#    would hide it.)
# 2. BINARY contains no candle code: no candle_core/candle_nn/candle_transformers symbol (nm) and
#    no candle_core/candle-core string (mangled names, line-table paths). Prints its size and counts.
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/env.sh

say() { echo "check-launcher: $*" >&2; }
failed=0
fail() {
    say "FAIL: $*"
    failed=1
}

# The path from `emorg` to candle-core in a `cargo tree -i --prefix depth` listing: for the first
# `emorg` line, the nearest line above it at each smaller depth.
path_to_launcher() {
    awk '
        { match($0, /^[0-9]+/); d = substr($0, 1, RLENGTH) + 0; name[d] = substr($0, RLENGTH + 1) }
        $0 ~ /^[0-9]+emorg v/ {
            s = name[d]
            for (i = d - 1; i >= 0; i--) s = s "\n      -> " name[i]
            print s
            exit
        }'
}

for features in "" "--all-features"; do
    what="cargo tree --workspace -e normal -i candle-core --locked${features:+ $features}"
    # shellcheck disable=SC2086 # $features is one flag or nothing
    if ! tree="$(cargo tree --workspace -e normal -i candle-core --locked $features --prefix depth)"; then
        fail "\`$what\` failed"
    elif grep -qE '^[0-9]+emorg v' <<<"$tree"; then
        # shellcheck disable=SC2086
        cargo tree --workspace -e normal -i candle-core --locked $features >&2 || true
        fail "the launcher (package \`emorg\`) depends on candle-core in \`$what\` (A -> B: A depends on B):
    $(path_to_launcher <<<"$tree")
  Move the candle code out of the crates the launcher depends on, into a crate only emorg-worker
  depends on (as crates/judge-local holds the local judge)."
    else
        say "ok: no path from candle-core to emorg in \`$what\`"
    fi
done

bin="${1:-$EMORG_BIN/emorg}"
if [[ ! -f $bin ]]; then
    fail "$bin does not exist: build the launcher first (cargo build --release --locked -p emorg -p emorg-worker)"
    exit 1
fi
size=$(stat -c %s "$bin")
# grep -c prints 0 (and exits 1) when nothing matches.
symbols=$(nm -C "$bin" 2>/dev/null | grep -cE '\bcandle_(core|nn|transformers)::' || true)
if [[ -z $(nm "$bin" 2>/dev/null | head -1) ]]; then
    say "warning: $bin has no symbol table (stripped); only its strings are checked"
fi
strings_found=$(strings -a "$bin" | grep -cE 'candle_core|candle-core' || true)
say "$bin: $size bytes ($((size / 1000000)) MB); candle symbols (nm -C): $symbols; strings matching candle_core|candle-core: $strings_found"
if ((symbols > 0 || strings_found > 0)); then
    nm -C "$bin" 2>/dev/null | grep -E '\bcandle_(core|nn|transformers)::' | head -5 >&2 || true
    fail "$bin contains candle code ($symbols symbols, $strings_found strings): it was built with a candle feature of one of its dependencies"
else
    say "ok: $bin contains no candle code"
fi
exit "$failed"
