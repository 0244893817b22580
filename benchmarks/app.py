"""App benchmark: what a user waits for -- query latency end to end through the library API.

`Collection.search(query, model=..., k=10)` on the demo collection (XQuAD paragraphs, 12
languages), for the teacher shown in the app (the assistant A, multilingual-e5-small) and the
student S, over 200 real queries in 11 languages (STSb multi-MT sentences). Each search embeds the
query, searches FAISS (with and without a two-language filter) and reads the hits' snippets from
the database -- exactly what the app calls. The query embedding alone is timed too, so the table
shows where the time goes. Variants alternate in rounds after a warm-up; p50/p95 over all
queries, at 1 thread (the app's default) and 2 threads. Also measured once: opening the collection
and the first query of each model (model load included), i.e. a cold start.

The collection is `data/collections/xquad` when it exists and holds both models; otherwise one is
built in a temporary directory from the shared corpus (this adds the encoding time of the corpus
to the run, not to the measurements). Each model runs on the backend its collection records, as in
the app (`make demo` picks the fastest faithful one per model); a built collection uses --backend.

Examples:
  python -m benchmarks.app                         # 200 queries, threads 1 and 2 (~2 min + build)
  python -m benchmarks.app --quick                 # 40 queries, 60-document collection
  python -m benchmarks.app --collection data/collections/xquad --threads 1
  python -m benchmarks.app --quick --backend onnx     # a built collection, both models on ONNX Runtime
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import (
    STUDENT_HELP,
    BenchmarkError,
    LoadMonitor,
    base_parser,
    finish,
    interleave,
    log,
    markdown_table,
    paired_ratios,
    rounds_of,
    run_main,
    set_threads,
    student_or_note,
    summarize,
    thread_list,
)
from benchmarks.workloads import demo_corpus, real_queries
from distill.datasets import ASSISTANT_SPEC
from distill.models.encoder import Role

K = 10
FILTER_LANGS = ("en", "de")  # the app's language filter, as in the indexer's README example


def open_or_build(
    path: Path | None,
    specs: dict[str, str],
    tmp: Path,
    docs: int | None,
    threads: int,
    backend: str = "torch",
):
    """The collection to query, and how it was obtained."""
    from indexer import Collection, IndexerError
    from indexer.collection import normalize_spec
    from indexer.layout import COLLECTION_FILE

    if path is not None and (path / COLLECTION_FILE).is_file():
        t0 = time.perf_counter()
        col = Collection.open(path, read_only=True, threads=threads)
        open_s = time.perf_counter() - t0
        missing = [s for s in specs.values() if normalize_spec(s) not in col.models]
        if not missing:
            return col, {"collection": str(path), "built": False, "open_s": round(open_s, 3)}
        col.close()
        log(f"{path} lacks {missing}: building a temporary collection instead")
    target = tmp / "xquad"
    corpus = demo_corpus(docs)
    log(f"building a temporary collection of {len(corpus)} demo documents with {', '.join(specs.values())}")
    t0 = time.perf_counter()
    try:
        col = Collection.create(
            target,
            models=list(specs.values()),
            index_type="flat",
            threads=threads,
            show_progress=True,
            backends=backend,
        )
        col.add(corpus)
    except IndexerError as exc:
        raise BenchmarkError(str(exc)) from None
    build_s = time.perf_counter() - t0
    col.close()
    t0 = time.perf_counter()
    col = Collection.open(target, read_only=True, threads=threads)
    return col, {
        "collection": "temporary, from the shared demo corpus",
        "built": True,
        "docs": len(corpus),
        "build_s": round(build_s, 1),
        "open_s": round(time.perf_counter() - t0, 3),
    }


def _parser():
    parser = base_parser("app", __doc__)
    parser.add_argument(
        "--collection", help="collection directory (default data/collections/xquad; built if absent)"
    )
    parser.add_argument("--teacher", default=ASSISTANT_SPEC, help="the app's teacher (default: %(default)s)")
    parser.add_argument("--student", help=STUDENT_HELP)
    parser.add_argument("--queries", type=int, help="real queries (default 200; quick 40)")
    parser.add_argument(
        "--docs", type=int, help="documents when a collection is built (default all; quick 60)"
    )
    parser.add_argument("--threads", help="torch thread counts (default 1,2; quick 1)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5; quick 2)")
    parser.add_argument(
        "--backend",
        default="torch",
        help="backend of both models when a collection is built: torch, int8, onnx or onnx-int8 "
        "(an existing collection uses the ones it records; default: %(default)s)",
    )
    return parser


def _searcher(blocks: list[list[str]], name: str, fn: Callable[[str], object], store: dict) -> Callable:
    """One interleaved variant: round r runs `fn` on every query of blocks[r], its ms into store[name]."""

    def run(r: int) -> None:
        for q in blocks[r]:
            t0 = time.perf_counter_ns()
            fn(q)
            store.setdefault(name, []).append((time.perf_counter_ns() - t0) / 1e6)

    return run


def _variants(col, specs: dict[str, str], blocks: list[list[str]], store: dict) -> dict[str, Callable]:
    """Per model: a search, a search filtered by language, and the query embedding alone."""
    variants = {}
    langs = "+".join(FILTER_LANGS)
    for role, spec in specs.items():
        enc = col.encoder(spec)
        fns = {
            f"{role}: search": lambda q, spec=spec: col.search(q, model=spec, k=K),
            f"{role}: search, langs={langs}": lambda q, spec=spec: col.search(
                q, model=spec, k=K, langs=list(FILTER_LANGS)
            ),
            f"{role}: query embedding only": lambda q, enc=enc: enc.encode(
                [q], batch_size=1, prefix=Role.QUERY
            ),
        }
        variants.update({name: _searcher(blocks, name, fn, store) for name, fn in fns.items()})
    return variants


def _describe(col, specs: dict[str, str], source: dict) -> None:
    """The collection's backends, size and index types, into `source`."""
    from distill.modelspec import normalize_spec

    info, recorded = col.info(), col.model_backends()
    backends = {role: recorded.get(normalize_spec(spec), "torch") for role, spec in specs.items()}
    source["backends"] = backends
    log(f"backends (from the collection): {backends}")
    source.update(
        documents=info["documents"],
        chunks=info["chunks"],
        index_types={m["spec"]: m["factory"] for m in info["models"]},
    )


def _measure(col, specs: dict[str, str], queries, rounds: int, thread_counts: list[int]) -> tuple[dict, dict]:
    """Cold first query per model (model load included), then per thread count the interleaved
    latencies of every variant."""
    cold = {}
    for role, spec in specs.items():
        t0 = time.perf_counter()
        col.search(queries.texts[0], model=spec, k=K)
        cold[role] = round(time.perf_counter() - t0, 3)
    log(f"first query per model (model load included): {cold}")
    blocks = [queries.texts[i::rounds] for i in range(rounds)]
    latencies: dict[str, dict[str, list[float]]] = {}
    for threads in thread_counts:
        set_threads(threads)
        store: dict[str, list[float]] = {}
        variants = _variants(col, specs, blocks, store)
        for q in queries.texts[:5]:  # warm-up, not recorded
            for spec in specs.values():
                col.search(q, model=spec, k=K)
        log(f"threads={threads}: {len(variants)} variants x {len(queries.texts)} queries, {rounds} rounds")
        interleave(variants, rounds, warmup=0)
        latencies[str(threads)] = store
    return cold, latencies


def _results(latencies: dict) -> tuple[list[dict], dict]:
    """The table's rows and the results per thread count."""
    rows, results = [], {}
    for threads, store in latencies.items():
        res = {}
        for name, ms in store.items():
            s = summarize(ms)
            res[name] = {
                "p50_ms": round(s.median, 3),
                "p95_ms": round(s.p95, 3),
                "mean_ms": round(s.mean, 3),
                "qps": round(1000.0 / s.mean, 1),
                "queries": s.n,
            }
            rows.append({"threads": int(threads), "variant": name, **res[name]})
        if "student: search" in store and "teacher: search" in store:
            # Per-query ratio (same query, same round): teacher latency over student latency.
            ratio = paired_ratios(store["teacher: search"], store["student: search"])
            res["teacher_over_student_latency"] = ratio.to_dict(digits=3)
        results[threads] = res
    return rows, results


def _headline(cold: dict, source: dict, results: dict, specs: dict[str, str]) -> dict:
    headline: dict = {"cold_first_query_s": cold, "open_s": source["open_s"], "backends": source["backends"]}
    for threads, res in results.items():
        for role in specs:
            if f"{role}: search" in res:
                headline[f"{role}_p50_ms_t{threads}"] = res[f"{role}: search"]["p50_ms"]
                headline[f"{role}_p95_ms_t{threads}"] = res[f"{role}: search"]["p95_ms"]
        if "teacher_over_student_latency" in res:
            headline[f"student_speedup_t{threads}"] = res["teacher_over_student_latency"]["median"]
    return headline


TABLE_COLUMNS = [
    ("threads", "threads"),
    ("variant", "what"),
    ("p50_ms", "p50 ms", 1),
    ("p95_ms", "p95 ms", 1),
    ("qps", "queries/s", 1),
]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from distill.paths import data_dir

    nq, rounds = args.queries or (40 if args.quick else 200), rounds_of(args)
    docs = args.docs or (60 if args.quick else None)
    threads = thread_list(args.threads, args.quick)
    if rounds < 1 or nq < rounds or not threads:
        raise BenchmarkError("need --rounds >= 1, --queries >= --rounds and thread counts")
    notes: list[str] = []
    specs = {"teacher": args.teacher}
    missing = "no student (distill.paths.default_student() does not exist yet) and no --student: teacher only"
    if student := student_or_note(args.student, notes, missing):
        specs["student"] = student
    collection_path = Path(args.collection) if args.collection else data_dir() / "collections" / "xquad"

    load = LoadMonitor()
    queries = real_queries(nq, seed=args.seed)
    log(f"{len(queries.texts)} queries in {len(queries.lang_counts())} languages")
    set_threads(threads[0])
    with tempfile.TemporaryDirectory() as tmp:
        path = collection_path if (args.collection or not args.quick) else None
        col, source = open_or_build(path, specs, Path(tmp), docs, threads[0], args.backend)
        try:
            _describe(col, specs, source)
            cold, latencies = _measure(col, specs, queries, rounds, threads)
        finally:
            col.close()

    rows, results = _results(latencies)
    table = markdown_table(rows, TABLE_COLUMNS)
    on = ", ".join(f"{role} on {b}" for role, b in source["backends"].items())
    print(
        f"\n### End-to-end query latency ({nq} real queries in {len(queries.lang_counts())} languages, k={K}, "
        f"{source['chunks']} chunks; {on})\n\n{table}\n",
        flush=True,
    )
    print(f"cold start (open: {source['open_s']} s; first query incl. model load: {cold})\n", flush=True)
    config = {
        "specs": specs,
        "queries": nq,
        "query_languages": queries.lang_counts(),
        "query_source": queries.source,
        "k": K,
        "filter_langs": list(FILTER_LANGS),
        "threads": threads,
        "rounds": rounds,
        **source,
    }
    headline = _headline(cold, source, results, specs)
    return finish(
        "app",
        args=args,
        config=config,
        results=results,
        headline=headline,
        load=load,
        tables={"latency": table},
        notes=notes,
    )


if __name__ == "__main__":
    raise SystemExit(run_main(main))
