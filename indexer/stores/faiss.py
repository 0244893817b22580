"""The FAISS store: one `IndexIDMap2` per model, committed as generations of files.

Each commit writes `indexes/m<ID>.g<GEN>.faiss` (tmp + fsync + rename: `write_index` writes in
place, faiss #861) and the database then names it with its size and CRC-32; the previous
generation stays for readers that have not reloaded yet, older ones are deleted. The language
filter is an `IDSelectorBitmap` over the allowed chunk ids, for every index type.
"""

from __future__ import annotations

import logging
import re
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

import indexer.faiss_index as faiss_index
from indexer.config import IndexKind, IndexSpec
from indexer.errors import IndexCorruptError, IndexerError
from indexer.files import TMP_SUFFIX
from indexer.layout import INDEX_DIR
from indexer.stores.base import Allowed, Prepared, StoreKind, check_ids

log = logging.getLogger("indexer")

INDEX_FILE_RE = re.compile(r"^m(\d+)\.g(\d+)\.faiss$")
TOMBSTONE_REBUILD = 0.25  # rebuild an index that cannot delete once this share of it is tombstones


def min_train(spec: IndexSpec, dim: int, n: int) -> int:
    if spec.kind == IndexKind.FACTORY:
        probe = faiss_index.new_index(spec.factory, dim)
        if probe.is_trained:
            return 0
        nlist = re.search(r"IVF(\d+)", spec.factory)
        return max(256, int(nlist.group(1)) if nlist else 0)
    return spec.min_train_points(dim, n)


class FaissStore:
    kind = StoreKind.FAISS
    idempotent_upserts = False  # a re-added id would be a second vector (see VectorStore)

    # ------------------------------------------------------------------ the kind (StoreKindOps)

    @staticmethod
    def check_uri(uri: str | None) -> None:
        if uri is not None:
            raise IndexerError(
                "--milvus-uri is for --vector-store milvus; the faiss store keeps files in DIR"
            )

    @staticmethod
    def connect(context) -> None:
        """Files in the directory: nothing to reach."""

    @staticmethod
    def session(context) -> AbstractContextManager:
        return nullcontext()

    @staticmethod
    def describe(context) -> dict[str, Any]:
        return {"kind": StoreKind.FAISS.value, "uri": None}

    @staticmethod
    def drop_remote(context) -> None:
        """Every file is in the directory, which the failed create removes."""

    def __init__(self, model, context) -> None:
        self.m = model
        self.dir = context.path / INDEX_DIR
        self.index = None  # the committed generation plus staged changes
        self.broken: str | None = "not loaded"
        self.dirty = False

    # ------------------------------------------------------------------ state

    def load(self) -> None:
        m = self.m
        self.index, self.broken, self.dirty = None, None, False
        if not m.index_file:
            self.broken = f"no committed index for model {m.spec}"
            return
        if not INDEX_FILE_RE.match(m.index_file):  # never a path outside indexes/
            self.broken = (
                f"the database names an index file {m.index_file!r}, which is not an index file name"
            )
            return
        try:
            self.index = faiss_index.load(self.dir / m.index_file, m.index_bytes, m.index_crc32)
        except IndexCorruptError as exc:
            self.broken = str(exc)
            return
        if self.index.d != m.dim:
            self.broken = f"index file {m.index_file} has dimension {self.index.d}, the collection {m.dim}"
            self.index = None

    def raced(self) -> bool:
        """The committed file vanished between reading the row and the file (a newer commit won)."""
        return self.index is None and not (self.dir / (self.m.index_file or "-")).exists()

    def new_empty(self) -> None:
        """An empty first generation (at create): a type that needs training starts flat."""
        m = self.m
        m.factory = "Flat" if min_train(m.index_spec, m.dim, 0) > 0 else m.index_spec.factory_string(m.dim, 0)
        self.index, self.broken, self.dirty = self._new_index(m.factory), None, True

    def _new_index(self, factory: str):
        index = faiss_index.new_index(factory, self.m.dim)
        base = faiss_index.inner(index)
        if hasattr(base, "hnsw"):
            base.hnsw.efConstruction = self.m.index_spec.ef_construction
            base.hnsw.efSearch = self.m.index_spec.ef_search
        return index

    def check_spec(self, spec: IndexSpec, dim: int) -> None:
        faiss_index.check_spec(spec, dim, f"model {self.m.name}: ")

    # ------------------------------------------------------------------ changes

    def add(self, ids: np.ndarray, vectors: np.ndarray, langs: list[str] | None = None) -> None:
        if len(ids):
            faiss_index.add(self.index, vectors, ids)
            self.dirty = True

    def remove(self, ids: np.ndarray) -> int:
        """Remove `ids`; return how many stay as tombstones (the caller records them)."""
        removed, tomb = faiss_index.remove(self.index, ids)
        self.dirty |= removed > 0
        return tomb

    def set_tombstones(self, n: int) -> None:
        if n != self.m.tombstones:
            self.m.tombstones, self.dirty = n, True

    def count(self) -> int:
        return int(self.index.ntotal) if self.index is not None else 0

    def ids(self) -> np.ndarray:
        return faiss_index.index_ids(self.index)

    def is_exact(self) -> bool:
        return faiss_index.is_exact(self.index)

    def supports_remove(self) -> bool:
        return faiss_index.supports_remove(self.index)

    # ------------------------------------------------------------------ commit

    def _write(self, index, generation: int) -> tuple[str, int, int]:
        name = f"{self.m.key}.g{generation:06d}.faiss"
        nbytes, crc = faiss_index.save(index, self.dir / name)
        return name, nbytes, crc

    def prepare(self, generation: int) -> Prepared:
        name, nbytes, crc = self._write(self.index, generation)
        values = dict(generation=generation, index_file=name, index_bytes=nbytes, index_crc32=crc)
        values.update(ntotal=int(self.index.ntotal), tombstones=self.m.tombstones, factory=self.m.factory)
        return Prepared(values, undo=self.dir / name)

    def abort(self, prepared: Prepared) -> None:
        if prepared.undo is not None:  # never committed: referenced by nothing
            Path(prepared.undo).unlink(missing_ok=True)

    def finish(self, prepared: Prepared, old_generation: int) -> None:
        if "index" in prepared.values:  # a rebuild: the new index replaces the old one
            self.index = prepared.values.pop("index")
        self.dirty, self.broken = False, None
        self.m.adopt(prepared.values)
        self.remove_old_generations(keep_from=old_generation)

    def remove_old_generations(self, keep_from: int) -> None:
        """Delete index files older than `keep_from` (the previous generation stays for readers)."""
        for p in self.dir.glob(f"{self.m.key}.g*.faiss"):
            match = INDEX_FILE_RE.match(p.name)
            if match and int(match.group(2)) < keep_from:
                p.unlink(missing_ok=True)

    def rebuild(self, ids: np.ndarray, vectors: np.ndarray, langs: list[str] | None = None) -> Prepared:
        """A new index of `vectors` (the live chunks), written as the next generation."""
        m, n = self.m, len(ids)
        # Too few vectors to train (IVF/PQ): a flat index stands in until a later commit has enough.
        factory = "Flat" if n < min_train(m.index_spec, m.dim, n) else m.index_spec.factory_string(m.dim, n)
        index = self._new_index(factory)
        if not index.is_trained:
            rng = np.random.default_rng(0)
            faiss_index.train(index, vectors[rng.choice(n, size=min(n, 100_000), replace=False)])
        faiss_index.add(index, vectors, ids)
        generation = m.generation + 1
        name, nbytes, crc = self._write(index, generation)
        values = dict(generation=generation, index_file=name, index_bytes=nbytes, index_crc32=crc)
        values.update(ntotal=int(index.ntotal), tombstones=0, factory=factory)
        prepared = Prepared(values, undo=self.dir / name)
        prepared.values["index"] = index
        return prepared

    def needs_rebuild(self, live: int) -> str | None:
        """Why the index should be rebuilt after a commit (None: it should not)."""
        m = self.m
        kind = m.index_spec.resolve(live)
        if m.factory == "Flat" and kind != IndexKind.FLAT and live >= min_train(m.index_spec, m.dim, live):
            return "upgrade from the flat stand-in"
        if m.tombstones > 0 and m.tombstones > TOMBSTONE_REBUILD * self.index.ntotal:
            return f"{m.tombstones} tombstones"
        if m.index_spec.outgrown(m.factory, live):
            return "outgrown"
        return None

    # ------------------------------------------------------------------ search

    def search(
        self, query: np.ndarray, k: int, *, allowed: Allowed | None, widen: int = 1, exhaustive: bool = False
    ) -> list[tuple[int, float]]:
        ntotal = int(self.index.ntotal)
        selector = None
        if allowed is not None:
            if "faiss" not in allowed.cache:  # the bitmap array must stay alive with its selector
                allowed.cache["faiss"] = faiss_index.bitmap_selector(allowed.ids)
            selector = allowed.cache["faiss"][0]
        spec = self.m.index_spec
        scores, ids = faiss_index.search(
            self.index,
            query,
            k,
            selector=selector,
            ef_search=ntotal if exhaustive else max(spec.ef_search, k),
            nprobe=ntotal if exhaustive else spec.nprobe * widen,
        )
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    # ------------------------------------------------------------------ checks

    def verify(self, live: np.ndarray, report) -> int | None:
        """Check the committed file against the database; report problems; return its vector count."""
        m, name = self.m, self.m.name
        try:
            if m.index_file and not INDEX_FILE_RE.match(m.index_file):
                raise IndexCorruptError(
                    f"the database names an index file {m.index_file!r}, which is not an index file name"
                )
            index = faiss_index.load(self.dir / (m.index_file or "<none>"), m.index_bytes, m.index_crc32)
        except IndexCorruptError as exc:
            report.problems.append(f"{name}: {exc}")
            return None
        if index.d != m.dim:
            report.problems.append(f"{name}: index dimension {index.d}, the collection records {m.dim}")
        if index.ntotal != m.ntotal:
            report.problems.append(
                f"{name}: index holds {index.ntotal} vectors, the database records {m.ntotal}"
            )
        ids = faiss_index.index_ids(index)
        check_ids(
            name, ids, live, report, tombstones=m.tombstones, can_remove=faiss_index.supports_remove(index)
        )
        return int(index.ntotal)

    def stray_files(self, models: dict) -> int:
        """Delete index files no committed row of `models` (all of the collection's) names:
        temporary files, uncommitted generations, generations older than the previous one."""
        removed = 0
        current = {m.index_file for m in models.values()}
        for p in self.dir.glob("*"):
            match = INDEX_FILE_RE.match(p.name)
            if p.name.endswith(TMP_SUFFIX):
                p.unlink(missing_ok=True)
                removed += 1
            elif match:
                m = models.get(int(match.group(1)))
                gen = int(match.group(2))
                if m is None or (p.name not in current and (gen > m.generation or gen < m.generation - 1)):
                    p.unlink(missing_ok=True)
                    removed += 1
        return removed

    def close(self) -> None:
        self.index = None
