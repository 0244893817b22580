"""Search benchmark: latency, throughput and recall of FAISS indexes (and the vector stores) at k=10.

Pure FAISS on synthetic, clustered, L2-normalised 384-d vectors (fixed seed; 100k and 1M by
default) plus the real demo collection (XQuAD paragraphs embedded by a real model). For each size:
exact search (IndexFlatIP) gives the ground truth; HNSW (M=32, efConstruction=40) is swept over
efSearch, IVF-Flat and IVF-PQ over nprobe. Reported per setting: p50/p95 latency and QPS for single
queries (1 thread, what an interactive search does) and batches of 32 (--batch-threads threads),
and recall@10 against exact search. Settings are timed interleaved, in rounds, after a warm-up; the
recall-latency frontier (settings no faster setting beats on recall) is marked with '*'. At the
first size, the indexer's vector stores (FAISS, Milvus Lite and a Milvus server, flat and HNSW) are
compared through their seam (`benchmarks.stores`): stored vectors/s, p50/p95 and recall@10 vs exact.

Examples:
  python -m benchmarks.search                      # 100k + 1M synthetic + demo collection (~6 min)
  python -m benchmarks.search --quick              # 5k synthetic, small sweeps, 1 thread (seconds)
  python -m benchmarks.search --sizes 100000 --real-model none
  python -m benchmarks.search --real-model data/students/offline --real-docs 2880
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks import stores
from benchmarks.common import (
    BenchmarkError,
    LoadMonitor,
    base_parser,
    default_student,
    finish,
    interleave,
    log,
    markdown_table,
    parse_ints,
    rounds_of,
    run_main,
    set_threads,
    summarize,
    thread_list,
)
from benchmarks.workloads import clustered_vectors, demo_vectors
from distill.datasets import ASSISTANT_SPEC

K = 10
DIM = 384


@dataclass
class Setting:
    """One searchable configuration: an index plus the parameter value to set before searching."""

    family: str  # flat | hnsw | ivf | ivfpq
    param: str  # efSearch | nprobe | "" (flat)
    value: int | None
    index: object
    max_queries: int | None = None  # exact search at 1M is slow: time it on fewer queries
    single_ms: list[float] = field(default_factory=list)
    batch_ms: dict[int, list[float]] = field(default_factory=dict)  # threads -> ms per batch
    ids: dict[int, np.ndarray] = field(default_factory=dict)  # query number -> top-k ids

    @property
    def label(self) -> str:
        return self.family if self.value is None else f"{self.family} {self.param}={self.value}"

    def apply(self) -> None:
        import faiss

        if self.family == "hnsw":
            self.index.hnsw.efSearch = self.value
        elif self.family in ("ivf", "ivfpq"):
            faiss.extract_index_ivf(self.index).nprobe = self.value


def ivf_nlist(n: int) -> int:
    """About 2*sqrt(n) lists, rounded to a power of two (10k: 256, 100k: 512, 1M: 2048)."""
    return max(16, 2 ** round(math.log2(2 * math.sqrt(n))))


def _coarse_quantizer(train: np.ndarray, nlist: int, seed: int):
    import faiss

    quantizer = faiss.IndexFlatIP(train.shape[1])
    clus = faiss.Clustering(train.shape[1], nlist)
    clus.niter = 10  # the default 25 costs ~2.5x the time for a negligible recall change here
    clus.seed = seed
    clus.train(train, quantizer)
    return quantizer


def build_indexes(
    xb: np.ndarray,
    *,
    families: Sequence[str],
    threads: int,
    pq_m: int,
    seed: int,
    hnsw_m: int = 32,
    ef_construction: int = 40,
) -> tuple[dict[str, object], dict[str, dict]]:
    """Build the ANN indexes over `xb`; return them and their build times."""
    import faiss

    set_threads(threads)
    n, d = xb.shape
    indexes: dict[str, object] = {}
    build: dict[str, dict] = {}
    nlist = ivf_nlist(n)
    train_n = min(n, 40 * nlist)  # FAISS wants >= 39 points per centroid
    rng = np.random.default_rng(seed + 1)
    train = xb[np.sort(rng.choice(n, size=train_n, replace=False))]
    quantizer = None

    for family in families:
        t0 = time.perf_counter()
        info: dict[str, object] = {}
        if family == "hnsw":
            index = faiss.IndexHNSWFlat(d, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = ef_construction
            info.update(M=hnsw_m, efConstruction=ef_construction)
            train_s = 0.0
        elif family in ("ivf", "ivfpq"):
            if quantizer is None:  # IVF-Flat and IVF-PQ share one trained coarse quantizer
                quantizer = _coarse_quantizer(train, nlist, seed)
            if family == "ivf":
                index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            else:
                index = faiss.IndexIVFPQ(quantizer, d, nlist, pq_m, 8, faiss.METRIC_INNER_PRODUCT)
                info.update(pq_m=pq_m, pq_bits=8)
            info.update(nlist=nlist, train_vectors=train_n, kmeans_iter=10)
            index.train(train)  # quantizer already trained: trains only the PQ codebooks (ivfpq)
            train_s = time.perf_counter() - t0
        else:
            raise BenchmarkError(f"unknown index family {family!r}")
        t1 = time.perf_counter()
        index.add(xb)
        add_s = time.perf_counter() - t1
        total = time.perf_counter() - t0
        info.update(
            train_s=round(train_s, 2),
            add_s=round(add_s, 2),
            build_s=round(total, 2),
            vectors_per_s=round(n / total, 1),
            threads=threads,
        )
        log(f"  built {family} over {n:,} vectors in {total:.1f} s")
        indexes[family] = index
        build[family] = info
    return indexes, build


def recall_at_k(ids: dict[int, np.ndarray], gt: np.ndarray, k: int = K) -> float:
    hits = [len(set(found[:k].tolist()) & set(gt[q, :k].tolist())) / k for q, found in ids.items()]
    return float(np.mean(hits)) if hits else math.nan


def time_settings(
    settings: list[Setting],
    xq: np.ndarray,
    *,
    rounds: int,
    batch: int,
    batch_threads: Sequence[int],
    warmup_queries: np.ndarray,
) -> None:
    """Single-query and batched timings of every setting, interleaved in rounds."""
    nq = len(xq)
    blocks = np.array_split(np.arange(nq), rounds)

    def single(s: Setting) -> Callable[[int], None]:
        def run(r: int) -> None:
            s.apply()
            todo = blocks[r]
            if s.max_queries is not None:
                todo = todo[: max(1, s.max_queries // rounds)]
            for q in todo:
                row = xq[q : q + 1]
                t0 = time.perf_counter_ns()
                _, found = s.index.search(row, K)
                s.single_ms.append((time.perf_counter_ns() - t0) / 1e6)
                s.ids[int(q)] = found[0]

        return run

    # Batches cycle through the queries (wrapping around), at least one per round.
    per_round = max(1, nq // batch // rounds)

    def batched(s: Setting, threads: int) -> Callable[[int], None]:
        def run(r: int) -> None:
            s.apply()
            count = (
                per_round
                if s.max_queries is None
                else max(1, min(per_round, s.max_queries // batch // rounds))
            )
            for b in range(r * per_round, r * per_round + count):
                rows = xq[(b * batch + np.arange(batch)) % nq]
                t0 = time.perf_counter_ns()
                s.index.search(rows, K)
                s.batch_ms.setdefault(threads, []).append((time.perf_counter_ns() - t0) / 1e6)

        return run

    # Warm-up: touch every index (page in memory, fill caches) without recording.
    for s in settings:
        s.apply()
        s.index.search(warmup_queries, K)

    set_threads(1)  # interactive search: one query, one thread (see shared FIELD-NOTES)
    interleave({s.label: single(s) for s in settings}, rounds, warmup=0)
    # Batches: FAISS splits a batch over OpenMP threads, which only pays when the cores are free.
    for threads in batch_threads:
        set_threads(threads)
        interleave({s.label: batched(s, threads) for s in settings}, rounds, warmup=0)


def setting_rows(settings: list[Setting], gt: np.ndarray, batch: int) -> list[dict]:
    rows = []
    flat_p50 = next((summarize(s.single_ms).median for s in settings if s.family == "flat"), math.nan)
    for s in settings:
        single = summarize(s.single_ms)
        row = {
            "setting": s.label,
            "family": s.family,
            "param": s.param or None,
            "value": s.value,
            "recall@10": 1.0 if s.family == "flat" else round(recall_at_k(s.ids, gt), 4),
            "p50_ms": round(single.median, 4),
            "p95_ms": round(single.p95, 4),
            "qps_single": round(1000.0 / single.mean, 1),
            "queries": single.n,
            "speedup_vs_exact": round(flat_p50 / single.median, 1) if single.median else None,
        }
        for threads, ms in sorted(s.batch_ms.items()):
            b = summarize(ms)
            row[f"batch_p50_ms_{threads}t"] = round(b.median, 4)
            row[f"batch_p95_ms_{threads}t"] = round(b.p95, 4)
            row[f"qps_batch_{threads}t"] = round(batch * 1000.0 * len(ms) / sum(ms), 1)
        rows.append(row)
    mark_frontier(rows)
    return rows


def mark_frontier(rows: list[dict]) -> None:
    """Mark, per family, the settings on the recall-latency frontier (no faster setting has higher recall)."""
    for family in {r["family"] for r in rows}:
        best = -1.0
        for row in sorted(
            (r for r in rows if r["family"] == family), key=lambda r: (r["p50_ms"], -r["recall@10"])
        ):
            row["frontier"] = row["recall@10"] > best
            best = max(best, row["recall@10"])


def best_at_recall(rows: list[dict], family: str, target: float) -> dict | None:
    """The fastest (p50) setting of `family` whose recall@10 reaches `target`."""
    ok = [r for r in rows if r["family"] == family and r["recall@10"] >= target]
    return min(ok, key=lambda r: r["p50_ms"]) if ok else None


def table(rows: list[dict], batch: int, batch_threads: Sequence[int]) -> str:
    columns: list = [
        ("setting", "setting"),
        ("recall@10", "recall@10", 3),
        ("p50_ms", "p50 ms", 3),
        ("p95_ms", "p95 ms", 3),
        ("qps_single", "QPS 1 query", 0),
        ("speedup_vs_exact", "x exact p50", 1),
    ]
    for t in batch_threads:
        columns += [
            (f"batch_p50_ms_{t}t", f"ms/batch {batch} ({t}t)", 2),
            (f"qps_batch_{t}t", f"QPS batch {batch} ({t}t)", 0),
        ]
    columns.append(("frontier_mark", "frontier"))
    return markdown_table([{**r, "frontier_mark": "*" if r.get("frontier") else ""} for r in rows], columns)


def run_scale(
    xb: np.ndarray,
    xq: np.ndarray,
    *,
    families: Sequence[str],
    ef_values: Sequence[int],
    nprobe_values: Sequence[int],
    rounds: int,
    batch: int,
    threads: int,
    batch_threads: Sequence[int],
    pq_m: int,
    seed: int,
    flat_queries: int | None,
) -> dict:
    import faiss

    n = len(xb)
    set_threads(threads)
    t0 = time.perf_counter()
    flat = faiss.IndexFlatIP(xb.shape[1])
    flat.add(xb)
    _, gt = flat.search(xq, K)
    gt_s = time.perf_counter() - t0
    log(f"  exact ground truth for {len(xq)} queries over {n:,} vectors in {gt_s:.1f} s")

    indexes, build = build_indexes(xb, families=families, threads=threads, pq_m=pq_m, seed=seed)
    settings = [Setting("flat", "", None, flat, max_queries=flat_queries)]
    for family in families:
        values = ef_values if family == "hnsw" else nprobe_values
        param = "efSearch" if family == "hnsw" else "nprobe"
        for v in values:
            if family != "hnsw" and v > faiss.extract_index_ivf(indexes[family]).nlist:
                continue
            settings.append(Setting(family, param, v, indexes[family]))
    log(f"  timing {len(settings)} settings x {len(xq)} queries, {rounds} interleaved rounds")
    time_settings(
        settings,
        xq,
        rounds=rounds,
        batch=batch,
        batch_threads=batch_threads,
        warmup_queries=xq[: min(32, len(xq))],
    )
    rows = setting_rows(settings, gt, batch)
    return {
        "vectors": n,
        "queries": len(xq),
        "build": build,
        "exact_ground_truth_s": round(gt_s, 2),
        "rows": rows,
    }


def compare_stores(xb: np.ndarray, xq: np.ndarray, args, tables: dict, notes: list) -> list[dict]:
    """FAISS, Milvus Lite and a Milvus server through the indexer's store seam, same vectors and queries."""
    import tempfile

    import faiss

    wanted = [s.strip() for s in args.stores.split(",") if s.strip()]
    names, skipped = stores.available(wanted, args.milvus_uri)
    notes += skipped
    exact = faiss.IndexFlatIP(xb.shape[1])
    exact.add(xb)
    _, gt = exact.search(xq, K)
    set_threads(1)
    with (
        tempfile.TemporaryDirectory(prefix="bench-stores-") as tmp,
        stores.server_uri(names, args.milvus_uri) as (uri, about),
    ):
        notes += [about] if about else []
        rows = stores.compare(xb, xq, gt, stores=names, rounds=args.rounds, root=Path(tmp), uri=uri)
    name = f"stores {len(xb):,}"
    tables[name] = stores.table(rows)
    print(
        f"\n### Vector stores, {len(xb):,} vectors x 384 (k=10; single queries)\n\n{tables[name]}\n",
        flush=True,
    )
    return rows


def _parser():
    parser = base_parser("search", __doc__)
    parser.add_argument("--sizes", help="synthetic collection sizes (default 100000,1000000; quick 5000)")
    parser.add_argument("--queries", type=int, help="queries per size (default 1000; quick 100)")
    parser.add_argument("--ef", help="HNSW efSearch values (default 16,32,64,128,256,512,1024)")
    parser.add_argument("--nprobe", help="IVF nprobe values (default 1,4,8,16,32,64,128)")
    parser.add_argument(
        "--families", default="hnsw,ivf,ivfpq", help="ANN index families (default: %(default)s)"
    )
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5; quick 2)")
    parser.add_argument(
        "--batch", type=int, default=32, help="batch size for batched search (default: %(default)s)"
    )
    parser.add_argument("--threads", type=int, help="threads for building indexes (default 2; quick 1)")
    parser.add_argument("--batch-threads", help="thread counts for batched search (default 1,2; quick 1)")
    parser.add_argument(
        "--pq-m", type=int, default=48, help="IVF-PQ sub-quantisers (bytes per vector) (default: %(default)s)"
    )
    parser.add_argument(
        "--real-model",
        help="model for the demo-collection run: a spec, or 'none' to skip "
        "(default: the student if trained, else the assistant; quick: none)",
    )
    parser.add_argument(
        "--real-docs", type=int, help="demo documents to index (default all 2,880; quick 100)"
    )
    parser.add_argument("--cache-dir", help="where demo vectors are cached (default data/cache/benchmarks)")
    stores.add_arguments(parser)
    return parser


@dataclass
class Plan:
    """The sweep one run measures, from the arguments."""

    sizes: list[int]
    queries: int
    ef_values: list[int]
    nprobe_values: list[int]
    families: list[str]
    batch_threads: list[int]
    real_model: str

    def scale(self, args, **overrides) -> dict:
        """run_scale's keyword arguments for this plan."""
        return {
            "families": self.families,
            "ef_values": self.ef_values,
            "nprobe_values": self.nprobe_values,
            "rounds": args.rounds,
            "batch": args.batch,
            "threads": args.threads,
            "batch_threads": self.batch_threads,
            "pq_m": args.pq_m,
            "seed": args.seed,
            **overrides,
        }


def _plan(args) -> Plan:
    """The sweep; fills in args.threads and args.rounds."""
    quick = args.quick
    sizes = parse_ints(args.sizes) if args.sizes else ([5_000] if quick else [100_000, 1_000_000])
    ef_values = parse_ints(args.ef) if args.ef else ([16, 64] if quick else [16, 32, 64, 128, 256, 512, 1024])
    nprobe = parse_ints(args.nprobe) if args.nprobe else ([4, 16] if quick else [1, 4, 8, 16, 32, 64, 128])
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    args.threads = args.threads or (1 if quick else 2)
    for f in families:
        if f not in ("hnsw", "ivf", "ivfpq"):
            raise BenchmarkError(f"unknown index family {f!r} (choose from hnsw, ivf, ivfpq)")
    args.rounds = rounds_of(args)
    nq = args.queries or (100 if quick else 1000)
    if args.rounds < 1 or nq < args.rounds or args.batch < 1:
        raise BenchmarkError("need --rounds >= 1, --queries >= --rounds and --batch >= 1")
    if DIM % args.pq_m:
        raise BenchmarkError(f"--pq-m must divide {DIM}")
    real_model = args.real_model
    if real_model is None:
        real_model = "none" if quick else (default_student() or ASSISTANT_SPEC)
    batch_threads = thread_list(args.batch_threads, quick)
    return Plan(sizes, nq, ef_values, nprobe, families, batch_threads, real_model)


def _scale_headline(res: dict, families: Sequence[str]) -> dict:
    """Per family, the fastest setting at recall@10 >= 0.95, and exact search's p50."""
    hl = {}
    for family in families:
        best = best_at_recall(res["rows"], family, 0.95)
        keys = ("setting", "recall@10", "p50_ms", "p95_ms", "qps_single", "speedup_vs_exact")
        hl[f"{family}_at_recall_0.95"] = {k: best[k] for k in keys} if best else None
    hl["exact_p50_ms"] = next(r for r in res["rows"] if r["family"] == "flat")["p50_ms"]
    return hl


def _synthetic(args, plan: Plan, out: dict) -> None:
    """Every synthetic size: results, tables and headline into `out`; the stores at the first size."""
    for n in plan.sizes:
        nq = plan.queries
        log(f"synthetic: {n:,} clustered vectors + {nq} queries (seed {args.seed})")
        data = clustered_vectors(n + nq, DIM, n_clusters=max(16, (n + nq) // 1000), seed=args.seed)
        xb, xq = data[:n], data[n:]
        # Exact search is ~70 ms per query at 1M: time it on fewer queries there.
        flat_q = None if n <= 200_000 else max(args.rounds, min(nq, 100))
        res = run_scale(xb, xq, **plan.scale(args, flat_queries=flat_q))
        if n == plan.sizes[0] and args.stores.lower() != "none":
            out["results"]["stores"] = compare_stores(xb, xq, args, out["tables"], out["notes"])
        del data, xb, xq
        out["results"]["synthetic"][str(n)] = res
        name = f"synthetic {n:,}"
        out["tables"][name] = table(res["rows"], args.batch, plan.batch_threads)
        print(
            f"\n### Search, {name} vectors x 384 (k=10; single queries on 1 thread)\n\n{out['tables'][name]}\n",
            flush=True,
        )
        out["headline"][f"synthetic_{n}"] = _scale_headline(res, plan.families)
    big = max(plan.sizes)
    hnsw = out["headline"].get(f"synthetic_{big}", {}).get("hnsw_at_recall_0.95")
    out["headline"]["expectation_hnsw_p50_le_5ms_recall_ge_0.95"] = {
        "size": big,
        "met": bool(hnsw and hnsw["p50_ms"] <= 5.0),
        "setting": hnsw,
        "note": "expected at 1M"
        if big >= 1_000_000
        else f"largest size run is {big:,}, the expectation is about 1M",
    }


def _demo_collection(args, plan: Plan, out: dict) -> None:
    """The real demo collection, embedded by plan.real_model."""
    from distill.paths import data_dir

    cache_dir = Path(args.cache_dir) if args.cache_dir else data_dir() / "cache" / "benchmarks"
    docs = args.real_docs or (100 if args.quick else None)
    log(f"demo collection with {plan.real_model}")
    xb, xq, info = demo_vectors(plan.real_model, docs, min(plan.queries, 200), args.seed, cache_dir)
    n = len(xb)
    res = run_scale(
        xb,
        xq,
        **plan.scale(
            args,
            families=[f for f in plan.families if f != "ivfpq" or n >= 10_000],
            nprobe_values=[v for v in plan.nprobe_values if v <= ivf_nlist(n)],
            rounds=min(args.rounds, len(xq)),
            flat_queries=None,
        ),
    )
    res.update(info)
    out["results"]["real"] = res
    out["tables"]["demo collection"] = table(res["rows"], args.batch, plan.batch_threads)
    print(
        f"\n### Search, demo collection ({n:,} XQuAD paragraphs, {plan.real_model}; real queries)\n\n"
        f"{out['tables']['demo collection']}\n",
        flush=True,
    )
    if n < 10_000:
        out["notes"].append(
            "IVF-PQ is skipped on the demo collection: too few vectors to train 256-centroid PQ codebooks well."
        )
    out["headline"]["demo_exact_p50_ms"] = next(r for r in res["rows"] if r["family"] == "flat")["p50_ms"]


def _config(args, plan: Plan) -> dict:
    return {
        "sizes": plan.sizes,
        "dim": DIM,
        "queries": plan.queries,
        "k": K,
        "families": plan.families,
        "efSearch": plan.ef_values,
        "nprobe": plan.nprobe_values,
        "rounds": args.rounds,
        "batch": args.batch,
        "threads_build": args.threads,
        "threads_batch": plan.batch_threads,
        "threads_single_query": 1,
        "hnsw": {"M": 32, "efConstruction": 40},
        "pq_m": args.pq_m,
        "data": "benchmarks.workloads.clustered_vectors: Gaussian mixture in an anisotropic space (variance "
        "~ i^-0.5, covariance participation ratio ~90, like real sentence encoders), n/1000 Zipf-sized "
        "clusters, L2-normalised; queries drawn from the same distribution, not in the index",
        "seed": args.seed,
        "real_model": plan.real_model,
    }


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    plan = _plan(args)
    load = LoadMonitor()
    out: dict = {"results": {"synthetic": {}, "real": None}, "tables": {}, "headline": {}, "notes": []}
    _synthetic(args, plan, out)
    if plan.real_model.lower() != "none":
        _demo_collection(args, plan, out)
    else:
        out["notes"].append("demo collection skipped (--real-model none)")
    return finish("search", args=args, config=_config(args, plan), load=load, **out)


if __name__ == "__main__":
    raise SystemExit(run_main(main))
