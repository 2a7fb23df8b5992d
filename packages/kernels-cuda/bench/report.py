"""Merges gpu_bench's CSV and sdpa_baseline.py's CSV into the markdown table of BENCHMARKS.md.

usage: report.py razorkv.csv sdpa.csv
Columns: context, kvBudget (nominal and realized), our latency for the 32-layer stack and per layer, its ratio to
our full-cache latency at the same context, PyTorch SDPA's latency on the full cache (fastest backend that ran, and
PyTorch's default choice), achieved GB/s (K + V bytes of the kept entries over our latency) and its share of the
measured device-to-device copy bandwidth.
"""
import csv
import sys


def read(path):
    meta, rows = {}, []
    with open(path) as f:
        lines = [l for l in f if l.strip()]
    for l in lines:
        if l.startswith("#"):
            for kv in l[1:].split():
                if "=" in kv:
                    k, v = kv.split("=", 1)
                    meta[k] = v
    body = [l for l in lines if not l.startswith("#")]
    if body:
        rows = list(csv.DictReader(body))
    return meta, rows


def main():
    meta, ours = read(sys.argv[1])
    smeta, sdpa = read(sys.argv[2]) if len(sys.argv) > 2 else ({}, [])
    copy = float(meta.get("copy_gbps", "nan"))
    best, default = {}, {}
    for r in sdpa:
        c, us = int(r["context"]), float(r["stack_us"])
        if r["backend"] == "default":
            default[c] = us
        if c not in best or us < best[c][0]:
            best[c] = (us, r["backend"])
    main_rows = [r for r in ours if r["variant"] == "razorkv"]
    full = {int(r["context"]): float(r["stack_us"]) for r in main_rows if float(r["budget"]) >= 1.0}
    print(f"Device: {meta.get('device', '?').replace('_', ' ')}; measured copy bandwidth {copy:.0f} GB/s (read + write); "
          f"{meta.get('layers')} layers x {meta.get('kv_heads')} KV heads x d {meta.get('head_dim')}, "
          f"group {meta.get('group')}, {meta.get('dtype')} cache; torch {smeta.get('torch', 'n/a')}")
    print()
    print("| context | kvBudget (realized) | ours, 32 layers (µs) | ours per layer (µs) | vs our full cache | "
          "SDPA full cache, 32 layers (µs) | GB/s | % of copy BW |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in main_rows:
        c, b, us = int(r["context"]), float(r["budget"]), float(r["stack_us"])
        ratio = f"{us / full[c]:.2f}x" if c in full else "n/a"
        if b >= 1.0 and c in best:
            s = f"{best[c][0]:.0f} ({best[c][1]})"
            if c in default and best[c][1] != "default":
                s += f"; default {default[c]:.0f}"
        else:
            s = ""
        print(f"| {c // 1024}K | {b:.2f} ({float(r['realized_budget']):.3f}) | {us:.0f} | {float(r['layer_us']):.1f} | {ratio} | "
              f"{s} | {float(r['gbps']):.0f} | {float(r['pct_copy']):.0f}% |")
    others = [r for r in ours if r["variant"] != "razorkv"]
    if others:
        print()
        print("Variants (chunk = entries per split-K block, relative to the automatic choice; no_positions = no causal mask read):")
        print()
        print("| variant | context | kvBudget | chunk (layer 0) | ours, 32 layers (µs) | GB/s | % of copy BW |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for r in others:
            print(f"| {r['variant']} | {int(r['context']) // 1024}K | {float(r['budget']):.2f} | {r['chunk_layer0']} | "
                  f"{float(r['stack_us']):.0f} | {float(r['gbps']):.0f} | {float(r['pct_copy']):.0f}% |")


if __name__ == "__main__":
    main()
