#!/usr/bin/python3
"""Trains the engine's network with PyTorch DistributedDataParallel and
writes the engine's checkpoint and model files, so `bfn sample`, `bfn eval`
and `bfn train --resume` take over from it (and it can resume a checkpoint
that `bfn train` wrote).

The recipe is `bfn train`'s, flag for flag: continuous-time loss, dynamic
binarization, stratified times, AdamW with warmup + cosine, clipping, EMA
with warmup, validation on the 600 held-out images with the EMA weights.
The batches, times and flow samples come from the engine's own random
streams (crng.py): with the same seed a run here sees exactly the images,
pixels, t and θ that `bfn train` sees, whatever the number of processes.
Only dropout masks come from PyTorch's generator.

Each of N processes takes batch/N rows of every batch; DDP averages the
gradients, so the update is that of the whole batch. Launch:
  torchrun --standalone --nproc_per_node=2 tools/twin/train_ddp.py --steps 2000
  (gloo on CPU; --device cuda uses one GPU per process and nccl)
A single process (plain /usr/bin/python3 tools/twin/train_ddp.py ...) runs
without torch.distributed.
"""
import argparse
import math
import os
import signal
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

import crng  # noqa: E402
import data  # noqa: E402
import model_file  # noqa: E402
from twin import CAdamW, NetConfig, TrainConfig, UNet, loss_cts  # noqa: E402

TRAIN_STATE_VERSION = 1  # train.c checkpoint "train" section
VALIDATE_SEED = 12345    # cmd_train.c passes this to bfn_trainer_validate


def parse_args(argv=None):
    d = TrainConfig()
    ap = argparse.ArgumentParser(
        description="Trains the engine's U-Net with PyTorch DDP; flags mirror `bfn train`.",
        allow_abbrev=False)
    a = ap.add_argument
    a("--data", default="mnist", help="mnist | fashion (default mnist; with --resume the "
                                      "checkpoint's)")
    a("--data-dir", default=None, help="directory with the IDX files (default data/mnist)")
    a("--ckpt", default=None, help="checkpoint file (default runs/<data>-twin.ckpt)")
    a("--out", default=None, help="model file with the EMA weights (default runs/<data>-twin.bfn)")
    a("--log", default=None, help="CSV log (default: checkpoint path + .csv)")
    a("--resume", action="store_true", help="continue from the checkpoint (ours or bfn train's)")
    a("--force", action="store_true", help="start afresh even if the checkpoint exists")
    a("--steps", type=int, default=20000, help="total optimizer steps of the run (default 20000)")
    a("--batch", type=int, default=d.batch, help="images per step, all processes together (64)")
    a("--lr", type=float, default=d.lr, help="peak learning rate (default 1e-3)")
    a("--lr-min", type=float, default=d.lr_min, help="final lr of the cosine decay (1e-5)")
    a("--warmup", type=int, default=-1, help="warmup steps (default min(500, steps/10))")
    a("--beta1", type=float, default=d.beta1, help="BFN accuracy beta(1) (default 3)")
    a("--weight-decay", type=float, default=d.weight_decay, help="AdamW weight decay (0.01)")
    a("--clip", type=float, default=d.clip, help="gradient-norm clip, 0 = off (default 5)")
    a("--ema", type=float, default=d.ema_decay, help="EMA decay of the weights (default 0.999)")
    a("--seed", type=int, default=d.seed, help="random seed (default 1)")
    a("--base-ch", type=int, default=0, help="channels at full resolution (default 32)")
    a("--mult", default=None, help="channel multipliers per level, e.g. 1,2,2")
    a("--n-res", type=int, default=-1, help="residual blocks per level")
    a("--heads", type=int, default=0, help="attention heads")
    a("--attn", type=int, default=-1, help="self-attention in the lowest N levels (1: the lowest only, 0: none)")
    a("--temb", type=int, default=0, help="time-embedding width")
    a("--groups", type=int, default=0, help="GroupNorm groups")
    a("--dropout", type=float, default=-1, help="dropout probability")
    a("--val-every", type=int, default=500, help="validation every N steps, 0 = never (500)")
    a("--val-batches", type=int, default=10, help="validation batches (default 10)")
    a("--ckpt-every", type=int, default=1000, help="checkpoint every N steps (default 1000)")
    a("--ckpt-minutes", type=float, default=10.0, help="and at least every M minutes (10)")
    a("--notes", default="", help="free text stored in the model file")
    a("--threads", type=int, default=0, help="CPU threads per process (default: torch's)")
    a("--quiet", action="store_true", help="no progress line")
    a("--device", default="cpu", help="cpu | cuda (default cpu)")
    args = ap.parse_args(argv)
    # options given on the command line (a resume checks them against the checkpoint)
    args.given = {t[2:].split("=")[0] for t in (sys.argv[1:] if argv is None else argv)
                  if t.startswith("--")}
    return args


def resume_conflicts(args, tc, cfg, dataset):
    """A resume continues the checkpoint's own data set, recipe and network:
    the options for these that were given and say something else, each with
    the checkpoint's value (as `bfn train --resume` reports them)."""
    mult = ",".join(str(v) for v in cfg.ch_mult[:cfg.n_levels])
    pairs = [("data", args.data, dataset or args.data), ("batch", args.batch, tc.batch),
             ("lr", args.lr, tc.lr), ("lr-min", args.lr_min, tc.lr_min),
             ("warmup", args.warmup, tc.warmup), ("beta1", args.beta1, tc.beta1),
             ("weight-decay", args.weight_decay, tc.weight_decay), ("clip", args.clip, tc.clip),
             ("ema", args.ema, tc.ema_decay), ("seed", args.seed, tc.seed),
             ("base-ch", args.base_ch, cfg.base_ch), ("n-res", args.n_res, cfg.n_res),
             ("heads", args.heads, cfg.n_heads), ("attn", args.attn, cfg.attn_levels),
             ("temb", args.temb, cfg.temb_dim), ("groups", args.groups, cfg.groups),
             ("dropout", args.dropout, cfg.dropout), ("mult", args.mult, mult)]
    return [f"--{k} {g:g} (checkpoint: {c:g})" if isinstance(g, float) else
            f"--{k} {g} (checkpoint: {c})"
            for k, g, c in pairs if k in args.given and
            (struct.pack("<f", g) != struct.pack("<f", c) if k == "dropout" else
             (g.replace(" ", "") != c if k == "mult" else g != c))]


def trim_log(path, step):
    """Drops the log's rows from the first one past step on, and a last row
    cut short, so that the steps a resume does again are logged once (through
    a temporary file renamed over the log, as `bfn train` does)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return
    keep = 0
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        head = line.split(b",", 1)[0]
        if head.isdigit() and int(head) > step:
            break
        keep += len(line)
    if keep == len(data):
        return
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data[:keep])
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def net_config(args, H, W):
    c = NetConfig.default(2, H, W)
    if args.base_ch:
        c.base_ch = args.base_ch
    if args.n_res >= 0:
        c.n_res = args.n_res
    if args.heads:
        c.n_heads = args.heads
    if args.temb:
        c.temb_dim = args.temb
    if args.groups:
        c.groups = args.groups
    if args.attn >= 0:
        c.attn_levels = args.attn
    if args.dropout >= 0:
        c.dropout = args.dropout
    if args.mult:
        m = [int(v) for v in args.mult.split(",")]
        if not 1 <= len(m) <= 5 or not all(1 <= v <= 16 for v in m):
            raise SystemExit(f"train_ddp: --mult expects 1..5 integers 1..16, got {args.mult!r}")
        c.ch_mult[:len(m)] = m
        c.n_levels = len(m)
    c.check()
    return c


def dbits(x):
    return struct.unpack("<Q", struct.pack("<d", float(x)))[0]


def bitsd(u):
    return struct.unpack("<d", struct.pack("<Q", int(u)))[0]


class Trainer:
    """One process's share of the training: model (DDP-wrapped when
    distributed), optimizer state, the engine's random streams."""

    def __init__(self, cfg, tc, device, world, rank):
        self.cfg, self.tc, self.device = cfg, tc, device
        self.world, self.rank = world, rank
        self.model = UNet(cfg, seed=tc.seed).to(device)
        self.opt = CAdamW(self.model.plist, [ti.decay for ti in self.model.table], tc)
        self.base = crng.Rng.init(tc.seed, crng.STREAM_TRAIN)
        if world > 1:
            ids = [device.index] if device.type == "cuda" else None
            self.ddp = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        else:
            self.ddp = self.model
        if tc.batch % world:
            raise SystemExit(f"train_ddp: batch {tc.batch} not divisible by {world} processes")
        self.rows = np.arange(rank * tc.batch // world, (rank + 1) * tc.batch // world)

    @property
    def step(self):
        return self.opt.step_count

    def batch(self, images, r, rows):
        """Rows `rows` of the batch batch_loss would build from stream r:
        (x (n, D) uint8, t float64 (n), net input float32 (n, in_ch*D))."""
        rngs = {"data": r.fork(crng.TAG_DATA), "time": r.fork(crng.TAG_TIME),
                "flow": r.fork(crng.TAG_FLOW)}
        x, _ = crng.source_train_batch(images, self.tc.batch, rngs["data"], rows)
        t, inp = crng.batch_inputs(x, self.cfg.K, self.tc.beta1, rngs, B=self.tc.batch,
                                   rows=rows)
        return x, t, inp

    def losses(self, net, x, t, inp):
        c, dev = self.cfg, self.device
        tf = torch.from_numpy(t.astype(np.float32)).to(dev)
        xin = torch.from_numpy(inp).to(dev).reshape(len(t), c.in_ch, c.H, c.W)
        logits = net(xin, tf)
        tgt = torch.from_numpy(x.reshape(len(t), c.H, c.W)).to(dev)
        return loss_cts(logits, tgt, tf.double(), self.tc.beta1)

    def train_step(self, images):
        """One step; returns (mean loss over the whole batch, grad norm, lr,
        stop requested by any process)."""
        x, t, inp = self.batch(images, self.base.fork(self.step), self.rows)
        self.model.train()
        for q in self.model.plist:
            q.grad = None
        per_image = self.losses(self.ddp, x, t, inp)
        # mean over the local rows; DDP averages over processes -> whole-batch mean
        per_image.mean().backward()
        stats = torch.tensor([float(per_image.detach().sum()), float(STOP[0])], dtype=torch.float64)
        if self.world > 1:
            stats = stats.to(self.device)
            dist.all_reduce(stats)
        gnorm, lr = self.opt.step()
        return float(stats[0]) / self.tc.batch, gnorm, lr, float(stats[1]) > 0

    @torch.no_grad()
    def validate(self, val_images, n_batches):
        """bfn_trainer_validate with the EMA weights, on this process alone."""
        raw = [q.detach().clone() for q in self.model.plist]
        for q, e in zip(self.model.plist, self.opt.ema):
            q.copy_(e)
        self.model.eval()
        base = crng.Rng.init(VALIDATE_SEED, crng.STREAM_VALIDATE)
        total = 0.0
        for i in range(n_batches):
            x, t, inp = self.batch(val_images, base.fork(i), np.arange(self.tc.batch))
            total += float(self.losses(self.model, x, t, inp).mean())
        for q, r in zip(self.model.plist, raw):
            q.copy_(r)
        return total / max(n_batches, 1)

    # ---- files: the engine's checkpoint layout (train.c) ----
    def _meta(self, dataset, images_seen, notes):
        tc = self.tc
        n = {"lr": f"{tc.lr:g}", "batch": str(tc.batch), "ema": f"{tc.ema_decay:g}"}
        if notes:
            n["notes"] = notes
        n["trainer"] = f"tools/twin/train_ddp.py, torch {torch.__version__}, " \
                       f"{self.world} x {self.device.type}"
        return model_file.ModelFile(self.cfg, tc.beta1, dataset, self.step, images_seen, n)

    def flat(self, tensors):
        return torch.cat([v.detach().reshape(-1).float().cpu() for v in tensors]).numpy()

    def save(self, ckpt, out, dataset, images_seen, notes):
        tc = self.tc
        words = [TRAIN_STATE_VERSION, self.step, self.base.key, self.base.ctr, tc.batch,
                 tc.warmup, tc.total_steps, tc.seed] + [dbits(v) for v in (
                     tc.beta1, tc.lr, tc.lr_min, tc.adam_b1, tc.adam_b2, tc.adam_eps,
                     tc.weight_decay, tc.clip, tc.ema_decay)]
        mf = self._meta(dataset, images_seen, notes)
        ema = self.flat(self.opt.ema)
        mf.sections = {"params": ema, "params_raw": self.flat(self.model.plist),
                       "adam_m": self.flat(self.opt.m), "adam_v": self.flat(self.opt.v),
                       "train": np.array(words, dtype=np.uint64)}
        model_file.save(ckpt, mf)
        mf.sections = {"params": ema}
        model_file.save(out, mf)

    @classmethod
    def load(cls, path, device, world, rank, total_steps):
        mf = model_file.load(path)
        w = mf.sections["train"]
        if len(w) != 17 or int(w[0]) != TRAIN_STATE_VERSION:
            raise SystemExit(f"train_ddp: {path}: unknown training state")
        tc = TrainConfig(batch=int(w[4]), warmup=int(w[5]), total_steps=total_steps,
                         seed=int(w[7]), beta1=bitsd(w[8]), lr=bitsd(w[9]), lr_min=bitsd(w[10]),
                         adam_b1=bitsd(w[11]), adam_b2=bitsd(w[12]), adam_eps=bitsd(w[13]),
                         weight_decay=bitsd(w[14]), clip=bitsd(w[15]), ema_decay=bitsd(w[16]))
        tr = cls(mf.config, tc, device, world, rank)
        tr.model.load_flat(torch.from_numpy(mf.sections["params_raw"]))
        off = 0
        for e, m, v in zip(tr.opt.ema, tr.opt.m, tr.opt.v):
            n = e.numel()
            for dst, sec in ((e, "params"), (m, "adam_m"), (v, "adam_v")):
                src = torch.from_numpy(mf.sections[sec][off:off + n]).reshape(dst.shape)
                dst.copy_(src.to(dst.device))
            off += n
        tr.opt.step_count = int(w[1])
        tr.base = crng.Rng(int(w[2]), int(w[3]))
        return tr, mf


STOP = [0]


def main():
    args = parse_args()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if args.device == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed * 1000 + rank)  # dropout masks only
    lead = rank == 0
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: STOP.__setitem__(0, 1))

    ckpt = args.ckpt or f"runs/{args.data}-twin.ckpt"
    out = args.out or f"runs/{args.data}-twin.bfn"
    log_path = args.log or ckpt + ".csv"
    if args.resume and args.force:
        raise SystemExit("train_ddp: --resume and --force contradict each other")
    if not args.resume and not args.force and os.path.exists(ckpt):
        raise SystemExit(f"train_ddp: {ckpt} exists; use --resume to continue it or --force")

    images_seen = 0
    if args.resume:
        tr, mf = Trainer.load(ckpt, device, world, rank, args.steps)
        images_seen = mf.images_seen
        diff = resume_conflicts(args, tr.tc, mf.config, mf.dataset)
        if diff:
            raise SystemExit("train_ddp: --resume continues the checkpoint's own recipe and "
                             "network; these options differ from it: " + ", ".join(diff))
        args.data = mf.dataset or args.data
    train_images, H, W = data.load_split(args.data, args.data_dir, "train")
    val_images, _, _ = data.load_split(args.data, args.data_dir, "val")
    if args.resume:
        if (mf.config.H, mf.config.W) != (H, W):
            raise SystemExit(f"train_ddp: {ckpt} is a {mf.config.H}x{mf.config.W} model")
    else:
        cfg = net_config(args, H, W)
        warmup = args.warmup if args.warmup >= 0 else min(500, args.steps // 10)
        tc = TrainConfig(beta1=args.beta1, batch=args.batch, lr=args.lr, lr_min=args.lr_min,
                         warmup=warmup, total_steps=args.steps, weight_decay=args.weight_decay,
                         clip=args.clip, ema_decay=args.ema, seed=args.seed)
        tr = Trainer(cfg, tc, device, world, rank)
    tc = tr.tc
    if lead:
        os.makedirs(os.path.dirname(ckpt) or ".", exist_ok=True)
        os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
        print(f"train_ddp: {args.data} {H}x{W}, {tr.model.param_count()} parameters, beta1 "
              f"{tc.beta1:g}, batch {tc.batch} over {world} x {device.type}, lr {tc.lr:g}, "
              f"{tc.total_steps} steps", file=sys.stderr)
    log = None
    if lead:
        if args.resume:
            trim_log(log_path, tr.step)
        log = open(log_path, "a" if args.resume else "w")
        if log.tell() == 0:
            log.write("step,images,loss,loss_smoothed,val_loss,lr,grad_norm,elapsed_s\n")

    t0 = last_print = last_ckpt = time.time()
    start = tr.step
    smooth = math.nan
    stopped = False
    while tr.step < tc.total_steps:
        loss, gnorm, lr, stop = tr.train_step(train_images)
        images_seen += tc.batch
        smooth = loss if math.isnan(smooth) else 0.98 * smooth + 0.02 * loss
        s = tr.step
        val = None
        if lead and args.val_every > 0 and (s % args.val_every == 0 or s == tc.total_steps):
            val = tr.validate(val_images, args.val_batches)
        if lead:
            el = time.time() - t0
            log.write(f"{s},{images_seen},{loss:.4f},{smooth:.4f},"
                      f"{'' if val is None else f'{val:.4f}'},{lr:.4e},{gnorm:.4f},{el:.1f}\n")
            if not args.quiet and (time.time() - last_print > 30 or val is not None):
                ips = (s - start) * tc.batch / max(el, 1e-9)
                vs = "" if val is None else f"  val {val:.2f}"
                print(f"step {s}/{tc.total_steps}  loss {smooth:.2f}{vs}  lr {lr:.2e}  "
                      f"{ips:.0f} img/s", file=sys.stderr)
                last_print = time.time()
            due = s % args.ckpt_every == 0 or time.time() - last_ckpt > args.ckpt_minutes * 60 \
                or s == tc.total_steps or stop
            if due:
                log.flush()
                tr.save(ckpt, out, args.data, images_seen, args.notes)
                last_ckpt = time.time()
        if stop:
            stopped = True
            break
    if lead:
        log.close()
        what = f"interrupted at step {tr.step}; saved" if stopped else f"done, step {tr.step};"
        print(f"train_ddp: {what} model {out}, checkpoint {ckpt}", file=sys.stderr)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return 130 if stopped else 0


if __name__ == "__main__":
    sys.exit(main())
