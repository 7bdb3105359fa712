#!/usr/bin/env python3
"""Times geomloss 0.3.1 on the GPU for the cases of benches/benches/ot_cuda.rs.

SamplesLoss("sinkhorn", p, blur=0.05, scaling=0.9, debias=True, backend=...) on float32 clouds
built like the Rust bench (uniform in the unit cube, y shifted by 0.5 in the first coordinate;
different RNG, same distribution), value + gradient w.r.t. x (loss.backward()).
Backend "online" (KeOps, no N x M buffer) when pykeops works, else "tensorized" up to the sizes
that fit in memory. Usage: python3 benches/geomloss_gpu.py [--max-n 1000000] [--backend online]
Prints a markdown table (median seconds over repetitions, after one warm-up).
"""
import argparse
import time

import torch
from geomloss import SamplesLoss


def cloud(n, d, shift, seed):
    g = torch.Generator(device="cpu").manual_seed(seed)
    x = torch.rand(n, d, generator=g, dtype=torch.float32)
    x[:, 0] += shift
    return x.cuda()


def time_case(n, d, p, backend):
    x = cloud(n, d, 0.0, 1).requires_grad_(True)
    y = cloud(n, d, 0.5, 2)
    loss = SamplesLoss("sinkhorn", p=p, blur=0.05, scaling=0.9, debias=True, backend=backend)

    def run():
        x.grad = None
        value = loss(x, y)
        value.backward()
        torch.cuda.synchronize()
        return value.item()

    run()  # warm-up (KeOps compiles its formulas on first use)
    reps = 1 if n >= 1_000_000 else 3 if n >= 100_000 else 10
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-n", type=int, default=1_000_000)
    ap.add_argument("--backend", default="online", choices=["online", "tensorized", "auto"])
    args = ap.parse_args()
    assert torch.cuda.is_available(), "no CUDA device"
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, backend {args.backend}")
    print("| N = M | d | p | seconds (median) |")
    print("|---|---|---|---|")
    for n in [1_000, 10_000, 100_000, 1_000_000]:
        if n > args.max_n:
            continue
        for d in [2, 5]:
            for p in [2, 1]:
                try:
                    t = time_case(n, d, p, args.backend)
                    print(f"| {n} | {d} | {p} | {t:.4f} |", flush=True)
                except Exception as e:  # out of memory for tensorized, KeOps build issues
                    print(f"| {n} | {d} | {p} | failed: {type(e).__name__}: {str(e)[:80]} |", flush=True)


if __name__ == "__main__":
    main()
