"""Deterministic subsampling and file fingerprints, so two reports on "the same data" really are."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np

SEED = 0


def take_sample(n: int, limit: int | None, seed: int = SEED) -> list[int]:
    """Indices of a fixed random subset of size `limit` (all of range(n) when limit is None or >= n), in order."""
    if limit is None or limit >= n:
        return list(range(n))
    if limit < 1:
        raise ValueError(f"sample size must be >= 1, got {limit}")
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(n, size=limit, replace=False))


def file_fingerprint(path: str | Path) -> str:
    """First 16 hex digits of the file's SHA-256 (cached per path, size and mtime)."""
    p = Path(path)
    st = p.stat()
    return _fingerprint(str(p.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _fingerprint(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]
