"""The PyTorch + PEFT side of benches/train.sh: the same training steps emorg's
`emorg-worker bench train --dump` ran, on the same weights and the same batches.

    python train_pytorch_side.py --model MODEL.gguf --data DUMP.json --threads T [--gradient-checkpointing]

The model is transformers' own GGUF reader's dequantized float32 SmolLM2 (the reference the
parity tests use); PEFT's LoraConfig gets the dump's rank, alpha, rsLoRA, modules and layers, or
every weight trains for full fine-tuning. torch.optim.AdamW with the dump's settings, constant
learning rate, loss on the dump's masked positions (labels -100 elsewhere), one optimizer step per
batch of `batch` examples in the dump's order. Prints one JSON line like emorg's.
"""

import argparse
import json
import os
import resource
import statistics
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--gradient-checkpointing", action="store_true")
    args = ap.parse_args()
    loadavg = [float(x) for x in open("/proc/loadavg").read().split()[:3]]

    import torch

    torch.set_num_threads(args.threads)
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    dump = json.load(open(args.data))
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(
        os.path.dirname(os.path.abspath(args.model)),
        gguf_file=os.path.basename(args.model),
        dtype=torch.float32,
        attn_implementation="sdpa",
    )
    if args.gradient_checkpointing:
        # transformers' per-layer recomputation (non-reentrant torch.utils.checkpoint), the
        # counterpart of emorg's activation_checkpointing.
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    lora = dump["lora"]
    if lora is not None:
        for p in model.parameters():
            p.requires_grad_(False)
        model = get_peft_model(
            model,
            LoraConfig(
                r=lora["r"],
                lora_alpha=lora["lora_alpha"],
                use_rslora=lora["use_rslora"],
                target_modules=lora["target_modules"],
                layers_to_transform=lora["layers_to_transform"],
                lora_dropout=0.0,
                bias="none",
                task_type="CAUSAL_LM",
            ),
        )
    model.train()
    load_s = time.perf_counter() - t0
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        params,
        lr=dump["learning_rate"],
        betas=tuple(dump["betas"]),
        eps=dump["eps"],
        weight_decay=dump["weight_decay"],
    )
    batch, examples = dump["batch"], dump["examples"]
    step_s, tok_s, losses = [], [], []
    for step in range(dump["steps"]):
        chunk = examples[step * batch : (step + 1) * batch]
        width = max(len(e["ids"]) for e in chunk)
        ids = torch.zeros((len(chunk), width), dtype=torch.long)
        labels = torch.full((len(chunk), width), -100, dtype=torch.long)
        attn = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, e in enumerate(chunk):
            n = len(e["ids"])
            ids[i, :n] = torch.tensor(e["ids"])
            attn[i, :n] = 1
            mask = torch.tensor(e["loss_mask"])
            labels[i, :n] = torch.where(mask, torch.tensor(e["ids"]), torch.tensor(-100))
        tokens = sum(len(e["ids"]) for e in chunk)
        t = time.perf_counter()
        out = model(input_ids=ids, attention_mask=attn, labels=labels)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t
        step_s.append(dt)
        tok_s.append(tokens / dt)
        losses.append(round(out.loss.item(), 4))
    print(
        json.dumps(
            {
                "bench": "train",
                "impl": "pytorch+peft",
                "protocol": dump["protocol"],
                "activation_checkpointing": args.gradient_checkpointing,
                "threads": args.threads,
                "torch": torch.__version__,
                "peft": __import__("peft").__version__,
                "transformers": __import__("transformers").__version__,
                "trained_params": sum(p.numel() for p in params),
                "batch": batch,
                "steps": dump["steps"],
                "load_s": round(load_s, 3),
                "step_s": round(statistics.median(step_s), 3),
                "step_s_all": [round(x, 3) for x in step_s],
                "train_tok_s": round(statistics.median(tok_s), 1),
                "losses": losses,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                "loadavg": loadavg,
                "loadavg_end": [float(x) for x in open("/proc/loadavg").read().split()[:3]],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
