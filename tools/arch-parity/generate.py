#!/usr/bin/env python3
"""Tiny random-weight models of each Llama-family architecture, and transformers' log-probabilities on them.

For every model in MODELS this script

1. builds the model with transformers from a config (no download), with weights drawn at the scale of a trained
   model's (so attention is sharp and position matters: a wrong RoPE moves the log-probs by far more than 1e-4);
2. saves it as model.safetensors + config.json, then rewrites config.json in the format the entry asks for
   (transformers 4.x: rope_theta + rope_scaling with "type"/"rope_type"; 5.x: rope_parameters, as 5.x saves it);
3. reloads that directory with transformers and records, for a 300-token input, the float32 forward's
   log-probabilities (float64 log_softmax) at every position, plus the RoPE inverse frequencies and attention
   scaling transformers used, and how far the log-probs move when the RoPE scaling is removed (the fixture's
   sensitivity: a test that ignored the scaling would be off by that much);
4. converts the directory to an F32 GGUF with llama.cpp's convert_hf_to_gguf.py (a throwaway SentencePiece
   vocabulary is trained for the converter, which needs one; the tests feed token ids and never tokenize).

Output: packages/model-zoo/test/fixtures/arch/<name>/{config.json, model.safetensors, model-f32.gguf} and
packages/model-zoo/test/fixtures/arch/reference.json. See README.md for the exact command and versions.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "packages/model-zoo/test/fixtures/arch"
SEQ_LEN = 300
VOCAB = 128
FULL_ROW_EVERY = 50  # positions whose whole log-prob row is stored

COMMON = dict(
    vocab_size=VOCAB, hidden_size=64, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, rms_norm_eps=1e-5, max_position_embeddings=512, bos_token_id=1, eos_token_id=2,
)

# LongRoPE lists for head_dim 16 (8 frequencies), shaped like Phi-3.5-mini's 48: short ones near 1, long ones rising
# from ≈ 1 at the highest frequency to ≈ 64 at the lowest
PHI3_SHORT = [1.0, 1.02, 1.05, 1.1, 1.3, 1.7, 2.0, 2.8]
PHI3_LONG = [1.08, 1.34, 2.62, 4.79, 12.2, 30.42, 50.34, 62.61]

# name: (model_type, config fields, config.json format, rope scaling dict or None, convert to GGUF?)
# Sliding windows are far below the 300-token input, so every windowed layer drops most of the context.
MODELS = {
    # Llama 3.1-shaped: llama3 scaling with a small original context so that 300 tokens use every band
    "llama3": ("llama", dict(tie_word_embeddings=True, rope_theta=10000.0),
               "5.x", dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                           original_max_position_embeddings=64), True),
    "llama-linear": ("llama", dict(tie_word_embeddings=True, rope_theta=10000.0),
                     "4.x-type", dict(type="linear", factor=4.0), True),
    # dynamic NTK past max_position_embeddings (128): the 300-token input scales the base. convert_hf_to_gguf
    # writes nothing for "dynamic" on llama, so there is no GGUF of it (llama.cpp would run plain RoPE).
    "llama-dynamic": ("llama", dict(tie_word_embeddings=True, rope_theta=10000.0, max_position_embeddings=128),
                      "4.x-rope_type", dict(rope_type="dynamic", factor=4.0), False),
    "llama-yarn": ("llama", dict(tie_word_embeddings=True, rope_theta=10000.0),
                   "5.x", dict(rope_type="yarn", factor=8.0, original_max_position_embeddings=64, beta_fast=16.0,
                               beta_slow=2.0, attention_factor=1.25), True),
    # Qwen2.5-shaped: QKV biases, untied output, YaRN as its model card writes it (4.x "type")
    "qwen2-yarn": ("qwen2", dict(tie_word_embeddings=False, rope_theta=1000000.0, use_sliding_window=False,
                                 sliding_window=None, max_window_layers=2),
                   "4.x-type", dict(type="yarn", factor=4.0, original_max_position_embeddings=128), True),
    # Qwen3-shaped: per-head q/k RMSNorm, head_dim 32 ≠ hidden/heads, YaRN as its model card suggests
    "qwen3-yarn": ("qwen3", dict(tie_word_embeddings=True, rope_theta=1000000.0, head_dim=32,
                                 use_sliding_window=False, sliding_window=None, max_window_layers=2),
                   "5.x", dict(rope_type="yarn", factor=4.0, original_max_position_embeddings=128), True),
    # Mistral 7B v0.1-shaped: a sliding window on every layer (4.x config as its hub card). The converter writes no
    # window for llama-architecture GGUFs (llama.cpp runs them with full attention), so the window is added to the
    # GGUF as llama.attention.sliding_window (see add_gguf_keys)
    "mistral-swa": ("mistral", dict(tie_word_embeddings=False, rope_theta=10000.0, sliding_window=64),
                    "4.x-type", None, True),
    # Gemma 2-shaped: local (window 48) and global layers alternating, (1 + w) norms, GeGLU, √hidden embedding scale,
    # attention and final logit soft-capping set low enough to bite on random weights, head_dim 32 ≠ 64/4, and
    # query_pre_attn_scalar = head_dim (the GGUF has no key for it: llama.cpp uses 1/√head_dim below 27B)
    "gemma2": ("gemma2", dict(tie_word_embeddings=True, rope_theta=10000.0, head_dim=32, query_pre_attn_scalar=32,
                              sliding_window=48, attn_logit_softcapping=4.0, final_logit_softcapping=8.0,
                              hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6),
               "4.x-type", None, True),
    # Gemma 3-shaped text model: 5 local layers (window 48, RoPE base 1e4) then one global (base 1e6, linear ×8 as
    # Gemma 3 4B+), per-head q/k norms; 4.x config as the hub writes it (sliding_window_pattern, rope_local_base_freq)
    "gemma3": ("gemma3_text", dict(tie_word_embeddings=True, rope_theta=1000000.0, rope_local_base_freq=10000.0,
                                   head_dim=32, query_pre_attn_scalar=32, sliding_window=48, sliding_window_pattern=6,
                                   num_hidden_layers=6, hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6),
               "4.x-rope_type", dict(rope_type="linear", factor=8.0), True),
    # Phi-3.5-mini / Phi-3-mini-128k-shaped, 4.x config as the hub writes it: fused qkv_proj and gate_up_proj, untied,
    # LongRoPE with the original context at the top level (128, so the 300-token input takes the long factors) and
    # max_position_embeddings 512 (attention factor √(1 + ln 4 / ln 128)); a sliding window longer than the context,
    # as Phi-3.5's 262144 of 131072, which masks nothing; no pad token (Phi3Config's 32000 is outside the vocabulary)
    "phi3-longrope": ("phi3", dict(tie_word_embeddings=False, rope_theta=10000.0, original_max_position_embeddings=128,
                                   sliding_window=1024, pad_token_id=None),
                      "4.x-type", dict(type="longrope", short_factor=PHI3_SHORT, long_factor=PHI3_LONG), True),
    # the same architecture as transformers 5.x writes it (rope_parameters, with the original context inside too), with
    # Phi-3-mini-4k's sliding window (2047 of 4096 there) shorter than the input
    "phi3-swa": ("phi3", dict(tie_word_embeddings=False, rope_theta=10000.0, original_max_position_embeddings=128,
                              sliding_window=64, pad_token_id=None),
                 "5.x", dict(rope_type="longrope", short_factor=PHI3_SHORT, long_factor=PHI3_LONG), True),
}

# continued legs that start below the LongRoPE threshold: the prefill takes the short factors, the continuation the
# long ones, and the cached keys keep their short rotation (other models continue at CHUNK_AT)
CONTINUE_AT = {"phi3-longrope": 100, "phi3-swa": 100}

# keys the converter does not write but the model has (llama.cpp ignores sliding windows on llama-architecture files)
GGUF_EXTRA_KEYS = {"mistral-swa": {"llama.attention.sliding_window": 64}}

GEMMA = ("gemma2", "gemma3_text")


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def build_config(model_type: str, fields: dict, rope: dict | None):
    from transformers import AutoConfig

    kwargs = {**COMMON, **fields}
    theta = kwargs.pop("rope_theta")
    params = {"rope_theta": theta, "rope_type": "default"}
    if rope is not None:
        params = {"rope_theta": theta, **{("rope_type" if k == "type" else k): v for k, v in rope.items()}}
    if model_type == "gemma3_text":
        # per layer type: the scaling applies to the global layers only, the local ones have their own base
        local = kwargs.pop("rope_local_base_freq")
        params = {"full_attention": params, "sliding_attention": {"rope_type": "default", "rope_theta": local}}
    return AutoConfig.for_model(model_type, rope_parameters=params, **kwargs)


def init_weights(model, seed: int):
    """Weights at a trained model's scale: linear N(0, 1/fan_in), embedding N(0, 0.35²) (as the tied output layer it
    gives logits of std ≈ 3, log-probs down to ≈ −20 as a trained model's), norms 1 + N(0, 0.1²), biases N(0, 0.5²);
    q and k ×1.5 (Phi-3's fused qkv_proj: its q and k rows)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("embed_tokens.weight"):
                p.copy_(0.35 * torch.randn(p.shape, generator=g))
            elif "norm" in name:
                # Gemma's RMSNorm multiplies by (1 + weight): the same 1 + N(0, 0.1²) either way
                offset = 0 if model.config.model_type in GEMMA else 1
                p.copy_(offset + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p.shape[1]
                scale = 1.0 / math.sqrt(fan_in)
                if "q_proj" in name or "k_proj" in name:
                    scale *= 1.5  # sharp attention, as trained models have: RoPE moves the log-probs by far more than 1e-4
                w = scale * torch.randn(p.shape, generator=g)
                if "qkv_proj" in name:
                    c = model.config
                    head_dim = c.hidden_size // c.num_attention_heads
                    w[: (c.num_attention_heads + c.num_key_value_heads) * head_dim] *= 1.5
                p.copy_(w)


def rewrite_config(path: Path, fmt: str, rope: dict | None, fields: dict):
    """config.json as the requested transformers version writes RoPE settings (and, for Gemma 3 in 4.x, its layer
    pattern as sliding_window_pattern instead of 5.x's layer_types)."""
    cfg = json.loads(path.read_text())
    params = cfg.pop("rope_parameters", None) or {}
    cfg.pop("rope_scaling", None)
    cfg.pop("rope_theta", None)
    if fmt == "5.x":
        cfg["rope_parameters"] = params
    elif cfg["model_type"] == "gemma3_text":
        cfg["rope_theta"] = params["full_attention"]["rope_theta"]
        cfg["rope_local_base_freq"] = params["sliding_attention"]["rope_theta"]
        cfg["rope_scaling"] = copy.deepcopy(rope)
        cfg.pop("layer_types", None)
        cfg.pop("_sliding_window_pattern", None)  # 5.x's private copy of it
        cfg["sliding_window_pattern"] = fields["sliding_window_pattern"]
    else:
        cfg["rope_theta"] = params["rope_theta"]
        cfg["rope_scaling"] = copy.deepcopy(rope)  # with "type" or "rope_type" exactly as given
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def train_vocab(directory: Path, seed: int):
    """A throwaway SentencePiece model for convert_hf_to_gguf.py (it will not convert without a vocabulary)."""
    import sentencepiece as spm

    rng = np.random.default_rng(seed)
    syllables = ["ka", "to", "ri", "ne", "mu", "sa", "lo", "pe", "di", "ga", "vu", "zo"]
    lines = [" ".join("".join(rng.choice(syllables, rng.integers(1, 4))) for _ in range(12)) for _ in range(400)]
    corpus = directory / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(directory / "tokenizer"), vocab_size=VOCAB - 8, model_type="bpe",
        hard_vocab_limit=False, minloglevel=2,
    )
    corpus.unlink()
    (directory / "tokenizer.vocab").unlink()


def log_probs(model, ids: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        logits = model(ids[None, :]).logits[0]
    return torch.log_softmax(logits.double(), dim=-1).numpy()


CHUNK_AT = 200


def continued(model, ids: torch.Tensor, at: int = CHUNK_AT) -> np.ndarray:
    """Log-probs of positions at… when they continue, with the KV cache, a prefill of the first `at` tokens. Dynamic
    NTK and LongRoPE differ here from one prefill: each call takes the frequencies of the length it reaches
    (dynamic_rope_update), and the cached keys keep the rotation they were written with."""
    with torch.no_grad():
        first = model(ids[None, :at], use_cache=True)
        logits = model(ids[None, at:], past_key_values=first.past_key_values, use_cache=True).logits[0]
    return torch.log_softmax(logits.double(), dim=-1).numpy()


# The seeds the committed files were made with: 1000 + the index among the sorted names of the models there were at
# the time (the six Llama/Qwen ones first, then Gemma and Mistral among nine), so a full rerun reproduces every file.
FIXED_SEEDS = {"llama-dynamic": 1000, "llama-linear": 1001, "llama-yarn": 1002, "llama3": 1003, "qwen2-yarn": 1004,
               "qwen3-yarn": 1005, "gemma2": 1000, "gemma3": 1001, "mistral-swa": 1006}


def model_seed(name: str) -> int:
    """A model's seed: FIXED_SEEDS for the first nine, and from its name for later ones, so that adding a model
    moves no other's."""
    if name in FIXED_SEEDS:
        return FIXED_SEEDS[name]
    return 2000 + zlib.crc32(name.encode()) % 1000


def rotary(model):
    emb = model.model.rotary_emb
    if hasattr(emb, "inv_freq"):
        return emb.inv_freq.detach().float().numpy(), float(emb.attention_scaling)
    # Gemma 3: one table per layer type; the global layers' is the scaled one
    return emb.full_attention_inv_freq.detach().float().numpy(), float(emb.full_attention_attention_scaling)


def variant(model, ids, **changes) -> float:
    """How far the log-probs move when the config is changed (a window removed, a soft cap dropped…): what a loader
    that ignored the setting would be off by."""
    from transformers import AutoModelForCausalLM

    cfg = copy.deepcopy(model.config)
    for key, value in changes.items():
        setattr(cfg, key, value)
    other = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32, attn_implementation="eager").eval()
    other.load_state_dict(model.state_dict())
    return float(np.abs(log_probs(other, ids) - log_probs(model, ids)).max())


def generate(name: str, spec, llama_cpp: Path, work: Path) -> dict:
    from transformers import AutoModelForCausalLM

    model_type, fields, fmt, rope, to_gguf = spec
    seed = model_seed(name)
    torch.manual_seed(seed)
    config = build_config(model_type, fields, rope)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="eager")
    init_weights(model, seed)

    directory = OUT / name
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    model.save_pretrained(directory, safe_serialization=True)
    for extra in ("generation_config.json",):
        (directory / extra).unlink(missing_ok=True)
    rewrite_config(directory / "config.json", fmt, rope, fields)

    # the reference is transformers reading the committed files, not the object we built
    reloaded = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, attn_implementation="eager").eval()
    for (a, pa), (b, pb) in zip(model.state_dict().items(), reloaded.state_dict().items()):
        assert a == b and torch.equal(pa, pb), f"{name}: {a} changed on reload"
    rng = np.random.default_rng(seed)
    ids = torch.tensor(rng.integers(3, VOCAB, SEQ_LEN), dtype=torch.long)
    lp = log_probs(reloaded, ids)
    inv_freq, attention_scaling = rotary(reloaded)  # after the forward: dynamic NTK has updated them
    # a fresh model: dynamic_rope_update keeps state (the longest length seen), and we compare with a sequence
    # that starts from nothing, as a benchmark's does
    fresh = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, attn_implementation="eager").eval()
    at = CONTINUE_AT.get(name, CHUNK_AT)
    chunked = continued(fresh, ids, at)

    # sensitivity: the same weights under plain RoPE (Gemma 3: its global layers' scaling dropped)
    if model_type == "gemma3_text":
        plain_params = copy.deepcopy(reloaded.config.rope_parameters)
        plain_params["full_attention"] = {"rope_type": "default", "rope_theta": plain_params["full_attention"]["rope_theta"]}
    else:
        plain_params = {"rope_type": "default", "rope_theta": reloaded.config.rope_parameters["rope_theta"]}
    sensitivity = variant(reloaded, ids, rope_parameters=plain_params) if rope is not None else 0.0
    # what the sliding window and the soft caps change, for the fixtures that have them
    effects = {}
    if getattr(reloaded.config, "sliding_window", None) and reloaded.config.sliding_window < SEQ_LEN:
        # a window longer than the input: the same layers, RoPE bases and all, attending to everything
        effects["slidingWindow"] = round(variant(reloaded, ids, sliding_window=10 * SEQ_LEN), 6)
    if rope is not None and reloaded.config.rope_parameters.get("rope_type") == "longrope":
        # the short list where transformers takes the long one: what a loader that never switched would be off by
        short_only = copy.deepcopy(reloaded.config.rope_parameters)
        short_only["long_factor"] = list(short_only["short_factor"])
        effects["longFactor"] = round(variant(reloaded, ids, rope_parameters=short_only), 6)
    for cap in ("attn_logit_softcapping", "final_logit_softcapping"):
        if getattr(reloaded.config, cap, None):
            effects[cap] = round(variant(reloaded, ids, **{cap: None}), 6)
    if effects:
        log(f"{name}: removing each setting moves the log-probs by up to {effects}")
        assert all(v > 1e-2 for v in effects.values()), f"{name}: a setting barely matters at {SEQ_LEN} tokens"
    moved = float(np.abs(chunked - lp[at:]).max())
    log(f"{name}: plain RoPE moves the log-probs by up to {sensitivity:.3f}; continuing a {at}-token prefill "
        f"moves them by {moved:.2e}")
    assert rope is None or sensitivity > 1e-2, f"{name}: the RoPE scaling barely matters at {SEQ_LEN} tokens"
    if name in CONTINUE_AT:
        # the continued leg is there to tell transformers' per-call choice of factors from one fixed for the run
        assert moved > 1e-2, f"{name}: continuing across the LongRoPE threshold barely differs from one prefill"

    T = SEQ_LEN
    argmax = lp.argmax(axis=1)
    entry = {
        "dir": name,
        "modelType": model_type,
        "configFormat": fmt,
        "ropeScaling": rope,
        "ids": ids.tolist(),
        "targetLogprobs": [round(float(lp[t, ids[t + 1]]), 8) for t in range(T - 1)],
        "argmax": argmax.tolist(),
        "argmaxLogprobs": [round(float(lp[t, argmax[t]]), 8) for t in range(T)],
        "fullRows": [{"pos": t, "logprobs": [round(float(x), 8) for x in lp[t]]}
                     for t in list(range(0, T, FULL_ROW_EVERY)) + [T - 1]],
        "continued": {
            "at": at,
            "targetLogprobs": [round(float(chunked[t - at, ids[t + 1]]), 8) for t in range(at, T - 1)],
            "lastRow": [round(float(x), 8) for x in chunked[-1]],
            # how far the continued log-probs are from the one prefill's (recorded where the leg crosses a threshold)
            **({"differsFromPrefill": round(moved, 6)} if name in CONTINUE_AT else {}),
        },
        "invFreq": [float(x) for x in inv_freq],
        "attentionScaling": attention_scaling,
        "sensitivity": round(sensitivity, 6),
        **({"effects": effects} if effects else {}),
        "gguf": None,
    }

    if to_gguf:
        tmp = work / name
        shutil.copytree(directory, tmp)
        train_vocab(tmp, seed)
        outfile = directory / "model-f32.gguf"
        env = {**os.environ}
        env.pop("NO_LOCAL_GGUF", None)
        subprocess.run(
            [sys.executable, str(llama_cpp / "convert_hf_to_gguf.py"), str(tmp), "--outfile", str(outfile),
             "--outtype", "f32"],
            check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        if name in GGUF_EXTRA_KEYS:
            add_gguf_keys(outfile, GGUF_EXTRA_KEYS[name], llama_cpp)
            entry["ggufAddedKeys"] = GGUF_EXTRA_KEYS[name]
        entry["gguf"] = "model-f32.gguf"
        entry["ggufMetadata"] = gguf_rope_metadata(outfile, llama_cpp)
    return entry


def add_gguf_keys(path: Path, keys: dict, llama_cpp: Path):
    """Rewrites the GGUF with extra uint32 metadata keys (gguf-py's own copy_with_new_metadata)."""
    sys.path.insert(0, str(llama_cpp / "gguf-py"))
    import gguf
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

    reader = gguf.GGUFReader(str(path))
    arch = reader.fields["general.architecture"].contents()
    tmp = path.with_suffix(".tmp")
    writer = gguf.GGUFWriter(str(tmp), arch=arch, endianess=reader.endianess)
    alignment = reader.fields.get("general.alignment")
    if alignment is not None:
        writer.data_alignment = alignment.contents()
    copy_with_new_metadata(reader, writer, {k: MetadataDetails(gguf.GGUFValueType.UINT32, v) for k, v in keys.items()}, [])
    tmp.replace(path)


def gguf_rope_metadata(path: Path, llama_cpp: Path) -> dict:
    """The RoPE-related keys and tensors the converter wrote, for the README and the tests' expectations."""
    sys.path.insert(0, str(llama_cpp / "gguf-py"))
    import gguf  # the converter's own gguf-py

    reader = gguf.GGUFReader(str(path))
    out = {}
    for field in reader.fields.values():
        if ".rope." in field.name or field.name == "general.architecture" or any(
            k in field.name for k in ("sliding_window", "softcapping")
        ):
            value = field.contents()
            out[field.name] = value
    out["tensors"] = sorted(t.name for t in reader.tensors if not t.name.startswith("blk."))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--llama-cpp", type=Path, help="llama.cpp source tree (default: ../shared/bin/llama-cpp-tools --src)")
    parser.add_argument("--only", nargs="*", help="regenerate these models only (reference.json keeps the others)")
    args = parser.parse_args()
    llama_cpp = args.llama_cpp or Path(subprocess.run(
        [str(REPO.parent / "shared/bin/llama-cpp-tools"), "--src"], check=True, capture_output=True, text=True,
    ).stdout.strip())
    torch.set_num_threads(1)  # deterministic reductions

    import transformers
    import sentencepiece

    ref_path = OUT / "reference.json"
    previous = json.loads(ref_path.read_text())["models"] if ref_path.exists() and args.only else {}
    models = dict(previous)
    with tempfile.TemporaryDirectory() as work:
        for name, spec in MODELS.items():
            if args.only and name not in args.only:
                continue
            log(f"{name}: building")
            models[name] = generate(name, spec, llama_cpp, Path(work))
    reference = {
        "generator": "tools/arch-parity/generate.py",
        "command": "nice -n 19 .venv/bin/python tools/arch-parity/generate.py",
        "versions": {
            "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "sentencepiece": sentencepiece.__version__, "numpy": np.__version__,
            "llama.cpp": str(llama_cpp).split("llama_cpp_python-")[-1].split("/")[0],
        },
        "compute": "float32 eager forward on the CPU, one unbatched prefill; log_softmax in float64",
        "seqLen": SEQ_LEN,
        "tolerance": 1e-4,
        "models": {name: models[name] for name in MODELS if name in models},
    }
    ref_path.write_text(json.dumps(reference, separators=(",", ":")) + "\n")
    log(f"wrote {ref_path} ({ref_path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
