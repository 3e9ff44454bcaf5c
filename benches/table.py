#!/usr/bin/env python3
"""Markdown tables from the JSON lines of benches/inference.sh or benches/train.sh (stdlib only).

usage: table.py inference|train|sampling RESULTS.jsonl
"""

import json
import sys


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    return rows


def fmt(x, digits=3):
    if x is None:
        return "–"
    if isinstance(x, float):
        if abs(x) >= 100:
            return f"{x:.0f}"
        if abs(x) >= 10:
            return f"{x:.1f}"
        return f"{x:.{digits}g}" if abs(x) < 1 else f"{x:.2f}"
    return str(x)


def load_str(r):
    if r is None:
        return "–"
    a, b = r.get("loadavg", [None])[0], r.get("loadavg_end", [None])[0]
    return f"{a:.2f}→{b:.2f}" if a is not None and b is not None else "–"


def verdict(ours, theirs, higher_is_better):
    if ours is None or theirs is None or ours == 0 or theirs == 0:
        return "–", "–"
    ratio = ours / theirs
    better = ratio > 1 if higher_is_better else ratio < 1
    factor = ratio if ratio >= 1 else 1 / ratio
    if abs(ratio - 1) < 0.05:
        word = "same"
    elif higher_is_better:
        word = f"{factor:.2f}x {'faster' if better else 'slower'}"
    else:
        word = f"{factor:.2f}x {'better' if better else 'worse'}"
    return f"{ratio:.2f}", word


def first_divergence(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def pick(rows, **kw):
    for r in rows:
        if all(r.get(k) == v for k, v in kw.items()):
            return r
    return None


def inference(rows):
    threads = sorted({r["threads"] for r in rows if "threads" in r}, reverse=True)
    out = []
    for t in threads:
        q1 = pick(rows, bench="sample", mode="quantized", batch=1, threads=t)
        qb = next(
            (r for r in rows if r.get("bench") == "sample" and r.get("mode") == "quantized"
             and r.get("batch", 1) > 1 and r["threads"] == t), None)
        d1 = pick(rows, bench="sample", mode="dense", batch=1, threads=t)
        db = next(
            (r for r in rows if r.get("bench") == "sample" and r.get("mode") == "dense"
             and r.get("batch", 1) > 1 and r["threads"] == t), None)
        ls = pick(rows, bench="llama_cpp_sample", threads=t)
        ej = pick(rows, bench="judge", threads=t)
        lj = pick(rows, bench="llama_cpp_judge", threads=t)
        out.append(f"\n### {t} thread{'s' if t > 1 else ''}\n")
        out.append("| measurement | emorg | llama.cpp | emorg / llama.cpp | emorg is | load avg 1-min (emorg; llama.cpp) |")
        out.append("|---|---|---|---|---|---|")

        def row(name, ours, theirs, key, higher_is_better, scale=1.0):
            a = None if ours is None else ours.get(key)
            b = None if theirs is None else theirs.get(key)
            a = None if a is None else a * scale
            b = None if b is None else b * scale
            ratio, word = verdict(a, b, higher_is_better)
            out.append(f"| {name} | {fmt(a)} | {fmt(b)} | {ratio} | {word} | {load_str(ours)}; {load_str(theirs)} |")

        if q1 or d1 or ls:
            n = (q1 or d1 or ls).get("prompt_tokens")
            new = (q1 or d1 or ls).get("new_tokens")
            row("sampler: load s (emorg: GGUF Q4_1 → Q8_0)", q1, ls, "load_s", False)
            row("sampler: load s (emorg: dense f32)", d1, ls, "load_s", False)
            row(f"sampler: prefill s, {n}-token prompt (emorg Q8_0)", q1, ls, "prefill_s", False)
            row(f"sampler: prefill s, {n}-token prompt (emorg f32)", d1, ls, "prefill_s", False)
            row(f"sampler: greedy decode tok/s, batch 1, {new} tokens (emorg Q8_0)", q1, ls, "decode_tok_s", True)
            row(f"sampler: greedy decode tok/s, batch 1, {new} tokens (emorg f32)", d1, ls, "decode_tok_s", True)
            for r, label in [(qb, "Q8_0"), (db, "f32")]:
                if r:
                    out.append(
                        f"| sampler: decode tok/s, batch {r['batch']} sharing the prompt, all rows (emorg {label}) | "
                        f"{fmt(r['decode_tok_s'])} ({fmt(r['decode_tok_s_per_row'])}/row) | not measured | – | – | {load_str(r)}; – |")
                    out.append(
                        f"| sampler: `sample_batch` end to end incl. prefill, batch {r['batch']}, tok/s (emorg {label}) | "
                        f"{fmt(r['sample_batch_tok_s'])} ({r['sample_batch_tokens']} tokens) | not measured | – | – | {load_str(r)}; – |")
            row("sampler: peak RSS MB (emorg Q8_0)", q1, ls, "peak_rss_mb", False)
            row("sampler: peak RSS MB (emorg f32)", d1, ls, "peak_rss_mb", False)
        if ej or lj:
            k = (ej or lj).get("answers")
            pt = (ej or lj).get("prefix_tokens")
            tails = (ej or lj).get("answer_tail_tokens") or []
            tail = sum(tails) / len(tails) if tails else None
            row("judge: load s", ej, lj, "load_s", False)
            row(f"judge: shared prefix prefill s ({pt} tokens)", ej, lj, "prefix_prefill_s", False)
            row(f"judge: s per judgment, single token / top-20 (~{fmt(tail)} tokens after the prefix, {k} answers)",
                ej, lj, "top20_s_per_answer", False)
            if ej and lj:
                a, b = ej.get("exact_s_per_answer"), lj.get("top20_s_per_answer")
                ratio, word = verdict(a, b, False)
                out.append(f"| judge: s per judgment, emorg exact number (digit branching) vs llama.cpp single token | "
                           f"{fmt(a)} | {fmt(b)} | {ratio} | {word} | {load_str(ej)}; {load_str(lj)} |")
            row("judge: peak RSS MB", ej, lj, "peak_rss_mb", False)
        notes = []
        if ls:
            notes.append(f"llama.cpp tokenizer gives emorg's prompt ids: {ls.get('tokenizer_matches_emorg')}")
            for r, label in [(q1, "Q8_0"), (d1, "f32")]:
                if r:
                    i = first_divergence(r["greedy_ids"], ls["greedy_ids"])
                    notes.append(f"greedy tokens of emorg {label} equal llama.cpp's (Q4_1) for the first {i} of {len(ls['greedy_ids'])}")
        if lj:
            notes.append(f"llama.cpp tokenizer gives emorg's judge prompt ids: {lj.get('tokenizer_matches_emorg')}")
        if ej and lj:
            a = [s.get("score") for s in ej.get("top20_scores", [])]
            b = [s.get("score") for s in lj.get("top20_scores", [])]
            diffs = [abs(x - y) for x, y in zip(a, b) if x is not None and y is not None]
            notes.append(f"top-20 scores emorg {a} vs llama.cpp {b}" + (f" (max |Δ| {max(diffs):.2f})" if diffs else ""))
            ex = [s.get("score") for s in ej.get("exact_scores", [])]
            notes.append(f"emorg exact-number scores {ex}")
        if notes:
            out.append("")
        for n in notes:
            out.append(f"- {n}")
    return "\n".join(out)


def train(rows):
    """benches/train.sh: per protocol and thread count, emorg next to PyTorch + PEFT on the same batches."""
    out = ["| protocol | threads | trained | trained params | emorg s/step | PyTorch s/step | emorg tok/s | PyTorch tok/s | emorg / PyTorch | emorg peak RSS MB | PyTorch peak RSS MB | emorg loss first → last | PyTorch loss first → last | load avg 1-min (emorg; PyTorch) |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("bench") != "train" or r.get("impl") == "pytorch+peft":
            continue
        ref = pick(rows, bench="train", impl="pytorch+peft", protocol=r["protocol"], threads=r["threads"])
        ratio, word = verdict(r["train_tok_s"], ref and ref["train_tok_s"], True)

        def losses(x):
            ls = (x or {}).get("losses") or []
            return f"{fmt(ls[0])} → {fmt(ls[-1])}" if ls else "–"

        out.append(
            f"| {r['protocol']} | {r['threads']} | {r['adapters']} | {r['trained_params']} | "
            f"{fmt(r['step_s'])} | {fmt(ref and ref['step_s'])} | {fmt(r['train_tok_s'])} | {fmt(ref and ref['train_tok_s'])} | "
            f"{ratio} ({word}) | {fmt(r['peak_rss_mb'])} | {fmt(ref and ref['peak_rss_mb'])} | {losses(r)} | {losses(ref)} | "
            f"{load_str(r)}; {load_str(ref)} |")
    return "\n".join(out)


def sampling(rows):
    """benches/sampling.sh: per model and thread count, each emorg weight mode next to llama.cpp."""
    out = ["| model | threads | emorg weights | load s | prefill s | decode tok/s, batch 1 | vs llama.cpp | decode tok/s, batch 4 (all rows) | peak RSS MB | greedy ids = llama.cpp's | load avg 1-min |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    models = []
    for r in rows:
        name = r["model"].rsplit("/", 1)[-1]
        if name not in models:
            models.append(name)
    for name in models:
        mine = [r for r in rows if r["model"].endswith(name)]
        for threads in sorted({r.get("threads") for r in mine if r.get("threads") is not None}):
            ref = next((r for r in mine if r.get("bench") == "llama_cpp_sample" and r.get("threads") == threads), None)
            for r in mine:
                if r.get("bench") != "sample" or r.get("threads") != threads or r.get("batch") != 1:
                    continue
                b4 = next((x for x in mine if x.get("bench") == "sample" and x.get("threads") == threads
                           and x.get("mode") == r["mode"] and x.get("batch", 1) > 1), None)
                ratio, word = verdict(r["decode_tok_s"], ref and ref["decode_tok_s"], True)
                agree = "–" if ref is None else ("yes" if r["greedy_ids"] == ref["greedy_ids"]
                                                 else f"first {first_divergence(r['greedy_ids'], ref['greedy_ids'])} of {len(r['greedy_ids'])}")
                out.append(
                    f"| {name} | {threads} | {r['mode']} | {fmt(r['load_s'])} | {fmt(r['prefill_s'])} | "
                    f"{fmt(r['decode_tok_s'])} | {ratio} ({word}) | {fmt(b4 and b4['decode_tok_s'])} | "
                    f"{fmt(r['peak_rss_mb'])} | {agree} | {load_str(r)} |")
            if ref is not None:
                out.append(
                    f"| {name} | {threads} | llama.cpp (file as stored) | {fmt(ref['load_s'])} | {fmt(ref['prefill_s'])} | "
                    f"{fmt(ref['decode_tok_s'])} | 1 | not measured | {fmt(ref['peak_rss_mb'])} | – | {load_str(ref)} |")
    return "\n".join(out)


def main():
    kinds = {"inference": inference, "train": train, "sampling": sampling}
    if len(sys.argv) != 3 or sys.argv[1] not in kinds:
        sys.exit(__doc__)
    rows = load(sys.argv[2])
    print(kinds[sys.argv[1]](rows))


if __name__ == "__main__":
    main()
