"""Vector stores side by side through the indexer's seam (`indexer.stores`): FAISS and Milvus Lite.

Each store is filled with the same vectors by its own `rebuild` (what `indexer rebuild` runs: FAISS
builds the index and writes the generation file; Milvus upserts and flushes), then searched one
query at a time through `VectorStore.search`, the stores interleaved in rounds. Reported per
(store, index type): build rate (vectors/s), p50/p95 latency, QPS and recall@10 against exact
search. A Milvus Lite store is searched within one session, as one command or app search holds it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.common import interleave, log, summarize

K = 10
KINDS = ("flat", "hnsw")


def available(stores: Sequence[str]) -> tuple[list[str], list[str]]:
    """The stores that can run here, and a note for each that cannot."""
    out, notes = [], []
    for s in stores:
        if s == "milvus":
            try:
                import milvus_lite  # noqa: F401
                import pymilvus  # noqa: F401
            except ImportError:
                notes.append(
                    "milvus skipped: pymilvus/milvus-lite not installed (pip install 'xlsearch[milvus]')"
                )
                continue
        out.append(s)
    return out, notes


def _open(root: Path, store: str, kind: str, dim: int):
    from indexer.config import IndexSpec
    from indexer.state import ModelState
    from indexer.stores import StoreConfig, StoreContext, open_store

    path = root / f"{store}-{kind}"
    (path / "indexes").mkdir(parents=True, exist_ok=True)
    ctx = StoreContext(path, StoreConfig.parse(store), read_only=False, uid=uuid.uuid4().hex)
    m = ModelState(
        id=1, spec=f"{store}:{kind}", name=f"{store} {kind}", dim=dim, index_spec=IndexSpec.parse(kind)
    )
    m.store = open_store(ctx.config.kind, m, ctx)
    return ctx, m


def compare(
    xb: np.ndarray, xq: np.ndarray, gt: np.ndarray, *, stores: Sequence[str], rounds: int, root: Path
) -> list[dict]:
    """One row per (store, index type)."""
    ids = np.arange(1, len(xb) + 1, dtype=np.int64)  # chunk ids start at 1
    langs = ["en"] * len(xb)
    opened = {}
    for store in stores:
        for kind in KINDS:
            ctx, m = _open(root, store, kind, xb.shape[1])
            session = ctx.session()
            session.__enter__()
            m.store.new_empty()
            t0 = time.perf_counter()
            prepared = m.store.rebuild(ids, xb, langs)
            m.store.finish(prepared, -1)
            build_s = time.perf_counter() - t0
            log(f"  {store} {kind}: {len(xb):,} vectors stored in {build_s:.1f} s")
            opened[f"{store} {kind}"] = (ctx, session, m, build_s, [], {})
    blocks = np.array_split(np.arange(len(xq)), rounds)

    def runner(label: str):
        _, _, m, _, times, found = opened[label]

        def run(r: int) -> None:
            for q in blocks[r]:
                t0 = time.perf_counter_ns()
                hits = m.store.search(xq[q : q + 1], K, allowed=None, widen=1, exhaustive=False)
                times.append((time.perf_counter_ns() - t0) / 1e6)
                found[int(q)] = [i - 1 for i, _ in hits]  # back to row numbers

        return run

    for label in opened:  # warm-up
        opened[label][2].store.search(xq[:1], K, allowed=None, widen=1, exhaustive=False)
    interleave({label: runner(label) for label in opened}, rounds, warmup=0)
    rows = []
    for label, (ctx, session, _, build_s, times, found) in opened.items():
        recall = np.mean([len(set(f[:K]) & set(gt[q, :K].tolist())) / K for q, f in found.items()])
        lat = summarize(times)
        rows.append(
            {
                "store": label,
                "vectors": len(xb),
                "build_s": round(build_s, 2),
                "vectors_per_s": round(len(xb) / build_s, 1),
                "p50_ms": round(lat.median, 3),
                "p95_ms": round(lat.p95, 3),
                "qps_single": round(1000 / lat.median, 1),
                "recall@10": round(float(recall), 4),
            }
        )
        session.__exit__(None, None, None)
        ctx.close()
    return rows


def table(rows: list[dict]) -> str:
    from benchmarks.common import markdown_table

    cols = [("store", "store"), ("vectors", "vectors", 0), ("vectors_per_s", "stored vectors/s", 0)]
    cols += [
        ("p50_ms", "p50 ms", 3),
        ("p95_ms", "p95 ms", 3),
        ("qps_single", "QPS", 0),
        ("recall@10", "recall@10", 3),
    ]
    return markdown_table(rows, cols)
