"""MNIST-style data for the twin, as the engine reads it (src/engine/data.c):
IDX files (plain or gzip, recognized by content), the fixed train/validation
split, and the item sets of `bfn train`: train = the 59,400 training images
left after the split, val = its 600, test = the 10,000 t10k images."""
import gzip
import os
import struct

import numpy as np

import crng

DEFAULT_DIRS = {"mnist": "data/mnist", "fashion": "/usr/share/datasets/fashion-mnist"}


def load_idx(path):
    """An unsigned-byte IDX file as an array; looks for path, then path.gz."""
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            with open(p, "rb") as f:
                raw = f.read()
            break
    else:
        raise FileNotFoundError(f"{path}: no such file (nor {path}.gz)")
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] not in (1, 3):
        raise ValueError(f"{path}: not an unsigned-byte IDX file of 1 or 3 dimensions")
    nd = raw[3]
    dims = struct.unpack(f">{nd}I", raw[4:4 + 4 * nd])
    n = int(np.prod(dims))
    if len(raw) != 4 + 4 * nd + n:
        raise ValueError(f"{path}: {len(raw)} bytes, header says {4 + 4 * nd + n}")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def load_split(kind, data_dir, split):
    """(images (n, H*W) uint8, H, W) of split 'train', 'val' or 'test'."""
    if kind not in DEFAULT_DIRS:
        raise ValueError(f"data set {kind!r}: the twin reads mnist and fashion")
    d = data_dir or DEFAULT_DIRS[kind]
    part = "t10k" if split == "test" else "train"
    img = load_idx(os.path.join(d, f"{part}-images-idx3-ubyte"))
    n, H, W = img.shape
    img = img.reshape(n, H * W)
    if split == "test":
        return img, H, W
    train, val = crng.split_make(n)
    return (img[train] if split == "train" else img[val]), H, W
