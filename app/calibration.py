"""Match strength: how far a hit's cosine stands above what the same model gives unrelated texts.

Raw cosines do not compare across models or queries: e5 gives unrelated texts about 0.73, and an
emoji or gibberish query sits at ~0.82 against *every* paragraph, above some correct answers. So a
hit's cosine is measured from two things stored with the collection when it is built
(`calibration.npz`, drawn from its stored vectors): a fixed reference sample of `REFERENCE_N`
chunks, and the model's distribution of cosines between random pairs of the collection's chunks.

    strength = (cosine - median cosine of the query to the reference chunks) / spread of random pairs

The median is this query's "unrelated" level (nearly every reference chunk is unrelated to any one
query; a query close to everything, like an emoji under e5, gets a high level); the spread (standard
deviation of random-pair cosines) is the model's own unit. A first hit below `NO_MATCH_BELOW` is
shown as "no good match", the same rule for both columns.

Why 2.75 (README "Match strength"; app/collection_report.py measures it on every `make demo`): on
the XQuAD dev questions against the demo collection it is the smallest value that puts every one
of 12 nonsense probes (gibberish, emoji, "the", "lorem ipsum", ...) below it for both models, and
first hits below it are correct for about 1 question in 4 (teacher) or 5 (student), against about
1 in 2 above it.

    python -m app.calibration COLLECTION_DIR      # (re)write COLLECTION_DIR/calibration.npz
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILE = "calibration.npz"
REFERENCE_N = 256
SEED = 0
NO_MATCH_BELOW = 2.75  # strength of a first hit below which the list is "no good match" (see above)


@dataclass(frozen=True)
class Reference:
    """One model's reference vectors and its random-pair cosine distribution."""

    vectors: np.ndarray  # (n, dim) float32, normalised
    pair_mean: float  # mean cosine of random pairs of the collection's chunks
    pair_std: float

    def strengths(self, query: np.ndarray, scores: Sequence[float]) -> np.ndarray:
        """Strength of each score of one query (its normalised vector) against the reference."""
        level = float(np.median(self.vectors @ np.asarray(query, dtype=np.float32).reshape(-1)))
        return (np.asarray(scores, dtype=np.float64) - level) / max(self.pair_std, 1e-6)


def sample_reference(vectors: np.ndarray, n: int = REFERENCE_N, seed: int = SEED) -> Reference:
    """A deterministic sample of `n` rows of `vectors`, and the cosine distribution of random pairs."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(vectors), size=min(n, len(vectors)), replace=False))
    ref = np.asarray(vectors[rows], dtype=np.float32)
    a, b = rng.integers(0, len(vectors), size=(2, 4096))
    keep = a != b
    pairs = np.einsum("ij,ij->i", vectors[a[keep]], vectors[b[keep]]) if keep.any() else np.zeros(1)
    return Reference(ref, float(pairs.mean()), float(pairs.std()))


def build(collection) -> Path:
    """Draw each model's reference from the collection's stored vectors and write calibration.npz."""
    from distill.fileio import atomic_path

    arrays, meta = {}, {}
    for i, spec in enumerate(collection.models):
        _, vectors = collection.stored_vectors(spec)
        if len(vectors) < 2:
            raise ValueError(
                f"{collection.path}: {spec} has {len(vectors)} stored vectors; index documents first"
            )
        ref = sample_reference(vectors)
        arrays[f"m{i}"] = ref.vectors.astype(np.float16)
        meta[spec] = {"array": f"m{i}", "pair_mean": ref.pair_mean, "pair_std": ref.pair_std}
    out = Path(collection.path) / FILE
    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        np.savez(f, meta=np.array(json.dumps(meta)), **arrays)
    return out


def load(collection_dir: str | Path) -> dict[str, Reference]:
    """spec -> Reference of a collection; {} when it has no (readable) calibration."""
    path = Path(collection_dir) / FILE
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            return {
                spec: Reference(z[m["array"]].astype(np.float32), m["pair_mean"], m["pair_std"])
                for spec, m in meta.items()
            }
    except (OSError, ValueError, KeyError):
        return {}


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m app.calibration", description=__doc__)
    parser.add_argument("collection", help="collection directory")
    args = parser.parse_args(argv)
    from indexer import Collection, IndexerError

    try:
        with Collection.open(args.collection, read_only=True) as col:
            out = build(col)
    except (IndexerError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
