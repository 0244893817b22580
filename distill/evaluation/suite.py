"""The dev suite: evaluators built from the shared data (`distill.paths.shared_data_dir()`). What each
part measures and how each metric is defined: docs/evaluation.md.

| part | data | full suite | quick suite (what the stages run) |
|---|---|---|---|
| questions | XQuAD dev questions (11 languages) -> the 2,880 corpus paragraphs, chunked as `indexer add` does | all 3,542 questions x all paragraphs | 50 questions x 11 languages -> 60 x 12 paragraphs |
| bitext | FLORES-200 devtest, xx -> eng, against all 1,012 sentences; and its short half (506) | `langs` | de, es, zh, ar |
| bitext | Multi30k val en-de/fr/cs, xx -> en | 200 pairs each | 100 pairs, en-de |
| STS | STSb-multi-mt dev: monolingual en + `langs`, cross-lingual en-xx (same pair_id) | 100 pairs each | 100 pairs: en, de, en-de |
| retrieval | XQuAD paragraph -> translated paragraph (an easy sanity check), per target language and pooled | 20 paragraphs x (en + `langs`) | none |
| cost | FLORES English sentences | 128 | 64 |

The question task is the app's job and the suite's primary retrieval metric (cross-lingual R@1).
It uses every XQuAD language unless `langs` is given. FLORES is scored against all 1,012
candidates: with 100 long sentences full of names and numbers a weak model looks strong (0.93 on dev
for a student that keeps 61% of the teacher on held-out short sentences). Subsamples use a fixed seed
and the same sentence ids in every language; Spearman over 100 pairs has a standard error of about
0.05. On oversubscribed cores, 1 torch thread runs about twice as fast as 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from distill.data import DataError, StsExample, iter_tsv
from distill.datasets import DEFAULT_LANGS, FLORES_DEVTEST, XQUAD_LANGS, XQUAD_PARAGRAPHS, XQUAD_QUESTIONS_DEV
from distill.evaluation.base import EmbeddingCache, Evaluator
from distill.evaluation.bitext import bitext_from_pair_tsv, bitext_from_parallel_jsonl
from distill.evaluation.cost import CostEvaluator
from distill.evaluation.keys import QUESTIONS
from distill.evaluation.questions import question_retrieval
from distill.evaluation.retrieval import parallel_corpus_retrieval
from distill.evaluation.sampling import file_fingerprint, take_sample
from distill.evaluation.sts import StsEvaluator
from distill.langs import canonical_lang
from distill.paths import shared_data_dir

QUICK_LANGS = ("de", "es", "zh", "ar")


@dataclass(frozen=True)
class SuiteSize:
    flores: int
    multi30k: int
    multi30k_langs: tuple[str, ...]
    sts: int
    sts_langs: tuple[str, ...] | None  # None: every STSb language in `langs`
    xquad: int
    xquad_langs: tuple[str, ...] | None
    xquad_pooled: bool
    cost_texts: int
    questions: int | None = None  # question ids sampled (None: all), each in every language
    paragraphs: int | None = None  # parallel ids in the question task's corpus (None: all 240)


# The full suite embeds every chunk of the 2,880 paragraphs, 3.5k questions and 15k short sentences per
# model; what it contains and measures: docs/evaluation.md.
FULL = SuiteSize(
    flores=None,
    multi30k=200,
    multi30k_langs=("de", "fr", "cs"),
    sts=100,
    sts_langs=None,
    xquad=20,
    xquad_langs=None,
    xquad_pooled=True,
    cost_texts=128,
)
# Quick: what the distillation stages track after each stage (a few minutes for the student).
QUICK = SuiteSize(
    flores=None,
    multi30k=100,
    multi30k_langs=("de",),
    sts=100,
    sts_langs=("de",),
    xquad=0,
    xquad_langs=None,
    xquad_pooled=False,
    cost_texts=64,
    questions=50,
    paragraphs=60,
)
PARTS = ("questions", "bitext", "sts", "retrieval", "cost")


def dev_suite(
    quick: bool = False,
    langs: Sequence[str] | None = None,
    *,
    data_dir: str | Path | None = None,
    cache: EmbeddingCache | None = None,
    batch_size: int = 64,
    show_progress: bool = False,
    include_cost: bool = True,
    parts: Sequence[str] | None = None,
) -> list[Evaluator]:
    """Evaluators of the dev suite (see the module docstring for what each part holds).

    `langs` (any code style) restricts every part to those languages (English is always the pivot);
    default: the 12 training languages, or 5 of them when `quick`. Parts whose languages are all
    filtered out are skipped. `parts` picks some of PARTS (default: all). The question task covers
    every XQuAD language unless `langs` is given.
    """
    size = QUICK if quick else FULL
    chosen = set(parts) if parts is not None else set(PARTS)
    unknown = chosen - set(PARTS)
    if unknown:
        raise ValueError(f"unknown dev suite parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    root = Path(data_dir) if data_dir else shared_data_dir()
    if not root.is_dir():
        raise FileNotFoundError(f"shared data not found at {root} (set XLSEARCH_SHARED_DATA)")
    wanted = [canonical_lang(c) for c in (langs or (QUICK_LANGS if quick else DEFAULT_LANGS))]
    wanted = list(dict.fromkeys(c for c in wanted if c != "en"))
    common = {"cache": cache, "batch_size": batch_size, "show_progress": show_progress}
    evaluators: list[Evaluator] = []
    if "questions" in chosen:
        evaluators.append(
            question_retrieval(
                root / XQUAD_QUESTIONS_DEV,
                root / XQUAD_PARAGRAPHS,
                langs=None if langs is None else wanted,
                questions=size.questions,
                paragraphs=size.paragraphs,
                dataset=QUESTIONS,
                cache=cache,
                show_progress=show_progress,
            )
        )
    if "bitext" in chosen:
        evaluators += _bitext(root, size, wanted, every_lang=langs is None, common=common)
    if "sts" in chosen:
        sts_dir = root / "sts" / "stsb_multi_mt"
        available = {p.name.split("-")[1] for p in sts_dir.glob("stsb-*-dev.tsv")}
        sts_langs = [lang for lang in (size.sts_langs or wanted) if lang in available and lang in wanted]
        evaluators += _stsb(sts_dir, sts_langs, size.sts, common)
    if "retrieval" in chosen and size.xquad:
        evaluators += _xquad_retrieval(root / XQUAD_PARAGRAPHS, size, wanted, common)
    if include_cost and "cost" in chosen:
        evaluators.append(CostEvaluator(flores_english(root, size.cost_texts), batch_size=32))
    return evaluators


def _bitext(
    root: Path, size: SuiteSize, wanted: list[str], *, every_lang: bool, common: dict
) -> list[Evaluator]:
    """FLORES (full and short half) for the wanted languages, then Multi30k's fixed languages."""
    out: list[Evaluator] = []
    if wanted:
        # one script per language (zho_Hans, not also zho_Hant) to keep the suite small
        seen: set[tuple[str, str]] = set()
        for ev in bitext_from_parallel_jsonl(
            root / FLORES_DEVTEST,
            langs=wanted,
            limit=size.flores,
            name_prefix="flores",
            dataset="flores",
            short_half=True,
            **common,
        ):
            key = (ev.dataset, canonical_lang(ev.src_lang))
            if key not in seen:
                seen.add(key)
                out.append(ev)
    for lang in [lang for lang in size.multi30k_langs if every_lang or lang in wanted]:
        path = root / "parallel" / "multi30k" / f"multi30k.val.en-{lang}.tsv"
        out.append(
            bitext_from_pair_tsv(
                path, name=f"multi30k-{lang}", limit=size.multi30k, dataset="multi30k", **common
            )
        )
    return out


def _xquad_retrieval(xquad: Path, size: SuiteSize, wanted: list[str], common: dict) -> list[Evaluator]:
    """Paragraph -> its translations, per document language; with `xquad_pooled` also pooled over
    languages, and from the first sentence only (a short query against paragraphs, as a question is)."""
    langs = ["en"] + [lang for lang in (size.xquad_langs or wanted) if lang in XQUAD_LANGS and lang in wanted]
    if len(langs) < 2:
        return []
    variants = [("xquad", True, False)]
    if size.xquad_pooled:
        variants += [("xquad-pooled", False, False), ("xquad-sentence", False, True)]
    return [
        parallel_corpus_retrieval(
            xquad,
            name=name,
            query_langs=langs,
            doc_langs=langs,
            limit=size.xquad,
            per_target_language=per_language,
            first_sentence=first_sentence,
            dataset=name,
            **common,
        )
        for name, per_language, first_sentence in variants
    ]


def flores_english(root: Path, n: int) -> list[str]:
    """The first `n` English FLORES devtest sentences (texts for throughput measurements)."""
    from distill.data import iter_jsonl

    out = []
    for _, obj in iter_jsonl(root / FLORES_DEVTEST):
        if obj.get("lang") == "eng_Latn":
            out.append(obj["text"])
            if len(out) >= n:
                break
    return out


def _stsb(sts_dir: Path, langs: Sequence[str], limit: int, common: dict) -> list[StsEvaluator]:
    """Monolingual STSb dev for en + langs, and cross-lingual en-xx pairs joined on pair_id."""
    files = {lang: sts_dir / f"stsb-{lang}-dev.tsv" for lang in ["en", *langs]}
    rows = {lang: _read_stsb(path) for lang, path in files.items()}
    pair_ids = sorted(rows["en"])
    for lang, by_id in rows.items():
        if set(by_id) != set(pair_ids):
            raise ValueError(f"{files[lang]}: pair_ids differ from {files['en']}; cannot join the languages")
    n = len(pair_ids)
    ids = [pair_ids[i] for i in take_sample(n, limit)]
    out = []

    def make(
        name: str, l1: str, l2: str, s1: list[str], s2: list[str], scores: list[float], src: dict
    ) -> StsEvaluator:
        return StsEvaluator(
            s1, s2, scores, name=name, lang1=l1, lang2=l2, dataset="stsb", source=src, **common
        )

    for lang in ["en", *langs]:
        ex = rows[lang]
        src = {
            "file": str(files[lang]),
            "sha256": file_fingerprint(files[lang]),
            "total_pairs": n,
            "sampled": len(ids),
        }
        out.append(
            make(
                f"stsb-{lang}",
                lang,
                lang,
                [ex[i].sentence1 for i in ids],
                [ex[i].sentence2 for i in ids],
                [ex[i].score for i in ids],
                src,
            )
        )
    for lang in langs:
        en, xx = rows["en"], rows[lang]
        src = {
            "files": [str(files["en"]), str(files[lang])],
            "sha256": [file_fingerprint(files["en"]), file_fingerprint(files[lang])],
            "total_pairs": n,
            "sampled": len(ids),
            "pairing": "sentence1 en, sentence2 xx, same pair_id",
        }
        out.append(
            make(
                f"stsb-en-{lang}",
                "en",
                lang,
                [en[i].sentence1 for i in ids],
                [xx[i].sentence2 for i in ids],
                [en[i].score for i in ids],
                src,
            )
        )
    return out


def _read_stsb(path: Path) -> dict[str, StsExample]:
    """STSb-multi-mt rows keyed by pair_id (the column that aligns the language files)."""
    out = {}
    for number, row in iter_tsv(path, required=("sentence1", "sentence2", "score", "pair_id")):
        try:
            score = float(row["score"])
        except ValueError:
            raise DataError(path, number, f"score {row['score']!r} is not a number") from None
        out[row["pair_id"]] = StsExample(
            row["sentence1"], row["sentence2"], score, row.get("lang1", ""), row.get("lang2", "")
        )
    return out
