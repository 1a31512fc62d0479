"""PyTorch twin of the engine's U-Net (include/bfn/net.h, src/engine/net/),
its continuous-time loss (src/engine/flow.c) and its optimizer step
(src/engine/train.c: AdamW with bias correction, decoupled decay on the
tensors flagged decay, global gradient-norm clipping, EMA with warmup).

Parameters are kept in one list in exactly the engine's order (the comment at
the top of src/engine/net/unet.c) under the engine's tensor names, so the flat
concatenation of the list is the engine's parameter array and a model file's
"params" section loads with no mapping. Every layer is the functional PyTorch
op with the engine's settings: GroupNorm eps 1e-5 (biased variance), SiLU,
nearest 2x upsampling, conv padding k // 2, inverted dropout.
"""
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

import crng

GN_EPS = 1e-5
MAX_LEVELS = 5


@dataclass
class NetConfig:
    """bfn_net_config (net.h)."""
    K: int = 2
    H: int = 28
    W: int = 28
    base_ch: int = 32
    n_levels: int = 3
    ch_mult: list = field(default_factory=lambda: [1, 2, 2, 2, 2])
    n_res: int = 2
    attn_levels: int = 1
    n_heads: int = 4
    temb_dim: int = 128
    groups: int = 8
    dropout: float = 0.1

    @classmethod
    def default(cls, K=2, H=28, W=28):
        """bfn_net_config_default: halve down to a lowest side of about 7-8
        pixels, at most 4 levels."""
        levels = 1
        while (levels < 4 and H % (2 << (levels - 1)) == 0 and W % (2 << (levels - 1)) == 0
               and (H >> levels) >= 7 and (W >> levels) >= 7):
            levels += 1
        return cls(K=K, H=H, W=W, n_levels=levels)

    @property
    def in_ch(self):
        return 1 if self.K == 2 else self.K

    @property
    def out_ch(self):
        return 1 if self.K == 2 else self.K

    def width(self, level):
        return self.base_ch * self.ch_mult[level]

    def check(self):
        """The checks of bfn_net_config_check that matter for building."""
        f = 1 << (self.n_levels - 1)
        problems = []
        if not 2 <= self.K <= 256:
            problems.append(f"K = {self.K} not in [2, 256]")
        if not 1 <= self.n_levels <= MAX_LEVELS:
            problems.append(f"n_levels = {self.n_levels} not in [1, {MAX_LEVELS}]")
        if self.H % f or self.W % f:
            problems.append(f"H x W = {self.H} x {self.W} not divisible by {f}")
        for level in range(self.n_levels):
            if self.width(level) % self.groups:
                problems.append(f"width {self.width(level)} not divisible by groups {self.groups}")
        if not 0 <= self.attn_levels <= self.n_levels:
            problems.append(f"attn_levels = {self.attn_levels} not in [0, n_levels]")
        for level in range(self.n_levels - self.attn_levels, self.n_levels):
            if self.width(level) % self.n_heads:
                problems.append(f"n_heads {self.n_heads} does not divide the width of level {level}")
        if self.temb_dim < 4 or self.temb_dim % 2:
            problems.append(f"temb_dim = {self.temb_dim} must be even and >= 4")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout = {self.dropout} not in [0, 1)")
        if problems:
            raise ValueError("net config: " + "; ".join(problems))


# ---- the tensor table: names, shapes, init and decay in the engine's order ----

INIT_ZERO, INIT_ONE, INIT_UNIFORM = 0, 1, 2


@dataclass
class TensorInfo:
    name: str
    shape: tuple
    init: int
    fan_in: int
    decay: int  # 1: weight decay applies (conv and linear weights)

    @property
    def numel(self):
        return int(np.prod(self.shape))


def _body_table(cfg):
    """Walks the architecture as unet.c build() does and lists its tensors
    up to the output head."""
    cfg.check()
    out = []

    def param(name, shape, init, fan_in=0, decay=0):
        out.append(TensorInfo(name, tuple(shape), init, fan_in, decay))

    def conv(prefix, cin, cout, k, zero=False):
        param(prefix + ".weight", (cout, cin, k, k), INIT_ZERO if zero else INIT_UNIFORM,
              cin * k * k, 1)
        param(prefix + ".bias", (cout,), INIT_ZERO)

    D = cfg.temb_dim

    def res(prefix, cin, cout):
        param(prefix + ".norm1.weight", (cin,), INIT_ONE)
        param(prefix + ".norm1.bias", (cin,), INIT_ZERO)
        conv(prefix + ".conv1", cin, cout, 3)
        param(prefix + ".temb.weight", (cout, D), INIT_UNIFORM, D, 1)
        param(prefix + ".temb.bias", (cout,), INIT_ZERO)
        param(prefix + ".norm2.weight", (cout,), INIT_ONE)
        param(prefix + ".norm2.bias", (cout,), INIT_ZERO)
        conv(prefix + ".conv2", cout, cout, 3, zero=True)
        if cin != cout:
            conv(prefix + ".skip", cin, cout, 1)

    def attn(prefix, C):
        param(prefix + ".norm.weight", (C,), INIT_ONE)
        param(prefix + ".norm.bias", (C,), INIT_ZERO)
        param(prefix + ".qkv.weight", (3 * C, C, 1, 1), INIT_UNIFORM, C, 1)
        param(prefix + ".qkv.bias", (3 * C,), INIT_ZERO)
        param(prefix + ".proj.weight", (C, C, 1, 1), INIT_ZERO, C, 1)
        param(prefix + ".proj.bias", (C,), INIT_ZERO)

    param("temb.lin1.weight", (D, D), INIT_UNIFORM, D, 1)
    param("temb.lin1.bias", (D,), INIT_ZERO)
    param("temb.lin2.weight", (D, D), INIT_UNIFORM, D, 1)
    param("temb.lin2.bias", (D,), INIT_ZERO)
    for step in walk(cfg):
        kind, prefix = step[0], step[1] if len(step) > 1 else ""
        if kind == "conv":
            conv(prefix, step[2], step[3], 3)
        elif kind == "res":
            res(prefix, step[2], step[3])
        elif kind == "attn":
            attn(prefix, step[2])
    return out


def walk(cfg):
    """The op sequence of unet.c build(), with channel counts:
    ("conv", name, cin, cout, stride), ("res", name, cin, cout),
    ("attn", name, C), ("push",), ("pop",) (concat with the last skip),
    ("up",) (nearest 2x), ("head", name, C)."""
    L, attn_from = cfg.n_levels, cfg.n_levels - cfg.attn_levels
    steps = []
    ch = cfg.base_ch
    steps.append(("conv", "conv_in", cfg.in_ch + 1, ch, 1))
    skip_ch = [ch]
    steps.append(("push",))
    cur = ch
    for level in range(L):
        ch = cfg.width(level)
        for r in range(cfg.n_res):
            steps.append(("res", f"down.{level}.res.{r}", cur, ch))
            cur = ch
            if level >= attn_from:
                steps.append(("attn", f"down.{level}.attn.{r}", cur))
            steps.append(("push",))
            skip_ch.append(cur)
        if level != L - 1:
            steps.append(("conv", f"down.{level}.downsample", cur, cur, 2))
            steps.append(("push",))
            skip_ch.append(cur)
    low = cfg.width(L - 1)
    steps.append(("res", "mid.res.0", cur, low))
    cur = low
    if cfg.attn_levels:
        steps.append(("attn", "mid.attn", cur))
    steps.append(("res", "mid.res.1", cur, low))
    for level in range(L - 1, -1, -1):
        ch = cfg.width(level)
        for r in range(cfg.n_res + 1):
            steps.append(("pop",))
            cin = cur + skip_ch.pop()
            steps.append(("res", f"up.{level}.res.{r}", cin, ch))
            cur = ch
            if level >= attn_from:
                steps.append(("attn", f"up.{level}.attn.{r}", cur))
        if level != 0:
            steps.append(("up",))
            steps.append(("conv", f"up.{level}.upsample", cur, ch, 1))
            cur = ch
    steps.append(("head", "out", cur))
    return steps


def tensor_table(cfg):
    """Every parameter tensor in the engine's order: the body, then the
    output head (out.norm, out.conv)."""
    t = _body_table(cfg)
    C = walk(cfg)[-1][2]
    t.append(TensorInfo("out.norm.weight", (C,), INIT_ONE, 0, 0))
    t.append(TensorInfo("out.norm.bias", (C,), INIT_ZERO, 0, 0))
    t.append(TensorInfo("out.conv.weight", (cfg.out_ch, C, 3, 3), INIT_ZERO, C * 9, 1))
    t.append(TensorInfo("out.conv.bias", (cfg.out_ch,), INIT_ZERO, 0, 0))
    return t


def init_params(cfg, seed):
    """bfn_net_init_params: tensor i draws from fork(init(seed, "netinit"), i);
    uniform tensors U(−a, a), a = √(3/fan_in). Returns float32 arrays."""
    root = crng.Rng.init(seed, crng.NETINIT_STREAM)
    out = []
    for i, ti in enumerate(tensor_table(cfg)):
        if ti.init == INIT_ONE:
            v = np.ones(ti.numel, dtype=np.float32)
        elif ti.init == INIT_ZERO:
            v = np.zeros(ti.numel, dtype=np.float32)
        else:
            a = math.sqrt(3.0 / ti.fan_in)
            u = root.fork(i).uniform_array(ti.numel)
            v = (a * (2.0 * u - 1.0)).astype(np.float32)
        out.append(v.reshape(ti.shape))
    return out


# ---- the network ----

def timestep_embedding(t, dim):
    """Sinusoidal embedding of 1000·t (layers.h bfn_timestep_embedding):
    [sin(1000 t f_j), cos(1000 t f_j)], f_j = 10000^(−j/(dim/2 − 1)),
    computed in float64 as the engine does, (B, dim)."""
    half = dim // 2
    step = math.log(10000.0) / (half - 1)
    freqs = torch.exp(-step * torch.arange(half, dtype=torch.float64, device=t.device))
    a = 1000.0 * t.to(torch.float64)[:, None] * freqs[None, :]
    return torch.cat([torch.sin(a), torch.cos(a)], dim=1)


class UNet(torch.nn.Module):
    def __init__(self, cfg, seed=0, dtype=torch.float32):
        super().__init__()
        self.cfg = cfg
        self.table = tensor_table(cfg)
        self.steps = walk(cfg)
        init = init_params(cfg, seed)
        self.plist = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.from_numpy(a.copy()).to(dtype)) for a in init])
        self.index = {ti.name: i for i, ti in enumerate(self.table)}

    def p(self, name):
        return self.plist[self.index[name]]

    # flat engine-order views
    def param_count(self):
        return sum(ti.numel for ti in self.table)

    def flat_params(self):
        return torch.cat([q.detach().reshape(-1) for q in self.plist])

    def flat_grads(self):
        return torch.cat([(q.grad if q.grad is not None else torch.zeros_like(q)).reshape(-1)
                          for q in self.plist])

    @torch.no_grad()
    def load_flat(self, flat):
        flat = torch.as_tensor(flat)
        if flat.numel() != self.param_count():
            raise ValueError(f"parameter array has {flat.numel()} values, the network needs "
                             f"{self.param_count()}")
        off = 0
        for q in self.plist:
            n = q.numel()
            q.copy_(flat[off:off + n].reshape(q.shape).to(q.dtype))
            off += n

    def _conv(self, h, name, stride=1):
        w = self.p(name + ".weight")
        return F.conv2d(h, w, self.p(name + ".bias"), stride=stride, padding=w.shape[-1] // 2)

    def _gn(self, h, name):
        return F.group_norm(h, self.cfg.groups, self.p(name + ".weight"), self.p(name + ".bias"),
                            GN_EPS)

    def _dropout(self, h):
        """Inverted dropout (kept values scaled by 1/(1 − p)) as the engine's;
        the masks come from PyTorch's generator, not the engine's stream."""
        p = self.cfg.dropout
        if not self.training or p <= 0.0:
            return h
        return F.dropout(h, p, training=True)

    def _res(self, h, e, name, cout):
        x = h
        h = self._conv(F.silu(self._gn(x, name + ".norm1")), name + ".conv1")
        h = h + F.linear(e, self.p(name + ".temb.weight"), self.p(name + ".temb.bias"))[:, :, None, None]
        h = self._dropout(F.silu(self._gn(h, name + ".norm2")))
        skip = self._conv(x, name + ".skip") if x.shape[1] != cout else x
        return skip + self._conv(h, name + ".conv2")

    def _attn(self, x, name):
        """x + proj(softmax(QᵀK/√d) applied to V) per head over the HW
        positions (Vaswani et al. 2017, eq. 1); qkv channels [Q | K | V], each
        split into heads of d consecutive channels."""
        B, C, H, W = x.shape
        nh = self.cfg.n_heads
        d = C // nh
        qkv = self._conv(self._gn(x, name + ".norm"), name + ".qkv").reshape(B, 3, nh, d, H * W)
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]               # (B, nh, d, HW)
        s = torch.einsum("bhci,bhcj->bhij", q, k) / math.sqrt(d)  # (B, nh, HW, HW)
        a = torch.softmax(s, dim=-1)
        o = torch.einsum("bhcj,bhij->bhci", v, a).reshape(B, C, H, W)
        return x + self._conv(o, name + ".proj")

    def forward(self, x, t):
        """x: (B, in_ch, H, W) holding 2θ − 1; t: (B). Returns logits
        (B, out_ch, H, W)."""
        cfg = self.cfg
        dt = self.plist[0].dtype
        s = timestep_embedding(t, cfg.temb_dim).to(dt)
        m1 = F.linear(s, self.p("temb.lin1.weight"), self.p("temb.lin1.bias"))
        m2 = F.linear(F.silu(m1), self.p("temb.lin2.weight"), self.p("temb.lin2.bias"))
        e = F.silu(m2)
        B = x.shape[0]
        tplane = t.to(dt)[:, None, None, None].expand(B, 1, cfg.H, cfg.W)
        h = torch.cat([x.to(dt), tplane], dim=1)
        skips = []
        for st in self.steps:
            kind = st[0]
            if kind == "conv":
                h = self._conv(h, st[1], stride=st[4])
            elif kind == "res":
                h = self._res(h, e, st[1], st[3])
            elif kind == "attn":
                h = self._attn(h, st[1])
            elif kind == "push":
                skips.append(h)
            elif kind == "pop":
                h = torch.cat([h, skips.pop()], dim=1)
            elif kind == "up":
                h = F.interpolate(h, scale_factor=2, mode="nearest")
            elif kind == "head":
                h = self._conv(F.silu(self._gn(h, "out.norm")), "out.conv")
        return h


# ---- loss ----

def loss_cts(logits, x, t, beta1):
    """Continuous-time loss L∞ per image (BFN.md "Losses"):
    K β(1) t ‖e_x − p‖² summed over pixels; for K = 2 with one logit plane
    that is 4 β(1) t (x − σ(l))². logits (B, out_ch, H, W), x (B, H, W) class
    indices, t (B). Returns (B)."""
    B = logits.shape[0]
    tt = t.to(logits.dtype)
    if logits.shape[1] == 1:
        p = torch.sigmoid(logits[:, 0])
        sq = (p - x.to(logits.dtype)) ** 2
        return 4.0 * beta1 * tt * sq.reshape(B, -1).sum(dim=1)
    K = logits.shape[1]
    p = torch.softmax(logits, dim=1)
    onehot = F.one_hot(x.long(), K).permute(0, 3, 1, 2).to(logits.dtype)
    sq = ((onehot - p) ** 2).sum(dim=1)
    return K * beta1 * tt * sq.reshape(B, -1).sum(dim=1)


# ---- optimizer: train.c's step ----

@dataclass
class TrainConfig:
    """bfn_train_config (train.h) with bfn_train_config_default's values."""
    beta1: float = 3.0
    batch: int = 64
    lr: float = 1e-3
    lr_min: float = 1e-5
    warmup: int = 500
    total_steps: int = 0
    adam_b1: float = 0.9
    adam_b2: float = 0.98
    adam_eps: float = 1e-8
    weight_decay: float = 0.01
    clip: float = 5.0
    ema_decay: float = 0.999
    seed: int = 1


def lr_at(c, step):
    """bfn_train_lr_at: linear warmup, then cosine from lr to lr_min."""
    if c.warmup > 0 and step < c.warmup:
        return c.lr * (step + 1) / c.warmup
    if c.total_steps <= 0 or c.total_steps <= c.warmup:
        return c.lr
    f = min((step - c.warmup) / (c.total_steps - c.warmup), 1.0)
    return c.lr_min + 0.5 * (c.lr - c.lr_min) * (1.0 + math.cos(3.14159265358979323846 * f))


class CAdamW:
    """AdamW (Loshchilov & Hutter 2019) + EMA exactly as bfn_trainer_step:
    g' = g·min(1, clip/‖g‖) (‖g‖ over all parameters, in double),
    m = b1 m + (1 − b1) g', v = b2 v + (1 − b2) g'²,
    p −= lr·wd·p (decay tensors only), p −= lr·(m c1)/(√(v c2) + eps),
    c1 = 1/(1 − b1^s), c2 = 1/(1 − b2^s), s = step + 1,
    ema = d·ema + (1 − d)·p with d = min(ema_decay, (1 + s)/(10 + s)).
    Arithmetic in the parameters' dtype (float32 like the engine) with the
    constants rounded to it as the engine does."""

    def __init__(self, params, decay_flags, cfg):
        self.params = list(params)
        self.decay = list(decay_flags)
        self.cfg = cfg
        self.step_count = 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.ema = [p.detach().clone() for p in self.params]

    def grad_norm(self):
        """‖g‖ over all parameters, summed in float64 as the engine does."""
        sums = [(p.grad.detach().to(torch.float64) ** 2).sum() for p in self.params
                if p.grad is not None]
        return math.sqrt(float(torch.stack(sums).sum())) if sums else 0.0

    @torch.no_grad()
    def step(self):
        """One update from the parameters' .grad; returns (grad norm, lr).
        Raises FloatingPointError (weights untouched) on a non-finite norm."""
        c = self.cfg
        gnorm = self.grad_norm()
        if not math.isfinite(gnorm):
            raise FloatingPointError(f"gradient norm is {gnorm} at step {self.step_count}")
        f32 = lambda v: float(np.float32(v))  # noqa: E731 (the engine's (float) casts)
        gscale = f32(c.clip / gnorm) if (c.clip > 0 and gnorm > c.clip) else 1.0
        lr = lr_at(c, self.step_count)
        t1 = float(self.step_count + 1)
        b1, b2 = f32(c.adam_b1), f32(c.adam_b2)
        c1 = f32(1.0 / (1.0 - c.adam_b1 ** t1))
        c2 = f32(1.0 / (1.0 - c.adam_b2 ** t1))
        eps, flr, wd = f32(c.adam_eps), f32(lr), f32(lr * c.weight_decay)
        warm = (1.0 + t1) / (10.0 + t1)
        d = f32(min(warm, c.ema_decay))
        one_b1, one_b2, one_d = f32(1.0 - b1), f32(1.0 - b2), f32(1.0 - d)
        # Fused over all tensors (one kernel per operation, not per tensor);
        # each line is the engine's expression with the same rounding order.
        P, M, V, E = self.params, self.m, self.v, self.ema
        g = [p.grad if p.grad is not None else torch.zeros_like(p) for p in P]
        if gscale != 1.0:
            g = torch._foreach_mul(g, gscale)
        torch._foreach_mul_(M, b1)                                  # m = b1 m + (1 − b1) g
        torch._foreach_add_(M, torch._foreach_mul(g, one_b1))
        torch._foreach_mul_(V, b2)                                  # v = b2 v + ((1 − b2) g) g
        torch._foreach_add_(V, torch._foreach_mul(torch._foreach_mul(g, one_b2), g))
        dp = [p for p, dec in zip(P, self.decay) if dec]
        if dp and wd != 0.0:
            torch._foreach_add_(dp, torch._foreach_mul(dp, -wd))    # p −= wd p
        num = torch._foreach_mul(torch._foreach_mul(M, c1), flr)    # lr (m c1)
        den = torch._foreach_add(torch._foreach_sqrt(torch._foreach_mul(V, c2)), eps)
        torch._foreach_addcdiv_(P, num, den, value=-1.0)            # p −= num / den
        torch._foreach_mul_(E, d)                                   # ema = d ema + (1 − d) p
        torch._foreach_add_(E, torch._foreach_mul(P, one_d))
        self.step_count += 1
        return gnorm, lr
