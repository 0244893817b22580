"""Training pairs (en, xx) for distillation, from the shared data's training splits only.

Sources: multi-parallel JSONL (NTREX-128, UD-PUD), pair TSVs (Multi30k train) and STSb Multi MT
train, whose per-language files are aligned by `pair_id` (sentence1 with sentence1, sentence2 with
sentence2). Dev/test files and the demo corpus are refused, so nothing we select on is trained on.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from distill.data import (
    ALL_LANGS,
    DataError,
    TrainingPair,
    build_training_pairs,
    iter_tsv,
    read_parallel_jsonl,
    wanted_langs,
)
from distill.langs import canonical_lang
from distill.paths import shared_data_dir
from distill.roles import Role

# Path fragments that mark evaluation data: training on them would inflate the dev scores.
_FORBIDDEN = ("corpus/", "/dev/", "dev/", "flores", ".val.", ".test", "-dev.", "-test.", "_test")


def resolve_data_path(path: str | Path) -> Path:
    """Absolute path: relative paths are taken from the shared data directory."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else shared_data_dir() / p


def check_training_file(path: str | Path) -> None:
    text = str(path).replace("\\", "/").lower()
    for bad in _FORBIDDEN:
        if bad in text:
            raise DataError(
                path, None, f"refusing to train on evaluation/demo data (path contains {bad.strip('/')!r})"
            )


def stsb_training_pairs(directory: str | Path, langs: Sequence[str], pivot: str = "en") -> list[TrainingPair]:
    """(en, xx) pairs from STSb Multi MT train files `stsb-<lang>-train.tsv`, aligned by pair_id."""
    directory = Path(directory)
    en_file = directory / f"stsb-{pivot}-train.tsv"
    if not en_file.exists():
        raise DataError(en_file, None, "STSb English train file not found")
    english = {
        row["pair_id"]: (row["sentence1"], row["sentence2"]) for _, row in iter_tsv(en_file, ("pair_id",))
    }
    if ALL_LANGS in langs:
        langs = sorted(p.name.split("-")[1] for p in directory.glob("stsb-*-train.tsv"))
    out: list[TrainingPair] = []
    for code in langs:
        lang = canonical_lang(code)
        path = directory / f"stsb-{lang}-train.tsv"
        if lang == pivot or not path.exists():
            continue
        for _, row in iter_tsv(path, ("sentence1", "sentence2", "pair_id")):
            en = english.get(row["pair_id"])
            if en is None:
                continue
            for en_text, xx_text in zip(en, (row["sentence1"], row["sentence2"]), strict=True):
                if en_text.strip() and xx_text.strip() and en_text != xx_text:
                    out.append(TrainingPair(en_text, xx_text, lang))
    return out


def load_pairs(
    files: Sequence[str | Path],
    langs: Sequence[str],
    *,
    stsb_dir: str | Path | None = None,
) -> list[TrainingPair]:
    """All (en, xx) pairs from `files` plus STSb train (if `stsb_dir`), deduplicated, in file order."""
    paths = [resolve_data_path(f) for f in files]
    for p in paths:
        check_training_file(p)
        if not p.exists():
            raise DataError(p, None, "training file not found")
    pairs = build_training_pairs(paths, langs)
    if stsb_dir:
        seen = {(p.en, p.xx) for p in pairs}
        for p in stsb_training_pairs(resolve_data_path(stsb_dir), langs):
            if (p.en, p.xx) not in seen:
                seen.add((p.en, p.xx))
                pairs.append(p)
    return pairs


def passage_pairs(
    parallel_file: str | Path,
    doc_ids_file: str | Path,
    langs: Sequence[str],
    *,
    sentences: int = 4,
    pivot: str = "en",
) -> list[TrainingPair]:
    """(en, xx) passages: windows of `sentences` consecutive sentences of one document, joined with spaces.

    They carry role "passage", so models with prompts (e5) embed them as documents.

    Windows do not overlap and never cross a document boundary; a window needs every sentence in both
    languages. `doc_ids_file` is a TSV with columns `id` and `doc_id`, in document order.
    """
    if sentences < 1:
        raise ValueError("passage sentences must be >= 1")
    paths = [resolve_data_path(parallel_file), resolve_data_path(doc_ids_file)]
    for p in paths:
        check_training_file(p)
        if not p.exists():
            raise DataError(p, None, "passage file not found")
    docs: dict[str, list[str]] = {}
    for _, row in iter_tsv(paths[1], ("id", "doc_id")):
        docs.setdefault(row["doc_id"], []).append(row["id"])
    wanted = wanted_langs(langs)
    text: dict[tuple[str, str], str] = {}
    for r in read_parallel_jsonl(paths[0]):
        lang = canonical_lang(r.lang)
        if lang == pivot or wanted is None or lang in wanted:
            text.setdefault((r.id, lang), r.text)  # the first record of a language (spa before spa-MX)
    langs_found = sorted({lang for _, lang in text} - {pivot})
    out: list[TrainingPair] = []
    for ids in docs.values():
        for start in range(0, len(ids) - sentences + 1, sentences):
            window = ids[start : start + sentences]
            if not all((i, pivot) in text for i in window):
                continue
            en = " ".join(text[(i, pivot)] for i in window)
            for lang in langs_found:
                if all((i, lang) in text for i in window):
                    out.append(
                        TrainingPair(en, " ".join(text[(i, lang)] for i in window), lang, role=Role.PASSAGE)
                    )
    return out


def sample_pairs(pairs: Sequence[TrainingPair], n: int, seed: int) -> list[TrainingPair]:
    """A seeded sample of at most `n` pairs (0 = all), balanced over languages by round robin."""
    if n <= 0 or n >= len(pairs):
        out = list(pairs)
        random.Random(seed).shuffle(out)
        return out
    rng = random.Random(seed)
    by_lang: dict[str, list[TrainingPair]] = {}
    for p in pairs:
        by_lang.setdefault(p.lang, []).append(p)
    for group in by_lang.values():
        rng.shuffle(group)
    out, i = [], 0
    queues = [by_lang[k] for k in sorted(by_lang)]
    while len(out) < n:
        added = False
        for q in queues:
            if i < len(q) and len(out) < n:
                out.append(q[i])
                added = True
        if not added:
            break
        i += 1
    rng.shuffle(out)
    return out
