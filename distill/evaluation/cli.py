"""Evaluate one or more models and write metrics.json, report.md and report.html.

Models are `SPEC` or `LABEL=SPEC` (SPEC: pkg:NAME, a directory, or a hub id); the labels
`teacher`, `assistant` and `student` mark roles, and other models are compared with the teacher
(or with the first model). Data comes from a suite or from files (mix freely).

examples:
  distill evaluate --model teacher=pkg:multilingual-e5-small --model student=pkg:all-MiniLM-L6-v2 \\
      --suite dev --out data/reports/dev
  distill evaluate --model data/students/offline --suite quick --langs de,fr,zh --out /tmp/quick
  distill evaluate --model pkg:multilingual-e5-small \\
      --bitext ../shared/data/parallel/multi30k/multi30k.val.en-de.tsv \\
      --bitext ../shared/data/dev/flores200_devtest.jsonl --langs de,fr --margin \\
      --sts ../shared/data/sts/stsb_multi_mt/stsb-de-dev.tsv \\
      --retrieval queries=q.jsonl,corpus=c.jsonl,qrels=qrels.tsv --out data/reports/mine

suites (subsampled with a fixed seed; contents and metrics: docs/evaluation.md):
  dev    XQuAD dev questions -> all 2,880 paragraphs (the app's job, printed first), FLORES-200
         devtest and its short half + Multi30k val bitext, STSb dev (mono- and cross-lingual),
         XQuAD paragraph -> paragraph retrieval, cost
  quick  a smaller sample (550 questions -> 720 paragraphs, fewer bitext and STS languages, no
         paragraph retrieval): what the distillation stages run after each stage

On cores shared with other jobs, --threads 1 is often faster than torch's default.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        "-m",
        action="append",
        default=[],
        metavar="[LABEL=]SPEC",
        required=True,
        help="model to evaluate (repeat for several)",
    )
    _add_data_arguments(parser)
    parser.add_argument(
        "--no-cost", action="store_true", help="skip the cost evaluator (size, speed, memory)"
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--batch-size", type=int, default=64, help="encoding batch size (default 64)")
    parser.add_argument("--max-seq-length", type=int, help="cap tokens per text (default: each model's own)")
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="let models that ship their own Python code (auto_map) run it; trusted authors only",
    )
    parser.add_argument(
        "--out", "-o", type=Path, help="output directory (default: data/reports/<suite or 'custom'>)"
    )


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """What to evaluate on: a suite and/or files, and how to sample and score them."""
    parser.add_argument(
        "--suite", choices=("dev", "quick"), help="built-in evaluation suite on the shared data"
    )
    parser.add_argument(
        "--bitext",
        nargs="+",
        action="extend",
        default=[],
        metavar="FILE",
        help="bitext files: two-column TSV with a language header, or multi-parallel JSONL",
    )
    parser.add_argument(
        "--sts",
        nargs="+",
        action="extend",
        default=[],
        metavar="FILE",
        help="STS TSV files (sentence1 sentence2 score [lang1 lang2 ...])",
    )
    parser.add_argument(
        "--retrieval",
        action="append",
        default=[],
        metavar="queries=Q,corpus=C,qrels=R",
        help="retrieval set: queries JSONL, corpus JSONL, qrels TSV (repeatable)",
    )
    parser.add_argument(
        "--langs", help="comma-separated languages to keep (any code style; default: suite's / all)"
    )
    parser.add_argument("--limit", type=int, help="sample at most this many pairs/ids per file (fixed seed)")
    parser.add_argument(
        "--margin", action="store_true", help="bitext: ratio-margin scoring (k=4) instead of cosine"
    )
    parser.add_argument(
        "--per-target-language",
        action="store_true",
        help="retrieval from files: search one document language at a time (default: all together)",
    )


def _parse_retrieval(value: str) -> dict[str, str]:
    parts = {}
    for item in value.split(","):
        key, sep, path = item.partition("=")
        if not sep or key not in ("queries", "corpus", "qrels"):
            raise ValueError(f"--retrieval expects queries=Q,corpus=C,qrels=R, got {value!r}")
        parts[key] = path
    missing = {"queries", "corpus", "qrels"} - set(parts)
    if missing:
        raise ValueError(f"--retrieval {value!r} lacks {sorted(missing)}")
    return parts


def build_evaluators(args: argparse.Namespace) -> list:
    from distill.evaluation import dev_suite

    langs = [c.strip() for c in args.langs.split(",") if c.strip()] if args.langs else None
    common = {"batch_size": args.batch_size, "show_progress": True}
    evaluators: list = []
    if args.suite:
        evaluators += dev_suite(quick=args.suite == "quick", langs=langs, include_cost=False, **common)
    evaluators += _bitext_evaluators(args, langs, common)
    if args.margin and args.suite:
        for ev in evaluators:
            if hasattr(ev, "margin"):
                ev.margin = True
    evaluators += _sts_and_retrieval_evaluators(args, common)
    if not evaluators:
        raise ValueError("nothing to evaluate: give --suite, --bitext, --sts or --retrieval")
    names = [ev.name for ev in evaluators]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"two evaluators are named {dup}: rename the files or drop one")
    if not args.no_cost:
        evaluators += _cost_evaluator(args)
    return evaluators


def _bitext_evaluators(args: argparse.Namespace, langs: list[str] | None, common: dict) -> list:
    from distill.evaluation import bitext_from_pair_tsv, bitext_from_parallel_jsonl

    out: list = []
    for path in map(Path, args.bitext):
        if path.suffix == ".jsonl":
            out += bitext_from_parallel_jsonl(
                path, langs=langs, limit=args.limit, margin=args.margin, **common
            )
        else:
            out.append(bitext_from_pair_tsv(path, limit=args.limit, margin=args.margin, **common))
    return out


def _sts_and_retrieval_evaluators(args: argparse.Namespace, common: dict) -> list:
    from distill.evaluation import retrieval_from_files, sts_from_tsv

    out: list = []
    for path in args.sts:
        out += sts_from_tsv(path, limit=args.limit, **common)
    for i, value in enumerate(args.retrieval):
        parts = _parse_retrieval(value)
        stem = Path(parts["queries"]).stem
        name = stem if len(args.retrieval) == 1 else f"{stem}-{i + 1}"
        out.append(
            retrieval_from_files(
                parts["queries"],
                parts["corpus"],
                parts["qrels"],
                name=name,
                per_target_language=args.per_target_language,
                **common,
            )
        )
    return out


def _cost_evaluator(args: argparse.Namespace) -> list:
    from distill.datasets import FLORES_DEVTEST
    from distill.evaluation import CostEvaluator
    from distill.evaluation.suite import flores_english
    from distill.paths import shared_data_dir

    flores = shared_data_dir() / FLORES_DEVTEST
    if (
        not flores.is_file()
    ):  # e.g. an installed copy evaluating the user's own files: the rest runs without it
        print(
            f"note: cost evaluator skipped: its texts ({flores}) are absent; set XLSEARCH_SHARED_DATA "
            "or pass --no-cost",
            file=sys.stderr,
        )
        return []
    n = 64 if args.suite == "quick" else 128
    return [CostEvaluator(flores_english(shared_data_dir(), n), batch_size=32, threads=args.threads)]


def main(args: argparse.Namespace) -> int:

    from distill.data import DataError
    from distill.evaluation.runner import evaluate_models, parse_model_args, percent_progress
    from distill.models import ModelNotFoundError, RemoteCodeError, UnsupportedModelError
    from distill.paths import data_dir

    try:
        models = parse_model_args(args.model)
        evaluators = build_evaluators(args)
    except (DataError, FileNotFoundError) as exc:  # unreadable input: a runtime failure
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # what the command line asks for makes no sense
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = args.out or data_dir() / "reports" / (args.suite or "custom")
    notes = []
    if args.suite:
        notes.append(
            f"suite '{args.suite}': subsampled with a fixed seed (see the Data table) to finish in minutes on "
            "2 CPU cores; bitext over 100-200 candidates is easier than over a full test set and Spearman over "
            "100 pairs moves by about 0.05, so compare numbers only within one suite"
        )
    if args.margin:
        notes.append("bitext scored with the ratio margin (k=4)")
    bar, progress = percent_progress("evaluate")

    try:
        run = evaluate_models(
            models,
            evaluators,
            out,
            progress=progress,
            threads=args.threads,
            max_seq_length=args.max_seq_length,
            suite=args.suite,
            notes=notes,
            trust_remote_code=args.trust_remote_code,
        )
    except (ModelNotFoundError, RemoteCodeError, UnsupportedModelError, DataError, FileNotFoundError) as exc:
        bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    bar.close()
    from distill.evaluation.report_views import datasets, overall

    labels = [m.label for m in run.models]
    print(f"{'data set':<16}" + "".join(f"{lbl:>14}" for lbl in labels))
    for task, ds in datasets(run):
        vals = overall(run, task, ds)
        print(f"{ds:<16}" + "".join(f"{vals.get(lbl, float('nan')):>14.3f}" for lbl in labels))
    print(f"wrote {out}/metrics.json, report.md, report.html in {run.wall_seconds:.0f} s")
    return 0
