"""Stored vectors: immutable float16 segments per model, so `rebuild` never re-encodes.

A segment is two `.npy` files written atomically before the database registers them:
`NAME.vec.npy` (float16, rows x dim, memory-mapped when read) and `NAME.ids.npy` (int64 chunk ids).
Each commit appends one segment, so a commit costs O(batch), not O(collection). Rows of deleted
chunks stay until a rebuild (or `compact`) writes the live rows into a single new segment. Files
that no registered segment names (left by a crash between writing and registering) are deleted
when a writer reconciles the collection.

A segment's name carries the CRC-32 of both files (`seg-<uuid>-<crc vec><crc ids>`), so the name
the database registers at commit records the checksums without a schema change: `check` catches a
file whose bytes changed at the same size (zeroed by a disk or another process). Segments written
before checksums (no suffix) are checked for unit-norm rows instead (every stored vector is
L2-normalised). A name the database holds must match `NAME_RE`, so a tampered row can never make
the indexer read or delete a file outside `vectors/`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from indexer.errors import IndexCorruptError
from indexer.files import atomic_save_npy, crc32_stream, npy_crc32

BLOCK = 65_536  # rows read at a time when streaming vectors
NAME_RE = re.compile(r"^[a-z]+-[0-9a-f]{12}(?:-([0-9a-f]{8})([0-9a-f]{8}))?$")
NORM_TOLERANCE = 0.01  # float16 rounding moves a unit norm by ~1e-3


class SegmentStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _checked(self, name: str) -> str:
        if not NAME_RE.match(name):
            raise IndexCorruptError(
                f"the database names a vector segment {name!r}, which is not a segment name"
            )
        return name

    def vec_path(self, name: str) -> Path:
        return self.root / f"{self._checked(name)}.vec.npy"

    def ids_path(self, name: str) -> Path:
        return self.root / f"{self._checked(name)}.ids.npy"

    def write(self, ids: np.ndarray, vectors: np.ndarray, prefix: str = "seg") -> str:
        """Write a new segment; return its name, which carries its checksums (register it afterwards)."""
        if len(ids) != len(vectors):
            raise ValueError("ids and vectors differ in length")
        self.root.mkdir(parents=True, exist_ok=True)
        vectors, ids = vectors.astype(np.float16), np.asarray(ids, dtype=np.int64)
        name = f"{prefix}-{uuid.uuid4().hex[:12]}-{npy_crc32(vectors):08x}{npy_crc32(ids):08x}"
        atomic_save_npy(self.vec_path(name), vectors)
        atomic_save_npy(self.ids_path(name), ids)
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
        """Raise IndexCorruptError unless segment `name` holds the `rows` x `dim` vectors committed."""
        ids, vecs = self.ids(name), self.vectors(name)
        if len(ids) != rows or vecs.shape != (rows, dim):
            raise IndexCorruptError(
                f"vector segment {name} has {len(ids)} ids and vectors of shape {vecs.shape}; "
                f"the database recorded {rows} rows of dimension {dim}"
            )
        crc_vec, crc_ids = NAME_RE.match(name).groups()
        if crc_vec is not None:
            for path, want in ((self.vec_path(name), crc_vec), (self.ids_path(name), crc_ids)):
                if f"{crc32_stream(path):08x}" != want:
                    raise IndexCorruptError(
                        f"vector segment {path} is corrupt: its CRC-32 does not match the one recorded at commit"
                    )
            return
        for start in range(0, rows, BLOCK):  # a segment from before checksums: rows must be unit vectors
            norms = np.linalg.norm(np.asarray(vecs[start : start + BLOCK], dtype=np.float32), axis=1)
            bad = np.flatnonzero(np.abs(norms - 1.0) > NORM_TOLERANCE)
            if len(bad):
                raise IndexCorruptError(
                    f"vector segment {self.vec_path(name)} is corrupt: row {start + int(bad[0])} has norm "
                    f"{norms[bad[0]]:.3f}, stored vectors have norm 1"
                )

    def iter_rows(
        self, names: list[str], wanted: np.ndarray | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, float32 vectors) blocks of the given segments, only ids in `wanted` (sorted) if given.

        A chunk id stored twice (re-embedded after a crash) is yielded once, from its last segment.
        Callers `check` the segments first: this reads what is there.
        """
        last: dict[int, tuple[int, int]] = {}
        all_ids = [self.ids(n) for n in names]
        for s, ids in enumerate(all_ids):
            keep = (
                np.isin(ids, wanted, assume_unique=False) if wanted is not None else np.ones(len(ids), bool)
            )
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
        """Names of the segments present on disk (either file exists)."""
        if not self.root.is_dir():
            return set()
        vec = {p.name[: -len(".vec.npy")] for p in self.root.glob("*.vec.npy")}
        ids = {p.name[: -len(".ids.npy")] for p in self.root.glob("*.ids.npy")}
        return vec | ids

    def delete(self, name: str) -> None:
        if Path(name).name != name or name in ("", ".", ".."):
            return  # never a path outside vectors/ (a name from a tampered database row)
        (self.root / f"{name}.vec.npy").unlink(missing_ok=True)
        (self.root / f"{name}.ids.npy").unlink(missing_ok=True)

    def nbytes(self, names: list[str]) -> int:
        names = [n for n in names if NAME_RE.match(n)]
        return sum(
            p.stat().st_size for n in names for p in (self.vec_path(n), self.ids_path(n)) if p.exists()
        )
