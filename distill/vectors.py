"""Vector helpers the evaluation and the indexer share (numpy only: the indexer's CLI starts
without torch)."""

from __future__ import annotations

import numpy as np


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows of `x` scaled to unit length, as contiguous float32 (what FAISS and the metrics take);
    zero rows stay zero."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)
