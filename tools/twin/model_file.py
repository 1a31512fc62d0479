"""Reader and writer of the engine's model/checkpoint container, format
version 1 (layout at the top of src/engine/model_io.c): little-endian header
with the architecture config, K, image size, β(1), data set, step, images
seen and key=value notes; a table of named typed sections; the section data,
each padded to 8 bytes; a 64-bit FNV-1a checksum over every byte before it.

The reader checks what the engine checks (magic, version, flags, sizes
against the file length, checksum, reserved fields, padding); the writer
writes to "<path>.tmp-<pid>" and renames, as bfn_model_save does.
"""
import os
import re
import struct
from dataclasses import dataclass, field

import numpy as np

from twin import NetConfig

MAGIC = b"BFNMODEL"
FORMAT_VERSION = 1
F32, U8, U64 = 1, 2, 3
_DTYPES = {F32: np.dtype("<f4"), U8: np.dtype("u1"), U64: np.dtype("<u8")}
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,31}$")
FNV_INIT = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
FIXED_HEADER = 160
TABLE_ENTRY = 48
NOTES_MAX = 16
SECTIONS_MAX = 1024


class ModelFileError(Exception):
    pass


def checksum(data, h=FNV_INIT):
    """64-bit FNV-1a (bfn_model_checksum). Serial by nature; plain Python
    ints run it at about 10 MB/s, a second or so for our models."""
    mask = (1 << 64) - 1
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & mask
    return h


@dataclass
class ModelFile:
    config: NetConfig
    beta1: float
    dataset: str = ""
    step: int = 0
    images_seen: int = 0
    notes: dict = field(default_factory=dict)
    sections: dict = field(default_factory=dict)  # name -> numpy array (f32, u8 or u64)


def _pad8(n):
    return (8 - n % 8) % 8


def _section_type(arr):
    if arr.dtype == np.float32:
        return F32
    if arr.dtype == np.uint8:
        return U8
    if arr.dtype == np.uint64:
        return U64
    raise ModelFileError(f"section dtype {arr.dtype} is not f32, u8 or u64")


def encode(mf):
    c = mf.config
    if len(mf.notes) > NOTES_MAX:
        raise ModelFileError(f"{len(mf.notes)} notes, at most {NOTES_MAX}")
    if len(mf.sections) > SECTIONS_MAX:
        raise ModelFileError(f"{len(mf.sections)} sections, at most {SECTIONS_MAX}")
    ds = mf.dataset.encode()
    if len(ds) > 31:
        raise ModelFileError(f"data set name {mf.dataset!r} longer than 31 bytes")
    if not (0 < mf.beta1 <= 1e4):
        raise ModelFileError(f"beta(1) = {mf.beta1} is not in (0, 1e4]")
    mult = list(c.ch_mult) + [0] * (5 - len(c.ch_mult))
    head = bytearray(FIXED_HEADER)
    head[0:8] = MAGIC
    struct.pack_into("<II", head, 8, FORMAT_VERSION, 0)
    struct.pack_into("<15if", head, 16, c.K, c.H, c.W, c.base_ch, c.n_levels, *mult[:5], c.n_res,
                     c.attn_levels, c.n_heads, c.temb_dim, c.groups, c.dropout)
    struct.pack_into("<3iI", head, 80, c.K, c.H, c.W, 0)
    struct.pack_into("<d", head, 96, mf.beta1)
    head[104:104 + len(ds)] = ds
    struct.pack_into("<QQII", head, 136, mf.step, mf.images_seen, len(mf.notes), len(mf.sections))
    for k, v in mf.notes.items():
        kb, vb = k.encode(), str(v).encode()
        if not _NAME_RE.match(k) or len(vb) > 191 or any(ch < 0x20 or ch == 0x7F for ch in vb):
            raise ModelFileError(f"bad note {k!r}={v!r}")
        head += struct.pack("<II", len(kb), len(vb)) + kb + vb
    arrays = []
    for name, arr in mf.sections.items():
        if not _NAME_RE.match(name):
            raise ModelFileError(f"bad section name {name!r}")
        arr = np.ascontiguousarray(arr).reshape(-1)
        typ = _section_type(arr)
        arr = arr.astype(_DTYPES[typ], copy=False)
        entry = bytearray(TABLE_ENTRY)
        entry[0:len(name)] = name.encode()
        struct.pack_into("<IIQ", entry, 32, typ, 0, arr.size)
        head += entry
        arrays.append(arr)
    head += bytes(_pad8(len(head)))
    body = bytearray(head)
    for arr in arrays:
        raw = arr.tobytes()
        body += raw + bytes(_pad8(len(raw)))
    body += struct.pack("<Q", checksum(bytes(body)))
    return bytes(body)


def save(path, mf):
    """Atomic write: temporary file, fsync, rename."""
    data = encode(mf)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def decode(data, path="(model)"):
    size = len(data)

    def need(cond, msg):
        if not cond:
            raise ModelFileError(f"{path}: {msg}")

    need(size >= 12 and data[:8] == MAGIC, "not a model file (bad magic)")
    version, flags = struct.unpack_from("<II", data, 8)
    need(1 <= version <= FORMAT_VERSION, f"format version {version} not supported")
    need(size >= FIXED_HEADER, f"truncated: {size} bytes")
    need(flags == 0, f"unknown header flags {flags:#x}")
    v = struct.unpack_from("<15if", data, 16)
    cfg = NetConfig(K=v[0], H=v[1], W=v[2], base_ch=v[3], n_levels=v[4], ch_mult=list(v[5:10]),
                    n_res=v[10], attn_levels=v[11], n_heads=v[12], temb_dim=v[13], groups=v[14],
                    dropout=float(np.float32(v[15])))
    k2, h2, w2, reserved = struct.unpack_from("<3iI", data, 80)
    need((k2, h2, w2) == (cfg.K, cfg.H, cfg.W), "data K/H/W disagree with the config")
    need(reserved == 0, "reserved header field is not zero")
    (beta1,) = struct.unpack_from("<d", data, 96)
    ds_raw = data[104:136]
    nul = ds_raw.find(b"\0")
    need(nul >= 0 and not any(ds_raw[nul:]), "data set name not NUL-terminated and zero-filled")
    step, images, n_notes, n_sec = struct.unpack_from("<QQII", data, 136)
    need(n_notes <= NOTES_MAX and n_sec <= SECTIONS_MAX, "too many notes or sections")
    pos = FIXED_HEADER
    notes = {}
    for _ in range(n_notes):
        need(size - pos >= 8, "truncated inside a note")
        kl, vl = struct.unpack_from("<II", data, pos)
        need(kl <= 31 and vl <= 191 and size - pos - 8 >= kl + vl, "bad note lengths")
        pos += 8
        notes[data[pos:pos + kl].decode()] = data[pos + kl:pos + kl + vl].decode()
        pos += kl + vl
    need((size - pos) // TABLE_ENTRY >= n_sec, "section table runs past the end")
    table = []
    for i in range(n_sec):
        e = data[pos + i * TABLE_ENTRY: pos + (i + 1) * TABLE_ENTRY]
        raw = e[:32]
        nul = raw.find(b"\0")
        need(nul > 0 and not any(raw[nul:]), f"section {i} name malformed")
        typ, res, count = struct.unpack_from("<IIQ", e, 32)
        need(typ in _DTYPES and res == 0, f"section {i} has unknown type {typ}")
        table.append((raw[:nul].decode(), typ, count))
    pos += n_sec * TABLE_ENTRY
    need(not any(data[pos:pos + _pad8(pos)]), "padding after the section table is not zero")
    pos += _pad8(pos)
    sections = {}
    for name, typ, count in table:
        nbytes = count * _DTYPES[typ].itemsize
        need(size - pos >= nbytes + _pad8(nbytes), f"section {name!r} runs past the end")
        need(name not in sections, f"duplicate section {name!r}")
        sections[name] = np.frombuffer(data, dtype=_DTYPES[typ], count=count, offset=pos).copy()
        need(not any(data[pos + nbytes:pos + nbytes + _pad8(nbytes)]),
             f"section {name!r} padding is not zero")
        pos += nbytes + _pad8(nbytes)
    need(size - pos == 8, f"file should be {pos + 8} bytes, is {size}")
    (stored,) = struct.unpack_from("<Q", data, pos)
    actual = checksum(data[:pos])
    need(stored == actual, f"checksum mismatch (stored {stored:016x}, computed {actual:016x})")
    return ModelFile(cfg, beta1, ds_raw[:ds_raw.find(b'\0')].decode(), step, images, notes,
                     sections)


def load(path):
    with open(path, "rb") as f:
        return decode(f.read(), path)
