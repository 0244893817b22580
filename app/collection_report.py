"""The Quality page's first table: the dev questions against the collection the user searches.

Only the questions are embedded: the paragraphs' vectors are the ones the collection stored, and
the search is the app's own (`Collection.search_vectors`, no language filter, k = 10). For each
model: R@1 (the first hit is the question's paragraph) and nDCG@10, split by whether that paragraph
is in the question's language ("same") or only in another one ("other": the demo collection holds
each paragraph once, so 11 in 12 questions). Plus the match-strength calibration (app/calibration.py):
the share of first hits below and above `NO_MATCH_BELOW` that are correct.

Relevant documents: those whose `parallel_id` (or id without its `.lang`) is the question's.
Progress and the result are JSON files in OUT (`progress.json`, `collection.json`), so the app can
show a report that a background process (`make demo`) is still computing.

    python -m app.collection_report COLLECTION_DIR --out data/reports/xquad [--model SPEC ...]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from app.calibration import NO_MATCH_BELOW, load, sample_reference

RESULT, PROGRESS = "collection.json", "progress.json"
K = 10
BATCH = 64
THRESHOLDS = (2.0, 2.25, 2.5, 2.75, 3.0, 3.5, 4.0, 5.0)


def group_of(doc_id: str, metadata: dict | None = None) -> str:
    """The parallel group of a document: its `parallel_id`, else its id without the `.lang` suffix."""
    pid = (metadata or {}).get("parallel_id")
    return str(pid) if pid else str(doc_id).rsplit(".", 1)[0]


def read_questions(path: Path, langs: Sequence[str] | None = None) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [r for r in rows if langs is None or r["lang"] in langs]


def score_question(hits, relevant: set[str]) -> tuple[bool, float]:
    """(first hit relevant, nDCG@K) for one question's hits (doc ids) and its relevant doc ids."""
    gains = [1.0 / math.log2(rank + 2) for rank, d in enumerate(hits[:K]) if d in relevant]
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(len(relevant), K)))
    return bool(hits and hits[0] in relevant), (sum(gains) / ideal if ideal else 0.0)


def calibration_table(strengths: Sequence[float], correct: Sequence[bool]) -> list[dict]:
    """Per threshold: how many first hits fall below / above it and the share of each that is correct."""
    s, c = np.asarray(strengths, float), np.asarray(correct, bool)
    rows = []
    for t in sorted({*THRESHOLDS, NO_MATCH_BELOW}):
        below, above = s < t, s >= t
        rows.append(
            {
                "threshold": t,
                "below": int(below.sum()),
                "below_correct": float(c[below].mean()) if below.any() else None,
                "above": int(above.sum()),
                "above_correct": float(c[above].mean()) if above.any() else None,
            }
        )
    return rows


def _summary(rows: list[dict]) -> dict:
    def part(sel):
        return {
            "questions": len(sel),
            "r@1": float(np.mean([r["hit"] for r in sel])) if sel else None,
            "ndcg@10": float(np.mean([r["ndcg"] for r in sel])) if sel else None,
        }

    return {
        "all": part(rows),
        "same": part([r for r in rows if r["same"]]),
        "other": part([r for r in rows if not r["same"]]),
    }


def evaluate_model(
    col, spec: str, questions: list[dict], groups: dict[str, dict[str, str]], ref, tick
) -> dict:
    """Embed the questions with `spec`, search the collection, score every question."""
    rows = []
    for start in range(0, len(questions), BATCH):
        part = questions[start : start + BATCH]
        vectors = col.embed_queries([q["text"] for q in part], spec)
        for q, vec, hits in zip(part, vectors, col.search_vectors(vectors, spec, k=K), strict=True):
            relevant = groups.get(q["parallel_id"], {})
            hit, ndcg = score_question([h.doc_id for h in hits], set(relevant))
            strength = float(ref.strengths(vec, [hits[0].score])[0]) if ref is not None and hits else None
            rows.append(
                {"hit": hit, "ndcg": ndcg, "same": q["lang"] in relevant.values(), "strength": strength}
            )
        tick(len(part))
    out = {"spec": spec, **_summary(rows)}
    if ref is not None:
        out["calibration"] = calibration_table([r["strength"] for r in rows], [r["hit"] for r in rows])
    return out


def evaluate_collection(
    col,
    questions_path: Path,
    models: dict[str, str],
    progress: Callable[[float, str], None] = lambda f, m: None,
) -> dict:
    """label -> the collection's spec: the question table and calibration of each model."""
    groups: dict[str, dict[str, str]] = {}
    for doc in col.documents():
        groups.setdefault(group_of(doc.id, doc.metadata), {})[doc.id] = doc.lang
    langs = sorted({lang for g in groups.values() for lang in g.values()})
    questions = [q for q in read_questions(questions_path, langs) if q["parallel_id"] in groups]
    if not questions:
        raise ValueError(f"no dev question in {questions_path} has its paragraph in {col.path}")
    refs = load(col.path)
    total, done = len(questions) * len(models), 0
    t0, result = time.time(), {"models": {}}
    for label, spec in models.items():

        def tick(n: int, label: str = label) -> None:
            nonlocal done
            done += n
            progress(done / total, f"{label}: {done}/{total} questions embedded and searched")

        ref = refs.get(spec)
        if ref is None:  # no calibration.npz: drawn from the stored vectors as the app does (app.common)
            ref = sample_reference(col.stored_vectors(spec)[1])
        result["models"][label] = evaluate_model(col, spec, questions, groups, ref, tick)
    result.update(
        documents=sum(len(g) for g in groups.values()),
        languages=langs,
        question_languages=sorted({q["lang"] for q in questions}),
        questions=len(questions),
        no_match_below=NO_MATCH_BELOW,
        backends=col.model_backends(),
        wall_seconds=round(time.time() - t0, 1),
        created=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    )
    return result


def write_json(path: Path, obj) -> None:
    from distill.fileio import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(obj, indent=1) + "\n")


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.collection_report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("collection", help="collection directory")
    parser.add_argument(
        "--out", required=True, type=Path, help="report directory (collection.json, progress.json)"
    )
    parser.add_argument(
        "--model", action="append", metavar="LABEL=SPEC", help="default: every model, by spec"
    )
    parser.add_argument(
        "--questions", type=Path, help="dev questions JSONL (default: the shared XQuAD dev questions)"
    )
    args = parser.parse_args(argv)
    from app.quality import questions_path
    from indexer import Collection, IndexerError

    progress_file = args.out / PROGRESS
    try:
        with Collection.open(args.collection, read_only=True) as col:
            models = dict(m.split("=", 1) for m in args.model) if args.model else {s: s for s in col.models}

            def progress(fraction: float, message: str) -> None:
                write_json(
                    progress_file, {"fraction": round(fraction, 4), "message": message, "time": time.time()}
                )

            progress(0.0, "loading the models")
            result = evaluate_collection(col, args.questions or questions_path(), models, progress)
    except (IndexerError, ValueError, OSError, KeyError) as exc:
        write_json(progress_file, {"fraction": 0.0, "error": str(exc), "time": time.time()})
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_json(args.out / RESULT, result)
    progress_file.unlink(missing_ok=True)
    print(f"wrote {args.out / RESULT} in {result['wall_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
