"""Readers for the data formats of xlsearch (see `../shared/data/README.md`).

Every reader validates as it goes and raises `DataError` naming the file and line of the first
bad record, so a malformed file never fails later with a confusing message.
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from distill.documents import DataError, Document, JsonError, loads_strict, parse_document, record_field
from distill.langs import canonical_lang, is_known_lang
from distill.roles import Role

_LANG_CODE = re.compile(r"[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*")  # de, deu_Latn, zho-CN, pt-BR

csv.field_size_limit(sys.maxsize)


@dataclass(frozen=True)
class ParallelRecord:
    id: str
    lang: str
    text: str


@dataclass(frozen=True)
class StsExample:
    sentence1: str
    sentence2: str
    score: float
    lang1: str = ""
    lang2: str = ""


@dataclass(frozen=True)
class Query:
    id: str
    lang: str
    text: str


@dataclass(frozen=True)
class PairSet:
    """Aligned sentence pairs from a two-column TSV: `src[i]` translates `tgt[i]`."""

    src_lang: str
    tgt_lang: str
    src: list[str]
    tgt: list[str]


@dataclass(frozen=True)
class RetrievalSet:
    queries: list[Query]
    corpus: list[Document]
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: relevance > 0}


# --- low-level line readers -------------------------------------------------------------------


def _open_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "file not found")
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(path, number, f"invalid UTF-8 ({exc.reason} at byte {exc.start})") from None


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for every non-blank line; raise on bad JSON or non-objects."""
    seen_any = False
    for number, line in _open_lines(path):
        if not line.strip():
            continue
        try:
            obj = loads_strict(line)
        except JsonError as exc:
            raise DataError(path, number, str(exc)) from None
        if not isinstance(obj, dict):
            raise DataError(path, number, f"expected a JSON object, got {type(obj).__name__}")
        seen_any = True
        yield number, obj
    if not seen_any:
        raise DataError(path, None, "file is empty")


def iter_tsv(path: str | Path, required: Sequence[str] = ()) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row dict) of a headed, unquoted TSV; check the columns as we go."""
    lines = _open_lines(path)
    try:
        _, header_line = next(lines)
    except StopIteration:
        raise DataError(path, None, "file is empty") from None
    header = header_line.rstrip("\r\n").split("\t")
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(path, 1, f"header lacks column(s) {missing}; found {header}")
    rows = 0
    for number, line in lines:
        line = line.rstrip("\r\n")
        if not line:
            continue
        cells = next(csv.reader([line], delimiter="\t", quoting=csv.QUOTE_NONE))
        if len(cells) != len(header):
            raise DataError(path, number, f"expected {len(header)} tab-separated columns, got {len(cells)}")
        rows += 1
        yield number, dict(zip(header, cells, strict=True))
    if rows == 0:
        raise DataError(path, None, "no rows after the header")


# --- the formats ----------------------------------------------------------------------------


def read_parallel_jsonl(path: str | Path) -> list[ParallelRecord]:
    """Multi-parallel JSONL: `{"id", "lang", "text"}`; same id = translations."""
    return [
        ParallelRecord(
            record_field(o, "id", path, n), record_field(o, "lang", path, n), record_field(o, "text", path, n)
        )
        for n, o in iter_jsonl(path)
    ]


def read_pair_tsv(path: str | Path) -> PairSet:
    """Two-column pair TSV with a header naming the languages (`en<TAB>de`)."""
    lines = _open_lines(path)
    try:
        _, header = next(lines)
    except StopIteration:
        raise DataError(path, None, "file is empty") from None
    langs = header.rstrip("\r\n").split("\t")
    if len(langs) != 2 or not all(langs):
        raise DataError(path, 1, f"header must name two languages (e.g. 'en<TAB>de'), got {langs}")
    # A headless file (its first pair read as the header) or a repeated code (both columns the same,
    # so every sentence "finds" itself: accuracy 1.000) would otherwise score silently.
    unknown = [c for c in langs if not _LANG_CODE.fullmatch(c) or not is_known_lang(c)]
    if unknown or canonical_lang(langs[0]) == canonical_lang(langs[1]):
        what = f"not language code(s): {unknown}" if unknown else "the same language twice"
        raise DataError(
            path,
            1,
            f"header must name two different languages, one per column (e.g. "
            f"'en<TAB>de'); got {langs}: {what}",
        )
    src, tgt = [], []
    for number, row in iter_tsv(path, required=langs):
        a, b = row[langs[0]], row[langs[1]]
        if not a.strip() or not b.strip():
            raise DataError(path, number, "empty sentence")
        src.append(a)
        tgt.append(b)
    return PairSet(langs[0], langs[1], src, tgt)


def read_sts_tsv(path: str | Path) -> list[StsExample]:
    """STS TSV: `sentence1 sentence2 score [lang1 lang2 ...]` with a header."""
    out = []
    for number, row in iter_tsv(path, required=("sentence1", "sentence2", "score")):
        try:
            score = float(row["score"])
        except ValueError:
            raise DataError(path, number, f"score {row['score']!r} is not a number") from None
        out.append(
            StsExample(row["sentence1"], row["sentence2"], score, row.get("lang1", ""), row.get("lang2", ""))
        )
    return out


def read_corpus_jsonl(path: str | Path) -> list[Document]:
    """Corpus JSONL: `{"id", "lang", "title"?, "text", ...}`; other fields become metadata."""
    docs, seen = [], set()
    for n, o in iter_jsonl(path):
        doc = parse_document(o, path, n)
        if doc.id in seen:
            raise DataError(path, n, f"duplicate document id {doc.id!r}")
        seen.add(doc.id)
        docs.append(doc)
    return docs


def read_queries_jsonl(path: str | Path) -> list[Query]:
    return [
        Query(
            record_field(o, "id", path, n), record_field(o, "lang", path, n), record_field(o, "text", path, n)
        )
        for n, o in iter_jsonl(path)
    ]


def read_qrels_tsv(path: str | Path) -> dict[str, dict[str, int]]:
    """Qrels TSV with header `query_id doc_id relevance`; rows with relevance <= 0 are dropped."""
    qrels: dict[str, dict[str, int]] = {}
    for number, row in iter_tsv(path, required=("query_id", "doc_id", "relevance")):
        try:
            rel = int(float(row["relevance"]))
        except ValueError:
            raise DataError(path, number, f"relevance {row['relevance']!r} is not a number") from None
        if rel > 0:
            qrels.setdefault(row["query_id"], {})[row["doc_id"]] = rel
    return qrels


def read_retrieval_set(queries: str | Path, corpus: str | Path, qrels: str | Path) -> RetrievalSet:
    """Queries + corpus + qrels, checking that every qrels id names a known query and document."""
    qs, docs, rels = read_queries_jsonl(queries), read_corpus_jsonl(corpus), read_qrels_tsv(qrels)
    query_ids, doc_ids = {q.id for q in qs}, {d.id for d in docs}
    unknown_q = sorted(set(rels) - query_ids)
    if unknown_q:
        raise DataError(qrels, None, f"{len(unknown_q)} query id(s) not in {queries}: {unknown_q[:5]}")
    unknown_d = sorted({d for r in rels.values() for d in r} - doc_ids)
    if unknown_d:
        raise DataError(qrels, None, f"{len(unknown_d)} document id(s) not in {corpus}: {unknown_d[:5]}")
    return RetrievalSet(qs, docs, rels)


# --- training pairs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingPair:
    en: str
    xx: str
    lang: str  # ISO 639-1 of xx
    role: str = Role.QUERY  # what the texts are to the model: QUERY (sentences) or PASSAGE (multi-sentence)


ALL_LANGS = "*"


def wanted_langs(langs: Sequence[str]) -> set[str] | None:
    """Canonical codes of `langs`, or None (every language) when `langs` holds "*"."""
    return None if ALL_LANGS in langs else {canonical_lang(code) for code in langs}


def pairs_from_parallel(
    records: Iterable[ParallelRecord], langs: Sequence[str], pivot: str = "en"
) -> list[TrainingPair]:
    """(pivot, xx) pairs from multi-parallel records, for the languages in `langs` (any code style; "*" = all).

    The pivot of an id is its first record in the pivot language (files put the original first);
    variants such as `spa-MX` count as their base language. Identical pairs are kept once.
    """
    wanted = wanted_langs(langs)
    groups: dict[str, list[ParallelRecord]] = {}
    for r in records:
        groups.setdefault(r.id, []).append(r)
    pairs, seen = [], set()
    for group in groups.values():
        en = next((r.text for r in group if canonical_lang(r.lang) == pivot), None)
        if en is None:
            continue
        for r in group:
            lang = canonical_lang(r.lang)
            if (wanted is None or lang in wanted) and lang != pivot and (en, r.text) not in seen:
                seen.add((en, r.text))
                pairs.append(TrainingPair(en, r.text, lang))
    return pairs


def pairs_from_pair_tsv(pairs: PairSet, langs: Sequence[str], pivot: str = "en") -> list[TrainingPair]:
    src, tgt = canonical_lang(pairs.src_lang), canonical_lang(pairs.tgt_lang)
    wanted = wanted_langs(langs)
    if src == pivot and (wanted is None or tgt in wanted):
        return [TrainingPair(a, b, tgt) for a, b in zip(pairs.src, pairs.tgt, strict=True)]
    if tgt == pivot and (wanted is None or src in wanted):
        return [TrainingPair(b, a, src) for a, b in zip(pairs.src, pairs.tgt, strict=True)]
    return []


def build_training_pairs(
    paths: Iterable[str | Path], langs: Sequence[str], pivot: str = "en"
) -> list[TrainingPair]:
    """(en, xx) pairs from any mix of multi-parallel JSONL and pair TSV files, deduplicated."""
    out, seen = [], set()
    for path in paths:
        path = Path(path)
        if path.suffix == ".jsonl":
            new = pairs_from_parallel(read_parallel_jsonl(path), langs, pivot)
        elif path.suffix == ".tsv":
            new = pairs_from_pair_tsv(read_pair_tsv(path), langs, pivot)
        else:
            raise DataError(path, None, "unknown training file type (expected .jsonl or .tsv)")
        for p in new:
            if (p.en, p.xx) not in seen:
                seen.add((p.en, p.xx))
                out.append(p)
    return out
