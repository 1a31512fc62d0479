#!/usr/bin/python3
"""Digit classifiers that score generated samples.

  classify.py train [--epochs N] [--which mnist|half|both]
  classify.py score SAMPLES.idx [--ref N] [--json]

`train` fits two small CNNs (fixed seed, one CPU thread) on the MNIST training
images, binarized afresh for every batch (pixel on with probability
value/255), as the BFN models see them:
  * mnist28.pt: 28x28 digits;
  * half64x32.pt: one half of a two-digit canvas, 64 high x 32 wide, holding a
    28x28 digit at x in 0..3, y in 0..35 inside the half, as
    bfn_twodigit_render (src/engine/data.c) places it.
Weights go to runs/classify/ (--out DIR).

`score` reads an IDX3 ubyte file of samples (count x 28 x 28, or count x 64 x
64 where each 32-pixel-wide half is scored on its own: by default the 28x28
window centred on the half's ink, by the 28x28 classifier; --halves net: the
whole half, by the half classifier) and prints the
fraction whose largest softmax probability is >= 0.9 (--conf), the share of
each predicted class, and the largest deviation of a share from 1/10; then
the same figures for --ref N real test digits (or two-digit test canvases),
binarized with a fixed seed, as the reference. Exit status 0 unless the
input is bad (1) or the command line is (2).
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 1234
HALF_H, HALF_W, DIGIT = 64, 32, 28
# Placement inside a half (bfn_twodigit_render): x0 = 32*half + below(32 - 28),
# y0 = below(64 - 28); below(n) is uniform on 0..n-1.
MAX_DX, MAX_DY = HALF_W - DIGIT, HALF_H - DIGIT
WEIGHTS = {"mnist": "mnist28.pt", "half": "half64x32.pt"}


class InputError(Exception):
    pass


def load_idx(path, want_dims=None):
    """An unsigned-byte IDX file as a numpy array, checked against its header."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or not 1 <= raw[3] <= 4:
        raise InputError(f"{path}: not an unsigned-byte IDX file (bad magic)")
    nd = raw[3]
    if len(raw) < 4 + 4 * nd:
        raise InputError(f"{path}: truncated header")
    dims = struct.unpack(f">{nd}I", raw[4:4 + 4 * nd])
    if want_dims is not None and nd != want_dims:
        raise InputError(f"{path}: {nd} dimensions, expected {want_dims}")
    n = int(np.prod(dims, dtype=np.int64))
    if len(raw) != 4 + 4 * nd + n:
        raise InputError(f"{path}: {len(raw)} bytes, header {dims} says {4 + 4 * nd + n}")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def load_mnist(data_dir, part):
    """(images (n, 28, 28) uint8, labels (n,) int64) of 'train' or 't10k'."""
    img = load_idx(os.path.join(data_dir, f"{part}-images-idx3-ubyte"), 3)
    lab = load_idx(os.path.join(data_dir, f"{part}-labels-idx1-ubyte"), 1)
    if img.shape[0] != lab.shape[0] or img.shape[1:] != (DIGIT, DIGIT):
        raise InputError(f"{data_dir}: {part} images {img.shape} do not match labels {lab.shape}")
    return img, lab.astype(np.int64)


def binarize(x_u8, gen):
    """Dynamic binarization: each pixel on with probability value/255. (N, ...) float32."""
    x = torch.from_numpy(np.array(x_u8, dtype=np.float32)) / 255.0
    return (torch.rand(x.shape, generator=gen) < x).float()


def place_halves(digits, rng):
    """(n, 28, 28) digits -> (n, 64, 32) halves with the engine's random placement."""
    n = digits.shape[0]
    out = np.zeros((n, HALF_H, HALF_W), np.uint8)
    dx = rng.integers(0, MAX_DX, n)
    dy = rng.integers(0, MAX_DY, n)
    for i in range(n):
        out[i, dy[i]:dy[i] + DIGIT, dx[i]:dx[i] + DIGIT] = digits[i]
    return out


def make_canvases(images, labels, n, rng):
    """n two-digit 64x64 canvases (uint8) and their (n, 2) digit labels, drawn
    like bfn_twodigit_render: label uniform in 0..99, a digit of each class
    from the pool, one per half."""
    by_class = [np.flatnonzero(labels == c) for c in range(10)]
    lab = rng.integers(0, 100, n)
    digits = np.stack([lab // 10, lab % 10], 1)
    canv = np.zeros((n, HALF_H, 2 * HALF_W), np.uint8)
    for half in range(2):
        pick = np.array([rng.choice(by_class[c]) for c in digits[:, half]])
        canv[:, :, half * HALF_W:(half + 1) * HALF_W] = place_halves(images[pick], rng)
    return canv, digits


class Net(nn.Module):
    """Two 5x5 conv + max-pool stages and a small MLP; input (B, 1, H, W) in {0, 1}.
    The 64x32 halves get a third 3x3 stage: the digit's height varies by 36
    pixels there, and the extra pooling makes the features less tied to it."""

    def __init__(self, h, w):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 5, padding=2)
        self.c2 = nn.Conv2d(8, 16, 5, padding=2)
        self.c3 = nn.Conv2d(16, 32, 3, padding=1) if h > DIGIT else None
        feat = 16 * (h // 4) * (w // 4) if self.c3 is None else 32 * (h // 8) * (w // 8)
        self.fc1 = nn.Linear(feat, 128)
        self.fc2 = nn.Linear(128, 10)
        self.drop = nn.Dropout(0.3)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        if self.c3 is not None:
            x = F.max_pool2d(F.relu(self.c3(x)), 2)
        x = self.drop(F.relu(self.fc1(x.flatten(1))))
        return self.fc2(x)


def shape_of(kind):
    return (DIGIT, DIGIT) if kind == "mnist" else (HALF_H, HALF_W)


@torch.no_grad()
def predict(net, x, batch=500):
    """Softmax probabilities (N, 10) of binary images x (N, H, W) float."""
    net.eval()
    out = [F.softmax(net(x[i:i + batch, None]), 1) for i in range(0, x.shape[0], batch)]
    return torch.cat(out) if out else torch.zeros(0, 10)


def save_atomic(obj, path):
    tmp = f"{path}.tmp-{os.getpid()}"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train_one(kind, args, tr_img, tr_lab, te_img, te_lab):
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    h, w = shape_of(kind)
    net = Net(h, w)
    epochs = args.epochs if args.epochs else (3 if kind == "mnist" else 4)
    steps_per_epoch = (tr_img.shape[0] + args.batch - 1) // args.batch
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=epochs * steps_per_epoch)
    t0 = time.time()
    for ep in range(epochs):
        net.train()
        perm = rng.permutation(tr_img.shape[0])
        tot, right, seen = 0.0, 0, 0
        for s in range(steps_per_epoch):
            idx = perm[s * args.batch:(s + 1) * args.batch]
            d = tr_img[idx]
            if kind == "half":
                d = place_halves(d, rng)
            x = binarize(d, gen)[:, None]
            y = torch.from_numpy(tr_lab[idx])
            logits = net(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item() * len(idx)
            right += (logits.argmax(1) == y).sum().item()
            seen += len(idx)
        print(f"{kind}: epoch {ep + 1}/{epochs}  loss {tot / seen:.4f}  train acc {right / seen:.4f}"
              f"  {time.time() - t0:.0f} s", flush=True)
    # test: the t10k digits, binarized once with a fixed seed (halves placed at random)
    te_rng = np.random.default_rng(SEED + 1)
    d = place_halves(te_img, te_rng) if kind == "half" else te_img
    p = predict(net, binarize(d, torch.Generator().manual_seed(SEED + 1)))
    conf, pred = p.max(1)
    acc = (pred.numpy() == te_lab).mean()
    confident = (conf >= 0.9).float().mean().item()
    print(f"{kind}: test accuracy {acc:.4f} on binarized t10k, confident (>= 0.9) {confident:.4f}",
          flush=True)
    meta = {"kind": kind, "h": h, "w": w, "seed": SEED, "epochs": epochs, "batch": args.batch,
            "test_accuracy": float(acc), "test_confident": confident,
            "train_seconds": round(time.time() - t0, 1)}
    path = os.path.join(args.out, WEIGHTS[kind])
    save_atomic({"meta": meta, "state": net.state_dict()}, path)
    print(f"{kind}: wrote {path}", flush=True)


def cmd_train(args):
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    tr_img, tr_lab = load_mnist(args.data_dir, "train")
    te_img, te_lab = load_mnist(args.data_dir, "t10k")
    kinds = ["mnist", "half"] if args.which == "both" else [args.which]
    for k in kinds:
        train_one(k, args, tr_img, tr_lab, te_img, te_lab)
    return 0


def load_net(weights_dir, kind):
    path = os.path.join(weights_dir, WEIGHTS[kind])
    if not os.path.exists(path):
        raise InputError(f"{path}: no classifier weights; run `classify.py train` first")
    try:
        blob = torch.load(path, map_location="cpu")
        m = blob["meta"]
        net = Net(m["h"], m["w"])
        net.load_state_dict(blob["state"])
    except Exception as e:  # a truncated or foreign file fails in many ways
        raise InputError(f"{path}: not a classifier weights file ({type(e).__name__}: {e})")
    return net


def figures(probs, conf_min):
    """Score of (N, 10) probabilities: confident fraction, class shares, deviation."""
    conf, pred = probs.max(1)
    n = probs.shape[0]
    shares = np.bincount(pred.numpy(), minlength=10) / max(n, 1)
    return {
        "count": int(n),
        "confident": round(float((conf >= conf_min).float().mean().item()), 4) if n else 0.0,
        "mean_confidence": round(float(conf.mean().item()), 4) if n else 0.0,
        "shares": [round(float(s), 4) for s in shares],
        "max_share_deviation": round(float(np.abs(shares - 0.1).max()), 4),
    }


def crop_to_digit(halves):
    """(N, 64, 32) binary halves -> (N, 28, 28): the window of a 28x28 digit centred
    on the half's centre of mass (the ink's mean row and column, rounded as
    top = floor(mean row - 14 + 1/2)), zero outside the half. MNIST digits sit in their
    28x28 frame with the centre of mass at the middle, so a real digit comes back
    as it was pasted, to within a pixel; an empty half gives the middle window."""
    h = halves.numpy() if torch.is_tensor(halves) else halves
    n = h.shape[0]
    pad = np.zeros((n, HALF_H + 2 * DIGIT, HALF_W + 2 * DIGIT), np.float32)
    pad[:, DIGIT:DIGIT + HALF_H, DIGIT:DIGIT + HALF_W] = h
    out = np.zeros((n, DIGIT, DIGIT), np.float32)
    rows, cols = np.arange(HALF_H), np.arange(HALF_W)
    ink = h.reshape(n, -1).sum(1)
    for i in range(n):
        if ink[i] > 0:
            cy = float(h[i].sum(1) @ rows) / ink[i]
            cx = float(h[i].sum(0) @ cols) / ink[i]
        else:
            cy, cx = (HALF_H - 1) / 2, (HALF_W - 1) / 2
        # half-up rounding (Python's round() goes to even: the window would depend on placement)
        top, left = math.floor(cy - DIGIT / 2 + 0.5), math.floor(cx - DIGIT / 2 + 0.5)
        out[i] = pad[i, top + DIGIT:top + 2 * DIGIT, left + DIGIT:left + 2 * DIGIT]
    return torch.from_numpy(out)


def score_canvases(net, imgs, conf_min, labels=None, crop=False):
    """imgs (N, 64, 64) binary float: each half scored (crop: its digit window
    by the 28x28 classifier; else the whole half by the half classifier);
    also both halves at once."""
    halves = torch.cat([imgs[:, :, :HALF_W], imgs[:, :, HALF_W:]])
    p = predict(net, crop_to_digit(halves) if crop else halves)
    n = imgs.shape[0]
    fig = figures(p, conf_min)
    conf = p.max(1)[0]
    fig["canvases"] = int(n)
    fig["both_halves_confident"] = round(float(((conf[:n] >= conf_min) & (conf[n:] >= conf_min))
                                               .float().mean().item()), 4) if n else 0.0
    pairs = (p[:n].argmax(1) * 10 + p[n:].argmax(1)).numpy()
    fig["distinct_pairs"] = int(len(np.unique(pairs)))
    if labels is not None:
        fig["accuracy"] = round(float((pairs == labels[:, 0] * 10 + labels[:, 1]).mean()), 4)
    return fig


def cmd_score(args):
    torch.set_num_threads(args.threads)
    x = load_idx(args.samples)
    if x.ndim != 3 or x.shape[1:] not in ((DIGIT, DIGIT), (HALF_H, 2 * HALF_W)):
        raise InputError(f"{args.samples}: shape {x.shape}, expected N x 28 x 28 or N x 64 x 64")
    if x.shape[0] == 0:
        raise InputError(f"{args.samples}: no images")
    two = x.shape[1] == HALF_H
    crop = two and args.halves == "crop"
    net = load_net(args.weights, "half" if two and not crop else "mnist")
    binary = bool(np.isin(x, (0, 255)).all())
    gen = torch.Generator().manual_seed(args.seed)
    # samples are 0/255; anything else (e.g. raw MNIST) is binarized as in training
    xs = torch.from_numpy(x.astype(np.float32) / 255.0) if binary else binarize(x, gen)
    res = {"file": args.samples, "shape": list(x.shape), "binary": binary, "conf_min": args.conf,
           "halves": args.halves if two else None,
           "samples": score_canvases(net, xs, args.conf, crop=crop) if two else figures(predict(net, xs), args.conf)}
    if args.ref > 0:
        te_img, te_lab = load_mnist(args.data_dir, "t10k")
        rng = np.random.default_rng(args.seed)
        if two:
            ref, digits = make_canvases(te_img, te_lab, args.ref, rng)
            res["reference"] = score_canvases(net, binarize(ref, gen), args.conf, digits, crop)
        else:
            pick = rng.choice(te_img.shape[0], min(args.ref, te_img.shape[0]), replace=False)
            p = predict(net, binarize(te_img[pick], gen))
            res["reference"] = figures(p, args.conf)
            res["reference"]["accuracy"] = round(float((p.argmax(1).numpy() == te_lab[pick]).mean()), 4)
        res["reference"]["what"] = ("two-digit canvases of MNIST test digits" if two
                                    else "MNIST test digits") + ", dynamically binarized"
    if args.json:
        print(json.dumps(res, indent=1))
        return 0
    print(f"{args.samples}: {x.shape[0]} images {x.shape[1]}x{x.shape[2]}"
          f"{(' (each 32-wide half scored: ' + ('its centred 28x28 digit window, 28x28 classifier)' if crop else 'whole, half classifier)')) if two else ''}{'' if binary else ' (not 0/255: binarized)'}")
    for key, title in (("samples", "samples"), ("reference", "real test")):
        if key not in res:
            continue
        f = res[key]
        print(f"{title:>9}: n = {f['count']}{' halves' if two else ''}, confident (>= {args.conf}) "
              f"{f['confident']:.3f}, mean confidence {f['mean_confidence']:.3f}")
        print(f"{'':>9}  class shares " + " ".join(f"{s:.3f}" for s in f["shares"]))
        print(f"{'':>9}  largest share deviation from 0.1: {f['max_share_deviation']:.3f}")
        if two:
            print(f"{'':>9}  both halves confident {f['both_halves_confident']:.3f}, "
                  f"{f['distinct_pairs']} distinct labels of 100")
        if "accuracy" in f:
            print(f"{'':>9}  accuracy against the true labels {f['accuracy']:.3f}"
                  f"{' (both digits right)' if two else ''}")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="classify.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    tr = sub.add_parser("train", help="train the 28x28 and the two-digit-half classifiers")
    tr.add_argument("--which", choices=("mnist", "half", "both"), default="both")
    tr.add_argument("--epochs", type=int, default=0, help="epochs (default 3 for mnist, 4 for half)")
    tr.add_argument("--batch", type=int, default=128)
    tr.add_argument("--out", default="runs/classify", help="weights directory (default runs/classify)")
    tr.add_argument("--data-dir", default="data/mnist")
    tr.add_argument("--threads", type=int, default=1)
    sc = sub.add_parser("score", help="score an IDX file of samples")
    sc.add_argument("samples", help="IDX3 ubyte file, N x 28 x 28 or N x 64 x 64")
    sc.add_argument("--ref", type=int, default=1000,
                    help="real test digits (or canvases) scored as reference (default 1000, 0: none)")
    sc.add_argument("--halves", choices=("crop", "net"), default="crop",
                    help="64x64 canvases: score each half's 28x28 window centred on its ink with the "
                         "28x28 classifier (crop, default) or the whole half with the half classifier (net)")
    sc.add_argument("--conf", type=float, default=0.9, help="confidence threshold (default 0.9)")
    sc.add_argument("--weights", default="runs/classify", help="weights directory (default runs/classify)")
    sc.add_argument("--data-dir", default="data/mnist")
    sc.add_argument("--seed", type=int, default=1, help="seed of the reference draw and binarization")
    sc.add_argument("--threads", type=int, default=1)
    sc.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    try:
        return cmd_train(args) if args.cmd == "train" else cmd_score(args)
    except InputError as e:
        print(f"classify.py {args.cmd}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
