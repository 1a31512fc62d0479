#!/usr/bin/python3
"""Checks of classify.py's two-digit half reading (crop_to_digit), on CPU:

 1. a digit pasted anywhere bfn_twodigit_render may put it (x 0..3, y 0..35 in
    the half) is cut out the same wherever it was pasted (the window follows the
    ink, so the crop does not depend on the placement);
 2. MNIST test digits come back from their half as they were, to within a
    pixel's shift (their centre of mass sits at the middle of the 28x28 frame):
    exactly for most of them, and never with ink lost for a shift of one;
 3. an empty half gives an empty window, a half full of ink its middle window,
    and ink in a corner a window that stays inside the padded half.
 4. with the trained weights present (runs/classify), real two-digit canvases
    read through the crop score as confidently as real 28x28 digits do (within
    3 points), and better than through the whole-half classifier.

usage: /usr/bin/python3 tools/classify/test_classify.py [--data-dir data/mnist]
       [--weights runs/classify]
Exits 0 when every check passed, 1 otherwise; prints SKIP (and exits 0) for the
checks whose MNIST files or weights are missing.
"""
import argparse
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import classify as C  # noqa: E402

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def paste(digit, dy, dx):
    half = np.zeros((C.HALF_H, C.HALF_W), np.float32)
    half[dy:dy + C.DIGIT, dx:dx + C.DIGIT] = digit
    return half


def shift_matches(a, b, max_shift):
    """Whether b is a shifted by at most max_shift pixels (zero fill), and by how much."""
    for s in range(max_shift + 1):
        for dy in range(-s, s + 1):
            for dx in range(-s, s + 1):
                if max(abs(dy), abs(dx)) != s:
                    continue
                if np.array_equal(np.roll(np.roll(a, dy, 0), dx, 1), b):
                    return s
    return None


def checks_geometry(digits):
    # 1: placement does not matter
    worst = 0
    for d in digits[:50]:
        crops = C.crop_to_digit(np.stack([paste(d, dy, dx) for dy in range(C.MAX_DY)
                                          for dx in range(C.MAX_DX)])).numpy()
        worst = max(worst, int(np.abs(crops - crops[0]).sum()))
    check(worst == 0, f"the crop does not depend on where the digit was pasted (worst: {worst} "
                      f"pixels differ over 50 digits x {C.MAX_DY * C.MAX_DX} placements)")
    # 2: the digit comes back
    crops = C.crop_to_digit(np.stack([paste(d, 11, 2) for d in digits])).numpy()
    shifts = [shift_matches(d, c, 1) for d, c in zip(digits, crops)]
    exact = sum(s == 0 for s in shifts)
    lost = sum(s is None for s in shifts)
    check(exact >= 0.6 * len(digits) and lost == 0,
          f"test digits come back as pasted: {exact} of {len(digits)} exactly, "
          f"{len(digits) - exact - lost} shifted by one pixel, {lost} otherwise (want >= 60% "
          f"exact, 0 otherwise)")
    # 3: degenerate halves
    empty = C.crop_to_digit(np.zeros((1, C.HALF_H, C.HALF_W), np.float32)).numpy()
    check(empty.shape == (1, 28, 28) and empty.sum() == 0, "an empty half gives an empty 28x28 window")
    full = C.crop_to_digit(np.ones((1, C.HALF_H, C.HALF_W), np.float32)).numpy()
    check(full.sum() == 28 * 28, f"a full half gives a full window ({int(full.sum())} of 784 on)")
    corner = np.zeros((2, C.HALF_H, C.HALF_W), np.float32)
    corner[0, 0, 0] = 1
    corner[1, -1, -1] = 1
    c = C.crop_to_digit(corner).numpy()
    check(c[0].sum() == 1 and c[1].sum() == 1,
          f"one pixel in a corner stays in its window ({int(c[0].sum())}, {int(c[1].sum())} of 1)")


def checks_scores(te_img, te_lab, weights):
    torch.set_num_threads(1)
    rng = np.random.default_rng(11)
    gen = torch.Generator().manual_seed(11)
    canv, digits = C.make_canvases(te_img, te_lab, 1000, rng)
    x = C.binarize(canv, gen)
    mnist = C.load_net(weights, "mnist")
    crop = C.score_canvases(mnist, x, 0.9, digits, crop=True)
    whole = C.score_canvases(C.load_net(weights, "half"), x, 0.9, digits)
    pick = rng.choice(te_img.shape[0], 2000, replace=False)
    plain = C.figures(C.predict(mnist, C.binarize(te_img[pick], gen)), 0.9)
    check(abs(crop["confident"] - plain["confident"]) <= 0.03,
          f"real halves through the crop read like real digits: {crop['confident']:.3f} vs "
          f"{plain['confident']:.3f} confident (within 0.03)")
    check(crop["confident"] > whole["confident"],
          f"the crop reads real halves more surely than the half classifier: "
          f"{crop['confident']:.3f} vs {whole['confident']:.3f}")
    check(crop["accuracy"] >= 0.95, f"both digits right through the crop: {crop['accuracy']:.3f} (>= 0.95)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default="data/mnist")
    ap.add_argument("--weights", default="runs/classify")
    args = ap.parse_args()
    try:
        te_img, te_lab = C.load_mnist(args.data_dir, "t10k")
    except Exception as e:
        print(f"SKIP: MNIST test files ({e})")
        return 0
    # MNIST digits are grey; binarize them once as the models see them
    digits = C.binarize(te_img[:300], torch.Generator().manual_seed(3)).numpy()
    checks_geometry(digits)
    if all(os.path.exists(os.path.join(args.weights, w)) for w in C.WEIGHTS.values()):
        checks_scores(te_img, te_lab, args.weights)
    else:
        print(f"SKIP: score checks (no weights in {args.weights}; run classify.py train)")
    print(f"{len(failures)} check(s) failed" if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
