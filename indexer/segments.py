"""Stored vectors: immutable float16 segments per model, so `rebuild` never re-encodes.

A segment is two `.npy` files written atomically before the database registers them:
`NAME.vec.npy` (float16, rows x dim, memory-mapped when read) and `NAME.ids.npy` (int64 chunk ids).
Each commit appends one segment, so a commit costs O(batch), not O(collection). Rows of deleted
chunks stay until a rebuild (or `compact`) writes the live rows into a single new segment. Files
that no registered segment names (left by a crash between writing and registering) are deleted
when a writer reconciles the collection.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from indexer.errors import IndexCorruptError
from indexer.files import atomic_save_npy

BLOCK = 65_536  # rows read at a time when streaming vectors


class SegmentStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def vec_path(self, name: str) -> Path:
        return self.root / f"{name}.vec.npy"

    def ids_path(self, name: str) -> Path:
        return self.root / f"{name}.ids.npy"

    def write(self, ids: np.ndarray, vectors: np.ndarray, prefix: str = "seg") -> str:
        """Write a new segment; return its name (register it in the database afterwards)."""
        if len(ids) != len(vectors):
            raise ValueError("ids and vectors differ in length")
        self.root.mkdir(parents=True, exist_ok=True)
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        atomic_save_npy(self.vec_path(name), vectors.astype(np.float16))
        atomic_save_npy(self.ids_path(name), np.asarray(ids, dtype=np.int64))
        return name

    def ids(self, name: str) -> np.ndarray:
        try:
            return np.load(self.ids_path(name), mmap_mode=None, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(f"vector segment {self.ids_path(name)} cannot be read ({exc})") from None

    def vectors(self, name: str) -> np.ndarray:
        try:
            return np.load(self.vec_path(name), mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(f"vector segment {self.vec_path(name)} cannot be read ({exc})") from None

    def check(self, name: str, rows: int, dim: int) -> None:
        ids, vecs = self.ids(name), self.vectors(name)
        if len(ids) != rows or vecs.shape != (rows, dim):
            raise IndexCorruptError(
                f"vector segment {name} has {len(ids)} ids and vectors of shape {vecs.shape}; "
                f"the database recorded {rows} rows of dimension {dim}"
            )

    def iter_rows(self, names: list[str], wanted: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, float32 vectors) blocks of the given segments, only ids in `wanted` (sorted) if given.

        A chunk id stored twice (re-embedded after a crash) is yielded once, from its last segment.
        """
        last: dict[int, tuple[int, int]] = {}
        all_ids = [self.ids(n) for n in names]
        for s, ids in enumerate(all_ids):
            keep = np.isin(ids, wanted, assume_unique=False) if wanted is not None else np.ones(len(ids), bool)
            for row in np.flatnonzero(keep):
                last[int(ids[row])] = (s, int(row))
        for s, (name, ids) in enumerate(zip(names, all_ids, strict=True)):
            rows = np.array(sorted(r for (seg, r) in last.values() if seg == s), dtype=np.int64)
            if len(rows) == 0:
                continue
            vecs = self.vectors(name)
            for start in range(0, len(rows), BLOCK):
                block = rows[start : start + BLOCK]
                yield ids[block], np.asarray(vecs[block], dtype=np.float32)

    def files(self) -> set[str]:
        """Names of the segments present on disk (complete ones: both files exist)."""
        if not self.root.is_dir():
            return set()
        vec = {p.name[: -len(".vec.npy")] for p in self.root.glob("*.vec.npy")}
        ids = {p.name[: -len(".ids.npy")] for p in self.root.glob("*.ids.npy")}
        return vec | ids

    def delete(self, name: str) -> None:
        self.vec_path(name).unlink(missing_ok=True)
        self.ids_path(name).unlink(missing_ok=True)

    def nbytes(self, names: list[str]) -> int:
        return sum(p.stat().st_size for n in names for p in (self.vec_path(n), self.ids_path(n)) if p.exists())
