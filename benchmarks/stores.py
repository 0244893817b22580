"""Vector stores side by side through the indexer's seam (`indexer.stores`): FAISS, Milvus Lite and
a Milvus server.

Each store is filled with the same vectors by its own `rebuild` (what `indexer rebuild` runs: FAISS
builds the index and writes the generation file; Milvus upserts and flushes, and a server then
builds its index in the background, waited for here), then searched one query at a time through
`VectorStore.search`, the stores interleaved in rounds. Reported per (store, index type): build
rate (vectors/s), p50/p95 latency, QPS and recall@10 against exact search. A Milvus Lite store is
searched within one session, as one command or app search holds it. `milvus-server` is a server at
`uri` (credentials from MILVUS_TOKEN), by default the `milvus` package's embedded standalone
started for the run (benchmarks.milvus_server), on the same 2 cores as everything else.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from benchmarks.common import interleave, log, summarize

K = 10
KINDS = ("flat", "hnsw")
SERVER = "milvus-server"
INDEX_WAIT = 1800.0  # seconds for a server to build its index


def add_arguments(parser) -> None:
    parser.add_argument(
        "--stores",
        default=f"faiss,milvus,{SERVER}",
        help="vector stores compared through indexer.stores at the first size (default %(default)s; none skips)",
    )
    parser.add_argument(
        "--milvus-uri",
        help=f"{SERVER}: a running server, e.g. http://host:19530, credentials from MILVUS_TOKEN "
        "(default: start the embedded server of the milvus package for the run)",
    )


def available(stores: Sequence[str], uri: str | None = None) -> tuple[list[str], list[str]]:
    """The stores that can run here, and a note for each that cannot."""
    out, notes = [], []
    for s in stores:
        need = {"milvus": ("milvus_lite", "milvus"), SERVER: (None if uri else "milvus", "milvus-server")}
        if s in need:
            module, extra = need[s]
            try:
                import pymilvus  # noqa: F401

                if module:
                    __import__(module)
            except ImportError:
                notes.append(f"{s} skipped: not installed (pip install 'xlsearch[{extra}]')")
                continue
        out.append(s)
    return out, notes


@contextmanager
def server_uri(stores: Sequence[str], uri: str | None) -> Iterator[tuple[str | None, str]]:
    """(uri, a note on the server): `uri`, or the embedded server started for the run."""
    if SERVER not in stores or uri:
        yield uri, (f"{SERVER}: {uri}" if uri else "")
        return
    from benchmarks.milvus_server import EmbeddedMilvus

    server = EmbeddedMilvus()
    saved = os.environ.get("MILVUS_TOKEN")
    try:
        server.start()
        os.environ["MILVUS_TOKEN"] = server.token
        yield server.uri, f"{SERVER}: embedded Milvus {server.version} (the milvus package), local"
    finally:
        server.cleanup()
        if saved is None:
            os.environ.pop("MILVUS_TOKEN", None)
        else:
            os.environ["MILVUS_TOKEN"] = saved


def _open(root: Path, store: str, kind: str, dim: int, uri: str | None):
    from indexer.config import IndexSpec
    from indexer.state import ModelState
    from indexer.stores import StoreConfig, StoreContext, open_store

    path = root / f"{store}-{kind}"
    (path / "indexes").mkdir(parents=True, exist_ok=True)
    config = StoreConfig.parse("milvus", uri) if store == SERVER else StoreConfig.parse(store)
    ctx = StoreContext(path, config, read_only=False, uid=uuid.uuid4().hex)
    m = ModelState(
        id=1, spec=f"{store}:{kind}", name=f"{store} {kind}", dim=dim, index_spec=IndexSpec.parse(kind)
    )
    m.store = open_store(ctx.config.kind, m, ctx)
    return ctx, m


def _wait_indexed(m, n: int) -> None:
    """A server indexes sealed segments in the background: time searches on the built index."""
    deadline = time.monotonic() + INDEX_WAIT
    while time.monotonic() < deadline:
        info = m.store.conn.call("describe index", lambda c: c.describe_index(m.index_file, "vector"))
        if str(info.get("state")) == "Finished" and int(info.get("indexed_rows", 0)) >= n:
            return
        time.sleep(1.0)
    log(f"  {m.name}: the server had not indexed all {n:,} vectors after {INDEX_WAIT:.0f} s")


def _fill(root: Path, store: str, kind: str, xb: np.ndarray, uri: str | None) -> tuple:
    ids = np.arange(1, len(xb) + 1, dtype=np.int64)  # chunk ids start at 1
    ctx, m = _open(root, store, kind, xb.shape[1], uri)
    session = ctx.session()
    session.__enter__()
    m.store.new_empty()
    t0 = time.perf_counter()
    prepared = m.store.rebuild(ids, xb, ["en"] * len(xb))
    m.store.finish(prepared, -1)
    if store == SERVER:
        _wait_indexed(m, len(xb))
    build_s = time.perf_counter() - t0
    log(f"  {store} {kind}: {len(xb):,} vectors stored in {build_s:.1f} s")
    return ctx, session, m, build_s, [], {}


def compare(
    xb: np.ndarray,
    xq: np.ndarray,
    gt: np.ndarray,
    *,
    stores: Sequence[str],
    rounds: int,
    root: Path,
    uri: str | None = None,
) -> list[dict]:
    """One row per (store, index type)."""
    opened = {f"{s} {kind}": _fill(root, s, kind, xb, uri) for s in stores for kind in KINDS}
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
