"""Reference values for the paired tests of src/stats.ts (stats.test.ts reads test/paired-reference.json).

Run from the repository root (CI never runs it; the JSON it writes is committed):
    python3 -m venv .venv && .venv/bin/pip install scipy statsmodels
    .venv/bin/python packages/report/test/paired-reference.py

Each case is a 2x2 table of pairs (both, aOnly, bOnly, neither):
- p: scipy.stats.binomtest(aOnly, aOnly + bOnly, 0.5).pvalue, the exact McNemar p (two-sided);
- newcombe: Newcombe's (1998) method-10 interval of pA - pB, built here from statsmodels' Wilson intervals
  (proportion_confint(method="wilson")) with Newcombe's corrected phi, written from Fagerland, Lydersen & Laake (2017)
  section 8.5, independently of the TypeScript; the script checks it on the book's worked example first.
"""
import json
import math
import pathlib

import scipy
import statsmodels
from scipy.stats import binomtest
from statsmodels.stats.proportion import proportion_confint

CASES = [
    (59, 6, 16, 80),  # Cavo et al. (2012), Fagerland et al. (2017) ch. 8: -0.0621 [-0.1186, -0.0046]
    (1, 1, 7, 12),  # Bentur et al. (2009), the same chapter
    (8, 5, 4, 9),
    (5, 15, 5, 31),
    (0, 0, 0, 10),
    (10, 0, 0, 0),
    (0, 3, 0, 7),
    (20, 0, 10, 0),
    (0, 12, 0, 0),
    (27, 2, 1, 0),
    (100, 30, 45, 200),
    (400, 10, 40, 550),
    (0, 900, 1100, 0),
    (0, 3, 997, 0),
]


def newcombe10(both, a_only, b_only, neither):
    n = both + a_only + b_only + neither
    p1 = (both + a_only) / n
    p2 = (both + b_only) / n
    l1, u1 = proportion_confint(both + a_only, n, alpha=0.05, method="wilson")
    l2, u2 = proportion_confint(both + b_only, n, alpha=0.05, method="wilson")
    margins = (both + a_only) * (b_only + neither) * (both + b_only) * (a_only + neither)
    cross = both * neither - a_only * b_only
    if margins == 0:
        phi = 0.0
    elif cross > n / 2:
        phi = (cross - n / 2) / math.sqrt(margins)
    elif cross < 0:
        phi = cross / math.sqrt(margins)
    else:
        phi = 0.0
    d = p1 - p2
    lower = d - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    upper = d + math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return max(-1.0, lower), min(1.0, upper)


lo, hi = newcombe10(59, 6, 16, 80)
assert (round(lo, 4), round(hi, 4)) == (-0.1186, -0.0046), (lo, hi)

cases = []
for both, a_only, b_only, neither in CASES:
    n = both + a_only + b_only + neither
    p = binomtest(a_only, a_only + b_only, 0.5).pvalue if a_only + b_only > 0 else 1.0
    lower, upper = newcombe10(both, a_only, b_only, neither)
    cases.append({"table": [both, a_only, b_only, neither], "difference": (a_only - b_only) / n, "p": p, "newcombe": [lower, upper]})

out = pathlib.Path(__file__).with_name("paired-reference.json")
out.write_text(json.dumps({
    "generatedBy": "packages/report/test/paired-reference.py",
    "scipy": scipy.__version__,
    "statsmodels": statsmodels.__version__,
    "cases": cases,
}, indent=1) + "\n")
print(f"wrote {out}: {len(cases)} cases")
