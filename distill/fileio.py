"""Crash-safe files: write beside the target, fsync, rename into place, fsync the directory.

A reader (or a process started after a crash) sees the old file or the complete new one, never a
half-written file. The one home of this rule for the whole project (the indexer, training
checkpoints, target caches, reports, benchmarks); standard library only, so that anything can
import it cheaply.

Also the one home of the output-path rule (`check_output_file`, `check_output_dir`): an output may
never be one of the command's inputs or a file inside a collection directory, and a non-empty
directory is replaced only when it is recognisably ours (it holds one of its kind's marker files).
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
COLLECTION_MARKER = "collection.json"  # indexer.layout.COLLECTION_FILE: marks a collection directory
# What makes a non-empty directory ours to replace: a model (sentence-transformers layout), a report.
MODEL_MARKERS = ("modules.json", "config_sentence_transformers.json")
REPORT_MARKERS = ("metrics.json",)


class OutputPathError(ValueError):
    """An output path the output-path rule refuses; nothing was written."""


def _real(path: str | Path) -> Path:
    return Path(os.path.realpath(Path(path).expanduser()))


def _same(a: Path, b: Path) -> bool:
    if _real(a) == _real(b):
        return True
    try:
        return os.path.samefile(a, b)  # hard links, bind mounts
    except OSError:
        return False


def _within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def collection_of(path: str | Path) -> Path | None:
    """The collection directory `path` is in (or is), if any."""
    real = _real(path)
    for p in (real, *real.parents):
        if (p / COLLECTION_MARKER).is_file():
            return p
    return None


def check_output_file(path: str | Path, inputs=(), *, what: str = "output") -> None:
    """Refuse an output file that is one of `inputs`, a directory, or inside a collection directory."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{what} {path} is a directory; give a file name")
    for i in inputs:
        if _same(path, Path(i)):
            raise OutputPathError(f"{what} {path} is also an input of this command; give another file")
    col = collection_of(_real(path).parent)  # a link into a collection counts as inside it
    if col is not None:
        raise OutputPathError(
            f"{what} {path} is inside the collection directory {col}; write it outside the collection"
        )


def check_output_dir(path: str | Path, inputs=(), *, ours=MODEL_MARKERS, what: str = "output") -> None:
    """Refuse an output directory that would replace or contain an input, lies inside a collection,
    or is a non-empty directory holding none of `ours` (not one we wrote: never deleted)."""
    path = Path(path)
    if path.is_symlink():
        raise OutputPathError(f"{what} {path} is a symbolic link; give the directory it points to")
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{what} {path} exists and is not a directory")
    real = _real(path)
    for i in inputs:
        ri = _real(i)
        if _within(ri, real) or _within(real, ri) or (path.exists() and _same(path, Path(i))):
            raise OutputPathError(f"{what} {path} would replace or lie inside the input {i}; choose another")
    col = collection_of(path)
    if col is not None:
        raise OutputPathError(f"{what} {path} is inside the collection directory {col}; choose another")
    if path.is_dir() and any(path.iterdir()) and not any((path / m).is_file() for m in ours):
        raise OutputPathError(
            f"{what} {path} is a non-empty directory without {' or '.join(ours)}, so not one this "
            "command wrote; refusing to replace it: choose a new or empty directory"
        )


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
def atomic_directory(path: str | Path, inputs=(), *, ours=MODEL_MARKERS) -> Iterator[Path]:
    """Yield an empty temporary directory beside `path` to fill; on success it replaces `path` (an
    earlier version is removed first), so `path` only ever holds a complete set of files. On any
    error the temporary directory is removed. `path` must pass `check_output_dir(path, inputs,
    ours=ours)`, checked before and again just before the old directory goes."""
    path = Path(path)
    check_output_dir(path, inputs, ours=ours)
    tmp = temp_path(path)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        for f in tmp.rglob("*"):
            if f.is_file():
                fsync_path(f)
        if path.exists():
            check_output_dir(path, inputs, ours=ours)  # it may have changed while `tmp` was filled
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
