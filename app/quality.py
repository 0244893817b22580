"""The quality report of a collection's models, computed by the evaluation engine.

It leads with the app's own job: the real XQuAD dev questions (11 languages) against every
paragraph of the demo corpus, chunked as `indexer add` chunks them (`distill.evaluation.questions`):
cross-lingual R@1 per (query language, document language), pooled nDCG@10 / mAP@20 / Recall@10, the
share of hits in the query's own language, and a collapse check. Paragraph -> translated paragraph
(`xquad`, `xquad-pooled`) follows as the easy sanity check it is; a cost evaluator adds size and
speed. All restricted to the collection's languages. The engine writes metrics.json, report.md and
report.html; the Quality page reads them.

    python -m app.quality --teacher pkg:multilingual-e5-small --student data/students/offline \\
        --out data/reports/xquad [--langs de,es,zh] [--limit 20]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from app.settings import DEFAULT_STANDIN
from distill.datasets import XQUAD_LANGS, XQUAD_PARAGRAPHS, XQUAD_QUESTIONS_DEV
from distill.evaluation.suite import FULL
from distill.paths import shared_data_dir

# The dev suite's sizes (`distill evaluate --suite dev`), so the two reports' numbers compare:
DEFAULT_LIMIT = FULL.xquad  # paragraphs per language in the paragraph -> paragraph sanity check
COST_TEXTS = FULL.cost_texts  # English FLORES sentences timed per model
# Bumped whenever the report's content changes, so `make demo` rebuilds a stale report.
REPORT_SUITE = "app-quality/2"


def corpus_path() -> Path:
    return shared_data_dir() / XQUAD_PARAGRAPHS


def report_langs(collection_langs: Sequence[str] | None) -> list[str]:
    """The collection's languages that the dev retrieval set has (all of XQuAD's by default)."""
    if not collection_langs:
        return list(XQUAD_LANGS)
    return [lang for lang in XQUAD_LANGS if lang in set(collection_langs)]


def questions_path() -> Path:
    return shared_data_dir() / XQUAD_QUESTIONS_DEV


def quality_evaluators(
    langs: Sequence[str], *, limit: int = DEFAULT_LIMIT, show_progress: bool = False
) -> list:
    from distill.evaluation import CostEvaluator, parallel_corpus_retrieval
    from distill.evaluation.keys import QUESTIONS
    from distill.evaluation.questions import question_retrieval
    from distill.evaluation.suite import flores_english

    langs = list(langs)
    if len(langs) < 2:
        raise ValueError(
            f"the dev retrieval set needs two or more of {', '.join(XQUAD_LANGS)}; the collection has {langs}"
        )
    corpus = corpus_path()
    if not corpus.is_file():
        raise FileNotFoundError(f"the dev retrieval corpus is missing: {corpus} (set XLSEARCH_SHARED_DATA)")
    if not questions_path().is_file():
        raise FileNotFoundError(
            f"the dev questions are missing: {questions_path()} (set XLSEARCH_SHARED_DATA)"
        )
    common = {"query_langs": langs, "doc_langs": langs, "limit": limit, "show_progress": show_progress}
    return [
        question_retrieval(
            questions_path(), corpus, langs=langs, dataset=QUESTIONS, show_progress=show_progress
        ),
        parallel_corpus_retrieval(corpus, name="xquad", per_target_language=True, dataset="xquad", **common),
        parallel_corpus_retrieval(
            corpus, name="xquad-pooled", per_target_language=False, dataset="xquad-pooled", **common
        ),
        CostEvaluator(flores_english(shared_data_dir(), COST_TEXTS), batch_size=32),
    ]


def compute_report(
    models: dict[str, str],
    out_dir: str | Path,
    *,
    langs: Sequence[str] | None = None,
    limit: int = DEFAULT_LIMIT,
    progress: Callable[[float, str], None] | None = None,
    threads: int | None = None,
    show_progress: bool = False,
):
    """Evaluate `models` (label -> spec; labels `teacher`/`student` mark roles) and write the report."""
    from distill.evaluation.runner import evaluate_models

    langs = report_langs(langs)
    evaluators = quality_evaluators(langs, limit=limit, show_progress=show_progress)
    notes = [
        f"xquad-questions (the app's job): the real XQuAD dev questions in {', '.join(lang for lang in langs if lang != 'ro')} "
        f"against all XQuAD paragraphs in {', '.join(langs)}, chunked as `indexer add` does; R@1 ranks each "
        "document language's paragraphs alone, the pooled metrics all of them together.",
        f"xquad / xquad-pooled (easy sanity check): {limit} paragraphs, query = a paragraph, relevant = its "
        "translations; a model that keeps the words' identity solves it.",
        "Questions and paragraphs are for evaluation only, never training data.",
    ]
    # load_encoder(threads=) applies only while its encoder encodes: the app's own setting is untouched.
    return evaluate_models(
        models, evaluators, out_dir, progress=progress, threads=threads, suite=REPORT_SUITE, notes=notes
    )


def report_is_current(out_dir: str | Path, models: dict[str, str]) -> bool:
    """Whether the report in `out_dir` has this version's content and covers exactly `models` (label -> spec)."""
    from distill.evaluation.results import load_results

    try:
        run = load_results(out_dir)
    except (OSError, ValueError, KeyError):
        return False
    return run.suite == REPORT_SUITE and {m.label: m.spec for m in run.models} == dict(models)


def role_models(teacher: str, student: str, *, student_label: str = "student") -> dict[str, str]:
    """label -> spec for the report; a stand-in keeps the label `stand-in`, never `student`."""
    return {"teacher": teacher, student_label: student}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.quality",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--teacher", required=True, help="teacher model spec")
    parser.add_argument(
        "--student",
        required=True,
        help=f"student model spec ({DEFAULT_STANDIN} is labelled `stand-in` in the report)",
    )
    parser.add_argument("--out", required=True, type=Path, help="report directory")
    parser.add_argument(
        "--check",
        action="store_true",
        help="compute nothing: exit 0 if the report in --out is current for these models, else 1",
    )
    parser.add_argument("--langs", help="comma-separated languages (default: all 12 of XQuAD)")
    parser.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, help=f"paragraphs per language (default {DEFAULT_LIMIT})"
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)

    from distill.documents import DataError
    from distill.evaluation.runner import percent_progress
    from distill.models import ModelNotFoundError

    langs = [c.strip() for c in args.langs.split(",") if c.strip()] if args.langs else None
    models = role_models(
        args.teacher, args.student, student_label="stand-in" if args.student == DEFAULT_STANDIN else "student"
    )
    if args.check:
        return 0 if report_is_current(args.out, models) else 1
    bar, progress = percent_progress("quality report")

    try:
        run = compute_report(
            models, args.out, langs=langs, limit=args.limit, progress=progress, threads=args.threads
        )
    except (ValueError, FileNotFoundError, DataError, ModelNotFoundError) as exc:
        bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bar.close()
    print(f"wrote {args.out}/metrics.json, report.md, report.html in {run.wall_seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
