"""Writes an F16 GGUF with random weights in the shape of a Llama checkpoint, for speed comparisons.

Random weights do not change how fast a matrix product runs, so a file with the tensor shapes, names and metadata of
Llama-3.2-1B or Llama-3.1-8B measures what the real checkpoint would, without downloading it (the machines here reach
no model hub). llama-quantize then makes the Q4_K_M file both llama.cpp and razorkv read (bench/vs-llama-cpp.js).

    python bench/make_random_gguf.py --shape llama-3.2-1b --out /path/model.f16.gguf

The tensors stream to the file one at a time (an 8B F16 file is 16 GB; at most one tensor, 1 GiB, is in memory).
Values: a 16 Mi-element pool of N(0, 0.02²) halves, repeated (each tensor starts at a different offset); RMSNorm
weights are ones, as F32 (what convert_hf_to_gguf.py writes). The vocabulary is a placeholder SentencePiece-style
list (<unk>, <s>, </s>, the 256 byte tokens, then t<i>) so that llama.cpp can load the file; its text means nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

try:
    import gguf
except ImportError:  # the gguf-py of llama.cpp's source tree, when the venv has none
    import subprocess

    src = subprocess.run([str(Path(__file__).resolve().parents[2] / "shared/bin/llama-cpp-tools"), "--src"], capture_output=True, text=True, check=True).stdout.strip()
    sys.path.insert(0, str(Path(src) / "gguf-py"))
    import gguf

# The config.json fields of the two checkpoints that decide tensor shapes (Hugging Face meta-llama/*).
SHAPES = {
    "llama-3.2-1b": dict(hidden=2048, layers=16, heads=32, kv_heads=8, head_dim=64, ffn=8192, vocab=128256, tied=True, rope_theta=500000.0, context=131072),
    "llama-3.1-8b": dict(hidden=4096, layers=32, heads=32, kv_heads=8, head_dim=128, ffn=14336, vocab=128256, tied=False, rope_theta=500000.0, context=131072),
}


def tensors(s: dict) -> list[tuple[str, tuple[int, ...], bool]]:
    """(name, numpy shape [out, in], is_norm) in llama.cpp's order."""
    h, q, kv, f = s["hidden"], s["heads"] * s["head_dim"], s["kv_heads"] * s["head_dim"], s["ffn"]
    out = [("token_embd.weight", (s["vocab"], h), False)]
    for i in range(s["layers"]):
        p = f"blk.{i}."
        out += [
            (p + "attn_norm.weight", (h,), True),
            (p + "attn_q.weight", (q, h), False),
            (p + "attn_k.weight", (kv, h), False),
            (p + "attn_v.weight", (kv, h), False),
            (p + "attn_output.weight", (h, q), False),
            (p + "ffn_norm.weight", (h,), True),
            (p + "ffn_gate.weight", (f, h), False),
            (p + "ffn_up.weight", (f, h), False),
            (p + "ffn_down.weight", (h, f), False),
        ]
    out.append(("output_norm.weight", (h,), True))
    if not s["tied"]:
        out.append(("output.weight", (s["vocab"], h), False))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    s = SHAPES[args.shape]

    w = gguf.GGUFWriter(args.out, arch="llama")
    w.add_name(f"random-{args.shape}")
    w.add_context_length(s["context"])
    w.add_embedding_length(s["hidden"])
    w.add_block_count(s["layers"])
    w.add_feed_forward_length(s["ffn"])
    w.add_head_count(s["heads"])
    w.add_head_count_kv(s["kv_heads"])
    w.add_rope_dimension_count(s["head_dim"])
    w.add_key_length(s["head_dim"])
    w.add_value_length(s["head_dim"])
    w.add_rope_freq_base(s["rope_theta"])
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(s["vocab"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    specials = ["<unk>", "<s>", "</s>"]
    tokens = specials + [f"<0x{b:02X}>" for b in range(256)]
    tokens += [f"t{i}" for i in range(s["vocab"] - len(tokens))]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL] + [gguf.TokenType.BYTE] * 256
    types += [gguf.TokenType.NORMAL] * (s["vocab"] - len(types))
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * s["vocab"])
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)

    plan = tensors(s)
    for name, shape, norm in plan:
        dtype = np.float32 if norm else np.float16
        w.add_tensor_info(name, shape, np.dtype(dtype), int(np.prod(shape)) * np.dtype(dtype).itemsize)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()

    rng = np.random.default_rng(19)
    pool = (rng.standard_normal(1 << 24, dtype=np.float32) * 0.02).astype(np.float16)
    total = sum(int(np.prod(shape)) for _, shape, _ in plan)
    done = 0
    for i, (name, shape, norm) in enumerate(plan):
        n = int(np.prod(shape))
        if norm:
            data = np.ones(shape, dtype=np.float32)
        else:
            start = (i * 7919) % pool.size
            data = np.resize(np.roll(pool, -start), n).reshape(shape)
        w.write_tensor_data(data)
        done += n
        if i % 20 == 0 or i == len(plan) - 1:
            print(f"make_random_gguf: {done / total:6.1%} of {total / 1e9:.2f}G weights written", file=sys.stderr, flush=True)
    w.close()


if __name__ == "__main__":
    main()
