#!/usr/bin/env python3
"""Times a PyTorch model of the reference's computation beside our benches, on the same machine.

Not the reference code itself (which is not vendored): the attention energy of SPEC 2.1 written
with `torch.nn` (pre-LayerNorm blocks, `nn.MultiheadAttention`, GELU-erf, sum pooling), the
force by `torch.autograd.grad`, and one training step as the reference's
`train_rollout_anchor_p0_randk` does it (the reference's `leapfrog_auto`, which evaluates the
force twice per step, with graphs; geomloss `SamplesLoss("sinkhorn", scaling=0.9)` per reached
snapshot; `loss.backward()`; AdamW). Same cases as `benches/benches/energy.rs` and
`training.rs`, f32, `torch.set_num_threads(THREADS)`.

Usage: python3 benches/reference_torch.py [--threads 2] [--only energy|training] [--cases ...]
Prints one line per case: median wall ms over repetitions after warm-up, and peak RSS.
Needs torch (and geomloss for the training step).
"""
import argparse
import math
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, hidden, heads, ff):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden)
        self.self_attn = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(nn.Linear(hidden, ff), nn.GELU(), nn.Dropout(0.0),
                                 nn.Linear(ff, hidden), nn.Dropout(0.0))

    # need_weights=True is the explicit bmm + softmax path, which can be differentiated twice;
    # False lets PyTorch use its fused scaled-dot-product kernel (faster, once differentiable).
    need_weights = True

    def forward(self, h):
        u = self.norm1(h)
        h = h + self.self_attn(u, u, u, need_weights=self.need_weights)[0]
        return h + self.ffn(self.norm2(h))


class AttentionEnergy(nn.Module):
    def __init__(self, dim=2, heads=4, hidden=64, blocks=4, ff=512):
        super().__init__()
        self.input_projection = nn.Linear(dim, hidden)
        self.flow_layers = nn.ModuleList(Block(hidden, heads, ff) for _ in range(blocks))
        self.output_projection = nn.Linear(hidden, 1)

    def forward(self, x):
        h = self.input_projection(x).unsqueeze(0)
        for block in self.flow_layers:
            h = block(h)
        return self.output_projection(h).sum()


def accel(model, x, create_graph):
    """The reference's detached-position force: -grad_x E at x.detach()."""
    x = x.detach().requires_grad_(True)
    energy = model(x)
    (grad,) = torch.autograd.grad(energy, x, create_graph=create_graph)
    return -grad


def median_ms(fn, reps, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def energy_cases(reps):
    """Each case in PyTorch's fastest way that computes it: energy and force also with the fused
    attention kernel (eval mode, need_weights=False); force + backward only with the explicit
    path (the fused kernel has no double backward)."""
    torch.manual_seed(0)
    model = AttentionEnergy()  # train mode as the reference (dropout 0)
    params = list(model.parameters())

    def fused(on):
        for block in model.flow_layers:
            block.need_weights = not on
        model.train(not on)

    for n in [256, 1000]:
        x = torch.rand(n, 2) * 4 - 2
        r = torch.rand(n, 2) * 4 - 2

        def energy():
            with torch.no_grad():
                model(x)

        def force():
            accel(model, x, create_graph=False)

        def backward():
            for p in params:
                p.grad = None
            (accel(model, x, create_graph=True) * r).sum().backward()

        for name, fn, variants in [
            ("energy", energy, [False, True]),
            ("force", force, [False, True]),
            ("force_and_param_backward", backward, [False]),
        ]:
            times = []
            for on in variants:
                fused(on)
                times.append(median_ms(fn, reps))
            fused(False)
            detail = " / ".join(f"{t:.2f}" for t in times)
            print(f"energy/{name}/N={n}: {min(times):.2f} ms (explicit / fused attention: {detail})", flush=True)


def leapfrog_auto(model, x, v, dt, steps, gamma):
    """The reference's rollout: two force evaluations per step, every state kept."""
    m = math.exp(-0.5 * gamma * dt) if gamma >= 1e-6 else 1.0
    c = m * dt / 2 + (1 - m)
    history = [x]
    for _ in range(steps):
        v_half = m * v + c * accel(model, x, True)
        x = x + dt * v_half
        v = m * v_half + c * accel(model, x, True)
        history.append(x)
    return history


def training_case(name, n, k, p, boids, reps):
    from geomloss import SamplesLoss

    torch.manual_seed(0)
    dt = 0.5 if boids else 0.01
    clouds = []
    for step in range(k + 1):
        if boids:
            clouds.append(torch.rand(n, 2) * 10 - 5)
        else:
            clouds.append(torch.randn(n, 2) * math.sqrt(0.2 + 2 * dt * step))
    angle = torch.rand(n) * 2 * math.pi
    v0 = torch.stack([angle.cos(), angle.sin()], 1) if boids else torch.rand(n, 2) * 2 - 1
    model = AttentionEnergy()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-4)
    blur = 0.5 * torch.cdist(clouds[0][:200], clouds[0][:200]).median().item()
    loss_fn = SamplesLoss("sinkhorn", p=p, blur=blur, scaling=0.9, debias=True)

    def step():
        opt.zero_grad(set_to_none=True)
        xs = leapfrog_auto(model, clouds[0], v0, dt, k, 0.0)
        loss = torch.stack([loss_fn(xs[m], clouds[m]) for m in range(1, k + 1)]).mean()
        loss.backward()
        opt.step()

    ms = median_ms(step, reps, warmup=1)
    print(f"training/{name}: {ms / 1e3:.3f} s per step, peak RSS {peak_rss_mb():.0f} MB", flush=True)


TRAINING = {
    "boids_n256_k10_p1": (256, 10, 1, True),
    "boids_n1000_k10_p1": (1000, 10, 1, True),
    "gfsde_n1000_k9_p2": (1000, 9, 2, False),
    "boids_n256_k49_p1": (256, 49, 1, True),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", choices=["energy", "training"])
    ap.add_argument("--cases", default=",".join(TRAINING), help="training cases, comma-separated")
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads", flush=True)
    if args.only != "training":
        energy_cases(args.reps)
    if args.only != "energy":
        for name in args.cases.split(","):
            training_case(name, *TRAINING[name], reps=max(3, args.reps // 3))


if __name__ == "__main__":
    main()
