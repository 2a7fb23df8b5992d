"""Reference scores for razorkv's LongBench and RULER metrics, computed with the benchmarks' own scoring code.

Writes packages/eval-runner/test/fixtures/metrics-reference.json, which
packages/eval-runner/src/metrics/reference-fixture.test.ts compares the TypeScript metrics with. See README.md.

Where each reference comes from (all from the `lm_eval` package, lm-evaluation-harness, which ships copies of the
benchmarks' files; nothing here re-implements a scorer except RULER's string_match_part, see below):
  * lm_eval/tasks/longbench/metrics.py: LongBench's metrics.py (THUDM/LongBench): normalize_answer, qa_f1_score,
    rouge_score (the `rouge` package), classification_score, retrieval_score, retrieval_zh_score, count_score,
    code_sim_score (fuzzywuzzy's fuzz.ratio).
  * lm_eval/tasks/longbench/utils.py: LongBench's eval.py: dataset2metric and scorer() (the few-shot first-line cut,
    the max over answers). lm_eval comments out trec and lsht there; THUDM's eval.py maps both to
    classification_score, as lm_eval's own trec.yaml / lsht.yaml do, so they are restored.
  * lm_eval/tasks/ruler/common_utils.py: RULER's postprocess_pred and string_match_all. lm_eval's string_match_part
    takes the max over predictions of the fraction of references found, which with one prediction is
    string_match_all; RULER's own scripts/eval/synthetic/constants.py takes, per prediction, the max over references
    of whether each occurs. We follow RULER: string_match_part below is RULER's one-line definition.
  * Which RULER task uses which: lm_eval's ruler yaml files (process_results = string_match_all for niah_*, vt, cwe,
    fwe; process_results_part for qa_*), as in RULER's constants.py (niah, variable_tracking,
    common_words_extraction, freq_words_extraction: string_match_all; qa: string_match_part).
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import re
import sys
import types
import warnings
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "packages" / "eval-runner" / "test" / "fixtures" / "metrics-reference.json"


def load_file(name: str, path: Path) -> types.ModuleType:
    """Loads one file of lm_eval as a module without importing the lm_eval package (which pulls in torch etc.)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


lm_eval_dir = Path(importlib.util.find_spec("lm_eval").origin).parent
# utils.py does `from metrics import ...`, so metrics.py is registered under that name.
with warnings.catch_warnings():
    # "Using slow pure-python SequenceMatcher": the one LongBench scores with (see the assertion below).
    warnings.simplefilter("ignore")
    lb_metrics = load_file("metrics", lm_eval_dir / "tasks" / "longbench" / "metrics.py")
lb_utils = load_file("longbench_utils", lm_eval_dir / "tasks" / "longbench" / "utils.py")
lb_utils.dataset2metric.setdefault("trec", lb_metrics.classification_score)
lb_utils.dataset2metric.setdefault("lsht", lb_metrics.classification_score)

# common_utils.py imports transformers for its tokenizer helpers, which the scoring functions do not use.
sys.modules.setdefault("transformers", types.SimpleNamespace(AutoTokenizer=None))
ruler_utils = load_file("ruler_common_utils", lm_eval_dir / "tasks" / "ruler" / "common_utils.py")

from fuzzywuzzy import fuzz  # noqa: E402

# fuzzywuzzy uses python-Levenshtein when it is installed, difflib otherwise; LongBench's requirements (and
# lm_eval[longbench]) install fuzzywuzzy alone, so difflib's SequenceMatcher is the reference.
assert fuzz.SequenceMatcher is difflib.SequenceMatcher, "uninstall python-Levenshtein: LongBench scores with difflib"


def string_match_part(pred: str, refs: list[str]) -> float:
    # RULER scripts/eval/synthetic/constants.py, string_match_part, for one prediction and without the x100.
    return max(1.0 if r.lower() in pred.lower() else 0.0 for r in refs)


def ruler_metric_of_task() -> dict[str, str]:
    out = {}
    for path in sorted((lm_eval_dir / "tasks" / "ruler").glob("*.yaml")):
        text = path.read_text()
        include = re.search(r"^include: (\S+)", text, re.M)
        fn = re.search(r"process_results: !function common_utils\.(\w+)", text)
        if fn is None and include is not None:
            fn = re.search(r"process_results: !function common_utils\.(\w+)", (path.parent / include.group(1)).read_text())
        if fn is not None:
            out[path.stem] = {"process_results": "all", "process_results_part": "part"}[fn.group(1)]
    return out


def longbench_metric_of_dataset() -> dict[str, str]:
    """dataset -> name of the metrics.py function, from lm_eval's yaml files; checked against utils.dataset2metric."""
    out = {}
    for path in sorted((lm_eval_dir / "tasks" / "longbench").glob("*.yaml")):
        text = path.read_text()
        name = re.search(r"^dataset_name: (\S+)", text, re.M)
        fn = re.search(r"process_results: !function metrics\.get_(\w+)_with_score", text)
        if name is None or fn is None or name.group(1).endswith("_e"):  # LongBench-E: the same datasets, longer
            continue
        metric = {"qa_f1": "qa_f1_score", "qa_f1_zh": "qa_f1_zh_score", "rouge": "rouge_score",
                  "rouge_zh": "rouge_zh_score", "classification": "classification_score",
                  "retrieval": "retrieval_score", "retrieval_zh": "retrieval_zh_score", "count": "count_score",
                  "code_sim": "code_sim_score"}[fn.group(1)]
        out[name.group(1)] = metric
    for dataset, metric in out.items():
        assert lb_utils.dataset2metric[dataset].__name__ == metric, (dataset, metric)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Cases. Each is scored here by the reference code; the TypeScript test recomputes and compares.

TREC_CLASSES = ["Abbreviation", "Animal", "Color", "Description", "Description of something", "Definition of something",
                "Manner of an action", "Reason", "Individual", "Group or organization of persons", "City", "Country",
                "Other location", "Date", "Number of something", "Other number", "Other entity"]
LSHT_CLASSES = ["体育", "财经", "教育", "科技", "娱乐", "时政", "社会", "科学", "科学技术"]

QA_F1 = [
    ("", "A"), ("The", "A"), ("", ""), ("the", "an"), ("A", "A"), ("a", "b"),
    ("ça", "ça"), ("Ça va", "ca va"), ("Ça, c'est la vie !", "c'est la vie"), ("the café", "Café"),
    ("naïve résumé", "naive resume"), ("Übermensch the", "übermensch"), ("a_the an-the", "the"),
    ("東京タワー", "東京タワー"), ("東京 タワー", "東京タワー"), ("Mr. Smith's car", "smith car"),
    ("An apple a day", "apple day"), ("1,000 people", "1000"), ("theater", "the theater"),
    ("“Quoted” — text…", "quoted text"), ("The cat sat on the mat.", "A cat sat on a hat"),
    ("cat cat dog", "cat dog dog mouse"), ("Paris\nFrance", "Paris"), ("l'an 2000", "lan 2000"),
    ("non\u00a0breaking\u3000space", "non breaking space"), ("𝒜 the 𝒜", "𝒜"), ("ΣΑΣ", "σας"),
    ("über a straße", "UBER STRASSE"), ("the\u0301 cat", "cat"), ("٣ cats", "٣"),
]

ROUGE = [
    ("", "x"), (".", "x"), ("x", "."), ("...", "..."), ("The cat sat. The dog ran.", "The cat sat on the mat. A dog ran."),
    ("A B. ", "A B"), ("the the the", "the cat the"), ("Cat", "cat"), ("3.5 million people", "3.5 million"),
    ("police killed the gunman", "the gunman was killed by police"), ("a b c d e", "e d c b a"),
    ("one two three four", "one three five four six"), ("x y. y x. z", "x y z. z y x"),
    ("  spaced   out  words . more ", "spaced out words. more words"), ("東京 タワー。高い", "東京 タワー"),
    ("Der Bär läuft. Schnell!", "der Bär läuft schnell"), ("w1 w2 w6 w7 w8. w1 w3 w8 w9 w5", "w1 w2 w3 w4 w5"),
    ("a a b b a a", "b a b a"), ("tab\tsep\nnew line", "tab sep new line"),
]

CLASSIFICATION = [
    ("Description of something", "Description of something"), ("Description", "Description of something"),
    ("Description of something", "Description"), ("Animal or Color", "Animal"), ("Color", "Animal"),
    ("", "City"), ("Other location, City, Country", "City"), ("Number of something", "Number of something"),
    ("Other number", "Other number"), ("Other entity", "Individual"), ("体育", "体育"), ("科学技术", "科学技术"),
    ("科学", "科学"), ("财经和教育", "教育"),
]
# Python's classification_score removes from the list it iterates over: after a removal the next match is
# skipped. ["A B C", "A", "B"] against "A B C" keeps "B", so the score is 1/2, not 1.
CLASSIFICATION_QUIRK = [("A B C", "A B C", ["A B C", "A", "B"]), ("A B C", "A B C", ["A", "B", "A B C"]),
                        ("A A", "A A", ["A", "A", "A A"])]

RETRIEVAL = [
    ("Paragraph 12", "Paragraph 12"), ("Paragraph 12 and Paragraph 3", "Paragraph 12"), ("12, 12, 3", "Paragraph 12"),
    ("", "Paragraph 12"), ("Paragraph １２", "Paragraph 12"), ("Paragraph 012", "Paragraph 12"), ("P12x12y", "Paragraph 12"),
    ("The answer is Paragraph 7.", "Paragraph 7"), ("Paragraph 7 (not 17 or 70)", "Paragraph 7"),
]
RETRIEVAL_ZH = [("段落3", "段落3"), ("答案是段落3，不是段落13", "段落3"), ("段落 3", "段落3"), ("", "段落3"), ("三", "段落3")]
COUNT = [("7", "7"), ("There are 7 unique paragraphs out of 12", "7"), ("seven", "7"), ("07", "7"), ("7 7 7 8", "7"),
         ("", "7"), ("٧", "7"), ("22", "2")]

CODE = [
    ("    return x + 1\n", "        return x + 1"), ("# comment\n```python\nfoo = bar(1)\n", "foo = bar(1)"),
    ("// c\nint x = 1;", "int x = 1;"), ("", "x = 1"), ("x = 1", "x = 1"), ("\n\n   \nx = 2\ny = 3", "x = 1"),
    ('s = "#"\nt = 1', "t = 1"), ("abcdefgh", "aijklmno"), ("abcxxxxx", "abcyyyyy"), ("ab", "ba"),
    ("a\r\nb = 1", "b = 1"), ("`x`\n# y\n// z", "x"), ("ça = «é»", "ca = e"), ("𝒜𝒜 = 1", "𝒜 = 1"),
    ("result = compute(alpha, beta)", "results = compute(alpha, gamma)"),
    # b of 200+ characters turns on difflib's autojunk: characters in more than 1% + 1 of b are "popular".
    ("x = [" + ", ".join(str(i % 7) for i in range(80)) + "]", "x = [" + ", ".join(str(i % 5) for i in range(90)) + "]"),
    ("self.assertEqual(" + "a" * 150 + ", " + "b" * 60 + ")", "self.assertEqual(" + "a" * 140 + ", " + "b" * 70 + ")"),
]

# (dataset, prediction, answers, all_classes or None): LongBench's eval.py scorer per sample.
LONGBENCH = [
    ("hotpotqa", " Miami Gardens, Florida", ["Miami Gardens, Florida"], None),
    ("hotpotqa", "", ["A"], None),
    ("narrativeqa", "He leaves the town.", ["He leaves town", "He goes away"], None),
    ("2wikimqa", "The Prince of Wales", ["Prince of Wales", "Charles"], None),
    ("musique", "ça", ["ça"], None),
    ("qasper", "unanswerable", ["Unanswerable", "no"], None),
    ("multifieldqa_en", "Yes, it is.\nMore text follows.", ["Yes"], None),
    ("triviaqa", "Paris\n\nQuestion: What is the capital of Italy?\nAnswer: Rome", ["Paris", "paris"], None),
    ("triviaqa", "\n\nLondon\nQuestion: x", ["London"], None),
    ("triviaqa", " \nLondon", ["London"], None),
    ("gov_report", "The report finds costs rose. It recommends audits.\n", ["The report found that costs rose. GAO recommends audits."], None),
    ("qmsum", "The team agreed on the budget.", ["The team agreed on a budget and a date."], None),
    ("multi_news", "– A man was arrested. Police said more.", ["– Police arrested a man on Tuesday. Police said more would follow."], None),
    ("samsum", "John will come at 5.\nDialogue:\nAnn: hi", ["John will come at 5 pm."], None),
    ("samsum", "\nAnn and Bob meet tomorrow.\nSummary: x", ["Ann and Bob will meet tomorrow."], None),
    ("trec", "Location\nQuestion: Who?\nType: Human", ["Other location"], TREC_CLASSES),
    ("trec", "Other location", ["Other location"], TREC_CLASSES),
    ("trec", "Description of something", ["Description of something"], TREC_CLASSES),
    ("trec", "Number of something or Other number", ["Other number"], TREC_CLASSES),
    ("lsht", "科学技术\n新闻：...\n类别：体育", ["科学技术"], LSHT_CLASSES),
    ("lsht", "体育", ["体育"], LSHT_CLASSES),
    ("passage_retrieval_en", "Paragraph 12", ["Paragraph 12"], None),
    ("passage_retrieval_en", "Paragraph 12 or Paragraph 3\nParagraph 12", ["Paragraph 12"], None),
    ("passage_retrieval_zh", "段落5", ["段落5"], None),
    ("passage_retrieval_zh", "答案是：段落5或段落15", ["段落5"], None),
    ("passage_count", "There are 7 unique paragraphs.", ["7"], None),
    ("passage_count", "7, maybe 8", ["7"], None),
    ("lcc", "\n        return self.value\n    def next(self):", ["        return self.value"], None),
    ("lcc", "# the next line\n        x += 1", ["        x += 1"], None),
    ("repobench-p", "```python\nself.assertEqual(a, b)\n```", ["self.assertEqual(a, b)"], None),
    ("repobench-p", " model = Model(config)", ["model = Model(cfg)"], None),
]

# (task, prediction, outputs): RULER's postprocess_pred, then the task's metric.
RULER = [
    ("niah_single_1", " The special magic number is 1234567.", ["1234567"]),
    ("niah_single_2", "none", ["1234567"]),
    ("niah_single_3", "The uuid is 8A2F-11", ["8a2f-11"]),
    ("niah_multikey_1", "7654321", ["7654321"]),
    ("niah_multikey_2", "12345678901", ["1234567890"]),
    ("niah_multikey_3", "", ["abc-def"]),
    ("niah_multivalue", "1111111, 2222222 and 4444444", ["1111111", "2222222", "3333333", "4444444"]),
    ("niah_multiquery", "1111111\n2222222", ["1111111", "2222222", "3333333"]),
    ("vt", "VAR AAAAA, VAR BBBBB", ["AAAAA", "BBBBB", "CCCCC"]),
    ("cwe", "1. apple 2. Banana 3. cherry", ["apple", "banana", "cherry", "date"]),
    ("fwe", "xqz abc", ["abc", "xqz", "mno"]),
    ("qa_squad", "Denver Broncos", ["Denver Broncos", "Broncos", "Carolina"]),
    ("qa_hotpot", "It was in Paris.", ["London", "paris"]),
    ("qa_hotpot", "nothing", ["London", "Paris"]),
    ("niah_single_1", "\x00ÇA\x1fva", ["ça"]),
    ("niah_multivalue", "ΣΑΣ", ["σας", "σ"]),
]


def main() -> None:
    lb_datasets = longbench_metric_of_dataset()
    ruler_tasks = ruler_metric_of_task()
    m = lb_metrics
    fixture: dict = {
        "generator": "tools/metrics-reference/generate.py",
        "versions": {p: metadata.version(p) for p in ["lm_eval", "rouge", "fuzzywuzzy", "jieba"]} | {"python": sys.version.split()[0]},
        "longbenchMetricOfDataset": lb_datasets,
        "rulerMetricOfTask": ruler_tasks,
        "normalizeAnswer": [{"text": p, "expected": m.normalize_answer(p)} for p, _ in QA_F1],
        "pairs": [],
        "longbench": [],
        "ruler": [],
    }
    pairs = fixture["pairs"]
    pairs += [{"fn": "qa_f1_score", "prediction": p, "reference": r, "expected": float(m.qa_f1_score(p, r))} for p, r in QA_F1]
    pairs += [{"fn": "rouge_score", "prediction": p, "reference": r, "expected": float(m.rouge_score(p, r))} for p, r in ROUGE]
    for p, r in CLASSIFICATION:
        classes = LSHT_CLASSES if re.search(r"[\u4e00-\u9fff]", r) else TREC_CLASSES
        pairs.append({"fn": "classification_score", "prediction": p, "reference": r, "allClasses": classes,
                      "expected": float(m.classification_score(p, r, all_classes=classes))})
    for p, r, classes in CLASSIFICATION_QUIRK:
        pairs.append({"fn": "classification_score", "prediction": p, "reference": r, "allClasses": classes,
                      "expected": float(m.classification_score(p, r, all_classes=classes))})
    pairs += [{"fn": "retrieval_score", "prediction": p, "reference": r, "expected": m.retrieval_score(p, r)} for p, r in RETRIEVAL]
    pairs += [{"fn": "retrieval_zh_score", "prediction": p, "reference": r, "expected": m.retrieval_zh_score(p, r)} for p, r in RETRIEVAL_ZH]
    pairs += [{"fn": "count_score", "prediction": p, "reference": r, "expected": m.count_score(p, r)} for p, r in COUNT]
    pairs += [{"fn": "code_sim_score", "prediction": p, "reference": r, "expected": float(m.code_sim_score(p, r))} for p, r in CODE]
    # difflib's ratio before fuzzywuzzy rounds it, to check the matching-block count itself.
    pairs += [{"fn": "sequence_matcher_ratio", "prediction": p, "reference": r,
               "expected": difflib.SequenceMatcher(None, p, r).ratio()} for p, r in CODE]

    for dataset, prediction, answers, classes in LONGBENCH:
        # The per-sample body of LongBench's eval.py scorer() (lm_eval's longbench/utils.py), unrounded.
        pred = prediction.lstrip("\n").split("\n")[0] if dataset in ["trec", "triviaqa", "samsum", "lsht"] else prediction
        score = 0.0
        for answer in answers:
            score = max(score, lb_utils.dataset2metric[dataset](pred, answer, all_classes=classes))
        assert round(100 * score, 2) == lb_utils.scorer(dataset, [prediction], [answers], classes)
        fixture["longbench"].append({"dataset": dataset, "prediction": prediction, "answers": answers,
                                     "allClasses": classes, "expected": float(score)})

    for task, prediction, outputs in RULER:
        pred = ruler_utils.postprocess_pred([prediction])
        kind = ruler_tasks[task]
        score = ruler_utils.string_match_all(pred, [outputs]) if kind == "all" else string_match_part(pred[0], outputs)
        fixture["ruler"].append({"task": task, "prediction": prediction, "outputs": outputs, "metric": kind,
                                 "expected": float(score),
                                 "matchAll": ruler_utils.string_match_all(pred, [outputs]),
                                 "matchPart": string_match_part(pred[0], outputs)})

    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixture, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(pairs)} pairs, {len(fixture['longbench'])} LongBench samples, "
          f"{len(fixture['ruler'])} RULER samples, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
