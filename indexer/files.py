"""The indexer's files: written atomically (`distill.fileio`) with the CRC-32 it records in the
database, and checked against it later.

`faiss.write_index` writes in place, and an interrupted write leaves an index that fails later with
`read error` (faiss #861): every index and vector file goes through `atomic_write`/`atomic_save_npy`.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from distill.fileio import TMP_SUFFIX, atomic_open

__all__ = ["TMP_SUFFIX", "atomic_save_npy", "atomic_write", "crc32_stream", "npy_crc32"]


def atomic_write(path: Path, data: bytes | memoryview | np.ndarray) -> int:
    """Write `data` to `path` atomically and durably; return its CRC-32."""
    view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
    with atomic_open(path) as f:
        f.write(view)
    return zlib.crc32(view)


class _CrcWriter:
    """A file wrapper that keeps the CRC-32 of what was written through it."""

    def __init__(self, f: BinaryIO | None) -> None:
        self.f, self.crc = f, 0

    def write(self, data) -> int:
        self.crc = zlib.crc32(data, self.crc)
        return self.f.write(data) if self.f is not None else len(memoryview(data).cast("B"))


def npy_crc32(array: np.ndarray) -> int:
    """The CRC-32 of the file `atomic_save_npy(path, array)` writes, computed without writing it."""
    out = _CrcWriter(None)
    np.save(out, np.ascontiguousarray(array), allow_pickle=False)
    return out.crc


def atomic_save_npy(path: Path, array: np.ndarray) -> int:
    """`np.save`, atomically (the file can later be memory-mapped with `np.load(mmap_mode='r')`);
    return the file's CRC-32."""
    with atomic_open(path) as f:
        out = _CrcWriter(f)
        np.save(out, np.ascontiguousarray(array), allow_pickle=False)
    return out.crc


def crc32_stream(path: Path, block: int = 1 << 24) -> int:
    """CRC-32 of a file, read in blocks (vector segments can be larger than memory)."""
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(block):
            crc = zlib.crc32(chunk, crc)
    return crc
