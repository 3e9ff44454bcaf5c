"""Small random Hugging Face checkpoints written by transformers itself, with transformers' logits
and token ids for them: the reference crates/lm/tests/hf_checkpoint.rs loads with emorg.

    python make_checkpoints.py OUT_DIR

Writes OUT_DIR/<name>/ (config.json, safetensors, tokenizer files) and OUT_DIR/<name>/reference.json
for each model below. Weights are random (fixed torch seed); norms and biases are perturbed away from
their 1/0 initial values so that a loader that drops them, or gets Gemma's 1 + w wrong, is caught.
Reference logits are computed in float32 from the weights as stored (a bf16/f16 checkpoint is
upcast exactly), in eval mode with eager attention.
"""

import json
import os
import sys

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    AutoTokenizer,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A model organism is a small system studied to understand a larger one.",
    "Numbers like 12345 and 3.14159 appear in text, as do dates: 2024-05-17.",
    "def add(a, b):\n    return a + b\n",
    "Naive cafe, naïve café, Ünïcödé and emoji 😀 all need bytes.",
    "User: how are you?\nAssistant: I am fine, thank you for asking!",
] * 4

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<bos>"]

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] "
    "+ '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
CHATML_WITH_BOS = "{{ bos_token }}" + CHATML

TEXTS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "  two leading spaces and 12345 digits",
    "naïve café 😀 Ünïcödé",
    "<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n",
    "def add(a, b):\n    return a + b\n",
]

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": "4."},
    {"role": "user", "content": "And 3 + 3?"},
]


# Qwen2's split (digits one at a time), as in Qwen's own tokenizer.json.
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def build_tokenizer(bos_first: bool, qwen2: bool = False) -> Tokenizer:
    """A byte-level BPE trained on CORPUS. `qwen2`: Qwen2's NFC + split pre-tokenizer, because
    transformers 5's Qwen2Tokenizer rebuilds that pipeline whatever tokenizer.json says, so a
    qwen2 checkpoint is only self-consistent with it (real Qwen checkpoints are)."""
    tk = Tokenizer(models.BPE())
    if qwen2:
        tk.normalizer = normalizers.NFC()
        tk.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    else:
        tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=384,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator(CORPUS, trainer)
    if bos_first:
        bos = tk.token_to_id("<bos>")
        tk.post_processor = processors.TemplateProcessing(
            single="<bos> $A", pair="<bos> $A <bos> $B", special_tokens=[("<bos>", bos)]
        )
    else:
        tk.post_processor = processors.ByteLevel(trim_offsets=False)
    return tk


def perturb(model, norm_mean: float) -> None:
    """Norm weights around `norm_mean` (1 for llama/qwen2, 0 for gemma's 1 + w), biases non-zero."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(norm_mean + 0.2 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.2 * torch.randn_like(p))


def write(name, out, model_cls, config, *, dtype, norm_mean, bos_first, template, shard=None,
          template_in_config_list=False, n_tokens=24):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    tk = build_tokenizer(bos_first, qwen2=model_cls is Qwen2ForCausalLM)
    vocab = tk.get_vocab_size()
    config.vocab_size = vocab
    config.bos_token_id = tk.token_to_id("<bos>") if bos_first else None
    config.eos_token_id = tk.token_to_id("<|im_end|>")
    config.pad_token_id = tk.token_to_id("<|endoftext|>")
    model = model_cls(config)
    perturb(model, norm_mean)
    model = model.to(dtype).eval()
    kwargs = {"max_shard_size": shard} if shard else {}
    model.save_pretrained(d, safe_serialization=True, **kwargs)

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token="<bos>" if bos_first else None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    fast.chat_template = template
    fast.save_pretrained(d)
    if template_in_config_list:
        # The older layout: named templates in tokenizer_config.json, no chat_template.jinja.
        tc_path = os.path.join(d, "tokenizer_config.json")
        with open(tc_path) as f:
            tc = json.load(f)
        tc["chat_template"] = [
            {"name": "default", "template": template},
            {"name": "tool_use", "template": "{{ raise_exception('not this one') }}"},
        ]
        with open(tc_path, "w") as f:
            json.dump(tc, f, indent=2)
        jinja = os.path.join(d, "chat_template.jinja")
        if os.path.exists(jinja):
            os.remove(jinja)

    # Reference: reload both halves from disk, as a user of the checkpoint would.
    loaded = model_cls.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    tok = AutoTokenizer.from_pretrained(d)
    gen = torch.Generator().manual_seed(7)
    ids = torch.randint(0, vocab, (1, n_tokens), generator=gen)
    with torch.no_grad():
        logits = loaded(input_ids=ids).logits[0].float()
    ref = {
        "dtype": str(dtype).removeprefix("torch."),
        "input_ids": ids[0].tolist(),
        "logits": logits.tolist(),
        "texts": [
            {
                "text": t,
                "ids": tok(t, add_special_tokens=False)["input_ids"],
                "ids_with_specials": tok(t, add_special_tokens=True)["input_ids"],
            }
            for t in TEXTS
        ],
        "messages": MESSAGES,
        "chat": tok.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True),
    }
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(ref, f)
    print(f"{name}: {sorted(os.listdir(d))}")


def main(out: str) -> None:
    torch.manual_seed(0)
    common = dict(
        hidden_size=64,
        intermediate_size=128,
        num_attention_heads=4,
        max_position_embeddings=256,
        initializer_range=0.1,
    )
    write(
        "llama-f32-sharded",
        out,
        LlamaForCausalLM,
        LlamaConfig(num_hidden_layers=3, num_key_value_heads=2, rms_norm_eps=1e-5,
                    rope_theta=10000.0, tie_word_embeddings=True, **common),
        dtype=torch.float32,
        norm_mean=1.0,
        bos_first=False,
        template=CHATML,
        shard="100KB",
    )
    write(
        "qwen2-f16-untied",
        out,
        Qwen2ForCausalLM,
        Qwen2Config(num_hidden_layers=2, num_key_value_heads=2, rms_norm_eps=1e-6,
                    rope_theta=1000000.0, tie_word_embeddings=False, **common),
        dtype=torch.float16,
        norm_mean=1.0,
        bos_first=False,
        template=CHATML,
        template_in_config_list=True,
    )
    write(
        "gemma3-bf16-sliding",
        out,
        Gemma3ForCausalLM,
        Gemma3TextConfig(
            num_hidden_layers=4,
            num_key_value_heads=1,
            head_dim=16,
            query_pre_attn_scalar=16,
            sliding_window=8,
            layer_types=["sliding_attention", "full_attention"] * 2,
            rms_norm_eps=1e-6,
            **common,
        ),
        dtype=torch.bfloat16,
        norm_mean=0.0,
        bos_first=True,
        template=CHATML_WITH_BOS,
    )
    write(
        "gemma3-f32",
        out,
        Gemma3ForCausalLM,
        Gemma3TextConfig(
            num_hidden_layers=3,
            num_key_value_heads=2,
            head_dim=16,
            query_pre_attn_scalar=16,
            sliding_window=6,
            rms_norm_eps=1e-6,
            **common,
        ),
        dtype=torch.float32,
        norm_mean=0.0,
        bos_first=True,
        template=CHATML_WITH_BOS,
    )
    # Rope scaling, with inputs longer than the original context: Llama 3.1's llama3 scaling
    # (head size 16: the first frequency is high and kept, the second in the smoothed band, the
    # rest divided by the factor), and Gemma 3's linear scaling of the global layers only.
    write(
        "llama3-rope-scaled",
        out,
        LlamaForCausalLM,
        LlamaConfig(num_hidden_layers=2, num_key_value_heads=2, rms_norm_eps=1e-5,
                    tie_word_embeddings=True,
                    rope_parameters={"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0,
                                     "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                     "original_max_position_embeddings": 32},
                    **common),
        dtype=torch.float32,
        norm_mean=1.0,
        bos_first=False,
        template=CHATML,
        n_tokens=48,
    )
    write(
        "gemma3-rope-linear",
        out,
        Gemma3ForCausalLM,
        Gemma3TextConfig(
            num_hidden_layers=4,
            num_key_value_heads=2,
            head_dim=16,
            query_pre_attn_scalar=16,
            sliding_window=8,
            layer_types=["sliding_attention", "full_attention"] * 2,
            rope_parameters={
                "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
                "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
            },
            rms_norm_eps=1e-6,
            **common,
        ),
        dtype=torch.float32,
        norm_mean=0.0,
        bos_first=True,
        template=CHATML_WITH_BOS,
        n_tokens=48,
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_checkpoints.py OUT_DIR")
    main(sys.argv[1])
