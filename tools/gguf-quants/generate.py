"""Fixture for the TypeScript GGUF dequantizers: random blocks of every type, decoded by gguf-py.

Writes packages/model-zoo/test/fixtures/gguf-quants.json. For each type it makes a handful of valid blocks,
decodes them with `gguf.quants.dequantize` (the reference the Hugging Face stack and llama.cpp's Python tools
use) and stores the raw bytes and the float32 results, both base64, so that dequant.test.ts can demand equality
of every float32 bit pattern.

Blocks are random bytes, except:
  * every f16 field (d, m, dmin) is a finite half: NaN or Inf there would make a bit-for-bit comparison
    meaningless (NaN payloads differ between implementations). Random blocks take random normal values times a
    magnitude typical of weights;
  * four edge blocks per quantized type fill all quant bytes with 0x00, 0xFF, 0x80 or 0x7F, which puts every
    packed field (nibbles, 2/3/5/6-bit codes, int8 scales, the IQ4 level index) at its smallest and largest value,
    and set the halves to -0 (negative zero in, signed zeros out), ±65504 (largest finite half) and ±2^-24
    (smallest subnormal).
The plain types (F32, F16, BF16) get random normal values plus ±0, subnormals, extremes and infinities.

Run from the repository root (see README.md): .venv/bin/python tools/gguf-quants/generate.py
"""

from __future__ import annotations

import base64
import json
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

SEED = 16  # issue 16
OUT = Path(__file__).resolve().parents[2] / "packages/model-zoo/test/fixtures/gguf-quants.json"

# Byte offsets of the f16 fields in each block (ggml-common.h); every other byte is packed quant data.
HALF_FIELDS: dict[T, list[int]] = {
    T.Q4_0: [0],
    T.Q4_1: [0, 2],
    T.Q5_0: [0],
    T.Q5_1: [0, 2],
    T.Q8_0: [0],
    T.Q2_K: [80, 82],
    T.Q3_K: [108],
    T.Q4_K: [0, 2],
    T.Q5_K: [0, 2],
    T.Q6_K: [208],
    T.IQ4_NL: [0],
    T.IQ4_XS: [0],
}
RANDOM_BLOCKS = {32: 12, 256: 4}  # by block size: enough to vary every field, small enough to commit

# Halves for the edge blocks, one row per fill byte: (first half field, second half field).
EDGE_HALVES = {
    0x00: (-0.0, -0.0),
    0xFF: (65504.0, -65504.0),
    0x80: (2.0**-24, -(2.0**-24)),
    0x7F: (-65504.0, 2.0**-14),  # 2^-14: smallest normal half
}


def b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def random_halves(rng: np.random.Generator, n: int) -> np.ndarray:
    magnitude = 10.0 ** rng.uniform(-4, 0, size=n)
    return (rng.standard_normal(n) * magnitude).astype(np.float16)


def quantized_blocks(rng: np.random.Generator, qtype: T) -> np.ndarray:
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    fields = HALF_FIELDS[qtype]
    blocks = []
    for fill, halves in EDGE_HALVES.items():
        block = np.full(type_size, fill, dtype=np.uint8)
        for offset, value in zip(fields, halves):
            block[offset : offset + 2] = np.array([value], dtype=np.float16).view(np.uint8)
        blocks.append(block)
    for _ in range(RANDOM_BLOCKS[block_size]):
        block = rng.integers(0, 256, size=type_size, dtype=np.uint8)
        for offset, value in zip(fields, random_halves(rng, len(fields))):
            block[offset : offset + 2] = np.array([value], dtype=np.float16).view(np.uint8)
        blocks.append(block)
    return np.concatenate(blocks)


EDGE_FLOATS = [0.0, -0.0, 1.0, -1.0, 65504.0, -65504.0, 2.0**-24, -(2.0**-24), 2.0**-14, np.inf, -np.inf]


def plain_values(rng: np.random.Generator, qtype: T) -> np.ndarray:
    if qtype == T.F32:
        edges = np.array(EDGE_FLOATS + [np.finfo(np.float32).max, np.finfo(np.float32).smallest_subnormal], np.float32)
        return np.concatenate([edges, rng.standard_normal(53).astype(np.float32)]).view(np.uint8)
    if qtype == T.F16:
        edges = np.array(EDGE_FLOATS, dtype=np.float16)
        return np.concatenate([edges, random_halves(rng, 53)]).view(np.uint8)
    # BF16: the top half of float32 bit patterns, NaNs excluded for the reason above.
    edges = np.array(EDGE_FLOATS + [np.finfo(np.float32).max, 2.0**-133], np.float32)
    values = np.concatenate([edges, rng.standard_normal(51).astype(np.float32)])
    return (values.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)


def main() -> None:
    rng = np.random.default_rng(SEED)
    types = [T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1]
    types += [T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K, T.IQ4_NL, T.IQ4_XS]
    entries = []
    for qtype in types:
        block_size, type_size = GGML_QUANT_SIZES[qtype]
        data = plain_values(rng, qtype) if qtype in (T.F32, T.F16, T.BF16) else quantized_blocks(rng, qtype)
        expected = np.asarray(dequantize(data, qtype), dtype=np.float32).reshape(-1)
        assert expected.dtype == np.float32 and expected.size * type_size == data.size * block_size
        assert not np.isnan(expected).any(), qtype.name
        entries.append(
            {
                "type": qtype.name,
                "id": int(qtype),
                "blockSize": block_size,
                "typeSize": type_size,
                "nElements": int(expected.size),
                "bytes": b64(data),
                "float32": b64(expected.astype("<f4")),
            }
        )
    fixture = {
        "about": "raw GGUF blocks and gguf.quants.dequantize of them, base64 (float32 little-endian); "
        "made by tools/gguf-quants/generate.py",
        "gguf": version("gguf"),
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "seed": SEED,
        "types": entries,
    }
    OUT.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(entries)} types)")


if __name__ == "__main__":
    main()
