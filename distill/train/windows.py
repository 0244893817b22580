"""Data shaped like the app's job: a short query in one language, a passage in another.

From a multi-parallel document set (NTREX-128: news documents translated into 128 languages), a
*window* is `sentences` consecutive sentences of one document. Its passage in language Y is the
window's sentences joined; its query in language X is one of those sentences (an inverse-cloze
pair: the query is part of the passage it should find, in another language). Windows do not overlap
and never cross a document; neighbouring windows of a document are the hard negatives the student
gets wrong (a neighbouring paragraph of the right article ranked first).

Training draws *groups*: `group` consecutive windows of one document, so every batch holds each
window's neighbours too.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from distill.data import iter_tsv, read_parallel_jsonl
from distill.documents import DataError
from distill.langs import canonical_lang
from distill.train.pairs import check_training_file, resolve_data_path


@dataclass(frozen=True)
class WindowSet:
    """Windows of parallel documents: `passages[w][l]` is window w in `langs[l]`, `queries[w][l]` one of its sentences."""

    langs: tuple[str, ...]
    passages: tuple[tuple[str, ...], ...]
    queries: tuple[tuple[str, ...], ...]
    groups: tuple[tuple[int, ...], ...]  # consecutive windows of one document

    def __len__(self) -> int:
        return len(self.passages)

    def sample(self, max_windows: int, seed: int) -> WindowSet:
        """Whole groups, drawn with `seed`, until `max_windows` windows (0 = all); windows renumbered."""
        if max_windows <= 0 or max_windows >= len(self):
            return self
        order = random.Random(seed).sample(range(len(self.groups)), len(self.groups))
        chosen, total = [], 0
        for g in order:
            if total >= max_windows:
                break
            chosen.append(g)
            total += len(self.groups[g])
        old = [w for g in sorted(chosen) for w in self.groups[g]]
        new = {w: i for i, w in enumerate(old)}
        return WindowSet(
            self.langs,
            tuple(self.passages[w] for w in old),
            tuple(self.queries[w] for w in old),
            tuple(tuple(new[w] for w in self.groups[g]) for g in sorted(chosen)),
        )


def read_windows(
    parallel_file: str | Path,
    doc_ids_file: str | Path,
    langs: Sequence[str],
    *,
    sentences: int = 3,
    group: int = 4,
    seed: int = 0,
) -> WindowSet:
    """Windows present in every language of `langs` (canonical codes, e.g. `de`, `zh`), grouped by document."""
    if sentences < 1 or group < 1:
        raise ValueError("window sentences and group must be >= 1")
    paths = [resolve_data_path(parallel_file), resolve_data_path(doc_ids_file)]
    for p in paths:
        check_training_file(p)
        if not p.exists():
            raise DataError(p, None, "window file not found")
    wanted = tuple(dict.fromkeys(canonical_lang(c) for c in langs))
    docs: dict[str, list[str]] = {}
    for _, row in iter_tsv(paths[1], ("id", "doc_id")):
        docs.setdefault(row["doc_id"], []).append(row["id"])
    text: dict[tuple[str, str], str] = {}
    for r in read_parallel_jsonl(paths[0]):
        lang = canonical_lang(r.lang)
        if lang in wanted:
            text.setdefault((r.id, lang), r.text)  # the first record of a language (spa before spa-MX)
    missing = [lang for lang in wanted if not any(k[1] == lang for k in text)]
    if missing:
        raise DataError(paths[0], None, f"no text in language(s) {', '.join(missing)}")
    rng = random.Random(seed)
    passages, queries, groups = [], [], []
    for ids in docs.values():
        mine = []
        for start in range(0, len(ids) - sentences + 1, sentences):
            window = ids[start : start + sentences]
            if not all((i, lang) in text for i in window for lang in wanted):
                continue
            mine.append(len(passages))
            passages.append(tuple(" ".join(text[(i, lang)] for i in window) for lang in wanted))
            queries.append(tuple(text[(rng.choice(window), lang)] for lang in wanted))
        groups += [tuple(mine[i : i + group]) for i in range(0, len(mine), group)]
    if not passages:
        raise DataError(paths[0], None, f"no {sentences}-sentence window is present in every language")
    return WindowSet(wanted, tuple(passages), tuple(queries), tuple(groups))
