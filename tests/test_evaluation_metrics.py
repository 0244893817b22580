"""Every metric against values computed by hand on tiny inputs (no models)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from distill.data import Query
from distill.documents import Document
from distill.evaluation import RetrievalEvaluator
from distill.evaluation.metrics import (
    average_ranks,
    mean_retrieval_metrics,
    pearson,
    query_metrics,
    rank_documents,
    ratio_margin_scores,
    spearman,
    translation_accuracy,
)

# --- STS correlations -----------------------------------------------------------------------------


def test_pearson_hand_computed():
    # x centred [-1, 0, 1], y centred [-7/3, -1/3, 8/3]: r = 5 / sqrt(2 * 114/9) = 15 / sqrt(228)
    assert pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(15 / math.sqrt(228))


def test_average_ranks_share_ties():
    assert average_ranks([10, 20, 20, 30]).tolist() == [1, 2.5, 2.5, 4]
    assert average_ranks([5, 5, 5]).tolist() == [2, 2, 2]


def test_spearman_with_ties_hand_computed():
    # ranks x = [1, 2.5, 2.5, 4], y = [1, 3, 2, 4]; centred products sum 4.5, squares 4.5 and 5
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / math.sqrt(4.5 * 5))  # = sqrt(0.9)
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)


def test_spearman_agrees_with_scipy_on_heavy_ties():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 4, 50), rng.integers(0, 3, 50)
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic)


def test_constant_side_is_undefined_not_zero():
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert math.isnan(pearson([0.5, 0.5], [1, 2]))
    with pytest.raises(ValueError, match="at least two"):
        pearson([1], [1])


# --- bitext ---------------------------------------------------------------------------------------


def test_translation_accuracy_both_directions():
    scores = np.array(
        [
            [0.9, 0.1, 0.2],
            [0.8, 0.7, 0.1],  # source 1 prefers target 0: a miss
            [0.1, 0.2, 0.3],
        ]
    )
    s2t, t2s = translation_accuracy(scores, ["a", "b", "c"], ["A", "B", "C"])
    assert s2t == pytest.approx(2 / 3)
    assert t2s == pytest.approx(1.0)  # column maxima sit on the diagonal


def test_translation_accuracy_counts_duplicate_text_as_found():
    scores = np.array([[0.9, 0.1], [0.8, 0.7]])
    # target 0 and 1 are the same sentence: source 1 retrieving target 0 found its translation
    assert translation_accuracy(scores, ["a", "b"], ["X", "X"]) == (1.0, 1.0)


def test_ratio_margin_formula_and_hubness():
    sim = np.array(
        [[0.9, 0.3, 0.3], [0.7, 0.6, 0.1], [0.7, 0.1, 0.6]]
    )  # target 0 is a hub: near every source
    m = ratio_margin_scores(sim, k=2)
    # row 1: mean of its 2 best = 0.65; column 0: 0.8, column 1: 0.45
    assert m[1, 0] == pytest.approx(0.7 / (0.65 / 2 + 0.8 / 2))
    assert m[1, 1] == pytest.approx(0.6 / (0.65 / 2 + 0.45 / 2))
    texts = ["a", "b", "c"]
    assert translation_accuracy(sim, texts, texts)[0] == pytest.approx(1 / 3)  # cosine: the hub wins
    assert translation_accuracy(m, texts, texts) == (1.0, 1.0)  # margin: it does not


def test_ratio_margin_caps_k_at_candidates():
    sim = np.array([[0.9, 0.5], [0.6, 0.8]])
    m = ratio_margin_scores(sim, k=4)  # k=2 effectively: row means 0.7, 0.7; column means 0.75, 0.65
    assert m[0, 0] == pytest.approx(0.9 / (0.35 + 0.375))


# --- retrieval ------------------------------------------------------------------------------------


def test_query_metrics_two_relevant_documents():
    # relevant at ranks 2 and 4 of 5
    m = query_metrics([False, True, False, True, False], n_relevant=2)
    assert m.ap == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert m.rr_at_10 == pytest.approx(0.5)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    assert m.ndcg_at_10 == pytest.approx(dcg / (1 + 1 / math.log2(3)))
    assert m.recall == {1: 0.0, 5: 1.0, 10: 1.0}


def test_query_metrics_nothing_relevant_in_top_10():
    ranked = [False] * 11 + [True]
    m = query_metrics(ranked, n_relevant=1)
    assert (m.rr_at_10, m.ndcg_at_10, m.recall[10]) == (0.0, 0.0, 0.0)
    assert m.ap == pytest.approx(1 / 12)  # mAP is over the full ranking


def test_query_metrics_relevant_documents_missing_from_the_list():
    m = query_metrics([True, False], n_relevant=3)  # two relevant documents were never retrieved
    assert m.ap == pytest.approx(1 / 3)
    assert m.recall[1] == pytest.approx(1 / 3)
    assert m.ndcg_at_10 == pytest.approx(1 / (1 + 1 / math.log2(3) + 1 / math.log2(4)))
    with pytest.raises(ValueError):
        query_metrics([], n_relevant=0)


def test_mean_metrics_and_empty_input():
    a = query_metrics([True], 1)
    b = query_metrics([False, True], 1)
    out = mean_retrieval_metrics([a, b])
    assert out["mrr@10"] == pytest.approx(0.75) and out["map"] == pytest.approx(0.75)
    assert out["recall@1"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no queries"):
        mean_retrieval_metrics([])


def test_ranking_ties_break_by_document_id():
    order = rank_documents(np.array([0.5, 0.9, 0.5]), ["z", "m", "a"])
    assert order.tolist() == [1, 2, 0]


def _set():
    queries = [Query("q1", "en", "who"), Query("q2", "en", "what")]
    corpus = [
        Document("de1", "de", "x"),
        Document("de2", "de", "y"),
        Document("fr1", "fr", "z"),
        Document("fr2", "fr", "w"),
    ]
    qrels = {"q1": {"de1": 1, "fr1": 1}}  # q2 has no relevant document: left out
    return queries, corpus, qrels


SCORES = np.array(
    [
        [0.5, 0.6, 0.9, 0.1],  # q1: fr1 first, de2, de1, fr2
        [0.0, 0.0, 0.0, 0.0],
    ]
)


def test_retrieval_pooled_hand_computed():
    ev = RetrievalEvaluator(*_set(), name="r")
    m = ev.score(SCORES)
    # pooled ranking fr1 (rel), de2, de1 (rel), fr2
    assert m["r_map"] == pytest.approx((1 + 2 / 3) / 2)
    assert m["r_mrr@10"] == 1.0
    assert m["r_recall@1"] == pytest.approx(0.5)
    assert m["r_ndcg@10"] == pytest.approx((1 + 0.5) / (1 + 1 / math.log2(3)))
    # pair en-de in the pooled ranking: only de1 counts, at rank 3
    assert m["r_en-de_map"] == pytest.approx(1 / 3)
    assert m["r_en-de_mrr@10"] == pytest.approx(1 / 3)
    assert m["r_en-de_recall@1"] == 0.0 and m["r_en-de_recall@5"] == 1.0
    assert m["r_en-fr_ndcg@10"] == 1.0
    assert ev.primary_metric == "r_ndcg@10"


def test_retrieval_excluded_documents_leave_the_ranking():
    queries, corpus, qrels = _set()
    ev = RetrievalEvaluator(queries, corpus, qrels, name="r", exclude={"q1": ["de2"]})
    m = ev.score(SCORES)
    # ranking without de2: fr1 (rel), de1 (rel), fr2
    assert m["r_map"] == 1.0 and m["r_en-de_mrr@10"] == 0.5
    with pytest.raises(ValueError, match="both excludes and counts as relevant"):
        RetrievalEvaluator(queries, corpus, qrels, name="r", exclude={"q1": ["de1"]})
    with pytest.raises(ValueError, match="unknown document"):
        RetrievalEvaluator(queries, corpus, qrels, name="r", exclude={"q1": ["zz"]})


def test_retrieval_per_target_language_hand_computed():
    ev = RetrievalEvaluator(*_set(), name="r", per_target_language=True)
    m = ev.score(SCORES)
    # de pool: de2 (0.6), de1 (0.5, relevant at rank 2); fr pool: fr1 first
    assert m["r_en-de_map"] == pytest.approx(0.5)
    assert m["r_en-de_ndcg@10"] == pytest.approx(1 / math.log2(3))
    assert m["r_en-fr_map"] == 1.0
    assert m["r_map"] == pytest.approx(0.75)  # mean over the (query, target language) searches
    entries = {(e.lang_pair, e.metric): e.value for e in ev.entries(m)}
    assert entries[("en-de", "map")] == pytest.approx(0.5)
    assert entries[("all", "ndcg@10")] == pytest.approx(m["r_ndcg@10"])


@pytest.mark.parametrize(
    ("qrels", "message"),
    [
        ({"q9": {"de1": 1}}, "unknown query id"),
        ({"q1": {"nope": 1}}, "unknown document id"),
        ({"q1": {"de1": 0}}, "no query has a relevant document"),
        ({}, "no query has a relevant document"),
    ],
)
def test_retrieval_rejects_bad_qrels(qrels, message):
    queries, corpus, _ = _set()
    with pytest.raises(ValueError, match=message):
        RetrievalEvaluator(queries, corpus, qrels, name="r")


def test_retrieval_rejects_empty_corpus_and_duplicates():
    queries, corpus, qrels = _set()
    with pytest.raises(ValueError, match="empty corpus"):
        RetrievalEvaluator(queries, [], qrels, name="r")
    with pytest.raises(ValueError, match="duplicate document id"):
        RetrievalEvaluator(queries, corpus + [corpus[0]], qrels, name="r")
