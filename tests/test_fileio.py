"""distill.fileio: a reader sees the old file or the complete new one; failures leave no temporary."""

from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest

from distill.fileio import (
    TMP_SUFFIX,
    atomic_directory,
    atomic_open,
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
)


def _strays(directory):
    return [p.name for p in directory.rglob(f"*{TMP_SUFFIX}")]


def test_text_and_bytes_replace_the_file_and_leave_no_temporary(tmp_path):
    path = tmp_path / "a.json"
    atomic_write_text(path, "ünïcode\n")
    assert path.read_text(encoding="utf-8") == "ünïcode\n"
    atomic_write_bytes(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01" and _strays(tmp_path) == []


def test_a_failing_streaming_writer_keeps_the_old_file(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("old")
    with pytest.raises(TypeError), atomic_open(path, "w") as f:
        json.dump({"ok": object()}, f)  # fails halfway: '{"ok": ' is already written
    assert path.read_text() == "old" and _strays(tmp_path) == []
    with atomic_open(path, "w") as f:
        json.dump({"ok": 1}, f)
    assert json.loads(path.read_text()) == {"ok": 1}


def test_a_full_disk_at_fsync_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "x.bin"
    path.write_bytes(b"old")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old" and _strays(tmp_path) == []


def test_atomic_path_serves_writers_that_want_a_name(tmp_path):
    path = tmp_path / "v.npy"
    with atomic_path(path) as tmp:
        assert tmp.parent == path.parent and not path.exists()
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(3, 2))
        out[:] = 1.5
        out.flush()
        del out
    assert np.load(path, mmap_mode="r").sum() == 9.0 and _strays(tmp_path) == []


def test_atomic_open_refuses_appending():
    with pytest.raises(ValueError, match="whole new file"), atomic_open("x", "ab"):
        pass


def test_atomic_directory_replaces_the_whole_directory_or_nothing(tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "old-only.txt").write_text("old")
    (out / "modules.json").write_text("[]")  # ours: a model directory (see the output-path rule)
    with pytest.raises(RuntimeError), atomic_directory(out) as tmp:
        (tmp / "weights.bin").write_bytes(b"half")
        raise RuntimeError("killed while writing")
    assert sorted(p.name for p in out.iterdir()) == ["modules.json", "old-only.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    with atomic_directory(out) as tmp:
        (tmp / "sub").mkdir()
        (tmp / "sub" / "weights.bin").write_bytes(b"full")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["sub", "sub/weights.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
