"""Index benchmark: how fast the indexer builds flat, HNSW and IVF-PQ collections, and how big they are.

The milvus vector store (Milvus Lite in the collection directory, flat and HNSW) is built in the
same run beside the FAISS types (`--types`; skipped with a note where milvus-lite is missing).

Two parts, both through the library API (`indexer.Collection`), documents added in rounds with the
index types interleaved (flat, hnsw, ivfpq, then hnsw, ivfpq, flat, ...):

1. **Indexer cost** at 10k and 100k chunks: real sentences (FLORES-200 + NTREX-128, one chunk each)
   with their vectors computed up front (synthetic clustered vectors; see
   `benchmarks.workloads.clustered_vectors`), handed to the collection through a table-lookup
   encoder. The timings then contain everything the indexer does except the model: validation,
   chunking (a real tokenizer), SQLite writes, FAISS adds, training and rebuilds, the crash-safe
   file writes. Sizes: index file bytes per vector, stored float16 vectors, database bytes per doc.
2. **End to end** on fewer documents with the real model (the student when trained, else the
   assistant), compared with the bare encode rate of the same model on the same texts in the
   same rounds: the share of indexing time the model takes.

Examples:
  python -m benchmarks.index                       # 10k + 100k indexer cost, 2k end to end
  python -m benchmarks.index --quick               # 1k indexer cost, 60 end to end, 1 thread
  python -m benchmarks.index --sizes 10000 --e2e-docs 2000 --model pkg:multilingual-e5-small
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

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
)
from benchmarks.workloads import clustered_vectors, mixed_sentences
from distill.datasets import ASSISTANT_SPEC
from distill.models.encoder import Role

INDEX_TYPES = ("flat", "hnsw", "ivfpq", "milvus:flat", "milvus:hnsw")  # milvus: Milvus Lite in the directory


def store_and_type(t: str) -> tuple[str, str]:
    """`milvus:hnsw` -> ("milvus", "hnsw"); a plain index type is the faiss store's."""
    store, _, kind = t.rpartition(":")
    return store or "faiss", kind


class PrecomputedEncoder:
    """An encoder whose vectors were computed in advance (looked up by text).

    Everything else -- tokenizer (used by the chunker), prompts, dimension -- is the real model's,
    so the collection behaves exactly as with that model; only the forward pass is taken out of
    the timing.
    """

    def __init__(self, base, texts: Sequence[str], vectors: np.ndarray) -> None:
        self.base = base
        self.table = {t: i for i, t in enumerate(texts)}
        self.vectors = vectors
        self.calls = 0

    def __getattr__(self, name):  # tokenizer, prompt(), dim, normalize, max_seq_length, name, ...
        return getattr(self.base, name)

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        normalize=None,
        prefix=None,
        show_progress: bool = False,
    ) -> np.ndarray:
        self.calls += 1
        out = np.empty((len(texts), self.vectors.shape[1]), dtype=np.float32)
        for j, text in enumerate(texts):
            i = self.table.get(text)
            if i is None:  # a chunk that is not a whole sentence: a stable vector of its own
                seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
                v = np.random.default_rng(seed).standard_normal(self.vectors.shape[1]).astype(np.float32)
                out[j] = v / np.linalg.norm(v)
            else:
                out[j] = self.vectors[i]
        return out


def dir_bytes(path: Path, pattern: str = "*") -> int:
    return sum(p.stat().st_size for p in path.rglob(pattern) if p.is_file())


def collection_sizes(path: Path, info: dict, n: int) -> dict:
    model = info["models"][0]
    index_bytes = int(model.get("index_bytes") or 0) or dir_bytes(path / "milvus.db")  # Milvus Lite's data
    vectors = int(model.get("stored_vector_bytes") or 0)
    db = dir_bytes(path, "collection.db*")
    return {
        "factory": model.get("factory"),
        "index_bytes": index_bytes,
        "index_bytes_per_vector": round(index_bytes / n, 1),
        "vectors_bytes_per_vector": round(vectors / n, 1),
        "db_bytes_per_doc": round(db / n, 1),
        "total_mb": round((index_bytes + db + vectors) / 2**20, 1),
    }


def documents(sents, start: int, stop: int):
    from distill.documents import Document

    # Some sentences carry C1 controls (U+0097): the indexer accepts them in texts, as it must real text.
    return [Document(id=sents.ids[i], lang=sents.langs[i], text=sents.texts[i]) for i in range(start, stop)]


def build_collections(
    root: Path,
    spec: str,
    encoder,
    sents,
    *,
    types: Sequence[str],
    rounds: int,
    threads: int,
    bare: Callable[[list[str]], object] | None = None,
) -> dict:
    """Create one collection per index type and add `sents` in `rounds` interleaved rounds."""
    from indexer import Collection

    n = len(sents.texts)
    bounds = np.linspace(0, n, rounds + 1).astype(int)
    cols = {}
    for t in types:
        store, kind = store_and_type(t)
        cols[t] = Collection.create(
            root / t.replace(":", "-"),
            models=[spec],
            index_type=kind,
            encoders={spec: encoder},
            threads=threads,
            vector_store=store,
        )
    summaries: dict[str, list] = {t: [] for t in types}

    def adder(t: str) -> Callable[[int], None]:
        def run(r: int) -> None:
            summaries[t].append(cols[t].add(documents(sents, bounds[r], bounds[r + 1])))

        return run

    variants = {t: adder(t) for t in types}
    if bare is not None:
        variants["bare encode"] = lambda r: bare(sents.texts[bounds[r] : bounds[r + 1]])
    set_threads(threads)
    seconds = interleave(variants, rounds, warmup=0, progress=lambda m: log(f"  {n:,} docs: {m}"))
    out: dict = {}
    for name, secs in seconds.items():
        per_round = [(bounds[r + 1] - bounds[r]) / s for r, s in enumerate(secs)]
        row = {
            "docs": n,
            "seconds": round(sum(secs), 2),
            "docs_per_s": round(n / sum(secs), 1),
            "per_round_docs_per_s": [round(x, 1) for x in per_round],
            "round_spread": summarize(per_round).to_dict(digits=1),
        }
        if name in cols:
            col = cols[name]
            info = col.info()
            chunks = sum(s.chunks for s in summaries[name])
            row.update(chunks=chunks, **collection_sizes(root / name.replace(":", "-"), info, max(chunks, 1)))
            col.close()
        out[name] = row
    return out


COST_COLUMNS = [
    ("size", "chunks"),
    ("type", "index"),
    ("factory", "index (FAISS factory or Milvus)"),
    ("docs_per_s", "docs/s (no model)", 0),
    ("seconds", "seconds", 1),
    ("index_bytes_per_vector", "index B/vector", 0),
    ("vectors_bytes_per_vector", "stored vectors B/vector", 0),
    ("db_bytes_per_doc", "DB B/doc", 0),
    ("total_mb", "collection MB", 1),
]
E2E_COLUMNS = [
    ("type", "pipeline"),
    ("docs_per_s", "docs/s", 1),
    ("vs_bare_encode", "x bare encode", 2),
    ("seconds", "seconds", 1),
    ("index_bytes_per_vector", "index B/vector", 0),
]


def _parser():
    parser = base_parser("index", __doc__)
    parser.add_argument("--sizes", help="chunks for the indexer-cost part (default 10000,100000; quick 1000)")
    parser.add_argument(
        "--e2e-docs", type=int, help="documents for the end-to-end part (default 2000; quick 60; 0 skips)"
    )
    parser.add_argument(
        "--model",
        help="model for the end-to-end part and the tokenizer of the indexer-cost "
        "part (default: the student when trained, else the assistant)",
    )
    parser.add_argument("--types", default=",".join(INDEX_TYPES), help="index types (default: %(default)s)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5; quick 2)")
    parser.add_argument("--threads", type=int, help="threads for FAISS and torch (default 2; quick 1)")
    parser.add_argument("--workdir", help="where to build the collections (default: a temporary directory)")
    return parser


def _types(args, notes: list[str]) -> list[str]:
    """The index types to build; Milvus ones are dropped (with a note) when it is not installed."""
    from benchmarks.stores import available

    types = [t.strip() for t in args.types.split(",") if t.strip()]
    if any(t not in INDEX_TYPES for t in types):
        raise BenchmarkError(f"--types must be from {', '.join(INDEX_TYPES)}")
    if not available(["milvus"])[0] and any(t.startswith("milvus:") for t in types):
        notes.append("milvus skipped: pymilvus/milvus-lite not installed (pip install 'xlsearch[milvus]')")
        return [t for t in types if not t.startswith("milvus:")]
    return types


def _indexer_cost(args, root: Path, spec: str, encoder, sizes, types, rounds, out: dict) -> None:
    """The indexer's own cost: precomputed vectors, no model in the loop."""
    rows = []
    for n in sizes:
        log(f"indexer cost: {n:,} sentences, precomputed vectors, types {', '.join(types)}")
        sents = mixed_sentences(n, seed=args.seed)
        vectors = clustered_vectors(n, encoder.dim, seed=args.seed)
        pre = PrecomputedEncoder(encoder, sents.texts, vectors)
        res = build_collections(
            root / f"cost-{n}", spec, pre, sents, types=types, rounds=rounds, threads=args.threads
        )
        out["results"]["indexer_cost"][str(n)] = res
        rows += [{"size": n, "type": t, **r} for t, r in res.items()]
    out["tables"]["indexer cost"] = cost_table = markdown_table(rows, COST_COLUMNS)
    print(f"\n### Indexer cost without the model ({args.threads} threads)\n\n{cost_table}\n", flush=True)
    cost = out["results"]["indexer_cost"]
    out["headline"].update(
        {f"indexer_docs_per_s_{n}": {t: cost[str(n)][t]["docs_per_s"] for t in types} for n in sizes}
    )
    out["headline"]["index_bytes_per_vector"] = {
        t: cost[str(max(sizes))][t]["index_bytes_per_vector"] for t in types
    }


def _end_to_end(args, root: Path, spec: str, encoder, e2e_docs: int, types, rounds, out: dict) -> None:
    """Indexing with the model, next to the bare encoder on the same texts."""
    log(f"end to end: {e2e_docs:,} documents with {spec}, vs bare encode")
    sents = mixed_sentences(e2e_docs, seed=args.seed + 1)
    batch = 32  # the Collection's default encode batch

    def bare(texts: list[str]) -> None:
        encoder.encode(texts, batch_size=batch, prefix=Role.PASSAGE)

    bare(sents.texts[:batch])  # warm-up
    res = build_collections(
        root / "e2e", spec, encoder, sents, types=types, rounds=rounds, threads=args.threads, bare=bare
    )
    bare_rate = res["bare encode"]["docs_per_s"]
    for row in res.values():
        row["vs_bare_encode"] = round(row["docs_per_s"] / bare_rate, 3)
    out["results"]["end_to_end"] = {"model": spec, "docs": e2e_docs, "rows": res}
    out["tables"]["end to end"] = e2e_table = markdown_table(
        [{"type": t, **r} for t, r in res.items()], E2E_COLUMNS
    )
    print(
        f"\n### Indexing end to end with {spec} ({e2e_docs:,} docs, {args.threads} threads)\n\n{e2e_table}\n",
        flush=True,
    )
    out["headline"]["end_to_end_vs_bare_encode"] = {t: res[t]["vs_bare_encode"] for t in types}
    out["headline"]["bare_encode_docs_per_s"] = bare_rate


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sizes = parse_ints(args.sizes or ("1000" if args.quick else "10000,100000"))
    args.threads = args.threads or (1 if args.quick else 2)
    e2e_docs = args.e2e_docs if args.e2e_docs is not None else (60 if args.quick else 2000)
    rounds = rounds_of(args)
    milvus_notes: list[str] = []
    types = _types(args, milvus_notes)
    if rounds < 1 or min(sizes) < rounds:
        raise BenchmarkError("need --rounds >= 1 and at least one document per round")
    spec = args.model or default_student() or ASSISTANT_SPEC
    notes = [] if (args.model or default_student()) else ["no trained student yet: the assistant stands in"]
    notes += milvus_notes

    from distill.models import ModelNotFoundError, load_encoder

    load = LoadMonitor()
    set_threads(args.threads)
    try:
        encoder = load_encoder(spec)
    except (ModelNotFoundError, OSError, ValueError) as exc:
        raise BenchmarkError(f"cannot load {spec!r}: {exc}") from None
    out: dict = {"results": {"indexer_cost": {}, "end_to_end": None}, "tables": {}, "headline": {}}
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        _indexer_cost(args, Path(tmp), spec, encoder, sizes, types, rounds, out)
        if e2e_docs > 0:
            _end_to_end(args, Path(tmp), spec, encoder, e2e_docs, types, rounds, out)
    config = {
        "sizes": sizes,
        "types": types,
        "rounds": rounds,
        "threads": args.threads,
        "model": spec,
        "e2e_docs": e2e_docs,
        "seed": args.seed,
        "documents": "FLORES-200 devtest + NTREX-128 sentences, one chunk each",
    }
    return finish("index", args=args, config=config, load=load, notes=notes, **out)


if __name__ == "__main__":
    raise SystemExit(run_main(main))
