"""Indexer benchmark: build throughput next to the bare encoder, and index size per index type.

Build throughput: for each model, the sample of demo documents (XQuAD paragraphs, 12 languages,
fixed seed) is cut into rounds; in every round the bare encoder embeds the round's documents
(`encode(texts, prefix="passage")`, batch 32) and `Collection.add` indexes the same documents into a
fresh single-model collection (validation, chunking, SQLite transactions, embedding of the chunks,
FAISS, fsynced commits), alternating which goes first. Reported: documents/s of both and their
per-round ratio, and how the build's time splits into encoding and everything else. The bare
encoder truncates a document at the model's max_seq_length; the indexer chunks it instead, so it
embeds every token (more texts, shorter ones).

Index sizes: the built collection is rebuilt (from its stored vectors, no re-encoding) as flat,
hnsw and ivfpq; reported per type: index file bytes, rebuild seconds and single-query search
latency. `--collection DIR` does the same on a copy of an existing collection (e.g. the demo).

Examples:
  python -m benchmarks.indexer_build                                   # 480 documents, teacher + stand-in
  python -m benchmarks.indexer_build --quick
  python -m benchmarks.indexer_build --docs 960 --models pkg:multilingual-e5-small --threads 2
  python -m benchmarks.indexer_build --docs 0 --collection data/collections/xquad   # sizes of the demo only
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import (
    BenchmarkError,
    LoadMonitor,
    base_parser,
    finish,
    log,
    markdown_table,
    paired_ratios,
    run_main,
    set_threads,
    summarize,
)
from benchmarks.workloads import DEMO_CORPUS
from distill.data import read_corpus_jsonl
from distill.datasets import ASSISTANT_SPEC, TEACHER_SPEC
from distill.models.encoder import Role
from distill.paths import shared_data_dir

QUERIES = [
    "¿Quién ganó el Super Bowl 50?",
    "Wie viele Einwohner hat Warschau?",
    "什么是计算复杂性理论？",
    "Who designed the first alternating current motor?",
    "Что такое кислород?",
    "Qui a fondé la Normandie?",
]
INDEX_TYPES = ("flat", "hnsw", "ivfpq")


def _build_throughput(spec: str, docs: list, rounds: int, threads: int, batch: int, tmp: Path) -> dict:
    from distill.models import load_encoder
    from indexer import Collection

    enc = load_encoder(spec, threads=threads)
    parts = [docs[i::rounds] for i in range(rounds)]
    enc.encode([d.text for d in parts[0][:8]], prefix=Role.PASSAGE)  # warm-up
    path = tmp / f"build-{spec.replace(':', '_').replace('/', '_')}"
    col = Collection.create(path, [spec], encoders={spec: enc}, threads=threads, batch_size=batch)
    bare, build, encode_in_build, chunks = [], [], [], 0
    try:
        for r, part in enumerate(parts):

            def run_bare(part=part):
                t = time.perf_counter()
                enc.encode([d.text for d in part], batch_size=batch, prefix=Role.PASSAGE)
                bare.append(time.perf_counter() - t)

            def run_build(part=part):
                nonlocal chunks
                summary = col.add(part)
                build.append(summary.seconds)
                encode_in_build.append(summary.encode_seconds[col.models[0]])
                chunks += summary.chunks

            for fn in (run_bare, run_build) if r % 2 == 0 else (run_build, run_bare):
                fn()
            log(
                f"{spec}: round {r + 1}/{rounds}: bare {len(part) / bare[-1]:.1f} docs/s, "
                f"build {len(part) / build[-1]:.1f} docs/s"
            )
        sizes = [len(p) for p in parts]
        bare_rate = [n / s for n, s in zip(sizes, bare, strict=True)]
        build_rate = [n / s for n, s in zip(sizes, build, strict=True)]
        return {
            "model": spec,
            "documents": len(docs),
            "chunks": chunks,
            "rounds": rounds,
            "bare_docs_per_s": summarize(bare_rate),
            "build_docs_per_s": summarize(build_rate),
            "build_over_bare": paired_ratios(build_rate, bare_rate),
            "build_encode_share": round(sum(encode_in_build) / sum(build), 3),
            "chunks_per_doc": round(chunks / len(docs), 2),
            "collection": col,
        }
    except BaseException:
        col.close()
        raise


def _index_sizes(col, label: str) -> list[dict]:
    from indexer import faiss_index

    rows = []
    for kind in INDEX_TYPES:
        t = time.perf_counter()
        col.rebuild(kind)
        seconds = time.perf_counter() - t
        info = col.info()
        for m in info["models"]:
            state = col._model(m["spec"])
            enc = col.encoder(m["spec"])
            q = enc.encode(QUERIES, prefix=Role.QUERY)
            q /= np.linalg.norm(q, axis=1, keepdims=True)
            lat = []
            for _ in range(5):
                for v in q:
                    t0 = time.perf_counter()
                    faiss_index.search(
                        state.index,
                        v[None, :],
                        40,
                        ef_search=state.index_spec.ef_search,
                        nprobe=state.index_spec.nprobe,
                    )
                    lat.append(time.perf_counter() - t0)
            rows.append(
                {
                    "collection": label,
                    "model": m["name"],
                    "index_type": kind,
                    "factory": m["factory"],
                    "vectors": m["vectors"],
                    "index_bytes": m["index_bytes"],
                    "bytes_per_vector": m["index_bytes"] / max(m["vectors"], 1),
                    "stored_vector_bytes": m["stored_vector_bytes"],
                    "rebuild_s": round(seconds, 2),
                    "search_ms_p50": round(1000 * float(np.median(lat)), 3),
                }
            )
        log(f"{label}: rebuilt as {kind} in {seconds:.1f} s")
    return rows


THROUGHPUT_COLUMNS = [
    ("model", "model"),
    ("documents", "docs"),
    ("chunks_per_doc", "chunks/doc"),
    ("bare", "bare encoder docs/s", 1),
    ("build", "indexer build docs/s", 1),
    ("ratio", "build / bare", 2),
    ("build_encode_share", "encoding share of build", 2),
]
SIZE_COLUMNS = [
    ("collection", "collection"),
    ("model", "model"),
    ("index_type", "type"),
    ("factory", "FAISS"),
    ("vectors", "vectors"),
    ("index_bytes", "index bytes"),
    ("bytes_per_vector", "bytes/vector", 0),
    ("rebuild_s", "rebuild s"),
    ("search_ms_p50", "search ms p50", 3),
]


def _parser():
    parser = base_parser("indexer_build", __doc__)
    parser.add_argument("--docs", type=int, default=480, help="documents in the throughput sample (0: skip)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds (bare and build alternate)")
    parser.add_argument(
        "--models", default=f"{ASSISTANT_SPEC},{TEACHER_SPEC}", help="comma-separated model specs"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch and FAISS threads (default 1)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--collection", type=Path, help="also measure index sizes of a copy of this collection"
    )
    return parser


def _sample(args) -> list:
    """`args.docs` documents of the demo corpus, shuffled with the seed."""
    corpus = shared_data_dir() / DEMO_CORPUS
    if not corpus.is_file():
        raise BenchmarkError(f"demo corpus not found at {corpus}")
    docs = read_corpus_jsonl(corpus)
    random.Random(args.seed).shuffle(docs)
    return docs[: args.docs]


def _measure(args, docs: list, specs: list[str]) -> dict:
    """Build rate per model on the sample, and index sizes (also of a copy of --collection)."""
    results: dict = {"throughput": [], "sizes": []}
    with tempfile.TemporaryDirectory(prefix="xl-bench-") as tmp:
        tmp = Path(tmp)
        for spec in specs if docs else []:
            row = _build_throughput(spec, docs, args.rounds, args.threads, args.batch_size, tmp)
            col = row.pop("collection")
            try:
                results["throughput"].append(row)
                results["sizes"] += _index_sizes(col, f"sample ({len(docs)} docs)")
            finally:
                col.close()
        if args.collection:
            from indexer import Collection

            copy = tmp / "copy"
            shutil.copytree(args.collection, copy, ignore=shutil.ignore_patterns("write.lock"))
            with Collection.open(copy, threads=args.threads) as col:
                results["sizes"] += _index_sizes(col, str(args.collection))
    return results


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.quick:
        args.docs, args.rounds = min(args.docs, 48), 2
    set_threads(args.threads)
    docs = _sample(args)
    specs = [s for s in args.models.split(",") if s]
    load = LoadMonitor()
    results = _measure(args, docs, specs)
    rows = [
        {
            **r,
            "bare": r["bare_docs_per_s"].median,
            "build": r["build_docs_per_s"].median,
            "ratio": r["build_over_bare"].median,
        }
        for r in results["throughput"]
    ]
    tables = {
        "throughput": markdown_table(rows, THROUGHPUT_COLUMNS),
        "sizes": markdown_table(results["sizes"], SIZE_COLUMNS),
    }
    headline = {
        r["model"]: {
            "bare_docs_per_s": round(r["bare"], 2),
            "build_docs_per_s": round(r["build"], 2),
            "build_over_bare": round(r["ratio"], 3),
        }
        for r in rows
    }
    for name, table in tables.items():
        print(f"\n{name}\n{table}")
    config = {
        "docs": len(docs),
        "rounds": args.rounds,
        "models": specs,
        "threads": args.threads,
        "batch_size": args.batch_size,
        "collection": args.collection,
    }
    return finish(
        "indexer_build",
        args=args,
        load=load,
        results=results,
        headline=headline,
        tables=tables,
        config=config,
    )


if __name__ == "__main__":
    raise SystemExit(run_main(main))
