"""Backend quality: what each serving backend costs on the app's job, the dev question task.

Every model (assistant A, the app's teacher; student S; optionally the English teacher T) is loaded
on every backend exactly as the product loads it (`load_encoder(spec, backend=...)`: `torch` fp32,
`int8`, `onnx`, `onnx-int8`) and scored by the dev suite's question evaluator (XQuAD dev questions
in 11 languages -> XQuAD paragraphs in 12, chunked as `indexer add` chunks them). Reported per
variant: cross-lingual R@1 (the primary metric), same-language R@1 and pooled nDCG@10, and each one's
difference to the same model on torch fp32. A backend the product refuses for a model (mean cosine
to fp32 below 0.995 on its check texts) is listed as refused and not scored.

Beside them, the student as the *query encoder only* (`S-<backend> -> A index`): questions
embedded by the student against paragraphs embedded by A on torch. Documents are embedded once,
offline and batched, so they can afford A; what a user waits for is the query.

Examples:
  python -m benchmarks.quality                          # 100 question groups x 11 languages, all 2,880 paragraphs
  python -m benchmarks.quality --quick                  # 10 groups against 30 x 12 paragraphs
  python -m benchmarks.quality --questions 0 --backends torch,onnx-int8   # all 3,542 questions
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import (
    STUDENT_HELP,
    BenchmarkError,
    LoadMonitor,
    base_parser,
    finish,
    log,
    markdown_table,
    run_main,
    set_threads,
    student_or_note,
)
from distill.datasets import ASSISTANT_SPEC, TEACHER_SPEC, XQUAD_PARAGRAPHS, XQUAD_QUESTIONS_DEV
from distill.evaluation import keys as K

METRICS = (K.XLING_R1, K.MONO_R1, K.NDCG10)
NAME = K.QUESTIONS


def _evaluator(args):
    from distill.evaluation.questions import question_retrieval
    from distill.paths import shared_data_dir

    root = shared_data_dir()
    groups = args.questions if args.questions is not None else (10 if args.quick else 100)
    paragraphs = args.paragraphs if args.paragraphs is not None else (30 if args.quick else 0)
    try:
        return question_retrieval(
            root / XQUAD_QUESTIONS_DEV,
            root / XQUAD_PARAGRAPHS,
            questions=groups or None,
            paragraphs=paragraphs or None,
            dataset=NAME,
        )
    except FileNotFoundError as exc:
        raise BenchmarkError(f"{exc} (set XLSEARCH_SHARED_DATA)") from exc


def _score(ev, q: np.ndarray, paragraphs: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:
    metrics = ev.score(ev.paragraph_scores(q, paragraphs))
    return {m: round(float(metrics[f"{NAME}_{m}"]), 4) for m in METRICS}


def _score_model(ev, role: str, spec: str, backends, threads: int, results, refused, a_index=None):
    """Score `spec` on every backend; with `a_index` (A's paragraph vectors) also its questions
    against A's paragraphs. Returns the paragraph vectors of its torch variant."""
    from distill.models import BackendError, load_encoder

    torch_paragraphs = None
    for backend in backends:
        name = f"{role}-{backend.value}"
        log(f"{name}: loading {spec}")
        try:
            encoder = load_encoder(spec, backend=backend, threads=threads)
        except BackendError as exc:  # refused (cosine below 0.995) or not exportable
            refused[name] = str(exc)
            log(f"{name}: refused: {exc}")
            continue
        t0 = time.perf_counter()
        q = ev.question_vectors(encoder)
        results[name] = {"model": role, "backend": backend.value, "index": role}
        paragraphs = ev.paragraph_vectors(encoder)
        if backend == "torch":
            torch_paragraphs = paragraphs
        results[name] |= _score(ev, q, paragraphs) | {"seconds": round(time.perf_counter() - t0, 1)}
        log(f"{name}: {results[name]}")
        if a_index is not None and a_index[0].shape[1] == encoder.dim:  # A's space, if S shares its width
            results[f"{name} -> A index"] = {"model": role, "backend": backend.value, "index": "A"}
            results[f"{name} -> A index"] |= _score(ev, q, a_index)
            log(f"{name} -> A index: {results[f'{name} -> A index']}")
        del encoder
        ev.cache.clear()
    return torch_paragraphs


def _table(results: dict[str, dict]) -> str:
    rows = []
    for name, r in results.items():
        base = results.get(f"{r['model']}-torch" + (" -> A index" if r["index"] != r["model"] else ""))
        row = {"variant": name, "index": r["index"], **{m: r[m] for m in METRICS}}
        row |= {f"d_{m}": r[m] - base[m] if base else None for m in METRICS}
        rows.append(row)
    columns = [("variant", "variant"), ("index", "paragraphs by")]
    columns += [(m, m, 3) for m in METRICS] + [(f"d_{m}", f"{m} vs torch", 3) for m in METRICS]
    return markdown_table(rows, columns)


def _parser():
    parser = base_parser("quality", __doc__)
    parser.add_argument(
        "--assistant", default=ASSISTANT_SPEC, help="A, the app's teacher (default: %(default)s)"
    )
    parser.add_argument("--student", help=STUDENT_HELP)
    parser.add_argument("--with-teacher", action="store_true", help=f"also score T ({TEACHER_SPEC})")
    parser.add_argument(
        "--backends", default="torch,int8,onnx,onnx-int8", help="comma-separated (default: %(default)s)"
    )
    parser.add_argument(
        "--questions", type=int, help="question groups, each in 11 languages (0: all; default 100, quick 10)"
    )
    parser.add_argument(
        "--paragraphs", type=int, help="parallel paragraph ids, x12 languages (0: all 240; quick 30)"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: %(default)s)")
    return parser


def _backends(text: str) -> list:
    from distill.models import Backend

    try:
        backends = [Backend(b.strip()) for b in text.split(",") if b.strip()]
    except ValueError as exc:
        raise BenchmarkError(f"{exc}; choose from {', '.join(b.value for b in Backend)}") from exc
    if not backends:
        raise BenchmarkError("--backends is empty")
    return backends


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    backends = _backends(args.backends)
    set_threads(args.threads)
    ev = _evaluator(args)
    notes: list[str] = []
    student = student_or_note(args.student, notes, "no student (see distill.paths.default_student): A only")
    load = LoadMonitor()
    results: dict[str, dict] = {}
    refused: dict[str, str] = {}
    from distill.models import load_encoder

    log(f"{len(ev.questions)} questions, {len(ev.paragraphs)} paragraphs")
    a_index = _score_model(ev, "A", args.assistant, backends, args.threads, results, refused)
    if student and a_index is None:  # torch not among --backends: A's index still needs it
        a_index = ev.paragraph_vectors(load_encoder(args.assistant, threads=args.threads))
    if student:
        _score_model(ev, "S", student, backends, args.threads, results, refused, a_index)
        if not any(name.endswith("-> A index") for name in results):
            notes.append("S and A embed in different dimensions: no S -> A index rows")
    if args.with_teacher:
        _score_model(ev, "T", TEACHER_SPEC, backends, args.threads, results, refused)
    table = _table(results)
    print(table)
    if refused:
        print("\nrefused: " + "; ".join(f"{k}: {v}" for k, v in refused.items()))
    n_q, n_d = len(ev.questions), len(ev.paragraphs)
    config = {"assistant": args.assistant, "student": student, "questions": n_q, "paragraphs": n_d}
    config["backends"] = [b.value for b in backends]
    config["threads"] = args.threads
    headline = {name: r[K.XLING_R1] for name, r in results.items()}
    headline["refused"] = sorted(refused)
    return finish(
        "quality",
        args=args,
        config=config,
        results={"variants": results, "refused": refused},
        headline=headline,
        load=load,
        tables={"question task": table},
        notes=notes,
    )


if __name__ == "__main__":
    raise SystemExit(run_main(main))
