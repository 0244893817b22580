"""Crash-safe files: write to a temporary file, fsync it, rename it into place, fsync the directory.

A reader (or a process started after a crash) sees either no file or a complete one, never a
half-written file: `faiss.write_index` writes in place, and an interrupted write leaves an index
that fails later with `read error` (faiss #861).
"""

from __future__ import annotations

import os
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np

TMP_SUFFIX = ".tmp"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _atomic_replace(path: Path) -> Iterator[BinaryIO]:
    """Yield a temporary file beside `path`; on success fsync it, rename it over `path`, fsync the dir."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}")
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes | memoryview | np.ndarray) -> int:
    """Write `data` to `path` atomically and durably; return its CRC-32."""
    view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
    with _atomic_replace(path) as f:
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
    with _atomic_replace(path) as f:
        out = _CrcWriter(f)
        np.save(out, np.ascontiguousarray(array), allow_pickle=False)
    return out.crc


def crc32_file(path: Path) -> tuple[bytes, int]:
    data = path.read_bytes()
    return data, zlib.crc32(data)


def crc32_stream(path: Path, block: int = 1 << 24) -> int:
    """CRC-32 of a file, read in blocks (vector segments can be larger than memory)."""
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(block):
            crc = zlib.crc32(chunk, crc)
    return crc
