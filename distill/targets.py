"""Target embeddings computed once per (texts, model) and cached on disk, memory mapped.

The key hashes the model's identity (spec plus the size and mtime of its weight files, so a
retrained checkpoint gets a new key), the prompt, the sequence length and the texts themselves.
Files are written atomically (`distill.fileio`), so an interrupted run never leaves a half-written
cache that a later run would trust.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from distill.fileio import atomic_path, atomic_write_text
from distill.models import Encoder, resolve_model
from distill.modelspec import weights_fingerprint
from distill.paths import data_dir


def cache_root(cache_dir: str | Path | None = None) -> Path:
    root = Path(cache_dir) if cache_dir else data_dir() / "cache"
    path = root / "targets"
    path.mkdir(parents=True, exist_ok=True)
    return path


def model_fingerprint(spec: str | Path) -> str:
    """Spec + weight file sizes/mtimes: changes whenever the weights do."""
    path = Path(resolve_model(spec))
    parts = [str(spec), str(path.resolve())]
    parts += [f"{name}:{size}:{mtime}" for name, (size, mtime) in weights_fingerprint(path).items()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def cache_key(fingerprint: str, texts: Sequence[str], prefix: str | None, max_seq_length: int) -> str:
    h = hashlib.sha256(f"{fingerprint}\n{prefix}\n{max_seq_length}\n".encode())
    for t in texts:
        h.update(t.encode())
        h.update(b"\x00")
    return h.hexdigest()[:24]


def cached_embeddings(
    encoder: Encoder,
    spec: str | Path,
    texts: Sequence[str],
    *,
    prefix: str | None,
    cache_dir: str | Path | None = None,
    batch_size: int = 64,
    label: str = "targets",
) -> np.ndarray:
    """(len(texts), dim) float32 embeddings of `texts` by `encoder`, read-only memory map."""
    key = cache_key(model_fingerprint(spec), texts, prefix, encoder.max_seq_length)
    root = cache_root(cache_dir)
    path = root / f"{key}.npy"
    if path.exists():
        arr = np.load(path, mmap_mode="r")
        if arr.shape == (len(texts), encoder.dim):
            return arr
    with atomic_path(path) as tmp:  # filled in place as a memory map, then renamed
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(texts), encoder.dim))
        chunk = batch_size * 16
        for start in tqdm(range(0, len(texts), chunk), desc=f"{label} ({len(texts)} texts)", unit="chunk"):
            out[start : start + chunk] = encoder.encode(
                texts[start : start + chunk], batch_size=batch_size, prefix=prefix
            )
        out.flush()
        del out
    meta = {
        "model": str(spec),
        "prefix": prefix,
        "n": len(texts),
        "dim": encoder.dim,
        "max_seq_length": encoder.max_seq_length,
    }
    atomic_write_text(root / f"{key}.json", json.dumps(meta, indent=2))
    return np.load(path, mmap_mode="r")
