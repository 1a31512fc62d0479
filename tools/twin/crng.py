"""The engine's counter-based random numbers (src/engine/rng.c) in NumPy, and
the draws built on them that training uses: the fixed train/validation split
(data.c), batch index draws and dynamic binarization (bfn_source_train_batch),
stratified times and Bayesian-flow samples (train.c batch_loss, flow.c).

Same seed, same streams: the twin sees the batches, times and flow samples
that `bfn train` sees. Integers are bit-exact; normals go through libm-style
log/sin/cos in float64 and are rounded to float32, so they agree with the C
values to the last float bit in practice (and to ~1e-16 relative always).
"""
import numpy as np

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15

# train.c: enum { STREAM_TRAIN, TAG_DATA, TAG_TIME, TAG_FLOW, TAG_DROP }
STREAM_TRAIN = 0x54524E31
TAG_DATA, TAG_TIME, TAG_FLOW, TAG_DROP = 1, 2, 3, 4
STREAM_VALIDATE = STREAM_TRAIN ^ 0x56414C
SPLIT_SEED = 20230814  # data.h BFN_SPLIT_SEED
NETINIT_STREAM = 0x6E6574696E6974  # unet.c bfn_net_init_params


def mix64(z):
    """SplitMix64 finalizer on a Python int."""
    z &= MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def mix64_np(z):
    """SplitMix64 finalizer on a uint64 array (wrapping arithmetic)."""
    z = z.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return z


class Rng:
    """bfn_rng: a stream key and a counter."""

    __slots__ = ("key", "ctr")

    def __init__(self, key, ctr=0):
        self.key = key & MASK
        self.ctr = ctr

    @classmethod
    def init(cls, seed, stream):
        k = mix64(mix64(seed + GOLDEN) ^ ((stream * 0xD1B54A32D192ED03 + 0x8CB92BA72F3D8DD7) & MASK))
        return cls(k)

    def fork(self, ident):
        return Rng(mix64(self.key ^ mix64(ident + 0x632BE59BD9B4E019)))

    def copy(self):
        return Rng(self.key, self.ctr)

    def u64(self):
        v = mix64(self.key + self.ctr * GOLDEN)
        self.ctr += 1
        return v

    def uniform(self):
        return (self.u64() >> 11) * 2.0 ** -53

    def below(self, n):
        limit = MASK - MASK % n
        while True:
            v = self.u64()
            if v < limit:
                return v % n

    # ---- vectorized draws: the next n outputs of the stream ----
    def u64_array(self, n):
        ctr = np.arange(self.ctr, self.ctr + n, dtype=np.uint64)
        with np.errstate(over="ignore"):
            z = np.uint64(self.key) + ctr * np.uint64(GOLDEN)
        self.ctr += n
        return mix64_np(z)

    def uniform_array(self, n):
        return (self.u64_array(n) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53

    def normal_fill(self, n):
        """bfn_rng_normal_fill: Box-Muller pairs, both outputs used, float32."""
        pairs = (n + 1) // 2
        u = self.uniform_array(2 * pairs).reshape(pairs, 2)
        u1 = 1.0 - u[:, 0]
        rad = np.sqrt(-2.0 * np.log(u1))
        ang = 6.283185307179586476925 * u[:, 1]
        out = np.stack([rad * np.cos(ang), rad * np.sin(ang)], axis=1).reshape(-1)[:n]
        return out.astype(np.float32)


# ---- data: split, index draws, binarization ----

def split_make(n):
    """bfn_split_make: (train indices, validation indices), both ascending."""
    n_val = max(1, n // 100) if n >= 2 else 0
    perm = list(range(n))
    r = Rng.init(SPLIT_SEED, 0)
    for i in range(n - 1, 0, -1):
        j = r.below(i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    is_val = np.zeros(n, dtype=bool)
    is_val[perm[:n_val]] = True
    idx = np.arange(n)
    return idx[~is_val], idx[is_val]


def fork_keys(r, ids):
    """Keys of r.fork(i) for each i in ids, as a uint64 array."""
    return np.array([r.fork(int(i)).key for i in ids], dtype=np.uint64)


def uniform_rows(keys, n):
    """(len(keys), n): the first n uniforms of each stream (fresh counters)."""
    ctr = np.arange(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = keys[:, None] + ctr[None, :] * np.uint64(GOLDEN)
    return (mix64_np(z) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def normal_rows(keys, n):
    """(len(keys), n) float32: bfn_rng_normal_fill(n) of each fresh stream."""
    pairs = (n + 1) // 2
    u = uniform_rows(keys, 2 * pairs).reshape(len(keys), pairs, 2)
    rad = np.sqrt(-2.0 * np.log(1.0 - u[..., 0]))
    ang = 6.283185307179586476925 * u[..., 1]
    out = np.stack([rad * np.cos(ang), rad * np.sin(ang)], axis=2).reshape(len(keys), -1)[:, :n]
    return out.astype(np.float32)


def binarize_rows(pixels, r, rows=None):
    """Rows b of pixels (B, D) uint8 binarized with fork(r, b) (source_row).
    rows: the global row numbers of pixels (default 0..B-1), so one process
    of several can binarize just its share of a batch."""
    B, D = pixels.shape
    rows = np.arange(B) if rows is None else rows
    u = uniform_rows(fork_keys(r, rows), D)
    return (u < pixels.astype(np.float64) / 255.0).astype(np.uint8)


def draw_batch_indices(count, B, rng):
    """The index draws of bfn_source_train_batch (advances rng by them and
    by the one draw that keys the binarization); returns (indices, r)."""
    idx = np.array([rng.below(count) for _ in range(B)], dtype=np.int64)
    r = rng.fork(rng.u64())
    return idx, r


def source_train_batch(images, B, rng, rows=None):
    """bfn_source_train_batch for an image set (count, D) uint8: B items
    uniform with replacement, each binarized with its own stream. Returns
    the rows `rows` (default all) of the batch and their item numbers."""
    idx, r = draw_batch_indices(images.shape[0], B, rng)
    rows = np.arange(B) if rows is None else rows
    return binarize_rows(images[idx[rows]], r, rows), idx[rows]


# ---- training draws: times and flow samples ----

def step_rngs(base, step):
    """The per-step streams of train.c batch_loss."""
    r = base.fork(step)
    return {"data": r.fork(TAG_DATA), "time": r.fork(TAG_TIME), "flow": r.fork(TAG_FLOW),
            "drop": r.fork(TAG_DROP)}


def stratified_times(rt, B):
    """t_b = (b + u)/B in float64 (the loss and β(t) use these)."""
    u = rt.uniform()
    return (np.arange(B, dtype=np.float64) + u) / B


def flow_sample(x, K, beta, r):
    """bfn_flow_sample for one image x (D) uint8 -> z, float32.
    K = 2: one plane ℓ ~ N(2β(2x − 1), 4β); general: K planes
    y ~ N(β(K e_x − 1), βK I) (BFN.md "Bayesian flow")."""
    D = x.shape[0]
    if K == 2:
        n = r.normal_fill(D).astype(np.float64)
        mean = 2.0 * beta * np.where(x != 0, 1.0, -1.0)
        return (mean + np.sqrt(4.0 * beta) * n).astype(np.float32)
    n = r.normal_fill(K * D).astype(np.float64).reshape(K, D)
    onehot = (np.arange(K)[:, None] == x[None, :]).astype(np.float64)
    mean = beta * (onehot * K - 1.0)
    return (mean + np.sqrt(beta * K) * n).astype(np.float32).reshape(-1)


def net_input(z, D, K):
    """bfn_net_input: 2θ − 1 per input plane (tanh(ℓ/2) for K = 2)."""
    if K == 2:
        return np.tanh(0.5 * z.astype(np.float64)).astype(np.float32)
    zz = z.astype(np.float64).reshape(K, D)
    m = zz.max(axis=0, keepdims=True)
    e = np.exp(zz - m)
    p = (e / e.sum(axis=0, keepdims=True)).astype(np.float32)
    return (np.float32(2.0) * p - np.float32(1.0)).reshape(-1)


def batch_inputs(x, K, beta1, rngs, B=None, rows=None):
    """x (n, D) uint8 -> (t float64 (n), net input float32 (n, planes*D)) as
    train.c batch_loss draws them; x holds rows `rows` (default 0..n-1) of a
    batch of B (default n) images."""
    n, D = x.shape
    B = n if B is None else B
    rows = np.arange(n) if rows is None else rows
    t = stratified_times(rngs["time"], B)[rows]
    beta = beta1 * t * t
    keys = fork_keys(rngs["flow"], rows)
    planes = 1 if K == 2 else K
    noise = normal_rows(keys, planes * D).astype(np.float64)
    if K == 2:
        mean = 2.0 * beta[:, None] * np.where(x != 0, 1.0, -1.0)
        z = (mean + np.sqrt(4.0 * beta)[:, None] * noise).astype(np.float32)
        return t, np.tanh(0.5 * z.astype(np.float64)).astype(np.float32)
    onehot = (np.arange(K)[None, :, None] == x[:, None, :]).astype(np.float64)  # (n, K, D)
    mean = beta[:, None, None] * (onehot * K - 1.0)
    z = (mean + np.sqrt(beta * K)[:, None, None] * noise.reshape(n, K, D)).astype(np.float32)
    zz = z.astype(np.float64)
    e = np.exp(zz - zz.max(axis=1, keepdims=True))
    p = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    return t, (np.float32(2.0) * p - np.float32(1.0)).reshape(n, K * D)
