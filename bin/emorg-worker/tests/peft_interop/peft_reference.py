"""The PEFT side of bin/emorg-worker/tests/peft_interop.rs: Python PEFT itself writes LoRA
adapters for emorg to load, and loads adapters emorg wrote, on the same base checkpoints.

    python peft_reference.py write BASE_DIR OUT_DIR SEED
        A PEFT LoRA on BASE_DIR (rank 4 on all seven projection modules of the first and last
        layers, rsLoRA), with lora_A and lora_B drawn at random so that the adapter changes the
        logits, saved by PeftModel.save_pretrained to OUT_DIR; OUT_DIR/reference.json holds the
        token ids of TEXT (the checkpoint's tokenizer, no BOS added) and PEFT's float32
        logits at every position.
    python peft_reference.py load BASE_DIR ADAPTER_DIR OUT_JSON
        PeftModel.from_pretrained(BASE_DIR, ADAPTER_DIR): the same ids and logits for TEXT, as
        OUT_JSON.
"""

import json
import os
import sys

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

TEXT = "The quick brown fox: naïve café 12345 <|im_start|>user\nhi<|im_end|>"
MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def base(base_dir):
    return AutoModelForCausalLM.from_pretrained(
        base_dir, dtype=torch.float32, attn_implementation="eager"
    ).eval()


def reference(model, base_dir):
    tok = AutoTokenizer.from_pretrained(base_dir)
    # The text as it is, no BOS added: what `emorg-worker logits --text` feeds the model.
    ids = tok(TEXT, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float()
    return {"text": TEXT, "ids": ids, "logits": logits.tolist()}


def write(base_dir, out_dir, seed):
    model = base(base_dir)
    n_layers = model.config.num_hidden_layers
    config = LoraConfig(
        r=4,
        lora_alpha=8,
        use_rslora=True,
        target_modules=MODULES,
        layers_to_transform=[0, n_layers - 1],
        lora_dropout=0.0,
        bias="none",
        task_type="CAUSAL_LM",
    )
    peft = get_peft_model(model, config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
    peft.eval()
    peft.save_pretrained(out_dir)
    with open(os.path.join(out_dir, "reference.json"), "w") as f:
        json.dump(reference(peft, base_dir), f)


def load(base_dir, adapter_dir, out_json):
    peft = PeftModel.from_pretrained(base(base_dir), adapter_dir).eval()
    n = sum(1 for name, _ in peft.named_parameters() if "lora_B" in name)
    ref = reference(peft, base_dir)
    ref["lora_b_tensors"] = n
    with open(out_json, "w") as f:
        json.dump(ref, f)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "write":
        write(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) == 5 and sys.argv[1] == "load":
        load(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
