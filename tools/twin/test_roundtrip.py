#!/usr/bin/python3
"""Round trip between the PyTorch twin and the engine, on CPU:

 1. trains a small network on MNIST with train_ddp.py under torchrun
    (2 processes, gloo) and with `bfn train`, same flags and seed, and checks
    that both logs agree step by step (loss, gradient norm, lr, validation);
 2. checks that each side reads what the other wrote: the twin re-encodes
    the engine's model and checkpoint files byte for byte; `bfn info`,
    `bfn sample` and `bfn eval` run the twin's model file; `bfn train
    --resume` continues the twin's checkpoint and train_ddp.py --resume the
    engine's for 3 more steps, and the two continued runs agree;
 3. writes a golden file from the twin-trained weights (write_golden.py's
    make_golden, at 28 x 28) and runs build/test_twin_golden on it: engine
    logits, gradients and AdamW steps equal the twin's within the golden
    test's tolerances.

usage: /usr/bin/python3 tools/twin/test_roundtrip.py [--build build] [--data-dir data/mnist] [--attn N]
Exits 0 when every check passed, 1 otherwise; prints SKIP and exits 0 when
PyTorch, the build or the MNIST files are missing.
"""
import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

FLAGS = ["--batch", "8", "--base-ch", "8", "--n-res", "1", "--temb", "16", "--groups", "4",
         "--dropout", "0", "--val-every", "3", "--val-batches", "1", "--threads", "1",
         "--seed", "3", "--lr", "2e-3", "--warmup", "2"]
failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        failures.append(what)
    return cond


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        print(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    return r


def read_log(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def compare_logs(a, b, what, rtol=1e-4):
    """Step-by-step agreement of two CSV logs (train.c / train_ddp.py)."""
    if not check(len(a) == len(b), f"{what}: {len(a)} and {len(b)} logged steps"):
        return
    worst = 0.0
    for ra, rb in zip(a, b):
        for col in ("loss", "grad_norm", "lr", "val_loss"):
            if ra[col] == "" and rb[col] == "":
                continue
            x, y = float(ra[col]), float(rb[col])
            worst = max(worst, abs(x - y) / max(abs(x), 1e-12))
    check(worst <= rtol, f"{what}: loss, grad norm, lr, validation agree (worst relative "
                         f"difference {worst:.2e} <= {rtol:g})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="CMake build directory (default build)")
    ap.add_argument("--data-dir", default="data/mnist")
    ap.add_argument("--nproc", type=int, default=2, help="DDP processes (default 2)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--attn", type=int, default=1,
                    help="attention levels of the small network (default 1: the lowest only)")
    a = ap.parse_args()
    try:
        import numpy as np
        import torch
    except ImportError as e:
        print(f"SKIP: this Python cannot import PyTorch ({e}); use /usr/bin/python3 with "
              "python3-torch installed")
        return 0
    bfn = os.path.join(a.build, "bfn")
    golden_test = os.path.join(a.build, "test_twin_golden")
    for p in (bfn, golden_test):
        if not os.access(p, os.X_OK):
            print(f"SKIP: {p} not built (cmake --build {a.build})")
            return 0
    if not os.path.exists(os.path.join(a.data_dir, "train-images-idx3-ubyte")) and \
            not os.path.exists(os.path.join(a.data_dir, "train-images-idx3-ubyte.gz")):
        print(f"SKIP: no MNIST files in {a.data_dir} (bfn data fetch)")
        return 0

    tmp = tempfile.mkdtemp(prefix="bfn-twin-")
    P = lambda name: os.path.join(tmp, name)  # noqa: E731
    common = FLAGS + ["--attn", str(a.attn), "--data-dir", a.data_dir, "--quiet"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # Debian's torchrun (torch 1.13, Python 3.11) fails on its default
    # --redirects/--tee values; "1" avoids the broken code path.
    launch = [shutil.which("torchrun") or "torchrun", "--standalone",
              f"--nproc_per_node={a.nproc}", "--redirects", "1", "--tee", "1",
              "--log_dir", P("torchrun-logs")]
    twin_train = launch + [os.path.join(HERE, "train_ddp.py")]

    print(f"-- 1. twin ({a.nproc} DDP processes) and engine train the same run")
    r1 = run(twin_train + common + ["--steps", "6", "--ckpt", P("twin.ckpt"), "--out",
                                    P("twin.bfn")], env=env)
    r2 = run([bfn, "train"] + common + ["--steps", "6", "--ckpt", P("c.ckpt"), "--out",
                                        P("c.bfn")])
    if check(r1.returncode == 0 and r2.returncode == 0, "both trainers ran 6 steps"):
        compare_logs(read_log(P("twin.ckpt.csv")), read_log(P("c.ckpt.csv")),
                     "twin DDP vs bfn train")

        print("-- 2. the engine reads the twin's files and the twin the engine's")
        import model_file
        for name in ("c.bfn", "c.ckpt"):
            with open(P(name), "rb") as f:
                raw = f.read()
            check(model_file.encode(model_file.decode(raw, name)) == raw,
                  f"the twin reads the engine's {name} and writes it back byte for byte")
        r = run([bfn, "info", "--model", P("twin.bfn")])
        check(r.returncode == 0 and "trainer=tools/twin/train_ddp.py" in r.stdout,
              "bfn info reads the twin's model file")
        r = run([bfn, "sample", "--model", P("twin.bfn"), "--steps", "10", "--count", "4",
                 "--out", P("s.png"), "--threads", "1"])
        check(r.returncode == 0 and os.path.getsize(P("s.png")) > 0,
              "bfn sample runs the twin's model file")
        r = run([bfn, "eval", "--model", P("twin.bfn"), "--limit", "16", "--continuous",
                 "--data-dir", a.data_dir, "--threads", "1"])
        check(r.returncode == 0, "bfn eval runs the twin's model file")
        for src, dst in (("twin.ckpt", "twin2.ckpt"), ("c.ckpt", "c2.ckpt")):
            shutil.copy(P(src), P(dst))
            shutil.copy(P(src) + ".csv", P(dst) + ".csv")
        more = ["--steps", "9", "--val-every", "3", "--val-batches", "1", "--threads", "1",
                "--data-dir", a.data_dir, "--quiet", "--resume"]
        ra = run([bfn, "train"] + more + ["--ckpt", P("twin2.ckpt"), "--out", P("twin2.bfn")])
        rb = run(twin_train + more + ["--ckpt", P("c2.ckpt"), "--out", P("c2.bfn")], env=env)
        if check(ra.returncode == 0 and rb.returncode == 0,
                 "bfn train resumes the twin's checkpoint, train_ddp.py the engine's"):
            compare_logs(read_log(P("twin2.ckpt.csv")), read_log(P("c2.ckpt.csv")),
                         "resumed runs (twin -> engine vs engine -> twin)")
        # both refuse a resume whose options say something else than the checkpoint,
        # and accept one that repeats the starting command
        for name, cmd in (("twin", twin_train), ("engine", [bfn, "train"])):
            r = subprocess.run(cmd + common + ["--steps", "10", "--resume", "--lr", "5e-3",
                                               "--ckpt", P("c2.ckpt"), "--out", P("c3.bfn")],
                               capture_output=True, text=True, env=env)
            check(r.returncode != 0 and "--lr 0.005 (checkpoint: 0.002)" in r.stderr,
                  f"{name}: --resume refuses --lr 5e-3 against the checkpoint's 2e-3 "
                  f"(exit {r.returncode}: {r.stderr.strip()[-160:]!r})")
        # rows past the checkpoint (a kill after its last save) are dropped on resume
        for name, cmd, ck in (("twin", twin_train, "c2.ckpt"), ("engine", [bfn, "train"], "twin2.ckpt")):
            with open(P(ck) + ".csv", "a") as f:
                f.write("10,80,1,1,,1,1,1\n11,8")
            r = run(cmd + common + ["--steps", "10", "--resume", "--ckpt", P(ck), "--out", P(ck + ".bfn")], env=env)
            steps = [row["step"] for row in read_log(P(ck) + ".csv")]
            check(r.returncode == 0 and steps == [str(i) for i in range(1, 11)],
                  f"{name}: a resume repeating the starting options runs, and its log holds steps "
                  f"1..10 once each (has {steps})")

        print("-- 3. golden check of the engine at the twin-trained weights")
        from write_golden import make_golden
        torch.set_num_threads(1)
        mf = model_file.load(P("twin.bfn"))
        g = make_golden(mf.config, mf.sections["params"], np.random.default_rng(11),
                        dataset="mnist", lr=1e-4)
        model_file.save(P("golden.bin"), g)
        r = run([golden_test, P("golden.bin")])
        print("   " + "\n   ".join(r.stdout.strip().splitlines()))
        check(r.returncode == 0, "test_twin_golden passes on the twin-trained 28x28 network")

    if a.keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'FAILED: ' + str(len(failures)) + ' check(s)' if failures else 'all checks passed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
