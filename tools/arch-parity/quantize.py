#!/usr/bin/env python3
"""The Q4_K_M leg of per-architecture parity: llama-quantize'd GGUFs and transformers' log-probs on them.

For every entry of ARCHS this script

1. builds the architecture of generate.py's entry of the same name, widened so that llama.cpp's K-quants apply
   (K-quant blocks span 256 values of a row, so every weight's in-features — hidden, FFN, heads × head_dim — are
   multiples of 256; below that llama-quantize falls back to Q5_0/Q8_0 and the file would hold no K-quant), with
   generate.py's weight scales, and writes config.json in the format generate.py's entry uses;
2. converts it to an F32 GGUF with llama.cpp's convert_hf_to_gguf.py, then runs `llama-quantize … Q4_K_M` (one
   thread), and checks that every matrix really is Q4_K or Q6_K (no fallback type) and that both occur;
3. loads the Q4_K_M file with transformers' own GGUF loading (`from_pretrained(dir, gguf_file=…)`, which
   dequantizes with gguf-py), records which settings of config.json that loader's config lost, and takes the
   reference to be the model the file means: exactly the weights transformers' GGUF loading produced, run under the
   original config.json (see README.md, "The Q4_K_M leg");
4. records that model's log-probabilities at every position of a 300-token input, and for positions 200… continued
   from a 200-token prefill through the KV cache, in the schema of generate.py's reference.json.

Output: packages/model-zoo/test/fixtures/arch-q4km/<name>/{config.json, model-q4_k_m.gguf} and
packages/model-zoo/test/fixtures/arch-q4km/reference-q4km.json. Only config.json and the GGUF are kept (no
safetensors), so the fixtures stay small.
"""
from __future__ import annotations

import argparse
import hashlib
import json
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate as base  # noqa: E402  (the architectures, weight init, config formats and log-prob helpers)

REPO = base.REPO
OUT = REPO / "packages/model-zoo/test/fixtures/arch-q4km"
GGUF_NAME = "model-q4_k_m.gguf"
TOLERANCE = 1e-3

# K-quant rows: QK_K = 256 values per block (ggml-common.h), so in-features must be multiples of 256
QK_K = 256
SIZES = dict(hidden_size=256, intermediate_size=256)

# name (an entry of generate.MODELS): config fields replacing that entry's. Heads stay 4 query / 2 KV, so head_dim
# defaults to 64 and q/o see 4 × 64 = 256. Entries whose head_dim differs from hidden/heads keep that property with
# head_dim 128 (4 × 128 = 512 in o_proj's rows); Gemma's query_pre_attn_scalar follows head_dim, as in generate.py.
# Adding an architecture is one line here once generate.py has it.
ARCHS: dict[str, dict] = {
    "llama3": {},
    "llama-linear": {},
    "llama-yarn": {},
    "qwen2-yarn": {},
    "qwen3-yarn": dict(head_dim=128),
    "mistral-swa": {},
    "gemma2": dict(head_dim=128, query_pre_attn_scalar=128),
    # the 6-layer pattern is llama.cpp's fixed default for gemma3 (the converter writes no pattern key): keep all 6
    "gemma3": dict(head_dim=64, query_pre_attn_scalar=64),
    # 16 heads of 16 (8 KV): head_dim stays 16, so generate.py's 8-entry LongRoPE lists still fit; q/o see 256
    "phi3-longrope": dict(num_attention_heads=16, num_key_value_heads=8),
}

# Types llama-quantize may write for a Q4_K_M file whose every matrix is K-quantizable (llama-quant.cpp,
# llama_tensor_get_type_impl): Q4_K by default, Q6_K for output (or tied token_embd) and for attn_v / ffn_down on
# layers where use_more_bits holds; vectors (norms, biases, rope_freqs) stay F32.
MATRIX_TYPES = {"Q4_K", "Q6_K"}

# config fields that are bookkeeping, not the forward pass: left out of the comparison of the two configs
NOT_FORWARD = {
    "_name_or_path", "architectures", "transformers_version", "dtype", "torch_dtype", "bos_token_id",
    "eos_token_id", "pad_token_id", "output_attentions", "output_hidden_states", "return_dict", "use_cache",
    "_attn_implementation_autoset", "initializer_range", "_model_name_or_path", "quantization_config",
}


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tensor_types(path: Path) -> dict[str, str]:
    """{tensor name: ggml type name} as gguf-py reads the file."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    return {t.name: t.tensor_type.name for t in reader.tensors}


def gguf_metadata(path: Path) -> dict:
    """The RoPE, window and soft-cap keys of the file, its file type, and its non-layer tensors."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    out = {}
    for field in reader.fields.values():
        if ".rope." in field.name or field.name in ("general.architecture", "general.file_type") or any(
            k in field.name for k in ("sliding_window", "softcapping")
        ):
            out[field.name] = field.contents()
    out["tensors"] = sorted(t.name for t in reader.tensors if not t.name.startswith("blk."))
    return out


def check_types(name: str, types: dict[str, str], shapes: dict[str, list[int]]):
    """Every matrix is Q4_K or Q6_K, both occur, every vector is F32: a real Q4_K_M mixture, no fallback."""
    for tensor, kind in types.items():
        ne = shapes[tensor]
        if len(ne) >= 2:
            assert ne[0] % QK_K == 0, f"{name}: {tensor} has {ne[0]} in-features, not a multiple of {QK_K}"
            assert kind in MATRIX_TYPES, f"{name}: {tensor} was written as {kind}, expected one of {sorted(MATRIX_TYPES)}"
        else:
            assert kind == "F32", f"{name}: vector {tensor} was written as {kind}, expected F32"
    for kind in MATRIX_TYPES:
        assert kind in types.values(), f"{name}: the Q4_K_M file holds no {kind} tensor"


def quantize(llama_bin: Path, src: Path, dst: Path) -> str:
    """llama-quantize src → dst as Q4_K_M on one thread (rows are quantized independently; one thread keeps the
    run simple to reproduce); fails when it reports a fallback type for any tensor. Returns its log."""
    proc = subprocess.run(
        [str(llama_bin / "llama-quantize"), str(src), str(dst), "Q4_K_M", "1"],
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"llama-quantize {src} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    text = proc.stdout + proc.stderr
    fallbacks = [line.strip() for line in text.splitlines() if "fallback" in line.lower()]
    assert not fallbacks, f"llama-quantize fell back for {dst.parent.name}: {fallbacks}"
    return text


def add_keys(path: Path, keys: dict, llama_cpp: Path):
    """generate.add_gguf_keys in a child process: it imports llama.cpp's own gguf-py, and this process must keep
    the pinned PyPI gguf that transformers' GGUF loading dequantizes with."""
    code = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); import generate, json; "
        "generate.add_gguf_keys(Path(sys.argv[2]), json.loads(sys.argv[3]), Path(sys.argv[4]))"
    )
    subprocess.run([sys.executable, "-c", code, str(Path(__file__).resolve().parent), str(path), json.dumps(keys),
                    str(llama_cpp)], check=True)


def continued(model, ids: torch.Tensor, at: int) -> np.ndarray:
    """Log-probs (float64 log_softmax) of positions at… run as a second call that continues, through transformers'
    KV cache, a prefill of the first `at` tokens: [len(ids) − at, vocab]."""
    with torch.no_grad():
        first = model(ids[None, :at], use_cache=True)
        logits = model(ids[None, at:], past_key_values=first.past_key_values, use_cache=True).logits[0]
    return torch.log_softmax(logits.double(), dim=-1).numpy()


def same(x, y) -> bool:
    """Equal, counting floats equal when they are the same float32 (the GGUF stores float32: 1e-5 reads back as
    9.99999975e-06, the number a float32 forward uses either way)."""
    if isinstance(x, float) and isinstance(y, float):
        return np.float32(x) == np.float32(y)
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
    return x == y


def config_differences(original, loaded) -> dict:
    """{field: [config.json's value, the GGUF loader's value]} for every forward-relevant field that differs."""
    a, b = original.to_dict(), loaded.to_dict()
    out = {}
    for key in sorted(set(a) | set(b)):
        if key in NOT_FORWARD or same(a.get(key), b.get(key)):
            continue
        out[key] = [a.get(key), b.get(key)]
    return out


def build(name: str, llama_cpp: Path, llama_bin: Path, work: Path) -> dict:
    from transformers import AutoConfig, AutoModelForCausalLM

    model_type, fields, fmt, rope, to_gguf = base.MODELS[name]
    assert to_gguf, f"{name}: generate.py has no GGUF leg for it, so there is no Q4_K_M leg either"
    fields = {**fields, **SIZES, **ARCHS[name]}
    seed = 3000 + zlib.crc32(name.encode()) % 1000  # by name: adding an entry moves no other model's seed
    torch.manual_seed(seed)
    config = base.build_config(model_type, fields, rope)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="eager")
    base.init_weights(model, seed)

    # the full-precision checkpoint lives in the work directory only
    src = work / name
    model.save_pretrained(src, safe_serialization=True)
    (src / "generation_config.json").unlink(missing_ok=True)
    base.rewrite_config(src / "config.json", fmt, rope, fields)
    base.train_vocab(src, seed)
    f32 = work / f"{name}-f32.gguf"
    env = {**os.environ}
    env.pop("NO_LOCAL_GGUF", None)
    subprocess.run(
        [sys.executable, str(llama_cpp / "convert_hf_to_gguf.py"), str(src), "--outfile", str(f32), "--outtype", "f32"],
        check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    added = base.GGUF_EXTRA_KEYS.get(name)
    if added:
        add_keys(f32, added, llama_cpp)

    directory = OUT / name
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    shutil.copy(src / "config.json", directory / "config.json")
    gguf_path = directory / GGUF_NAME
    quantize(llama_bin, f32, gguf_path)

    import gguf

    shapes = {t.name: [int(x) for x in t.shape] for t in gguf.GGUFReader(str(gguf_path)).tensors}
    types = tensor_types(gguf_path)
    check_types(name, types, shapes)
    metadata = gguf_metadata(gguf_path)
    for key, value in (added or {}).items():
        assert metadata.get(key) == value, f"{name}: llama-quantize dropped {key} (expected {value}, found {metadata.get(key)})"

    # transformers' own GGUF loading: its config comes from the GGUF metadata, its weights from gguf-py's dequantize
    original = AutoConfig.from_pretrained(directory)  # the committed config.json
    # pad_token_id only marks an embedding row (no effect on a forward); config.json's is passed because a loader
    # default outside the 128-token vocabulary (Phi3Config's 32000) would stop nn.Embedding from being built
    loaded = AutoModelForCausalLM.from_pretrained(directory, gguf_file=GGUF_NAME, dtype=torch.float32,
                                                  attn_implementation="eager", pad_token_id=original.pad_token_id).eval()
    differences = config_differences(original, loaded.config)

    def reference_model():
        """The model the file means: the GGUF loader's weights, untouched, under config.json."""
        m = AutoModelForCausalLM.from_config(original, dtype=torch.float32, attn_implementation="eager").eval()
        state = loaded.state_dict()
        missing, unexpected = m.load_state_dict(state, strict=False)
        assert not missing and not unexpected, f"{name}: GGUF loader's tensors vs config.json's model: missing {missing}, unexpected {unexpected}"
        for key, value in m.state_dict().items():
            assert torch.equal(value, state[key]), f"{name}: {key} changed while loading into the reference"
        return m

    reference = reference_model()
    # the route the issue names, from_pretrained(dir, gguf_file=…, config=config.json), loads the very same tensors
    # where gguf-py has a tensor-name map for config.json's model type (not "mistral": llama.cpp files it as llama)
    try:
        direct = AutoModelForCausalLM.from_pretrained(directory, gguf_file=GGUF_NAME, config=original,
                                                      dtype=torch.float32, attn_implementation="eager")
    except NotImplementedError as err:
        config_route = f"not available: {str(err).splitlines()[0].split('. ')[0]}"
    else:
        direct_state, state = direct.state_dict(), reference.state_dict()
        assert direct_state.keys() == state.keys() and all(torch.equal(direct_state[k], state[k]) for k in state), \
            f"{name}: from_pretrained(gguf_file, config=config.json) loaded other tensors than the GGUF loader"
        config_route = "same tensors"
    rng = np.random.default_rng(seed)
    ids = torch.tensor(rng.integers(3, base.VOCAB, base.SEQ_LEN), dtype=torch.long)
    lp = base.log_probs(reference, ids)
    at = getattr(base, "CONTINUE_AT", {}).get(name, base.CHUNK_AT)  # where generate.py continues this model
    chunked = continued(reference_model(), ids, at)  # a fresh model, as generate.py does
    loader_effect = float(np.abs(base.log_probs(loaded, ids) - lp).max())
    quantization_effect = float(np.abs(base.log_probs(model.eval(), ids) - lp).max())
    # how much the K-quants moved the weights: relative RMS error of each matrix, worst one
    orig_state = model.state_dict()
    worst_weight_error = max(
        float((reference.state_dict()[k] - v).norm() / v.norm()) for k, v in orig_state.items() if v.dim() == 2
    )
    log(f"{name}: config.json settings the GGUF loader lost: {differences or 'none'}; running the GGUF loader's own "
        f"config instead moves the log-probs by {loader_effect:.3g}; Q4_K_M vs full precision: {quantization_effect:.3g} "
        f"(worst relative RMS weight error {worst_weight_error:.3g}); continuing a {at}-token prefill moves "
        f"them by {np.abs(chunked - lp[at:]).max():.2e}")
    if differences:
        assert loader_effect > 1e-2, f"{name}: the settings the GGUF loader lost barely matter ({loader_effect})"

    T = base.SEQ_LEN
    argmax = lp.argmax(axis=1)
    counts: dict[str, int] = {}
    for kind in types.values():
        counts[kind] = counts.get(kind, 0) + 1
    return {
        "dir": name,
        "modelType": model_type,
        "configFormat": fmt,
        "ropeScaling": rope,
        "sizes": {k: v for k, v in fields.items() if k in ("hidden_size", "intermediate_size", "head_dim",
                                                           "num_hidden_layers")},
        "seed": seed,
        "ids": ids.tolist(),
        "targetLogprobs": [round(float(lp[t, ids[t + 1]]), 8) for t in range(T - 1)],
        "argmax": argmax.tolist(),
        "argmaxLogprobs": [round(float(lp[t, argmax[t]]), 8) for t in range(T)],
        "fullRows": [{"pos": t, "logprobs": [round(float(x), 8) for x in lp[t]]}
                     for t in list(range(0, T, base.FULL_ROW_EVERY)) + [T - 1]],
        "continued": {
            "at": at,
            "targetLogprobs": [round(float(chunked[t - at, ids[t + 1]]), 8) for t in range(at, T - 1)],
            "lastRow": [round(float(x), 8) for x in chunked[-1]],
        },
        "gguf": GGUF_NAME,
        "ggufSha256": sha256(gguf_path),
        "tensorTypes": types,
        "typeCounts": dict(sorted(counts.items())),
        "ggufMetadata": metadata,
        **({"ggufAddedKeys": added} if added else {}),
        "ggufLoaderLost": differences,
        "ggufLoaderEffect": round(loader_effect, 6),
        "configRoute": config_route,
        "quantizationEffect": round(quantization_effect, 6),
        "worstRelativeWeightError": round(worst_weight_error, 6),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--llama-cpp", type=Path, help="llama.cpp source tree (default: ../shared/bin/llama-cpp-tools --src)")
    parser.add_argument("--llama-bin", type=Path, help="dir holding llama-quantize (default: ../shared/bin/llama-cpp-tools)")
    parser.add_argument("--only", nargs="*", help="regenerate these models only (reference-q4km.json keeps the others)")
    args = parser.parse_args()
    tools = str(REPO.parent / "shared/bin/llama-cpp-tools")
    llama_cpp = args.llama_cpp or Path(subprocess.run([tools, "--src"], check=True, capture_output=True, text=True).stdout.strip())
    llama_bin = args.llama_bin or Path(subprocess.run([tools], check=True, capture_output=True, text=True).stdout.strip())
    torch.set_num_threads(1)  # deterministic reductions

    import accelerate
    import gguf
    import sentencepiece
    import transformers
    from importlib.metadata import version

    assert Path(gguf.__file__).resolve().is_relative_to(Path(sys.prefix).resolve()), \
        f"gguf must be the venv's PyPI package (transformers dequantizes with it), found {gguf.__file__}"

    ref_path = OUT / "reference-q4km.json"
    previous = json.loads(ref_path.read_text())["models"] if ref_path.exists() and args.only else {}
    models = dict(previous)
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        for name in ARCHS:
            if args.only and name not in args.only:
                continue
            log(f"{name}: building")
            models[name] = build(name, llama_cpp, llama_bin, Path(work))
    reference = {
        "generator": "tools/arch-parity/quantize.py",
        "command": "nice -n 19 .venv/bin/python tools/arch-parity/quantize.py",
        "versions": {
            "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "gguf": version("gguf"), "accelerate": accelerate.__version__, "sentencepiece": sentencepiece.__version__,
            "numpy": np.__version__, "llama.cpp": str(llama_cpp).split("llama_cpp_python-")[-1].split("/")[0],
        },
        "quantization": "convert_hf_to_gguf.py --outtype f32, then llama-quantize <f32> <out> Q4_K_M 1",
        "reference": "weights from transformers' GGUF loading (gguf-py dequantize), run under the original "
                     "config.json; float32 eager forward on the CPU, one unbatched prefill; log_softmax in float64",
        "seqLen": base.SEQ_LEN,
        "tolerance": TOLERANCE,
        "models": {name: models[name] for name in ARCHS if name in models},
    }
    ref_path.write_text(json.dumps(reference, separators=(",", ":")) + "\n")
    log(f"wrote {ref_path} ({ref_path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
