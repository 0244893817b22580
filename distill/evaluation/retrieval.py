"""Cross-lingual retrieval (LAReQA / MTEB style): queries against a multilingual corpus.

Two pools, as in LAReQA: all languages together (`per_target_language=False`: does the model
find the answer wherever it is, or prefer the query's own language?) or one target language at
a time (`True`: each (query language, document language) pair is its own search).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from distill.chunking import first_sentence_of
from distill.data import Query, read_corpus_jsonl, read_retrieval_set
from distill.documents import DataError, Document
from distill.evaluation.base import DataEvaluator, EmbeddingCache, Entry, Task
from distill.evaluation.keys import NDCG10
from distill.evaluation.metrics import QueryScores, mean_retrieval_metrics, query_metrics
from distill.langs import canonical_lang
from distill.models.encoder import Role

_PAIR_KEY = re.compile(r"^(?P<pair>[^_]+-[^_]+)_(?P<metric>.+)$")


def _as_items(items, kind: str) -> list[tuple[str, str, str]]:
    """(id, lang, text) from Query/Document objects or a {id: text} mapping."""
    if isinstance(items, Mapping):
        return [(str(k), "", str(v)) for k, v in items.items()]
    out = []
    for it in items:
        if isinstance(it, Query | Document):
            out.append((it.id, it.lang, it.text))
        else:
            raise TypeError(
                f"{kind} must be Query/Document objects or an {{id: text}} mapping, got {type(it).__name__}"
            )
    return out


def _lang_label(code: str) -> str:
    return canonical_lang(code) if code else "?"


def _unique_ids(name: str, q_items: list, d_items: list) -> tuple[dict[str, int], dict[str, int]]:
    """Query id -> position and document id -> position; ids must be unique and both sides non-empty."""
    if not q_items:
        raise ValueError(f"{name}: no queries")
    if not d_items:
        raise ValueError(f"{name}: empty corpus")
    for kind, items in (("query", q_items), ("document", d_items)):
        ids = [i for i, _, _ in items]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise ValueError(f"{name}: duplicate {kind} id {dup!r}")
    return {qid: i for i, (qid, _, _) in enumerate(q_items)}, {
        did: i for i, (did, _, _) in enumerate(d_items)
    }


def _relevant(
    name: str, qrels: Mapping[str, Mapping[str, int]], q_index: dict[str, int], d_index: dict[str, int]
) -> dict[int, np.ndarray]:
    """Query position -> the positions of its relevant documents (relevance > 0)."""
    unknown_q = sorted(set(qrels) - set(q_index))
    if unknown_q:
        raise ValueError(f"{name}: qrels name {len(unknown_q)} unknown query id(s): {unknown_q[:5]}")
    unknown_d = sorted({d for rel in qrels.values() for d in rel} - set(d_index))
    if unknown_d:
        raise ValueError(f"{name}: qrels name {len(unknown_d)} unknown document id(s): {unknown_d[:5]}")
    relevant = {}
    for qid, rel in qrels.items():
        docs = sorted(d_index[d] for d, r in rel.items() if r > 0)
        if docs:
            relevant[q_index[qid]] = np.asarray(docs, dtype=np.int64)
    if not relevant:
        raise ValueError(f"{name}: no query has a relevant document in the qrels")
    return relevant


def _excluded(
    name: str,
    exclude: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    q_index: dict[str, int],
    d_index: dict[str, int],
) -> dict[int, np.ndarray]:
    """Query position -> the positions of the documents left out of its ranking (never relevant ones)."""
    excluded = {}
    for qid, docs in exclude.items():
        if qid not in q_index:
            raise ValueError(f"{name}: exclude names unknown query id {qid!r}")
        unknown = [d for d in docs if d not in d_index]
        if unknown:
            raise ValueError(f"{name}: exclude names unknown document id(s) {unknown[:5]}")
        clash = set(docs) & set(qrels.get(qid, {}))
        if clash:
            raise ValueError(
                f"{name}: query {qid!r} both excludes and counts as relevant {sorted(clash)[:3]}"
            )
        excluded[q_index[qid]] = np.asarray([d_index[d] for d in docs], dtype=np.int64)
    return excluded


class RetrievalEvaluator(DataEvaluator):
    """mAP, MRR@10, nDCG@10 (primary) and Recall@1/5/10, overall and per (query lang, doc lang) pair.

    Keys: `{name}_{metric}` overall and `{name}_{qlang}-{dlang}_{metric}` per pair. Queries use the
    "query" prefix, documents "passage". Relevance is binary; queries without any relevant document
    are left out (as sentence-transformers does). In the pooled mode a pair's metrics rank the whole
    corpus but count only the relevant documents of the pair's document language. `exclude` maps a
    query id to documents dropped from its ranking (e.g. the query's own copy in the corpus, which
    would otherwise take rank 1 without being relevant).
    """

    task = Task.RETRIEVAL

    def __init__(
        self,
        queries: Sequence[Query] | Mapping[str, str],
        corpus: Sequence[Document] | Mapping[str, str],
        qrels: Mapping[str, Mapping[str, int]],
        *,
        name: str,
        per_target_language: bool = False,
        exclude: Mapping[str, Sequence[str]] | None = None,
        batch_size: int = 64,
        dataset: str = "",
        source: dict[str, Any] | None = None,
        cache: EmbeddingCache | None = None,
        show_progress: bool = False,
    ) -> None:
        self._setup(
            name,
            NDCG10,
            batch_size=batch_size,
            dataset=dataset,
            source=source,
            cache=cache,
            show_progress=show_progress,
        )
        q_items, d_items = _as_items(queries, "queries"), _as_items(corpus, "corpus")
        q_index, d_index = _unique_ids(name, q_items, d_items)
        self.relevant = _relevant(name, qrels, q_index, d_index)
        self.excluded = _excluded(name, exclude or {}, qrels, q_index, d_index)
        self.q_ids = [i for i, _, _ in q_items]
        self.q_langs = [_lang_label(lang) for _, lang, _ in q_items]
        self.q_texts = [t for _, _, t in q_items]
        self.d_ids = [i for i, _, _ in d_items]
        self.d_langs = np.asarray([_lang_label(lang) for _, lang, _ in d_items], dtype=object)
        self.d_texts = [t for _, _, t in d_items]
        # tie-break rank of each document by id, computed once
        self._id_rank = np.argsort(
            np.argsort(np.asarray(self.d_ids, dtype=object), kind="stable"), kind="stable"
        )
        self.per_target_language = per_target_language

    # -- scoring -------------------------------------------------------------------------------

    def _rank(self, scores: np.ndarray, docs: np.ndarray) -> np.ndarray:
        """Indices of `docs` (corpus positions) by descending score, ties by ascending id."""
        return docs[np.lexsort((self._id_rank[docs], -scores[docs].astype(np.float64)))]

    def score(self, scores: np.ndarray) -> dict[str, float]:
        """Metrics from a (queries, corpus) similarity matrix; `__call__` embeds and calls this."""
        overall: list[QueryScores] = []
        pairs: dict[str, list[QueryScores]] = {}
        all_docs = np.arange(len(self.d_ids))
        doc_langs = sorted(set(self.d_langs))
        lang_docs = {lang: all_docs[self.d_langs == lang] for lang in doc_langs}
        for qi, rel in self.relevant.items():
            rel_set = np.zeros(len(self.d_ids), dtype=bool)
            rel_set[rel] = True
            keep = np.ones(len(self.d_ids), dtype=bool)
            if qi in self.excluded:
                keep[self.excluded[qi]] = False
            if self.per_target_language:
                for lang in doc_langs:
                    n_rel = int(rel_set[lang_docs[lang]].sum())
                    if n_rel == 0:
                        continue
                    pool = lang_docs[lang][keep[lang_docs[lang]]]
                    ranked = self._rank(scores[qi], pool)
                    m = query_metrics(rel_set[ranked], n_rel)
                    overall.append(m)
                    pairs.setdefault(f"{self.q_langs[qi]}-{lang}", []).append(m)
            else:
                ranked = self._rank(scores[qi], all_docs[keep])
                overall.append(query_metrics(rel_set[ranked], len(rel)))
                for lang in doc_langs:
                    in_lang = rel_set & (self.d_langs == lang)
                    n_rel = int(in_lang.sum())
                    if n_rel:
                        pairs.setdefault(f"{self.q_langs[qi]}-{lang}", []).append(
                            query_metrics(in_lang[ranked], n_rel)
                        )
        out = {f"{self.name}_{k}": v for k, v in mean_retrieval_metrics(overall).items()}
        for pair in sorted(pairs):
            out.update({f"{self.name}_{pair}_{k}": v for k, v in mean_retrieval_metrics(pairs[pair]).items()})
        return out

    def __call__(self, encoder) -> dict[str, float]:
        q_rows = sorted(self.relevant)  # only queries that are scored need embedding
        q = self.embed(encoder, [self.q_texts[i] for i in q_rows], Role.QUERY)
        d = self.embed(encoder, self.d_texts, Role.PASSAGE)
        scores = np.zeros((len(self.q_ids), len(self.d_ids)), dtype=np.float32)
        scores[q_rows] = q @ d.T
        return self.score(scores)

    # -- reporting -----------------------------------------------------------------------------

    def entries(self, metrics: dict[str, float]) -> list[Entry]:
        prefix = f"{self.name}_"
        out = []
        for key, value in metrics.items():
            if not key.startswith(prefix):
                continue
            rest = key[len(prefix) :]
            m = _PAIR_KEY.match(rest)
            pair, metric = (m["pair"], m["metric"]) if m else ("all", rest)
            out.append(Entry(self.task.value, self.dataset, self.name, pair, metric, float(value)))
        return out

    def info(self) -> dict[str, Any]:
        return {
            "task": self.task.value,
            "dataset": self.dataset,
            "queries": len(self.relevant),
            "documents": len(self.d_ids),
            "query_langs": sorted({self.q_langs[i] for i in self.relevant}),
            "doc_langs": sorted(set(self.d_langs)),
            "pool": "one target language at a time" if self.per_target_language else "all languages together",
            **self.source,
        }

    def __repr__(self) -> str:
        return (
            f"RetrievalEvaluator(name={self.name!r}, queries={len(self.relevant)}, documents={len(self.d_ids)}, "
            f"per_target_language={self.per_target_language})"
        )


# --- building evaluators from files ------------------------------------------------------------


def retrieval_from_files(
    queries: str | Path, corpus: str | Path, qrels: str | Path, *, name: str | None = None, **kwargs
) -> RetrievalEvaluator:
    """An evaluator from queries JSONL, corpus JSONL and qrels TSV (ids checked by the reader)."""
    from distill.evaluation.sampling import file_fingerprint

    rs = read_retrieval_set(queries, corpus, qrels)
    name = name or Path(queries).stem
    source = {
        "files": {"queries": str(queries), "corpus": str(corpus), "qrels": str(qrels)},
        "sha256": {
            k: file_fingerprint(p) for k, p in (("queries", queries), ("corpus", corpus), ("qrels", qrels))
        },
    }
    try:
        return RetrievalEvaluator(rs.queries, rs.corpus, rs.qrels, name=name, source=source, **kwargs)
    except ValueError as exc:
        raise DataError(qrels, None, str(exc)) from None


def _translation_queries(
    sources: Sequence[Document], corpus: Sequence[Document], first_sentence: bool
) -> tuple[list[Query], dict[str, dict[str, int]], dict[str, list[str]]]:
    """One query per source document (`q:<id>`), relevant: its translations in the corpus; its own
    copy in the corpus is excluded from its ranking."""
    by_pid: dict[str, list[Document]] = {}
    for d in corpus:
        by_pid.setdefault(d.metadata["parallel_id"], []).append(d)
    corpus_ids = {d.id for d in corpus}
    queries, qrels, exclude = [], {}, {}
    for d in sources:
        qid = f"q:{d.id}"
        queries.append(Query(qid, d.lang, first_sentence_of(d.text) if first_sentence else d.text))
        lang = canonical_lang(d.lang)
        rel = {o.id: 1 for o in by_pid.get(d.metadata["parallel_id"], []) if canonical_lang(o.lang) != lang}
        if rel:
            qrels[qid] = rel
        if d.id in corpus_ids:
            exclude[qid] = [d.id]
    return queries, qrels, exclude


def parallel_corpus_retrieval(
    path: str | Path,
    *,
    name: str = "xquad",
    query_langs: Sequence[str] | None = None,
    doc_langs: Sequence[str] | None = None,
    limit: int | None = None,
    per_target_language: bool = True,
    first_sentence: bool = False,
    **kwargs,
) -> RetrievalEvaluator:
    """Retrieval set from a corpus whose documents carry `parallel_id` (e.g. the XQuAD paragraphs).

    Query = a paragraph in language X; relevant = the same `parallel_id` in every *other* language.
    The query's own copy is the same text: it is neither relevant nor ranked. `limit` samples that many
    parallel ids (fixed seed). `first_sentence` makes the query only the paragraph's first sentence: a
    short query against paragraphs, as a question is. Evaluation only: never train on this corpus.
    """
    from distill.evaluation.sampling import file_fingerprint, take_sample

    docs = read_corpus_jsonl(path)
    missing = [d.id for d in docs if not d.metadata.get("parallel_id")]
    if missing:
        raise DataError(path, None, f"{len(missing)} document(s) lack 'parallel_id', e.g. {missing[0]!r}")
    qwant = None if query_langs is None else {canonical_lang(c) for c in query_langs}
    dwant = None if doc_langs is None else {canonical_lang(c) for c in doc_langs}
    pids = sorted({d.metadata["parallel_id"] for d in docs})
    chosen = {pids[i] for i in take_sample(len(pids), limit)}
    corpus = [
        d
        for d in docs
        if d.metadata["parallel_id"] in chosen and (dwant is None or canonical_lang(d.lang) in dwant)
    ]
    sources = [
        d
        for d in docs
        if d.metadata["parallel_id"] in chosen and (qwant is None or canonical_lang(d.lang) in qwant)
    ]
    queries, qrels, exclude = _translation_queries(sources, corpus, first_sentence)
    if not queries or not corpus:
        raise DataError(path, None, "no queries or documents in the selected languages")
    source = {
        "file": str(path),
        "sha256": file_fingerprint(path),
        "total_parallel_ids": len(pids),
        "sampled_parallel_ids": len(chosen),
        "relevance": "same parallel_id, other language",
        "query": "first sentence" if first_sentence else "paragraph",
    }
    return RetrievalEvaluator(
        queries,
        corpus,
        qrels,
        name=name,
        per_target_language=per_target_language,
        exclude=exclude,
        source=source,
        **kwargs,
    )
