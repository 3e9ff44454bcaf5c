#!/usr/bin/env bash
# emorg's trainer next to PyTorch + PEFT, side by side in one run, per protocol preset of the
# papers (lora-r1-single, lora-r1-x9, lora-r32-all, full-sft): seconds per optimizer step, tokens/s
# and peak RSS on the same weights (the model's GGUF; transformers dequantizes it with its own GGUF
# reader) and the very same batches (emorg's `bench train --dump` writes them, in step order, for
# benches/train_pytorch_side.py). Synthetic chat examples cut at SEQ tokens, loss on the assistant
# half. The Python side is the pinned reference venv of infra/py-reference.sh (torch, transformers,
# PEFT; installed on first use). Writes JSON lines and a Markdown table to $OUT (default
# ~/.cache/emorg/bench/train-<time>) and prints the table.
#
#   benches/train.sh                        # threads 2 then 1, batch 2 x 256, 4 steps
#   THREADS=2 STEPS=8 PROTOCOLS=lora-r32-all SKIP_BUILD=1 benches/train.sh
#   CHECKPOINTING=1 PROTOCOLS=full-sft benches/train.sh   # activation checkpointing on both sides
source "$(dirname "$0")/common.sh"
BATCH="${BATCH:-2}"
SEQ="${SEQ:-256}"
STEPS="${STEPS:-4}"
PROTOCOLS="${PROTOCOLS:-lora-r1-single lora-r1-x9 lora-r32-all full-sft}"
# CHECKPOINTING=1: emorg's --activation-checkpointing and transformers' gradient checkpointing.
EMORG_CKPT=()
TORCH_CKPT=()
if [[ ${CHECKPOINTING:-0} == 1 ]]; then
    EMORG_CKPT=(--activation-checkpointing)
    TORCH_CKPT=(--gradient-checkpointing)
fi
build_worker
infra/py-reference.sh install >&2
eval "$(infra/py-reference.sh env)"
out_dir train
R="$OUT/results.jsonl"
echo "batch: $BATCH, seq: $SEQ, steps: $STEPS, protocols: $PROTOCOLS, checkpointing: ${CHECKPOINTING:-0}" >> "$OUT/machine.txt"
"$EMORG_TEST_PY" -c 'import torch, peft, transformers; print("python side: torch", torch.__version__, "peft", peft.__version__, "transformers", transformers.__version__)' >> "$OUT/machine.txt"
for T in $THREADS; do
    for P in $PROTOCOLS; do
        note "emorg train $P t$T"
        "$WORKER" bench train --model "$MODEL" --protocol "$P" --batch "$BATCH" --seq "$SEQ" \
            --steps "$STEPS" --threads "$T" --dump "$OUT/data-$P.json" "${EMORG_CKPT[@]}" >> "$R"
        note "pytorch+peft train $P t$T"
        OMP_NUM_THREADS="$T" MKL_NUM_THREADS="$T" "$EMORG_TEST_PY" benches/train_pytorch_side.py \
            --model "$MODEL" --data "$OUT/data-$P.json" --threads "$T" "${TORCH_CKPT[@]}" >> "$R"
    done
done
note "done"
python3 benches/table.py train "$R" > "$OUT/table.md"
cat "$OUT/machine.txt"
cat "$OUT/table.md"
