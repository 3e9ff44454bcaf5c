#!/usr/bin/env bash
# emorg's sampler and judge next to llama.cpp (llama-cpp-python 0.3.16) on the same GGUF files,
# the same prompt token ids and the same thread counts. Writes JSON lines and a Markdown table to
# $OUT (default ~/.cache/emorg/bench/inference-<time>) and prints the table.
#
#   benches/inference.sh                    # threads 2 then 1, 3 repetitions each
#   THREADS=2 REPS=5 benches/inference.sh
#   SKIP_BUILD=1 MODEL=... JUDGE=... NEW_TOKENS=64 BATCH=4 ANSWERS=8 benches/inference.sh
source "$(dirname "$0")/common.sh"
NEW_TOKENS="${NEW_TOKENS:-64}"
BATCH="${BATCH:-4}"
ANSWERS="${ANSWERS:-8}"
VENV="${BENCH_VENV:-$EMORG_CACHE/bench-venv}"
PY="$VENV/bin/python"

if ! "$PY" -c 'import llama_cpp, sys; sys.exit(llama_cpp.__version__ != "0.3.16")' 2>/dev/null; then
    echo "creating $VENV with llama-cpp-python 0.3.16 (compiles llama.cpp: several minutes)" >&2
    python3 -m venv "$VENV"
    CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAMA_CURL=OFF" "$VENV/bin/pip" install --no-cache-dir "llama-cpp-python==0.3.16" >&2
fi
build_worker
out_dir inference
R="$OUT/results.jsonl"
echo "new tokens: $NEW_TOKENS, batch: $BATCH, judge answers: $ANSWERS" >> "$OUT/machine.txt"
{
    echo "llama-cpp-python: $("$PY" -c 'import llama_cpp; print(llama_cpp.__version__)')"
    echo "llama.cpp system info: $("$PY" -c 'import llama_cpp; print(llama_cpp.llama_print_system_info().decode().strip())')"
} >> "$OUT/machine.txt"

"$WORKER" bench prompts --model "$MODEL" --judge "$JUDGE" --answers "$ANSWERS" > "$OUT/prompts.json"
for T in $THREADS; do
    # Each side in its own process, so the peak RSS is that side's alone.
    note "emorg sample quantized t$T"
    "$WORKER" bench sample --model "$MODEL" --modes quantized --new-tokens "$NEW_TOKENS" \
        --batch "$BATCH" --threads "$T" --reps "$REPS" >> "$R"
    note "emorg sample dense t$T"
    "$WORKER" bench sample --model "$MODEL" --modes dense --new-tokens "$NEW_TOKENS" \
        --batch "$BATCH" --threads "$T" --reps "$REPS" >> "$R"
    note "llama.cpp sample t$T"
    "$PY" benches/llama_cpp_side.py sample --prompts "$OUT/prompts.json" --model "$MODEL" \
        --new-tokens "$NEW_TOKENS" --threads "$T" --reps "$REPS" >> "$R" 2> >(grep -v n_ctx_per_seq >&2)
    note "emorg judge t$T"
    "$WORKER" bench judge --judge "$JUDGE" --answers "$ANSWERS" --threads "$T" --reps "$REPS" >> "$R"
    note "llama.cpp judge t$T"
    "$PY" benches/llama_cpp_side.py judge --prompts "$OUT/prompts.json" --judge "$JUDGE" \
        --threads "$T" --reps "$REPS" >> "$R" 2> >(grep -v n_ctx_per_seq >&2)
done
note "done"
python3 benches/table.py inference "$R" > "$OUT/table.md"
cat "$OUT/machine.txt"
cat "$OUT/table.md"
