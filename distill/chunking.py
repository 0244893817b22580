"""Sentence-aware chunking with a token budget and a small overlap.

A document becomes one or more chunks (character spans of its text). Sentences are packed greedily
until the next one would exceed the token budget; the next chunk starts with the last whole
sentences of the previous one, up to `overlap` tokens, so a passage cut at a boundary is still
found. A single sentence over the budget (Thai has no sentence punctuation, some texts have none)
is cut into token windows. Token counts are the maximum over the collection's tokenizers, so every
model sees a chunk it does not truncate.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from distill.roles import Role

# The collection defaults (indexer.config.CollectionSettings) and the question evaluator's chunks
# (distill.evaluation.questions), so the evaluator embeds what `indexer add` embeds.
CHUNK_TOKENS = 256
CHUNK_OVERLAP = 32

# End of a sentence: Latin-style punctuation followed by whitespace (closing quotes/brackets
# stay with the sentence), CJK/Arabic/Devanagari full stops with or without whitespace, or line breaks.
_BOUNDARY = re.compile(
    r"[.!?…]+[\"'”’»)\]]*(?=\s)"
    r"|[。！？؟।॥]+[\"'”’»」』)\]]*"
    r"|(?=\n)"
)


@dataclass(frozen=True)
class Span:
    start: int
    end: int


def sentence_spans(text: str) -> list[Span]:
    """Spans of the sentences of `text`, without surrounding whitespace, in order."""
    spans: list[Span] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        _append_stripped(text, start, match.end(), spans)
        start = match.end()
    _append_stripped(text, start, len(text), spans)
    return spans


def first_sentence_of(text: str) -> str:
    """The first sentence of `text`, stripped (the whole text if it has no sentence end)."""
    spans = sentence_spans(text)
    return text[spans[0].start : spans[0].end] if spans else text.strip()


def _append_stripped(text: str, start: int, end: int, out: list[Span]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        out.append(Span(start, end))


def chunker_for(encoders: Sequence, chunk_tokens: int, overlap: int) -> Chunker:
    """The chunker a collection of `encoders` uses: a budget every model embeds without truncating
    (its max_seq_length less its passage prompt and the two special tokens), cut by all tokenizers."""
    budget = chunk_tokens
    for enc in encoders:
        prompt = enc.prompt(Role.PASSAGE)
        prompt_tokens = len(enc.tokenizer(prompt, add_special_tokens=False)["input_ids"]) if prompt else 0
        budget = min(budget, enc.max_seq_length - prompt_tokens - 2)
    return Chunker([e.tokenizer for e in encoders], max(budget, 8), overlap)


class Chunker:
    """Cut texts into chunks of at most `budget` tokens by every tokenizer in `tokenizers`."""

    def __init__(self, tokenizers: Sequence, budget: int, overlap: int) -> None:
        if not tokenizers:
            raise ValueError("a chunker needs at least one tokenizer")
        self.tokenizers = list(tokenizers)
        self.budget = budget
        self.overlap = min(overlap, budget // 2)

    def _counts(self, texts: list[str]) -> list[int]:
        best = [0] * len(texts)
        for tok in self.tokenizers:
            ids = tok(texts, add_special_tokens=False, verbose=False)["input_ids"]
            best = [max(b, len(i)) for b, i in zip(best, ids, strict=True)]
        return best

    def _windows(self, text: str, span: Span) -> list[tuple[Span, int]]:
        """Cut one over-long sentence into consecutive windows of `budget` tokens."""
        piece = text[span.start : span.end]
        worst, worst_n = None, -1
        for tok in self.tokenizers:  # cut by the tokenizer that splits this text the finest
            enc = tok(piece, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
            if len(enc["input_ids"]) > worst_n:
                worst, worst_n = enc["offset_mapping"], len(enc["input_ids"])
        # Equal windows (70 tokens at a budget of 58 -> 35 + 35, not 58 + a 12-token scrap).
        pieces = -(-worst_n // self.budget)
        size = -(-worst_n // pieces)
        out = []
        for i in range(0, worst_n, size):
            a = span.start + (worst[i][0] if i else 0)
            j = i + size
            b = span.start + worst[j][0] if j < worst_n else span.end
            out.append((Span(a, b), min(size, worst_n - i)))
        return out

    def cut(self, text: str, max_tokens: int) -> str:
        """The longest prefix of `text` (cut at a token boundary) of at most `max_tokens` tokens by
        every tokenizer; `text` itself when it fits."""
        limit = max_tokens
        while True:
            end = len(text)
            for tok in self.tokenizers:
                enc = tok(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
                if len(enc["input_ids"]) > limit:
                    end = min(end, enc["offset_mapping"][limit][0])
            piece = text[:end].rstrip()
            # A prefix can tokenize a little differently from the same span inside the whole text.
            if end == len(text) or limit <= 1 or self._counts([piece])[0] <= max_tokens:
                return piece
            limit -= 1

    def chunk(self, text: str, reserve: int = 0) -> list[Span]:
        """Chunk spans of `text`; `reserve` tokens of the budget are kept free (e.g. for a title)."""
        return self.chunk_many([text], [reserve])[0]

    def chunk_many(self, texts: Sequence[str], reserves: Sequence[int] | None = None) -> list[list[Span]]:
        reserves = reserves or [0] * len(texts)
        sents = [sentence_spans(t) for t in texts]
        flat = [t[s.start : s.end] for t, ss in zip(texts, sents, strict=True) for s in ss]
        counts = iter(self._counts(flat) if flat else [])
        return [
            self._pack(text, [(s, next(counts)) for s in ss], max(self.budget - reserve, 8))
            for text, ss, reserve in zip(texts, sents, reserves, strict=True)
        ]

    def _pack(self, text: str, units: list[tuple[Span, int]], budget: int) -> list[Span]:
        saved, self.budget = self.budget, budget
        try:
            pieces: list[tuple[Span, int]] = []
            for span, n in units:
                pieces.extend(self._windows(text, span) if n > budget else [(span, n)])
        finally:
            self.budget = saved
        chunks: list[Span] = []
        current: list[tuple[Span, int]] = []
        used = 0
        for span, n in pieces:
            if current and used + n > budget:
                chunks.append(Span(current[0][0].start, current[-1][0].end))
                carry: list[tuple[Span, int]] = []
                carried = 0
                for prev in reversed(current):
                    if carried + prev[1] > self.overlap:
                        break
                    carry.insert(0, prev)
                    carried += prev[1]
                if carried + n > budget:
                    carry, carried = [], 0
                current, used = carry, carried
            current.append((span, n))
            used += n
        if current:
            chunks.append(Span(current[0][0].start, current[-1][0].end))
        return chunks
