#!/usr/bin/python3
"""The PyTorch side of bench/bench_vs_torch.sh: the twin doing what
build/bench_engine does, with the same options and the same printed lines.

  train:   a full step on random binary images (p = 0.2): stratified t, flow
           sample, network forward (dropout as configured), L∞, backward,
           clipping, AdamW, EMA (twin.CAdamW, fused over tensors)
  forward: inference (no autograd) at batch 1, 16, 64 on zero inputs
  peak RSS of this process (PyTorch's own libraries included)

The random numbers here come from PyTorch's generator (crng.py's exact
replay of the engine's streams is for reproducing runs, not for speed).

usage: bench.py [--batch 64] [--seconds 5] [--threads 2] [--base-ch C] [--n-res N] [--attn N]
"""
import argparse
import os
import resource
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from twin import CAdamW, NetConfig, TrainConfig, UNet, loss_cts  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--base-ch", type=int, default=0)
    ap.add_argument("--n-res", type=int, default=-1)
    ap.add_argument("--attn", type=int, default=-1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"interop {torch.get_num_interop_threads()}")

    cfg = NetConfig.default(2, 28, 28)
    if a.base_ch > 0:
        cfg.base_ch = a.base_ch
    if a.n_res >= 0:
        cfg.n_res = a.n_res
    if a.attn >= 0:
        cfg.attn_levels = a.attn
    model = UNet(cfg, seed=1)
    print(f"model: 28x28 base {cfg.base_ch} n_res {cfg.n_res}, {model.param_count()} parameters")

    tc = TrainConfig(batch=a.batch)
    opt = CAdamW(model.plist, [ti.decay for ti in model.table], tc)
    B = a.batch

    def train_step():
        x = (torch.rand(B, cfg.H, cfg.W) < 0.2).to(torch.uint8)
        t = (torch.arange(B, dtype=torch.float64) + torch.rand(())) / B
        beta = tc.beta1 * t * t
        # K = 2 flow: ℓ ~ N(2β(2x − 1), 4β); network input tanh(ℓ/2) = 2θ − 1
        ell = 2.0 * beta[:, None, None] * (2.0 * x - 1.0) \
            + torch.sqrt(4.0 * beta)[:, None, None] * torch.randn(B, cfg.H, cfg.W, dtype=torch.float64)
        inp = torch.tanh(0.5 * ell).float()[:, None]
        tf = t.float()
        model.train()
        for q in model.plist:
            q.grad = None
        loss = loss_cts(model(inp, tf), x, tf.double(), tc.beta1).mean()
        loss.backward()
        opt.step()

    train_step()  # warm-up
    steps, t0 = 0, time.perf_counter()
    while True:
        train_step()
        steps += 1
        el = time.perf_counter() - t0
        if el >= a.seconds:
            break
    print(f"train: batch {B}, {steps * B / el:.1f} images/s, {1e3 * el / steps:.1f} ms/step")

    model.eval()
    for fb in (1, 16, 64):
        if fb > a.batch:
            continue
        x = torch.zeros(fb, 1, cfg.H, cfg.W)
        t = torch.zeros(fb)
        with torch.inference_mode():
            model(x, t)  # warm-up
            reps, t0 = 0, time.perf_counter()
            while True:
                model(x, t)
                reps += 1
                el = time.perf_counter() - t0
                if el >= a.seconds / 2:
                    break
        print(f"forward: batch {fb:2d}, {reps * fb / el:.1f} images/s ({1e3 * el / reps:.2f} ms/call)")
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"peak RSS: {rss_mib:.0f} MiB")


if __name__ == "__main__":
    main()
