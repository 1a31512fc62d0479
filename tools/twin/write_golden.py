#!/usr/bin/python3
"""Writes a golden file for tests/test_twin_golden.c: what the PyTorch twin
computes, in float64, for a tiny network with random non-zero weights (the
zero-initialised convs included, so every path carries signal).

The file is an ordinary model file (model_file.py, model_io.c), so the C test
loads it with the engine's own loader; "params" holds the weights and the
other sections the inputs and expected values (golden layout version 1):

  golden.version  u64 [1]
  tensors.names   u8  tensor names joined by '\\n' (engine order)
  tensors.shapes  u64 per tensor: ndim, shape[0..3], decay
  init.seed       u64 [seed]
  init.params     f32 (param count) bfn_net_init_params(seed) as the twin
                  reproduces it (same counter-based streams)
  fwd.x           f32 (B, in_ch, H, W) network input (2θ − 1)
  fwd.t           f32 (B) 0, 1, then uniform
  fwd.target      u8  (B, H, W) classes for the loss
  fwd.logits      f32 (B, out_ch, H, W)
  fwd.loss        u64 (B) per-image L∞ as float64 bit patterns
  fwd.grads       f32 (param count) d(mean L∞)/d(params)
  fwd.dx          f32 (B, in_ch, H, W) d(mean L∞)/d(x)
  fwd.zero_grad   u8  (param count) 1 where the exact gradient is 0 by
                  symmetry (see below)
  train.cfg       u64 batch, warmup, total_steps, seed, then float64 bits of
                  beta1, lr, lr_min, b1, b2, eps, weight_decay, clip, ema_decay
  train.x         u8  (4, B, H, W) the batches bfn_trainer_step receives
  train.t         f32 (4, B) the times it draws (for messages only)
  train.stats     u64 (4, 3) float64 bits of loss, gradient norm, lr per step
  train.params    f32 weights after 4 steps; train.ema, train.adam_m,
  train.adam_v    f32 EMA weights and Adam moments after 4 steps
  train.loose     u8  (param count) 1 where the update is compared loosely:
                  zero by symmetry, or a gradient near 0 in some step

The four steps replay bfn_trainer_step exactly: the twin draws the same
times and flow samples from the same counter-based streams (crng.py), so the
C test runs the real trainer on the stored batches. The settings make every
part show: lr through warmup, peak and cosine; a clip threshold between the
step norms (clipped in some steps, not in others); weight decay 0.3; EMA
0.9, so its warmup min(decay, (1 + s)/(10 + s)) decides. lr is 1e-3 (1e-4
in the 28 x 28 round trip): larger steps let the few arbitrary updates below
perturb the later steps' gradients beyond float32 rounding.

Some gradients are exactly zero in exact arithmetic: a bias added to every
attention key shifts each row of scores by a constant, which the softmax
ignores. Float32 leaves them at rounding level (~1e-9) and Adam divides
them by their own magnitude, so those elements' updates are arbitrary; the
test checks that their gradients are tiny instead of comparing updates. The
same holds for any element whose gradient happens to come close to 0 in one
of the steps; after the steps those are only checked to have moved by at
most a few learning rates (train.loose).

usage: write_golden.py [--K 2] [--out tests/golden/twin_k2.bin]
"""
import argparse
import os
import struct
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import crng  # noqa: E402
import model_file  # noqa: E402
from twin import CAdamW, NetConfig, TrainConfig, UNet, init_params, loss_cts, tensor_table  # noqa: E402

GOLDEN_VERSION = 1
STEPS = 4
INIT_SEED = 5


def tiny_config(K):
    """Non-square (8 x 12, so a transposed index shows), 3 levels (12 -> 6 ->
    3: an odd lowest width), skip convs where widths change, attention with
    2 heads over 2 x 3 positions, 2 channels per GroupNorm group at level 0."""
    return NetConfig(K=K, H=8, W=12, base_ch=8, n_levels=3, ch_mult=[1, 1, 2, 2, 2], n_res=1,
                     attn_levels=1, n_heads=2, temb_dim=16, groups=4, dropout=0.0)


def random_weights(cfg, rng):
    """Every tensor random and non-zero: weights U(±√(3/fan_in)), norm scales
    1 + 0.3 N, biases and norm shifts 0.3 N."""
    out = []
    for ti in tensor_table(cfg):
        if ti.fan_in:
            a = np.sqrt(3.0 / ti.fan_in)
            v = rng.uniform(-a, a, ti.numel)
        elif ti.name.endswith("norm.weight") or ti.name.endswith("norm1.weight") \
                or ti.name.endswith("norm2.weight"):
            v = 1.0 + 0.3 * rng.standard_normal(ti.numel)
        else:
            v = 0.3 * rng.standard_normal(ti.numel)
        out.append(v.astype(np.float32))
    return np.concatenate(out)


def f64_bits(values):
    return np.array([struct.unpack("<Q", struct.pack("<d", float(v)))[0] for v in values],
                    dtype=np.uint64)


def zero_by_symmetry(cfg):
    """Elements whose exact gradient is 0: the key part of every attention
    qkv bias (channels C..2C), softmax being shift-invariant per row."""
    mask = []
    for ti in tensor_table(cfg):
        m = np.zeros(ti.numel, dtype=np.uint8)
        if ".attn" in ti.name and ti.name.endswith("qkv.bias"):
            C = ti.shape[0] // 3
            m[C:2 * C] = 1
        mask.append(m)
    return np.concatenate(mask)


def near_zero_grads(step_grads, rel=1e-5):
    """Elements whose gradient in some step is below rel times the largest
    |gradient| of their tensor in that step. Adam divides a gradient by its
    own running magnitude, so such an element's update is set by float32
    rounding noise in the engine, not by the math."""
    flags = []
    for i in range(len(step_grads[0])):
        f = torch.zeros(step_grads[0][i].numel(), dtype=torch.bool)
        for gs in step_grads:
            g = gs[i].abs()
            f |= g < rel * float(g.max())
        flags.append(f.numpy().astype(np.uint8))
    return np.concatenate(flags)


def forward_backward(model, x, t, target, beta1):
    model.zero_grad()
    xin = x.clone().requires_grad_(True)
    logits = model(xin, t)
    per_image = loss_cts(logits, target, t, beta1)
    per_image.mean().backward()
    return logits.detach(), per_image.detach(), model.flat_grads(), xin.grad.detach()


def make_golden(cfg, params0, rng, dataset="golden", beta1=3.0, B=4, lr=1e-2):
    """The golden sections for network cfg at weights params0 (float32,
    engine order), inputs drawn from the NumPy generator rng. Returns a
    ModelFile ready to save; cfg.dropout is set to 0 in it (the C test runs
    training passes without a dropout stream)."""
    cfg = NetConfig(**{**cfg.__dict__, "ch_mult": list(cfg.ch_mult), "dropout": 0.0})
    D = cfg.H * cfg.W
    model = UNet(cfg, dtype=torch.float64)
    model.load_flat(torch.from_numpy(params0).double())
    model.train()  # dropout is 0: training and inference agree

    # ---- one forward/backward at given inputs ----
    x = np.tanh(1.5 * rng.standard_normal((B, cfg.in_ch, cfg.H, cfg.W))).astype(np.float32)
    t = np.concatenate([[0.0, 1.0], rng.random(B - 2)]).astype(np.float32)
    target = rng.integers(0, cfg.K, (B, cfg.H, cfg.W)).astype(np.uint8)
    logits, loss, grads, dx = forward_backward(
        model, torch.from_numpy(x).double(), torch.from_numpy(t).double(),
        torch.from_numpy(target), beta1)
    zero = zero_by_symmetry(cfg)
    gz = grads.numpy()[zero == 1]
    assert np.all(np.abs(gz) < 1e-12 * np.abs(grads.numpy()).max()), "symmetry-zero grads not zero"

    # ---- trainer steps ----
    tc = TrainConfig(beta1=beta1, batch=B, lr=lr, lr_min=lr / 10, warmup=2, total_steps=5,
                     adam_b1=0.9, adam_b2=0.98, adam_eps=1e-8, weight_decay=0.3, clip=0.0,
                     ema_decay=0.9, seed=7)
    batches = [(rng.random((B, D)) < 0.3).astype(np.uint8) for _ in range(STEPS)]
    # image 1 of every batch gets a different density so no two look alike
    for xb in batches:
        xb[1] |= (rng.random(D) < 0.5).astype(np.uint8)
    if cfg.K > 2:
        for xb in batches:
            xb *= rng.integers(1, cfg.K, xb.shape).astype(np.uint8)

    def run_steps(clip):
        tc.clip = clip
        m = UNet(cfg, dtype=torch.float64)
        m.load_flat(torch.from_numpy(params0).double())
        m.train()
        opt = CAdamW(m.plist, [ti.decay for ti in m.table], tc)
        base = crng.Rng.init(tc.seed, crng.STREAM_TRAIN)
        stats, times, grads = [], [], []
        for s in range(STEPS):
            rngs = crng.step_rngs(base, s)
            tt, inp = crng.batch_inputs(batches[s], cfg.K, tc.beta1, rngs)
            tf = tt.astype(np.float32)
            m.zero_grad()
            logit = m(torch.from_numpy(inp).double().reshape(B, cfg.in_ch, cfg.H, cfg.W),
                      torch.from_numpy(tf).double())
            li = loss_cts(logit, torch.from_numpy(batches[s].reshape(B, cfg.H, cfg.W)),
                          torch.from_numpy(tf).double(), tc.beta1)
            li.mean().backward()
            grads.append([q.grad.detach().reshape(-1).clone() for q in m.plist])
            gnorm, lr = opt.step()
            stats.append((float(li.mean()), gnorm, lr))
            times.append(tf)
        return m, opt, stats, times, grads

    # A clip threshold between the step norms, so some steps are clipped and
    # some not, none of them within 5% of the threshold (where float32 could
    # decide the branch differently): midpoints of the gaps, widest first.
    _, _, st0, _, _ = run_steps(0.0)
    norms = sorted(s[1] for s in st0)
    gaps = sorted(zip(norms, norms[1:]), key=lambda ab: ab[1] / ab[0], reverse=True)
    for lo, hi in gaps:
        clip = float(np.sqrt(lo * hi))
        m, opt, stats, times, step_grads = run_steps(clip)
        g = [s[1] for s in stats]
        if any(v > clip for v in g) and any(v < clip for v in g) and \
                all(abs(v - clip) > 0.05 * clip for v in g):
            break
    else:
        raise SystemExit("write_golden: found no clip threshold that splits the steps")
    loose = zero | near_zero_grads(step_grads)
    print(f"{int(loose.sum())} of {loose.size} elements compared loosely after the steps "
          f"({int(zero.sum())} zero by symmetry)")
    for s, (l, g, lr) in enumerate(stats):
        print(f"step {s}: loss {l:.6f}  grad norm {g:.6f} ({'clipped' if g > clip else 'not clipped'}"
              f" at {clip:.6f})  lr {lr:.6g}")

    table = tensor_table(cfg)
    shapes = []
    for ti in table:
        sh = list(ti.shape) + [0] * (4 - len(ti.shape))
        shapes += [len(ti.shape)] + sh + [ti.decay]
    cat = lambda ts: torch.cat([q.detach().reshape(-1) for q in ts]).numpy().astype(np.float32)  # noqa: E731
    mf = model_file.ModelFile(
        config=cfg, beta1=beta1, dataset=dataset, notes={"golden": f"twin v{GOLDEN_VERSION}",
                                                         "source": "tools/twin/write_golden.py"})
    mf.sections = {
        "params": params0,
        "golden.version": np.array([GOLDEN_VERSION], dtype=np.uint64),
        "tensors.names": np.frombuffer("\n".join(ti.name for ti in table).encode(), dtype=np.uint8),
        "tensors.shapes": np.array(shapes, dtype=np.uint64),
        "init.seed": np.array([INIT_SEED], dtype=np.uint64),
        "init.params": np.concatenate([v.reshape(-1) for v in init_params(cfg, INIT_SEED)]),
        "fwd.x": x.reshape(-1),
        "fwd.t": t,
        "fwd.target": target.reshape(-1),
        "fwd.logits": logits.numpy().astype(np.float32).reshape(-1),
        "fwd.loss": f64_bits(loss.numpy()),
        "fwd.grads": grads.numpy().astype(np.float32),
        "fwd.dx": dx.numpy().astype(np.float32).reshape(-1),
        "fwd.zero_grad": zero,
        "train.cfg": np.concatenate([
            np.array([tc.batch, tc.warmup, tc.total_steps, tc.seed], dtype=np.uint64),
            f64_bits([tc.beta1, tc.lr, tc.lr_min, tc.adam_b1, tc.adam_b2, tc.adam_eps,
                      tc.weight_decay, tc.clip, tc.ema_decay])]),
        "train.x": np.concatenate([b.reshape(-1) for b in batches]),
        "train.t": np.concatenate(times).astype(np.float32),
        "train.stats": f64_bits([v for s in stats for v in s]),
        "train.params": m.flat_params().numpy().astype(np.float32),
        "train.ema": cat(opt.ema),
        "train.adam_m": cat(opt.m),
        "train.adam_v": cat(opt.v),
        "train.loose": loose,
    }
    return mf


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--K", type=int, default=2)
    ap.add_argument("--out", default=None)
    ap.add_argument("--seed", type=int, default=2024)
    a = ap.parse_args()
    out = a.out or f"tests/golden/twin_k{a.K}.bin"
    torch.set_num_threads(1)
    cfg = tiny_config(a.K)
    rng = np.random.default_rng(a.seed + a.K)
    params0 = random_weights(cfg, rng)
    mf = make_golden(cfg, params0, rng, lr=1e-3)
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    model_file.save(out, mf)
    print(f"{out}: {len(params0)} parameters, {os.path.getsize(out)} bytes")


if __name__ == "__main__":
    main()
