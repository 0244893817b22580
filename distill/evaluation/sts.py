"""Semantic textual similarity: rank correlation between cosine similarity and gold scores."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from distill.data import DataError, StsExample, read_sts_tsv
from distill.evaluation.base import DataEvaluator, EmbeddingCache, Task
from distill.evaluation.metrics import pearson, spearman
from distill.langs import canonical_lang
from distill.models.encoder import Role


class StsEvaluator(DataEvaluator):
    """Spearman (primary) and Pearson correlation of cos(s1, s2) with the gold score.

    Metrics: `{name}_spearman`, `{name}_pearson`. Both sides use the "query" prefix. Like
    sentence-transformers' EmbeddingSimilarityEvaluator, a constant side gives NaN (undefined).
    """

    task = Task.STS

    def __init__(
        self,
        sentences1: Sequence[str],
        sentences2: Sequence[str],
        scores: Sequence[float],
        *,
        name: str,
        lang1: str = "",
        lang2: str = "",
        batch_size: int = 64,
        dataset: str = "",
        source: dict[str, Any] | None = None,
        cache: EmbeddingCache | None = None,
        show_progress: bool = False,
    ) -> None:
        self._setup(
            name,
            "spearman",
            batch_size=batch_size,
            dataset=dataset,
            source=source,
            cache=cache,
            show_progress=show_progress,
        )
        if not (len(sentences1) == len(sentences2) == len(scores)):
            raise ValueError(
                f"{name}: sentences1, sentences2 and scores differ in length "
                f"({len(sentences1)}, {len(sentences2)}, {len(scores)})"
            )
        if len(scores) < 2:
            raise ValueError(f"{name}: STS needs at least two pairs, got {len(scores)}")
        self.sentences1, self.sentences2 = list(sentences1), list(sentences2)
        self.scores = np.asarray(scores, dtype=np.float64)
        if not np.all(np.isfinite(self.scores)):
            raise ValueError(f"{name}: gold scores must be finite numbers")
        self.lang1, self.lang2 = lang1, lang2

    @property
    def lang_pair(self) -> str:
        if not (self.lang1 or self.lang2):
            return "all"
        a, b = canonical_lang(self.lang1 or self.lang2), canonical_lang(self.lang2 or self.lang1)
        return f"{a}-{b}"

    def similarities(self, encoder) -> np.ndarray:
        a = self.embed(encoder, self.sentences1, Role.QUERY)
        b = self.embed(encoder, self.sentences2, Role.QUERY)
        return (a * b).sum(axis=1)

    def __call__(self, encoder) -> dict[str, float]:
        cos = self.similarities(encoder)
        return {
            f"{self.name}_spearman": spearman(cos, self.scores),
            f"{self.name}_pearson": pearson(cos, self.scores),
        }

    def info(self) -> dict[str, Any]:
        return {
            "task": self.task.value,
            "dataset": self.dataset,
            "lang_pair": self.lang_pair,
            "pairs": len(self.scores),
            **self.source,
        }

    def __repr__(self) -> str:
        return f"StsEvaluator(name={self.name!r}, pairs={len(self.scores)})"


def sts_from_tsv(
    path: str | Path, *, name: str | None = None, limit: int | None = None, **kwargs
) -> list[StsEvaluator]:
    """Evaluators for an STS TSV: one per (lang1, lang2) pair found in the file (one if it has no language columns)."""
    from distill.evaluation.sampling import file_fingerprint, take_sample

    examples = read_sts_tsv(path)
    groups: dict[tuple[str, str], list[StsExample]] = {}
    for ex in examples:
        groups.setdefault((ex.lang1, ex.lang2), []).append(ex)
    base = name or Path(path).stem
    fingerprint = file_fingerprint(path)
    out = []
    for (l1, l2), group in groups.items():
        idx = take_sample(len(group), limit)
        if len(idx) < 2:
            raise DataError(path, None, f"language pair {l1}-{l2} has fewer than two rows")
        ev_name = base if len(groups) == 1 else f"{base}-{l1}-{l2}"
        out.append(
            StsEvaluator(
                [group[i].sentence1 for i in idx],
                [group[i].sentence2 for i in idx],
                [group[i].score for i in idx],
                name=ev_name,
                lang1=l1,
                lang2=l2,
                dataset=kwargs.get("dataset", base),
                source={
                    "file": str(path),
                    "sha256": fingerprint,
                    "total_pairs": len(group),
                    "sampled": len(idx),
                },
                **{k: v for k, v in kwargs.items() if k != "dataset"},
            )
        )
    return out
