"""FAISS indexes of a collection: `IndexIDMap2` around any inner index, ids = chunk ids.

Inner product on L2-normalised vectors (= cosine). Files are written through `files.atomic_write`
and checked against the size and CRC-32 the database recorded when they were committed.
"""

from __future__ import annotations

import os
from pathlib import Path

import faiss
import numpy as np

from indexer.config import AUTO_FLAT_LIMIT, IndexSpec
from indexer.errors import IndexCorruptError, IndexerError
from indexer.files import atomic_write


def set_threads(n: int) -> None:
    # One thread for single interactive queries (6.7 ms vs 33.7 ms with two on 2 cores, see
    # FIELD-NOTES); all cores for training and bulk adds.
    faiss.omp_set_num_threads(max(1, n))


_bulk_threads: int | None = None


def set_bulk_threads(n: int | None) -> None:
    """Threads for training and adding (process wide, like torch's); None = all cores."""
    global _bulk_threads
    _bulk_threads = n


def bulk_threads() -> int:
    return _bulk_threads or os.cpu_count() or 1


def new_index(factory: str, dim: int) -> faiss.IndexIDMap2:
    try:
        base = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[-1].split(": ")[-1]
        raise IndexerError(f"FAISS cannot build index {factory!r} ({reason})") from None
    # The factory turns on polysemous training for PQ (a Hamming-distance optimisation we never
    # use); it costs ~13 s per training on 2 cores, whatever the number of vectors.
    part = base
    while part is not None:
        if hasattr(part, "do_polysemous_training"):
            part.do_polysemous_training = False
        part = faiss.downcast_index(part.index) if isinstance(part, faiss.IndexPreTransform) else None
    return faiss.IndexIDMap2(base)


def check_spec(spec: IndexSpec, dim: int, what: str = "") -> None:
    """Build every index `spec` can call for on `dim`-dimensional vectors (small, large, outgrown),
    so a parameter FAISS rejects fails before anything is written, not at a later commit."""
    for n in (0, AUTO_FLAT_LIMIT, 100 * AUTO_FLAT_LIMIT):
        try:
            factory = spec.factory_string(dim, n)
        except ValueError as exc:
            raise IndexerError(f"{what}{exc}") from None
        try:
            new_index(factory, dim)
        except IndexerError as exc:
            raise IndexerError(f"{what}{exc}") from None


def inner(index: faiss.Index) -> faiss.Index:
    return faiss.downcast_index(index.index)


def is_trained(index: faiss.Index) -> bool:
    return bool(index.is_trained)


def train(index: faiss.Index, sample: np.ndarray) -> None:
    set_threads(bulk_threads())
    try:
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
    finally:
        set_threads(1)


def add(index: faiss.Index, vectors: np.ndarray, ids: np.ndarray) -> None:
    if len(ids) == 0:
        return
    set_threads(bulk_threads())
    try:
        index.add_with_ids(
            np.ascontiguousarray(vectors, dtype=np.float32), np.ascontiguousarray(ids, dtype=np.int64)
        )
    finally:
        set_threads(1)


def remove(index: faiss.Index, ids: np.ndarray) -> tuple[int, int]:
    """Remove `ids`; return (removed, tombstoned).

    Only flat-code indexes are physically removed from (see `supports_remove`). Elsewhere the
    vectors stay as tombstones that search filters out (their chunk ids no longer exist in the
    database and are never reused) until a rebuild.
    """
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if len(ids) == 0:
        return 0, 0
    present = int(np.isin(ids, index_ids(index)).sum())
    if present == 0:
        return 0, 0
    if not supports_remove(index):
        return 0, present
    return int(index.remove_ids(faiss.IDSelectorBatch(ids))), 0


def supports_remove(index: faiss.Index) -> bool:
    """True where `IndexIDMap2.remove_ids` keeps ids right.

    IndexIDMap2 compacts its id map in order, which matches only inner indexes that compact their
    storage in order too: the flat-code family (Flat, PQ, SQ, LSH). HNSW cannot remove at all
    (faiss #3339). IVF removes from its lists but keeps the old sequential positions there, so
    after a removal inside IndexIDMap2 every later position maps to the wrong id: silent id drift.
    """
    base = inner(index)
    while isinstance(base, faiss.IndexPreTransform):
        base = faiss.downcast_index(base.index)
    return isinstance(base, faiss.IndexFlatCodes)


def is_exact(index: faiss.Index) -> bool:
    return isinstance(inner(index), faiss.IndexFlat)


def index_ids(index: faiss.Index) -> np.ndarray:
    return faiss.vector_to_array(index.id_map).astype(np.int64, copy=False)


def save(index: faiss.Index, path: Path) -> tuple[int, int]:
    """Write `index` to `path` atomically; return (bytes, crc32)."""
    data = faiss.serialize_index(index)
    crc = atomic_write(path, data)
    return int(data.nbytes), crc


def load(path: Path, expected_bytes: int | None = None, expected_crc: int | None = None) -> faiss.Index:
    import zlib

    if not path.is_file():
        raise IndexCorruptError(f"index file {path} is missing")
    data = path.read_bytes()
    if expected_bytes is not None and len(data) != expected_bytes:
        raise IndexCorruptError(
            f"index file {path} is truncated or was replaced: {len(data):,} bytes, the database recorded {expected_bytes:,}"
        )
    if expected_crc is not None and zlib.crc32(data) != expected_crc:
        raise IndexCorruptError(
            f"index file {path} is corrupt: its CRC-32 does not match the one recorded at commit"
        )
    try:
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    except RuntimeError as exc:
        raise IndexCorruptError(
            f"index file {path} cannot be read by FAISS ({str(exc).splitlines()[-1]})"
        ) from None
    # read_index already returns the concrete class; downcast_index would return a second,
    # non-owning wrapper whose object dies with this one.
    if not isinstance(index, faiss.IndexIDMap2):
        raise IndexCorruptError(f"index file {path} is not an IndexIDMap2 index")
    return index


def bitmap_selector(ids: np.ndarray) -> tuple[faiss.IDSelector, np.ndarray]:
    """An id selector for `ids` (a bitmap over 0..max id); keep the returned array alive while searching."""
    nbits = int(ids.max()) + 1 if len(ids) else 1
    bitmap = np.zeros((nbits + 7) // 8, dtype=np.uint8)
    np.bitwise_or.at(bitmap, ids >> 3, (1 << (ids & 7)).astype(np.uint8))
    # The first argument is the bitmap's size in bytes (ids past it are not members), not in bits.
    return faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap)), bitmap


def search(
    index: faiss.Index,
    query: np.ndarray,
    k: int,
    *,
    selector: faiss.IDSelector | None = None,
    ef_search: int = 64,
    nprobe: int = 16,
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) of the `k` nearest vectors; ids are -1 where fewer were found."""
    base = inner(index)
    if isinstance(base, faiss.IndexHNSW):
        params = faiss.SearchParametersHNSW(efSearch=max(ef_search, k))
    elif isinstance(base, faiss.IndexIVF):
        params = faiss.SearchParametersIVF(nprobe=min(nprobe, base.nlist))
    else:
        params = faiss.SearchParameters()
    if selector is not None:
        params.sel = selector
    set_threads(1)
    return index.search(np.ascontiguousarray(query, dtype=np.float32), k, params=params)
