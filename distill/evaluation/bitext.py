"""Bitext retrieval (Tatoeba / xsim style): find each sentence's translation among all candidates."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from distill.data import DataError, read_pair_tsv, read_parallel_jsonl
from distill.evaluation.base import DataEvaluator, EmbeddingCache, Task
from distill.evaluation.metrics import ratio_margin_scores, translation_accuracy
from distill.langs import canonical_lang
from distill.models.encoder import Role


class BitextEvaluator(DataEvaluator):
    """Accuracy@1 of retrieving `tgt[i]` for `src[i]` among all of `tgt` (and back).

    Metrics: `{name}_src2trg_acc`, `{name}_trg2src_acc`, `{name}_accuracy` (their mean, primary).
    `margin=True` scores candidates by the ratio margin (k=4) instead of raw cosine. Both sides use
    the "query" prefix (a symmetric task).
    """

    task = Task.BITEXT

    def __init__(
        self,
        src: Sequence[str],
        tgt: Sequence[str],
        *,
        name: str,
        src_lang: str = "",
        tgt_lang: str = "",
        margin: bool = False,
        margin_k: int = 4,
        batch_size: int = 64,
        dataset: str = "",
        source: dict[str, Any] | None = None,
        cache: EmbeddingCache | None = None,
        show_progress: bool = False,
    ) -> None:
        self._setup(
            name,
            "accuracy",
            batch_size=batch_size,
            dataset=dataset,
            source=source,
            cache=cache,
            show_progress=show_progress,
        )
        if len(src) != len(tgt):
            raise ValueError(f"{name}: {len(src)} source vs {len(tgt)} target sentences; pairs must align")
        if not src:
            raise ValueError(f"{name}: no sentence pairs")
        self.src, self.tgt = list(src), list(tgt)
        self.src_lang, self.tgt_lang = src_lang, tgt_lang
        self.margin, self.margin_k = margin, margin_k

    @property
    def lang_pair(self) -> str:
        if self.src_lang or self.tgt_lang:
            return f"{canonical_lang(self.src_lang) if self.src_lang else '?'}-{canonical_lang(self.tgt_lang) if self.tgt_lang else '?'}"
        return "all"

    def __call__(self, encoder) -> dict[str, float]:
        a = self.embed(encoder, self.src, Role.QUERY)
        b = self.embed(encoder, self.tgt, Role.QUERY)
        scores = a @ b.T
        if self.margin:
            scores = ratio_margin_scores(scores, self.margin_k)
        s2t, t2s = translation_accuracy(scores, self.src, self.tgt)
        return {
            f"{self.name}_src2trg_acc": s2t,
            f"{self.name}_trg2src_acc": t2s,
            f"{self.name}_accuracy": (s2t + t2s) / 2,
        }

    def info(self) -> dict[str, Any]:
        return {
            "task": self.task.value,
            "dataset": self.dataset,
            "lang_pair": self.lang_pair,
            "pairs": len(self.src),
            "scoring": f"ratio margin k={self.margin_k}" if self.margin else "cosine",
            **self.source,
        }

    def __repr__(self) -> str:
        return f"BitextEvaluator(name={self.name!r}, pairs={len(self.src)}, margin={self.margin})"


# --- building evaluators from files ------------------------------------------------------------


def bitext_from_pair_tsv(
    path: str | Path, *, name: str | None = None, limit: int | None = None, **kwargs
) -> BitextEvaluator:
    """One evaluator from a two-column TSV whose header names the languages (`en<TAB>de`)."""
    from distill.evaluation.sampling import file_fingerprint, take_sample

    pairs = read_pair_tsv(path)
    idx = take_sample(len(pairs.src), limit)
    if len(idx) < 2:  # a lone pair always "finds" its translation: accuracy 1.000 that says nothing
        raise DataError(path, None, f"{len(idx)} pair to score; bitext retrieval needs at least 2")
    name = name or Path(path).stem
    return BitextEvaluator(
        [pairs.tgt[i] for i in idx],
        [pairs.src[i] for i in idx],  # xx -> en, like the FLORES ones
        name=name,
        src_lang=pairs.tgt_lang,
        tgt_lang=pairs.src_lang,
        dataset=kwargs.pop("dataset", Path(path).stem),
        source={
            "file": str(path),
            "sha256": file_fingerprint(path),
            "total_pairs": len(pairs.src),
            "sampled": len(idx),
        },
        **kwargs,
    )


def _parallel_languages(
    path: str | Path, langs: Sequence[str] | None, pivot: str
) -> tuple[dict[str, dict[str, str]], str, list[str]]:
    """The file's texts (language code -> id -> text), its pivot language's code and the codes of
    the wanted other languages. Canonical duplicates (zho_Hans / zho_Hant) are kept apart: they are
    different test sets."""
    by_lang: dict[str, dict[str, str]] = {}
    for r in read_parallel_jsonl(path):
        by_lang.setdefault(r.lang, {}).setdefault(r.id, r.text)
    pivots = [code for code in by_lang if canonical_lang(code) == pivot]
    if not pivots:
        raise DataError(path, None, f"no records in the pivot language {pivot!r}")
    wanted = None if langs is None else {canonical_lang(c) for c in langs}
    codes = [c for c in by_lang if c != pivots[0] and (wanted is None or canonical_lang(c) in wanted)]
    if wanted is not None and not codes:
        raise DataError(path, None, f"none of the languages {sorted(wanted)} occur in the file")
    return by_lang, pivots[0], codes


def bitext_from_parallel_jsonl(
    path: str | Path,
    *,
    langs: Sequence[str] | None = None,
    pivot: str = "en",
    limit: int | None = None,
    name_prefix: str | None = None,
    short_half: bool = False,
    **kwargs,
) -> list[BitextEvaluator]:
    """One evaluator per language (xx -> pivot) of a multi-parallel JSONL file.

    `langs` selects languages in any code style; the original codes (e.g. `deu_Latn`) name the
    evaluators. Sentence ids present in both languages are used; `limit` samples that many ids
    (the same ids for every language, fixed seed). `short_half` adds, per language, an evaluator
    `{prefix}-short-{code}` on the half of the ids with the shortest pivot sentences, searched among
    themselves: short sentences carry fewer names and numbers to match on, so they test the model.
    """
    from distill.evaluation.sampling import file_fingerprint, take_sample

    by_lang, pivot_code, codes = _parallel_languages(path, langs, pivot)
    ids_all = sorted(by_lang[pivot_code])
    sample = [ids_all[i] for i in take_sample(len(ids_all), limit)]
    fingerprint = file_fingerprint(path)
    prefix = name_prefix or Path(path).stem.split("_")[0]
    dataset = kwargs.pop("dataset", prefix)
    by_length = sorted(sample, key=lambda i: (len(by_lang[pivot_code][i]), i))
    short = set(by_length[: len(by_length) // 2])
    variants = [(prefix, dataset, None)] + (
        [(f"{prefix}-short", f"{dataset}-short", short)] if short_half else []
    )
    out = []
    for code in codes:
        for name, ds, subset in variants:
            ids = [i for i in sample if i in by_lang[code] and (subset is None or i in subset)]
            if not ids:
                continue
            source = {
                "file": str(path),
                "sha256": fingerprint,
                "total_ids": len(ids_all),
                "sampled": len(ids),
            }
            if subset is not None:
                source["subset"] = "the shorter half of the sampled ids (pivot sentence length)"
            out.append(
                BitextEvaluator(
                    [by_lang[code][i] for i in ids],
                    [by_lang[pivot_code][i] for i in ids],
                    name=f"{name}-{code}",
                    src_lang=code,
                    tgt_lang=pivot_code,
                    dataset=ds,
                    source=source,
                    **kwargs,
                )
            )
    if not out:
        raise DataError(path, None, "no language pairs to evaluate")
    return out
