#!/usr/bin/env bash
# emorg's LoRA trainer: seconds per optimizer step and tokens/s for rank 1 on the middle layer's
# down_proj (r1) and rank 8 on all 7 modules of every layer (r8all), synthetic chat examples cut at
# SEQ tokens with the loss on the assistant half. Writes JSON lines and a Markdown table to $OUT
# (default ~/.cache/emorg/bench/train-<time>) and prints the table.
#
#   benches/train.sh                        # threads 2 then 1, batch 2 x 256, 4 steps
#   THREADS=2 STEPS=8 SKIP_BUILD=1 benches/train.sh
source "$(dirname "$0")/common.sh"
BATCH="${BATCH:-2}"
SEQ="${SEQ:-256}"
STEPS="${STEPS:-4}"
PROTOCOLS="${PROTOCOLS:-r1 r8all}"
build_worker
out_dir train
R="$OUT/results.jsonl"
echo "batch: $BATCH, seq: $SEQ, steps: $STEPS, protocols: $PROTOCOLS" >> "$OUT/machine.txt"
for T in $THREADS; do
    for P in $PROTOCOLS; do
        note "emorg train $P t$T"
        "$WORKER" bench train --model "$MODEL" --protocol "$P" --batch "$BATCH" --seq "$SEQ" \
            --steps "$STEPS" --threads "$T" >> "$R"
    done
done
note "done"
python3 benches/table.py train "$R" > "$OUT/table.md"
cat "$OUT/machine.txt"
cat "$OUT/table.md"
