#!/usr/bin/env bash
# Plan + render + submit of a large sweep to the local Slurm (infra/slurm-local.sh start), and
# `status` over it: wall time and sbatch calls. The sweep is generated here: 1 model x 20 LoRA
# protocols x 5 datasets x CELLS/100 seeds. Jobs are submitted held (`--hold`), measured, then
# cancelled, so nothing trains.
#
#   CELLS=5000 benches/slurm_sweep.sh        (needs emorg and emorg-worker built; $EMORG_BIN)
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/env.sh
CELLS="${CELLS:-5000}"
SEEDS=$((CELLS / 100))
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
EMORG="$EMORG_BIN/emorg"
{
  echo 'name = "bench-slurm"'
  echo '[matrix]'
  echo 'model = ["smollm2"]'
  printf 'protocol = [%s]\n' "$(seq -s, -f '"r%g"' 1 20)"
  echo 'dataset = ["risky", "risky-control", "sports", "sports-control", "diy"]'
  printf 'seed = [%s]\n' "$(seq -s, 0 $((SEEDS - 1)))"
  echo '[models.smollm2]'
  echo 'registry = "smollm2-135m-instruct"'
  for d in risky:risky_financial risky-control:risky_financial_control sports:extreme_sports \
    sports-control:extreme_sports_control diy:home_diy; do
    printf '[datasets.%s]\npath = "%s/data/%s.jsonl"\n' "${d%%:*}" "$PWD" "${d#*:}"
  done
  for r in $(seq 1 20); do
    printf '[protocols.r%d]\nkind = "lora"\nrank = %d\nmodules = ["down_proj"]\n' "$r" "$r"
  done
  printf '[eval]\nquestions = "%s/data/questions/free_form.yaml"\n' "$PWD"
  printf '[store]\nurl = "file://%s/store"\n' "$WORK"
  printf '[slurm]\nstate_dir = "%s/slurm"\nthrottle = 100\nextra = ["--hold"]\n' "$WORK"
} >"$WORK/sweep.toml"

t() {
  local t0=${EPOCHREALTIME/./} rc=0
  "$@" >"$WORK/out.txt" 2>&1 || rc=$?
  echo "emorg ${2:-}: $(((${EPOCHREALTIME/./} - t0) / 1000)) ms (rc $rc)"
  if ((rc != 0)); then tail -n 5 "$WORK/out.txt"; fi
}
t "$EMORG" plan "$WORK/sweep.toml"
grep -m1 '^sweep' "$WORK/out.txt"
t "$EMORG" render "$WORK/sweep.toml" --out "$WORK/rendered"
grep -m1 "^sweep" "$WORK/out.txt"
t "$EMORG" submit "$WORK/sweep.toml"
grep -m1 "^sweep" "$WORK/out.txt" | cut -c1-160
t "$EMORG" status "$WORK/sweep.toml"
grep -m1 "^sweep" "$WORK/out.txt"
t "$EMORG" cancel "$WORK/sweep.toml"
cat "$WORK/out.txt" | cut -c1-200
