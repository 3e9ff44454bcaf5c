"""Reference token ids for crates/lm/tests/tokenizer_parity.rs, from an independent implementation.

Usage: python tokenizer_reference.py BACKEND MODEL.gguf TEXTS.jsonl OUT.json
  BACKEND  llama_cpp: llama.cpp via llama-cpp-python (vocab only), special tokens parsed;
           hf: Hugging Face transformers' tokenizer converted from the same GGUF.
  TEXTS    one JSON object per line with a "text" field.
Writes {"backend", "version", "ids": [[id, ...] per line]}; no BOS/EOS is added.
"""

import json
import os
import sys


def llama_cpp_ids(model, texts):
    import llama_cpp

    llm = llama_cpp.Llama(model_path=model, vocab_only=True, verbose=False)
    ids = [llm.tokenize(t.encode("utf-8"), add_bos=False, special=True) for t in texts]
    return "llama-cpp-python " + llama_cpp.__version__, ids


def hf_ids(model, texts):
    import transformers
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(model)), gguf_file=os.path.basename(model))
    ids = [tok.encode(t, add_special_tokens=False) for t in texts]
    return f"transformers {transformers.__version__} ({type(tok).__name__})", ids


def main():
    backend, model, texts_path, out_path = sys.argv[1:5]
    with open(texts_path, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    version, ids = {"llama_cpp": llama_cpp_ids, "hf": hf_ids}[backend](model, texts)
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"backend": backend, "version": version, "ids": [list(map(int, x)) for x in ids]}, f)


if __name__ == "__main__":
    main()
