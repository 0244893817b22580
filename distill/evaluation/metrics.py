"""Pure metric functions on numpy arrays: no models, so each one is tested against hand-computed values.

Conventions follow sentence-transformers' evaluators so our numbers agree with theirs:
- bitext: a hit when the best-scoring candidate has the same *text* as the gold translation
  (duplicate sentences count as found), first index wins ties (`np.argmax`);
- retrieval: binary relevance, ranking ties broken by ascending document id, recall@k =
  relevant in top k / all relevant, MRR@k and nDCG@k cut at k; mAP here is over the full
  ranking (sentence-transformers' MAP@k with k >= corpus size).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from distill.evaluation.keys import MRR10, NDCG10

# --- bitext ----------------------------------------------------------------------------------


def ratio_margin_scores(sim: np.ndarray, k: int = 4) -> np.ndarray:
    """Ratio margin of Artetxe & Schwenk (2019), as used by LASER and LaBSE.

    margin(x, y) = cos(x, y) / (mean_{z in kNN_y(x)} cos(x, z) / 2 + mean_{z in kNN_x(y)} cos(z, y) / 2),
    where kNN_y(x) are x's k nearest candidates among the targets, kNN_x(y) y's among the sources.
    `sim` is the (sources, targets) cosine matrix; k is capped at the number of candidates.
    """
    sim = np.asarray(sim, dtype=np.float64)
    k_src, k_tgt = min(k, sim.shape[1]), min(k, sim.shape[0])
    # mean of the k largest entries of each row (source side) / column (target side)
    src_knn = -np.sort(-sim, axis=1)[:, :k_src].mean(axis=1)
    tgt_knn = -np.sort(-sim, axis=0)[:k_tgt, :].mean(axis=0)
    denom = src_knn[:, None] / 2 + tgt_knn[None, :] / 2
    return sim / denom


def translation_accuracy(scores: np.ndarray, src: Sequence[str], tgt: Sequence[str]) -> tuple[float, float]:
    """(src->tgt, tgt->src) accuracy@1 for a (len(src), len(tgt)) score matrix of aligned pairs."""
    scores = np.asarray(scores)
    if scores.shape != (len(src), len(tgt)) or len(src) != len(tgt):
        raise ValueError(f"score matrix {scores.shape} does not match {len(src)} x {len(tgt)} aligned pairs")
    if len(src) == 0:
        raise ValueError("no sentence pairs to evaluate")
    best_tgt = scores.argmax(axis=1)
    best_src = scores.argmax(axis=0)
    s2t = sum(tgt[j] == tgt[i] for i, j in enumerate(best_tgt)) / len(src)
    t2s = sum(src[j] == src[i] for i, j in enumerate(best_src)) / len(tgt)
    return float(s2t), float(t2s)


# --- STS ---------------------------------------------------------------------------------------


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation; NaN when either side is constant (the correlation is undefined)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) != len(y):
        raise ValueError(f"length mismatch: {len(x)} vs {len(y)}")
    if len(x) < 2:
        raise ValueError("correlation needs at least two pairs")
    xc, yc = x - x.mean(), y - y.mean()
    denom = np.sqrt((xc**2).sum() * (yc**2).sum())
    if denom == 0:
        return float("nan")
    return float((xc * yc).sum() / denom)


def average_ranks(x: Sequence[float]) -> np.ndarray:
    """1-based ranks; tied values share the mean of their positions (as scipy.stats.rankdata)."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    sorted_x = x[order]
    start = 0
    while start < len(x):
        end = start
        while end + 1 < len(x) and sorted_x[end + 1] == sorted_x[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: Pearson correlation of the average ranks (handles ties)."""
    return pearson(average_ranks(x), average_ranks(y))


# --- retrieval ------------------------------------------------------------------------------

RETRIEVAL_KS = (1, 5, 10)


@dataclass(frozen=True)
class QueryScores:
    """Per-query retrieval metrics (binary relevance)."""

    ap: float
    rr_at_10: float
    ndcg_at_10: float
    recall: dict[int, float]


def rank_documents(scores: np.ndarray, doc_ids: Sequence[str]) -> np.ndarray:
    """Document indices by descending score, ties by ascending document id."""
    id_rank = np.argsort(np.argsort(np.asarray(doc_ids, dtype=object), kind="stable"), kind="stable")
    return np.lexsort((id_rank, -np.asarray(scores, dtype=np.float64)))


def query_metrics(is_relevant_ranked: Sequence[bool], n_relevant: int) -> QueryScores:
    """Metrics of one ranked list: `is_relevant_ranked[i]` says whether the document at rank i+1 is relevant.

    `n_relevant` is the number of relevant documents in the pool (>= 1), so recall and AP stay
    correct when the list is cut short.
    """
    if n_relevant < 1:
        raise ValueError("a query needs at least one relevant document")
    rel = np.asarray(is_relevant_ranked, dtype=bool)
    hit_ranks = np.flatnonzero(rel) + 1  # 1-based ranks of the relevant documents
    ap = float(sum((i + 1) / r for i, r in enumerate(hit_ranks)) / n_relevant)
    first = hit_ranks[0] if len(hit_ranks) else None
    rr = 1.0 / first if first is not None and first <= 10 else 0.0
    dcg = float(sum(1.0 / np.log2(r + 1) for r in hit_ranks if r <= 10))
    idcg = float(sum(1.0 / np.log2(i + 2) for i in range(min(n_relevant, 10))))
    recall = {k: float((hit_ranks <= k).sum() / n_relevant) for k in RETRIEVAL_KS}
    return QueryScores(ap=ap, rr_at_10=rr, ndcg_at_10=dcg / idcg, recall=recall)


def average_precision_at_k(hit_ranks: Sequence[int] | np.ndarray, n_relevant: int, k: int) -> float:
    """AP cut at rank k, normalised by min(k, n_relevant): sentence-transformers' MAP@k."""
    ranks = [int(r) for r in hit_ranks if r <= k]
    return float(sum((i + 1) / r for i, r in enumerate(ranks)) / min(k, n_relevant))


def mean_retrieval_metrics(per_query: Sequence[QueryScores]) -> dict[str, float]:
    """Average per-query metrics into the metric names we report (map, mrr@10, ndcg@10, recall@k)."""
    if not per_query:
        raise ValueError("no queries to average")
    out = {
        "map": float(np.mean([q.ap for q in per_query])),
        MRR10: float(np.mean([q.rr_at_10 for q in per_query])),
        NDCG10: float(np.mean([q.ndcg_at_10 for q in per_query])),
    }
    for k in RETRIEVAL_KS:
        out[f"recall@{k}"] = float(np.mean([q.recall[k] for q in per_query]))
    return out
