#!/usr/bin/env python3
"""The llama.cpp side of benches/inference.sh (llama-cpp-python 0.3.16).

Reads the prompts that `emorg-worker bench prompts` wrote (text and token ids from emorg's own
tokenizer) and measures, on the same GGUF files with the same thread count:

  sample: load seconds, prefill seconds of the sampling prompt, greedy decode tokens/s over the
          new_tokens - 1 single-token steps after the prefill (EOS does not stop it), batch 1;
  judge:  load seconds, prefill seconds of the shared judge prefix, and seconds per judgment:
          the longest token prefix shared with the context is kept (as Llama.generate does) and
          the rest of the prompt is evaluated, then the last position's logits are read. That is
          the papers' single-token (top-20 first-token) cost; the top-20 score is computed too.

One JSON object per measurement on stdout, with the same field names as emorg's where they mean
the same thing. The prompt ids are fed as ids, so both sides see identical tokens; whether
llama.cpp's own tokenizer gives the same ids for the rendered text (special=True) is recorded.
"""

import argparse
import json
import re
import statistics
import sys
import time

import numpy as np
import llama_cpp
from llama_cpp import Llama


def loadavg():
    return [float(x) for x in open("/proc/loadavg").read().split()[:3]]


def status_mb(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return round(int(line.split()[1]) / 1000.0, 1)
    return None


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def common(threads):
    return {"threads": threads, "loadavg": loadavg(), "unix_time": int(time.time())}


def load(path, threads):
    t = time.perf_counter()
    llm = Llama(
        model_path=path,
        n_threads=threads,
        # Prompt evaluation uses n_threads_batch (default: every core); pin it too.
        n_threads_batch=threads,
        n_ctx=2048,
        logits_all=False,
        verbose=False,
    )
    return llm, time.perf_counter() - t


def last_logits(llm):
    ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
    return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).copy()


def eval_after_common_prefix(llm, ids):
    """Keep the longest prefix of the context that `ids` shares (at least one token is evaluated)."""
    n = llm.n_tokens
    ctx = llm.input_ids[:n].tolist()
    keep = 0
    for a, b in zip(ctx, ids[:-1]):
        if a != b:
            break
        keep += 1
    llm.n_tokens = keep
    llm.eval(ids[keep:])
    return keep


def bench_sample(args, prompts):
    p = prompts["sample"]
    ids = p["ids"]
    start = common(args.threads)
    peak_reset = reset_peak_rss()
    llm, load_s = load(args.model, args.threads)
    own_ids = llm.tokenize(p["text"].encode("utf-8"), add_bos=False, special=True)
    prefill, decode, tokens = [], [], []
    for _ in range(args.reps):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(ids)
        tok = int(np.argmax(last_logits(llm)))
        prefill.append(time.perf_counter() - t0)
        out = [tok]
        t1 = time.perf_counter()
        for _ in range(args.new_tokens - 1):
            llm.eval([tok])
            tok = int(np.argmax(last_logits(llm)))
            out.append(tok)
        decode.append(time.perf_counter() - t1)
        tokens = out
    steps = args.new_tokens - 1
    d = statistics.median(decode)
    print(
        json.dumps(
            {
                **start,
                "bench": "llama_cpp_sample",
                "model": args.model,
                "llama_cpp_python": llama_cpp.__version__,
                "batch": 1,
                "prompt_tokens": len(ids),
                "tokenizer_matches_emorg": own_ids == ids,
                "new_tokens": args.new_tokens,
                "reps": args.reps,
                "load_s": round(load_s, 3),
                "prefill_s": round(statistics.median(prefill), 4),
                "prefill_s_all": [round(x, 4) for x in prefill],
                "decode_s": round(d, 4),
                "decode_s_all": [round(x, 4) for x in decode],
                "decode_tok_s": round(steps / d, 2),
                "greedy_ids": tokens,
                "greedy_text": llm.detokenize(tokens).decode("utf-8", errors="replace"),
                "peak_rss_mb": status_mb("VmHWM:"),
                "peak_rss_reset": peak_reset,
                "loadavg_end": loadavg(),
            }
        ),
        flush=True,
    )


NUMBER = re.compile(r"\+?[0-9]+")


def top20_score(llm, logits):
    """The papers' rule, as emorg's NumberDistribution::from_top_logprobs."""
    x = logits.astype(np.float64)
    x = x - x.max()
    p = np.exp(x)
    p /= p.sum()
    top = np.argsort(-p, kind="stable")[:20]
    probs = {}
    for i in top:
        piece = llm.detokenize([int(i)]).decode("utf-8", errors="replace").strip()
        if NUMBER.fullmatch(piece) and int(piece) <= 100:
            probs[int(piece)] = probs.get(int(piece), 0.0) + float(p[i])
    mass = sum(probs.values())
    score = sum(n * q for n, q in probs.items()) / mass if mass >= 0.25 else None
    return {
        "score": None if score is None else round(score, 2),
        "number_mass": round(mass, 4),
    }


def bench_judge(args, prompts):
    j = prompts["judge"]
    start = common(args.threads)
    peak_reset = reset_peak_rss()
    llm, load_s = load(args.judge, args.threads)
    prefix = j["prefix_ids"]
    tok_match = all(
        llm.tokenize(a["text"].encode("utf-8"), add_bos=False, special=True) == a["ids"]
        for a in j["answers"]
    )
    llm.reset()
    t = time.perf_counter()
    llm.eval(prefix)
    prefix_s = time.perf_counter() - t
    per_answer, scores, kept = [], [], []
    for _ in range(args.reps):
        t = time.perf_counter()
        rep_scores, rep_kept = [], []
        for a in j["answers"]:
            rep_kept.append(eval_after_common_prefix(llm, a["ids"]))
            logits = last_logits(llm)
            rep_scores.append(top20_score(llm, logits))
        per_answer.append((time.perf_counter() - t) / len(j["answers"]))
        scores, kept = rep_scores, rep_kept
    tails = [len(a["ids"]) - k for a, k in zip(j["answers"], kept)]
    print(
        json.dumps(
            {
                **start,
                "bench": "llama_cpp_judge",
                "judge": args.judge,
                "llama_cpp_python": llama_cpp.__version__,
                "answers": len(j["answers"]),
                "reps": args.reps,
                "tokenizer_matches_emorg": tok_match,
                "load_s": round(load_s, 3),
                "prefix_tokens": len(prefix),
                "answer_tail_tokens": tails,
                "prefix_prefill_s": round(prefix_s, 4),
                "top20_s_per_answer": round(statistics.median(per_answer), 4),
                "top20_s_per_answer_all": [round(x, 4) for x in per_answer],
                "top20_scores": scores,
                "peak_rss_mb": status_mb("VmHWM:"),
                "peak_rss_reset": peak_reset,
                "loadavg_end": loadavg(),
            }
        ),
        flush=True,
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("part", choices=["sample", "judge"])
    ap.add_argument("--prompts", required=True, help="JSON from `emorg-worker bench prompts`")
    ap.add_argument("--model", help="the sampled model's GGUF (part sample)")
    ap.add_argument("--judge", help="the judge's GGUF (part judge)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    with open(args.prompts) as f:
        prompts = json.load(f)
    if args.part == "sample":
        if not args.model:
            ap.error("sample needs --model")
        bench_sample(args, prompts)
    else:
        if not args.judge:
            ap.error("judge needs --judge")
        bench_judge(args, prompts)


if __name__ == "__main__":
    sys.exit(main())
