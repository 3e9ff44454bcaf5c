"""A real model as a Hugging Face checkpoint, converted by transformers' own GGUF reader, with
transformers' float32 logits for it: the reference crates/lm/tests/hf_checkpoint.rs loads with emorg.

    python convert_gguf.py MODELS_DIR GGUF_NAME OUT_DIR

transformers dequantizes the GGUF (and un-permutes llama q/k) into a float model; it refuses to
save a GGUF-loaded model, so the weights are copied into a fresh one, saved in bf16 with
safetensors next to the converted tokenizer, reloaded from disk in float32, and run on one text.
OUT_DIR/ref.json holds the text, its ids, the last position's logits and every position's argmax.
"""

import json
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

TEXT = "The capital of France is Paris. The capital of Germany is"


def main(models: str, name: str, out: str) -> None:
    tok = AutoTokenizer.from_pretrained(models, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(models, gguf_file=name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    # A tied head is the only tensor allowed to be absent from the GGUF-loaded state.
    assert not unexpected and all(m == "lm_head.weight" for m in missing), (missing, unexpected)
    fresh.to(torch.bfloat16).save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)

    ref = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32, attn_implementation="eager").eval()
    tok = AutoTokenizer.from_pretrained(out)
    ids = tok(TEXT, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = ref(input_ids=torch.tensor([ids])).logits[0]
    with open(f"{out}/ref.json", "w") as f:
        json.dump(
            {
                "text": TEXT,
                "ids": ids,
                "last_logits": logits[-1].tolist(),
                "argmax": logits.argmax(-1).tolist(),
            },
            f,
        )


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: convert_gguf.py MODELS_DIR GGUF_NAME OUT_DIR")
    main(*sys.argv[1:])
