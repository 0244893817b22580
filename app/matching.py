"""One column's search as the Search page shows it: hits, their match strength, the best sentences.

The query is embedded once (`Collection.embed_queries`) and that vector serves the search, the
match strength (app/calibration.py) and the sentence highlight: each shown hit's best chunk is split
into sentences, embedded as passages by the same model, and the sentence closest to the query is
the one marked (a single-chunk paragraph gets its best sentence marked too).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.calibration import NO_MATCH_BELOW, Reference
from distill.models.encoder import Role

# A sentence ends at . ! ? (and their CJK, Arabic and Devanagari forms) followed by space, or
# right after a full-width stop. Thai has no sentence punctuation: its sentences are space-separated.
_END = re.compile(r"(?<=[.!?؟।])\s+|(?<=[。！？])")
_THAI_SPACE = re.compile(r"\s+")
# Sentences embedded per column and query: those of the first hits' best chunks (later hits keep the
# chunk highlight); on 2 busy cores each e5 sentence costs ~20-100 ms.
MAX_SENTENCES = 30
HIGHLIGHTED_HITS = 5


@dataclass
class ColumnSearch:
    hits: list[Any] = field(default_factory=list)
    strengths: list[float] = field(default_factory=list)
    marks: dict[int, tuple[int, int]] = field(default_factory=dict)  # hit index -> sentence span
    latency_ms: float = 0.0
    error: str | None = None

    @property
    def doc_ids(self) -> list[str]:
        return [str(h.doc_id) for h in self.hits]

    @property
    def no_good_match(self) -> bool:
        """The first hit's strength is below the threshold (or unknown without a calibration)."""
        return bool(self.hits) and bool(self.strengths) and self.strengths[0] < NO_MATCH_BELOW


def sentence_spans(
    text: str, start: int = 0, end: int | None = None, lang: str = ""
) -> list[tuple[int, int]]:
    """Character spans of the sentences of `text[start:end]` (whitespace trimmed, none empty)."""
    end = len(text) if end is None else end
    part = text[start:end]
    splitter = _THAI_SPACE if lang == "th" else _END
    spans, pos = [], 0
    for m in [*splitter.finditer(part), None]:
        stop = m.start() if m else len(part)
        piece = part[pos:stop]
        lead = len(piece) - len(piece.lstrip())
        if piece.strip():
            span = (start + pos + lead, start + pos + len(piece.rstrip()))
            # "Y. pestis", "z. B. der": no sentence ends before a lowercase word or after a <= 3-letter "word."
            if spans and splitter is _END and (piece.lstrip()[0].islower() or _short_end(text, spans[-1])):
                span = (spans.pop()[0], span[1])
            spans.append(span)
        pos = m.end() if m else len(part)
    return spans


def _short_end(text: str, span: tuple[int, int]) -> bool:
    words = text[span[0] : span[1]].split()
    return bool(words) and len(words[-1]) <= 3 and words[-1][-1] == "."


def best_sentences(encoder, query: np.ndarray, hits: list[Any]) -> dict[int, tuple[int, int]]:
    """hit index -> span of the sentence of its best chunk closest to `query` (same model)."""
    candidates: list[tuple[int, tuple[int, int]]] = []
    for i, hit in enumerate(hits[:HIGHLIGHTED_HITS]):
        if hit.text is None:
            continue
        spans = sentence_spans(hit.text, hit.chunk_start, hit.chunk_end, hit.lang)
        if len(spans) == 1:
            candidates.append((i, spans[0]))
            continue
        candidates += [(i, s) for s in spans]
    if not candidates:
        return {}
    candidates = candidates[:MAX_SENTENCES]
    texts = [hits[i].text[a:b] for i, (a, b) in candidates]
    vectors = np.asarray(encoder.encode(texts, batch_size=16, prefix=Role.PASSAGE), dtype=np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    scores = vectors @ np.asarray(query, dtype=np.float32).reshape(-1)
    best: dict[int, tuple[float, tuple[int, int]]] = {}
    for (i, span), score in zip(candidates, scores, strict=True):
        if i not in best or score > best[i][0]:
            best[i] = (float(score), span)
    return {i: span for i, (_, span) in best.items()}


def search_column(
    col, spec: str, query: str, k: int, langs: list[str], reference: Reference | None
) -> ColumnSearch:
    """Embed `query` once with `spec`, search, score the hits' strength, find their best sentences.

    User errors (a model that cannot be loaded, a bad filter) become a message, not a traceback."""
    start = time.perf_counter()
    try:
        vector = col.embed_queries([query], spec)
        hits = col.search_vectors(vector, spec, k=k, langs=langs or None)[0]
        strengths = list(reference.strengths(vector[0], [h.score for h in hits])) if reference else []
        marks = best_sentences(col.encoder(spec), vector[0], hits)
    except Exception as exc:  # noqa: BLE001 - shown to the user in the column, with its type
        return ColumnSearch(
            error=f"{type(exc).__name__}: {exc}", latency_ms=(time.perf_counter() - start) * 1000
        )
    return ColumnSearch(hits, [float(s) for s in strengths], marks, (time.perf_counter() - start) * 1000)


def query_tokens(encoder, query: str) -> int | None:
    """How many tokens the model's tokenizer makes of `query` (None if it cannot say)."""
    try:
        return len(encoder.tokenizer(query, truncation=False)["input_ids"])
    except Exception:  # noqa: BLE001 - a notice, never an error
        return None
