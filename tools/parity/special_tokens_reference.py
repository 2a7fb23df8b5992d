#!/usr/bin/env python3
"""Reference token ids for `encode(text, { parseSpecialTokens: false })` in the model-zoo tokenizer.

Documents are data: a LongBench context that quotes `<|im_end|>` must reach the model as those characters, not
as the control token. Python `tokenizers` does this with `tokenizer.encode_special_tokens = True`: the added
tokens marked special are not split out of the text (they go through the pre-tokenizer and BPE like any other
characters), while added tokens that are not special still are. This script encodes a set of strings both ways
and writes packages/model-zoo/test/fixtures/special-tokens-parity.json; the TypeScript test
(packages/model-zoo/src/tokenizer/special-tokens.test.ts) asserts that both tokenizer constructors (tokenizer.json
and GGUF metadata) reproduce every id.

Two vocabularies, both SmolLM2-135M-Instruct's tokenizer.json: as shipped (all 17 added tokens are special), and
with `<repo_name>` marked not special (what a GGUF's token_type 4, USER_DEFINED, gives), to pin down that a
non-special added token is still split out when special tokens are not parsed.

Regenerate (from the repository root):

    python3 -m venv .venv                        # once; .venv is git-ignored
    .venv/bin/pip install tokenizers==0.23.3
    .venv/bin/python tools/parity/special_tokens_reference.py

Options: --tokenizer-json (default ../shared/models/smollm2-135m-instruct/tokenizer.json), --out.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

STRINGS: list[tuple[str, str]] = [
    ("plain", "The quick brown fox jumps over the lazy dog."),
    ("im-end-in-prose", "The chat log ends with <|im_end|> and then a new turn starts."),
    ("endoftext-in-prose", "Training documents are separated by <|endoftext|> markers."),
    ("adjacent", "text<|im_end|>more<|endoftext|><|endoftext|> trailing"),
    ("whole-turn", "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"),
    ("only-token", "<|im_end|>"),
    ("leading-space", " <|endoftext|> "),
    ("newlines-around", "end of passage.\n<|endoftext|>\nNext passage"),
    ("partial", "<|im_start| and <|im_end and |im_end|> and <im_start>"),
    ("code-tokens", "<filename>main.py<file_sep>print(1)<gh_stars>10"),
    ("non-special-candidate", "see <repo_name>razorkv and <reponame>x"),
    ("unicode", "Zürich <|im_end|> 日本語 <|endoftext|>😀"),
]

VARIANTS: list[tuple[str, list[str]]] = [
    ("smollm2", []),
    ("smollm2-repo-name-not-special", ["<repo_name>"]),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokenizer-json", type=Path, default=REPO_ROOT.parent / "shared/models/smollm2-135m-instruct/tokenizer.json")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "packages/model-zoo/test/fixtures/special-tokens-parity.json")
    args = ap.parse_args()

    import tokenizers
    from tokenizers import Tokenizer

    raw = args.tokenizer_json.read_bytes()
    vocabularies = []
    for name, not_special in VARIANTS:
        doc = json.loads(raw)
        for t in doc["added_tokens"]:
            if t["content"] in not_special:
                t["special"] = False
        parsed = Tokenizer.from_str(json.dumps(doc))
        unparsed = Tokenizer.from_str(json.dumps(doc))
        unparsed.encode_special_tokens = True
        strings = []
        for sname, text in STRINGS:
            ids = parsed.encode(text, add_special_tokens=False).ids
            text_ids = unparsed.encode(text, add_special_tokens=False).ids
            strings.append(
                {
                    "name": sname,
                    "text": text,
                    "ids": ids,
                    "textIds": text_ids,
                    "textDecoded": unparsed.decode(text_ids, skip_special_tokens=False),
                }
            )
        vocabularies.append({"name": name, "notSpecial": not_special, "strings": strings})

    fixture = {
        "generator": "tools/parity/special_tokens_reference.py",
        "tokenizersVersion": tokenizers.__version__,
        "tokenizerJson": "models/smollm2-135m-instruct/tokenizer.json",
        "tokenizerJsonSha256": hashlib.sha256(raw).hexdigest(),
        "vocabularies": vocabularies,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(fixture, ensure_ascii=True, indent=1) + "\n")
    print(f"wrote {args.out} ({len(STRINGS)} strings x {len(VARIANTS)} vocabularies, tokenizers {tokenizers.__version__})")


if __name__ == "__main__":
    main()
