"""Crash-safe files: write beside the target, fsync, rename into place, fsync the directory.

A reader (or a process started after a crash) sees the old file or the complete new one, never a
half-written file. The one home of this rule for the whole project (the indexer, training
checkpoints, target caches, reports, benchmarks); standard library only, so that anything can
import it cheaply.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

TMP_SUFFIX = ".tmp"


def fsync_path(path: str | Path) -> None:
    """fsync a file, or a directory (which makes a rename or a new name in it durable), by name."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path(path: Path) -> Path:
    """A fresh hidden name beside `path` (the same directory, so the final rename is atomic)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}")


@contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """Yield a temporary name beside `path`; on success rename it over `path` and fsync the
    directory; on any error remove it and leave `path` as it was. The caller fsyncs the file."""
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(path.parent)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path for a writer that wants a file name (`open_memmap`, an exporter);
    the file written there replaces `path` when the block succeeds."""
    with _replacing(Path(path)) as tmp:
        yield tmp
        fsync_path(tmp)


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """`open(path, mode)` for a streaming writer (`torch.save`, `np.save`, `json.dump`), atomically:
    the file replaces `path` when the block succeeds."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes a whole new file: mode 'w' or 'wb', not {mode!r}")
    if mode == "w" and encoding is None:
        encoding = "utf-8"
    with _replacing(Path(path)) as tmp, open(tmp, mode, encoding=encoding) as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


def atomic_write_bytes(path: str | Path, data: bytes | memoryview) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    with atomic_open(path, "w", encoding=encoding) as f:
        f.write(text)


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary directory beside `path` to fill; on success it replaces `path` (an
    earlier version is removed first), so `path` only ever holds a complete set of files. On any
    error the temporary directory is removed."""
    path = Path(path)
    tmp = temp_path(path)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        for f in tmp.rglob("*"):
            if f.is_file():
                fsync_path(f)
        if path.exists():
            # Not atomic across the two renames, but never a mixed directory: the old one goes first.
            old = temp_path(path)
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old)
        else:
            tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_path(path.parent)
