"""PyTorch scaled_dot_product_attention on the full cache: the baseline of `pnpm bench` (bench/run.sh).

Same shapes and method as build/cuda/gpu_bench: a Llama-3-8B-shaped stack of 32 layers, each with its own random
cache (K and V [1, 8, context, 128]) and query [1, 32, 1, 128], batch 1, one query token; SDPA with enable_gqa=True
(no repeated K/V); the 32 calls captured in one CUDA graph, warm-up replays, then the median of `iters` replays
timed with CUDA events. Each backend that accepts the call is timed; `default` is PyTorch's own choice.
Prints CSV: backend,context,stack_us,layer_us,gbps (bytes = K + V of the full cache).
"""
import argparse
import statistics
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


def time_graph(step, iters):
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    for _ in range(5):
        graph.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    del graph
    return statistics.median(times) * 1000.0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--contexts", default="4096,8192,16384,32768,65536,131072")
    p.add_argument("--layers", type=int, default=32)
    p.add_argument("--heads", type=int, default=32)
    p.add_argument("--kv-heads", type=int, default=8)
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--dtype", default="f16", choices=["f16", "bf16"])
    p.add_argument("--iters", type=int, default=50)
    a = p.parse_args()
    dtype = torch.float16 if a.dtype == "f16" else torch.bfloat16
    dev = torch.device("cuda")
    print(f"# device={torch.cuda.get_device_name()} torch={torch.__version__} dtype={a.dtype} layers={a.layers}")
    print("backend,context,stack_us,layer_us,gbps")
    backends = [("default", None), ("flash", SDPBackend.FLASH_ATTENTION), ("efficient", SDPBackend.EFFICIENT_ATTENTION),
                ("cudnn", SDPBackend.CUDNN_ATTENTION)]
    for context in [int(c) for c in a.contexts.split(",")]:
        torch.manual_seed(context)
        qs = [torch.empty(1, a.heads, 1, a.head_dim, device=dev, dtype=dtype).uniform_(-2, 2) for _ in range(a.layers)]
        ks = [torch.empty(1, a.kv_heads, context, a.head_dim, device=dev, dtype=dtype).uniform_(-1, 1) for _ in range(a.layers)]
        vs = [torch.empty(1, a.kv_heads, context, a.head_dim, device=dev, dtype=dtype).uniform_(-1, 1) for _ in range(a.layers)]
        outs = [None] * a.layers
        kv_bytes = 2 * a.layers * a.kv_heads * context * a.head_dim * ks[0].element_size()

        def step():
            for l in range(a.layers):
                outs[l] = F.scaled_dot_product_attention(qs[l], ks[l], vs[l], enable_gqa=True)

        for name, backend in backends:
            try:
                if backend is None:
                    us = time_graph(step, a.iters)
                else:
                    with sdpa_kernel([backend]):
                        us = time_graph(step, a.iters)
            except Exception as e:  # a backend that rejects these shapes or enable_gqa
                print(f"sdpa {name} context {context}: not available ({str(e).splitlines()[0][:120]})", file=sys.stderr)
                continue
            gbps = kv_bytes / (us * 1e-6) / 1e9
            print(f"{name},{context},{us:.1f},{us / a.layers:.2f},{gbps:.0f}", flush=True)
            print(f"sdpa {name:9s} context {context:6d}: {us:9.1f} us per {a.layers} layers, {gbps:6.0f} GB/s", file=sys.stderr)
        del qs, ks, vs, outs
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
