#!/usr/bin/env bash
# Sampling speed per model family, before and after re-quantization, next to llama.cpp on the same
# GGUF files, prompt ids and thread count. For each of SmolLM2 (llama), Qwen2.5-Coder (qwen2) and
# gemma-3 (gemma3): emorg with the file's own quantization (`as-stored`), with Q4_1/Q5_x
# re-quantized to Q8_0 (`quantized`, what sampling uses) and dense f32 (`dense`, what training
# uses), then llama.cpp (llama-cpp-python 0.3.16) on the file as it is. Writes JSON lines and a
# Markdown table to $OUT (default ~/.cache/emorg/bench/sampling-<time>) and prints the table.
#
#   benches/sampling.sh                       # threads 2, 3 repetitions, 64 new tokens, batch 4
#   SKIP_BUILD=1 SAMPLING_THREADS="2 1" MODES=as-stored,quantized benches/sampling.sh
source "$(dirname "$0")/common.sh"
THREADS="${SAMPLING_THREADS:-2}"
NEW_TOKENS="${NEW_TOKENS:-64}"
BATCH="${BATCH:-4}"
MODES="${MODES:-as-stored,quantized,dense}"
# llama-cpp-python: the test server's venv (infra/llm-server.sh installs it) unless BENCH_VENV says.
VENV="${BENCH_VENV:-$EMORG_CACHE/llm-server-venv}"
PY="$VENV/bin/python"
"$PY" -c 'import llama_cpp, sys; sys.exit(llama_cpp.__version__ != "0.3.16")' 2>/dev/null \
    || { echo "no llama-cpp-python 0.3.16 in $VENV: run infra/llm-server.sh start once (or set BENCH_VENV)" >&2; exit 1; }
build_worker
MODELS="${MODELS:-smollm2-135m-instruct qwen2.5-coder-1.5b-instruct gemma-3-270m}"
out_dir sampling
R="$OUT/results.jsonl"
echo "new tokens: $NEW_TOKENS, batch: $BATCH, modes: $MODES, models: $MODELS" >> "$OUT/machine.txt"
echo "llama-cpp-python: $("$PY" -c 'import llama_cpp; print(llama_cpp.__version__)')" >> "$OUT/machine.txt"
for name in $MODELS; do
    gguf="$EMORG_MODELS/$name.gguf"
    [[ -f $gguf ]] || { echo "no $gguf: run emorg models fetch $name" >&2; exit 1; }
    "$WORKER" bench prompts --model "$gguf" --judge "$JUDGE" --answers 1 > "$OUT/prompts-$name.json"
    for T in $THREADS; do
        # One process per mode, so each peak RSS is that mode's alone.
        for mode in ${MODES//,/ }; do
            note "emorg $name $mode t$T"
            "$WORKER" bench sample --model "$gguf" --modes "$mode" --new-tokens "$NEW_TOKENS" \
                --batch "$BATCH" --threads "$T" --reps "$REPS" >> "$R"
        done
        note "llama.cpp $name t$T"
        "$PY" benches/llama_cpp_side.py sample --prompts "$OUT/prompts-$name.json" --model "$gguf" \
            --new-tokens "$NEW_TOKENS" --threads "$T" --reps "$REPS" >> "$R" 2> >(grep -v n_ctx_per_seq >&2)
    done
done
note "done"
python3 benches/table.py sampling "$R" > "$OUT/table.md"
cat "$OUT/machine.txt"
cat "$OUT/table.md"
