"""Question -> paragraph retrieval: the app's own job, measured.

A user types a short question in one language and must get the paragraph that answers it, in
whatever language it is written. Queries are real questions (role `query`), documents are
paragraphs (role `passage`) cut into chunks exactly as `indexer add` cuts them by default (sentence
chunks of at most 256 tokens by the model's own tokenizer, 32 tokens of overlap, no title), and a
document scores as its best chunk, as the indexer's search does. A collection holding several
models cuts by the finest of their tokenizers, which moves few chunk boundaries.

Metrics (`{name}_...`; relevance = every paragraph with the question's `parallel_id`):
- pooled over all document languages: `ndcg@10`, `map@20` (as sentence-transformers' MAP@k),
  `recall@10`, `mrr@10`;
- `xling_r@1` (primary): for every (query language X, document language Y != X), the share of
  questions whose paragraph ranks first among Y's paragraphs, averaged over the pairs;
  `mono_r@1` the same with Y = X; per pair `{X}-{Y}_r@1`;
- `own_lang@10`: the share of pooled top-10 hits in the query's own language (language bias);
- collapse check: mean and spread of cosine between random pairs of documents (`cos_dd_*`), random
  query-document pairs (`cos_qd_*`) and each question with its answer in its own language
  (`cos_rel_mean`). A collapsed model puts everything at the same high cosine.
Per query language X: `{X}_ndcg@10`, `{X}_map@20`, `{X}_recall@10`, `{X}_own_lang@10`, `{X}_xling_r@1`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from distill.chunking import CHUNK_OVERLAP, CHUNK_TOKENS, chunker_for
from distill.data import Query, iter_jsonl, read_corpus_jsonl
from distill.documents import DataError, Document
from distill.evaluation import keys as K
from distill.evaluation.base import DataEvaluator, EmbeddingCache, Entry, Task
from distill.evaluation.metrics import average_precision_at_k, mean_retrieval_metrics, query_metrics
from distill.langs import canonical_lang
from distill.models.encoder import Role

COLLAPSE_PAIRS = 2000
POOLED = (K.NDCG10, K.MAP20, K.RECALL10, K.MRR10)


class QuestionEvaluator(DataEvaluator):
    """Questions against a multilingual paragraph corpus; see the module docstring for the metrics."""

    task = Task.QUESTION

    def __init__(
        self,
        questions: Sequence[Query],
        paragraphs: Sequence[Document],
        answers: Mapping[str, str],
        *,
        name: str = K.QUESTIONS,
        chunk_tokens: int = CHUNK_TOKENS,
        chunk_overlap: int = CHUNK_OVERLAP,
        batch_size: int = 32,
        dataset: str = "",
        source: dict[str, Any] | None = None,
        cache: EmbeddingCache | None = None,
        show_progress: bool = False,
    ) -> None:
        """`answers` maps a question id to the `parallel_id` of the paragraphs that answer it."""
        self._setup(
            name,
            K.XLING_R1,
            batch_size=batch_size,
            dataset=dataset,
            source=source,
            cache=cache,
            show_progress=show_progress,
        )
        if not questions or not paragraphs:
            raise ValueError(f"{name}: needs questions and paragraphs")
        for kind, items in (("question", questions), ("paragraph", paragraphs)):
            ids = [it.id for it in items]
            if len(set(ids)) != len(ids):
                raise ValueError(f"{name}: duplicate {kind} id {next(i for i in ids if ids.count(i) > 1)!r}")
        pids = np.asarray([d.metadata.get("parallel_id", "") for d in paragraphs], dtype=object)
        if any(not p for p in pids):
            raise ValueError(f"{name}: every paragraph needs a 'parallel_id'")
        unanswered = [q.id for q in questions if answers.get(q.id) not in set(pids)]
        if unanswered:
            raise ValueError(
                f"{name}: {len(unanswered)} question(s) have no paragraph in the corpus, e.g. {unanswered[0]!r}"
            )
        self.questions, self.paragraphs = list(questions), list(paragraphs)
        self.q_langs = [canonical_lang(q.lang) for q in self.questions]
        self.d_langs = np.asarray([canonical_lang(d.lang) for d in self.paragraphs], dtype=object)
        self.answer_pid = np.asarray([answers[q.id] for q in self.questions], dtype=object)
        self.d_pids = pids
        self.relevant = self.answer_pid[:, None] == pids[None, :]  # (questions, paragraphs)
        self._q_langs = np.asarray(self.q_langs, dtype=object)
        self.chunk_tokens, self.chunk_overlap = chunk_tokens, chunk_overlap
        # ties broken by ascending document id (as our other retrieval metrics and sentence-transformers)
        self._id_order = np.argsort(np.asarray([d.id for d in self.paragraphs], dtype=object), kind="stable")

    # -- embedding -----------------------------------------------------------------------------

    def chunks(self, encoder) -> tuple[list[str], np.ndarray]:
        """Chunk texts of every paragraph for `encoder` and, per chunk, its paragraph's index."""
        spans = chunker_for([encoder], self.chunk_tokens, self.chunk_overlap).chunk_many(
            [d.text for d in self.paragraphs]
        )
        texts, owner = [], []
        for i, (doc, doc_spans) in enumerate(zip(self.paragraphs, spans, strict=True)):
            for sp in doc_spans or [None]:
                texts.append(doc.text if sp is None else doc.text[sp.start : sp.end])
                owner.append(i)
        return texts, np.asarray(owner, dtype=np.int64)

    def paragraph_vectors(self, encoder) -> tuple[np.ndarray, np.ndarray]:
        """`encoder`'s vectors of every paragraph chunk, and the index of each paragraph's first chunk."""
        chunk_texts, owner = self.chunks(encoder)
        # owners are sorted, so each paragraph is one run of chunks
        return self.embed(encoder, chunk_texts, Role.PASSAGE), np.flatnonzero(
            np.r_[True, owner[1:] != owner[:-1]]
        )

    @staticmethod
    def paragraph_scores(q: np.ndarray, paragraphs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """(questions, paragraphs) scores: a paragraph scores as its best chunk, as the indexer's search."""
        chunks, starts = paragraphs
        return np.maximum.reduceat(q @ chunks.T, starts, axis=1)

    def question_vectors(self, encoder) -> np.ndarray:
        return self.embed(encoder, [x.text for x in self.questions], Role.QUERY)

    def __call__(self, encoder) -> dict[str, float]:
        q, paragraphs = self.question_vectors(encoder), self.paragraph_vectors(encoder)
        doc_scores = self.paragraph_scores(q, paragraphs)
        first_chunk = paragraphs[0][paragraphs[1]]
        return {**self.score(doc_scores), **self.collapse(q, first_chunk, doc_scores)}

    # -- scoring -------------------------------------------------------------------------------

    def score(self, scores: np.ndarray) -> dict[str, float]:
        """Metrics from a (questions, paragraphs) score matrix."""
        relevant = self.relevant
        # rank all documents, ties by id: stable sort of the id-ordered columns by descending score
        ordered = scores[:, self._id_order].astype(np.float64)
        ranking = self._id_order[np.argsort(-ordered, axis=1, kind="stable")]
        rel_ranked = np.take_along_axis(relevant, ranking, axis=1)
        top10_own = self.d_langs[ranking[:, :10]] == self._q_langs[:, None]
        pooled: dict[str, list] = {}
        for qi in range(len(self.questions)):
            n_rel = int(relevant[qi].sum())
            m = query_metrics(rel_ranked[qi], n_rel)
            hits = np.flatnonzero(rel_ranked[qi]) + 1
            pooled.setdefault(self.q_langs[qi], []).append(
                (m, average_precision_at_k(hits, n_rel, 20), float(top10_own[qi].mean()))
            )
        r1 = self._r_at_1_per_language(scores, relevant)
        out: dict[str, float] = {}
        everyone = [row for rows in pooled.values() for row in rows]
        out.update(_pooled_metrics(everyone, f"{self.name}_"))
        doc_langs = sorted(set(self.d_langs))
        xling, mono = [], []
        for x in sorted(pooled):
            out.update(_pooled_metrics(pooled[x], f"{self.name}_{x}_"))
            mine = np.asarray([lang == x for lang in self.q_langs])
            row = []
            for y in doc_langs:
                value = float(r1[y][mine].mean())
                out[f"{self.name}_{x}-{y}_{K.R1}"] = value
                (mono if y == x else row).append(value)
            if row:
                out[f"{self.name}_{x}_{K.XLING_R1}"] = float(np.mean(row))
            xling.extend(row)
        out[K.key(self.name, K.XLING_R1)] = float(np.mean(xling)) if xling else float("nan")
        out[K.key(self.name, K.MONO_R1)] = float(np.mean(mono)) if mono else float("nan")
        return dict(sorted(out.items(), key=lambda kv: (kv[0].count("_"), kv[0])))

    def _r_at_1_per_language(self, scores: np.ndarray, relevant: np.ndarray) -> dict[str, np.ndarray]:
        """Per document language Y: for each question, is its answer first among Y's paragraphs?"""
        out = {}
        for y in sorted(set(self.d_langs)):
            cols = self._id_order[
                self.d_langs[self._id_order] == y
            ]  # Y's documents in id order: argmax picks the lowest id
            best = cols[np.argmax(scores[:, cols], axis=1)]
            out[y] = relevant[np.arange(len(self.questions)), best]
        return out

    def collapse(self, q: np.ndarray, d: np.ndarray, doc_scores: np.ndarray) -> dict[str, float]:
        """Cosine statistics of random document pairs, random query-document pairs and true answers."""
        rng = np.random.default_rng(0)
        n = min(COLLAPSE_PAIRS, len(d) * (len(d) - 1) // 2)
        a, b = rng.integers(0, len(d), n), rng.integers(0, len(d), n)
        keep = (a != b) & (self.d_pids[a] != self.d_pids[b])
        dd = np.einsum("ij,ij->i", d[a[keep]], d[b[keep]])
        qi, di = rng.integers(0, len(q), COLLAPSE_PAIRS), rng.integers(0, len(d), COLLAPSE_PAIRS)
        unrelated = self.answer_pid[qi] != self.d_pids[di]
        qd = np.einsum("ij,ij->i", q[qi[unrelated]], d[di[unrelated]])
        same = self.relevant & (self._q_langs[:, None] == self.d_langs[None, :])
        rel = doc_scores[same]
        p = f"{self.name}_"
        return {
            f"{p}cos_dd_mean": _mean(dd),
            f"{p}cos_dd_std": float(dd.std()) if dd.size else float("nan"),
            f"{p}{K.COS_QD_MEAN}": _mean(qd),
            f"{p}cos_qd_std": float(qd.std()) if qd.size else float("nan"),
            f"{p}cos_rel_mean": _mean(rel),
        }

    # -- reporting -----------------------------------------------------------------------------

    def entries(self, metrics: dict[str, float]) -> list[Entry]:
        prefix = f"{self.name}_"
        langs = set(self.q_langs) | set(self.d_langs)
        out = []
        for key, value in metrics.items():
            if not key.startswith(prefix):
                continue
            rest = key[len(prefix) :]
            head, _, tail = rest.partition("_")
            if "-" in head and all(part in langs for part in head.split("-", 1)):
                pair, metric = head, tail
            elif head in langs and tail:
                pair, metric = head, tail
            else:
                pair, metric = "all", rest
            task = Task.COLLAPSE.value if metric.startswith("cos_") else self.task.value
            out.append(Entry(task, self.dataset, self.name, pair, metric, float(value)))
        return out

    def info(self) -> dict[str, Any]:
        return {
            "task": self.task.value,
            "dataset": self.dataset,
            "queries": len(self.questions),
            "documents": len(self.paragraphs),
            "query_langs": sorted(set(self.q_langs)),
            "doc_langs": sorted(set(self.d_langs)),
            "pool": "all languages together (pooled metrics); one document language at a time (R@1)",
            "chunking": f"indexer default: {self.chunk_tokens} tokens, {self.chunk_overlap} overlap, no title",
            **self.source,
        }

    def __repr__(self) -> str:
        return f"QuestionEvaluator(name={self.name!r}, questions={len(self.questions)}, paragraphs={len(self.paragraphs)})"


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else float("nan")


def _pooled_metrics(rows: list[tuple], prefix: str) -> dict[str, float]:
    base = mean_retrieval_metrics([m for m, _, _ in rows])
    return {
        **{prefix + m: base[m] for m in (K.NDCG10, K.MRR10, K.RECALL10)},
        prefix + K.MAP20: float(np.mean([ap for _, ap, _ in rows])),
        prefix + K.OWN_LANG10: float(np.mean([own for _, _, own in rows])),
    }


# --- building it from the shared files ---------------------------------------------------------


def read_questions_jsonl(path: str | Path) -> tuple[list[Query], dict[str, str], dict[str, str]]:
    """Questions JSONL (`id`, `question_id`, `lang`, `parallel_id`, `text`): queries, qid -> parallel_id, qid -> question_id."""
    queries, answers, groups = [], {}, {}
    for n, obj in iter_jsonl(path):
        try:
            qid, lang, text, pid = (str(obj[k]) for k in ("id", "lang", "text", "parallel_id"))
        except KeyError as exc:
            raise DataError(path, n, f"missing field {exc.args[0]!r}") from None
        if not text.strip():
            raise DataError(path, n, "empty question text")
        if qid in answers:
            raise DataError(path, n, f"duplicate question id {qid!r}")
        queries.append(Query(qid, lang, text))
        answers[qid] = pid
        groups[qid] = str(obj.get("question_id", qid))
    if not queries:
        raise DataError(path, None, "no questions")
    return queries, answers, groups


def question_retrieval(
    questions_path: str | Path,
    corpus_path: str | Path,
    *,
    name: str = K.QUESTIONS,
    langs: Sequence[str] | None = None,
    questions: int | None = None,
    paragraphs: int | None = None,
    **kwargs,
) -> QuestionEvaluator:
    """The question task from files. `langs` restricts queries and documents (English always stays);
    `questions` samples that many question ids (all their languages), `paragraphs` that many
    parallel ids for the corpus, always including the sampled questions' answers (fixed seed)."""
    from distill.evaluation.sampling import file_fingerprint, take_sample

    queries, answers, groups = read_questions_jsonl(questions_path)
    docs = read_corpus_jsonl(corpus_path)
    if langs is not None:
        want = {canonical_lang(c) for c in langs} | {"en"}
        queries = [q for q in queries if canonical_lang(q.lang) in want]
        docs = [d for d in docs if canonical_lang(d.lang) in want]
    group_ids = sorted({groups[q.id] for q in queries})
    chosen = {group_ids[i] for i in take_sample(len(group_ids), questions)}
    queries = [q for q in queries if groups[q.id] in chosen]
    needed = {answers[q.id] for q in queries}
    all_pids = sorted({d.metadata.get("parallel_id", "") for d in docs})
    others = [p for p in all_pids if p not in needed]
    extra = max((paragraphs or len(all_pids)) - len(needed), 0)
    keep = needed | {others[i] for i in take_sample(len(others), extra)} if others and extra else needed
    docs = [d for d in docs if d.metadata.get("parallel_id", "") in keep]
    source = {
        "files": {"questions": str(questions_path), "corpus": str(corpus_path)},
        "sha256": {"questions": file_fingerprint(questions_path), "corpus": file_fingerprint(corpus_path)},
        "total_questions": len(group_ids),
        "sampled_questions": len(chosen),
        "total_parallel_ids": len(all_pids),
        "sampled_parallel_ids": len(keep),
        "relevance": "every paragraph with the question's parallel_id",
    }
    try:
        return QuestionEvaluator(queries, docs, answers, name=name, source=source, **kwargs)
    except ValueError as exc:
        raise DataError(questions_path, None, str(exc)) from None
