"""The Milvus store: one Milvus collection per (xlsearch collection, model).

Rows: `id` (INT64 primary key = the chunk id), `lang` (VARCHAR, filtered inside Milvus) and
`vector` (FLOAT_VECTOR, inner product on L2-normalised vectors = cosine). Staged vectors are
upserted at the commit point (and flushed on Milvus Lite) before the database marks their chunks
indexed, so a replayed batch (after a crash) overwrites the same rows instead of duplicating them.
Deletions are real deletes: no tombstones. A rebuild fills a new Milvus collection (`..._r<N+1>`)
and the database then names it; the old one is dropped afterwards (a crash in between leaves a
stray that reconcile drops), so a rebuild never leaves the collection without a searchable store.

Milvus offers no transaction spanning it and the SQL database: the database stays the source of
truth, and reconcile compares both in each direction.
"""

from __future__ import annotations

import json
import re
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from indexer.config import IndexKind, IndexSpec
from indexer.errors import IndexCorruptError, IndexerError
from indexer.stores.base import Allowed, Prepared, StoreKind, check_ids

NAME_RE = re.compile(r"^xl_[0-9a-f]{16}_m(\d+)_r(\d+)$")
LANG_RE = re.compile(r"^[A-Za-z0-9-]{1,16}$")
UPSERT_BATCH = 2048  # rows per upsert call (384-d float32: 3 MB, well below gRPC's 64 MB)
MAX_TOPK = 16_384  # Milvus's limit on k per search (and on a query's page)
EXHAUSTIVE_EF = 4096


def collection_name(uid: str, model_id: int, rebuild: int) -> str:
    return f"xl_{uid[:16]}_m{model_id}_r{rebuild}"


def lang_filter(langs: tuple[str, ...]) -> str:
    """`lang in ["de", "zh"]`: values checked against a strict pattern, then quoted as JSON strings,
    so no language value can change the expression."""
    bad = [x for x in langs if not isinstance(x, str) or not LANG_RE.match(x)]
    if bad:
        raise IndexerError(f"invalid language code(s) {bad!r} in a search filter")
    return f"lang in {json.dumps(list(langs))}"


def index_params(spec: IndexSpec, lite: bool) -> tuple[str, dict[str, Any]]:
    """Milvus index type and build parameters for an index spec."""
    if spec.kind == IndexKind.FLAT or (spec.kind == IndexKind.AUTO and lite):
        return "FLAT", {}
    if spec.kind == IndexKind.HNSW:
        return "HNSW", {"M": spec.hnsw_m, "efConstruction": spec.ef_construction}
    if spec.kind == IndexKind.AUTO:
        return "AUTOINDEX", {}
    if spec.kind == IndexKind.IVFPQ and not lite:
        return "IVF_PQ", {"nlist": spec.nlist or 1024, "m": spec.pq_m or 48, "nbits": spec.pq_nbits}
    where = "Milvus Lite" if lite else "the milvus store"
    raise IndexerError(
        f"index type {spec.label()!r} is not available with {where}: use flat, hnsw or auto"
        + (" (ivfpq needs a Milvus server)" if lite and spec.kind == IndexKind.IVFPQ else "")
    )


class MilvusStore:
    kind = StoreKind.MILVUS
    idempotent_upserts = True  # the chunk id is the primary key (see VectorStore)

    # ------------------------------------------------------------------ the kind (StoreKindOps)

    @staticmethod
    def check_uri(uri: str | None) -> str | None:
        from indexer.stores.connection import check_uri

        return None if uri is None else check_uri(uri)

    @staticmethod
    def connect(context) -> None:
        context.milvus().client()

    @staticmethod
    def session(context) -> AbstractContextManager:
        return context.milvus().session()

    @staticmethod
    def describe(context) -> dict[str, Any]:
        from indexer.stores.connection import LITE_FILE, is_lite

        uri = context.config.uri or str(context.path / LITE_FILE)
        return {"kind": StoreKind.MILVUS.value, "uri": uri, "lite": is_lite(uri)}

    @staticmethod
    def drop_remote(context) -> None:
        """A failed create on a server: drop the Milvus collections it made (Lite's are in DIR)."""
        if context.config.uri is not None:
            _drop_unnamed(context, set())

    def __init__(self, model, context) -> None:
        self.m = model
        self.ctx = context
        self._exists: tuple[str | None, bool] | None = None  # (name, exists) checked once per name
        self._adds: list[tuple[np.ndarray, np.ndarray, list[str]]] = []
        self._removes: list[np.ndarray] = []

    @property
    def conn(self):
        return self.ctx.milvus()

    # ------------------------------------------------------------------ state

    def load(self) -> None:
        self._adds, self._removes, self._exists = [], [], None  # checked in Milvus on first use

    @property
    def broken(self) -> str | None:
        name = self.m.index_file
        if not name:
            return f"no committed Milvus collection for model {self.m.spec}"
        if not NAME_RE.match(name):
            return f"the database names a Milvus collection {name!r}, which is not one of the indexer's names"
        if self._exists is None or self._exists[0] != name:
            try:
                found = self.conn.call("look up a collection", lambda c: c.has_collection(name))
            except IndexCorruptError as exc:  # damaged Lite data: what verify reports
                return str(exc)
            self._exists = (name, bool(found))
        if not self._exists[1]:
            return f"the Milvus collection {name} of model {self.m.name} is missing ({self.conn.masked()})"
        return None

    @property
    def dirty(self) -> bool:
        return bool(self._adds or self._removes)

    def raced(self) -> bool:
        return False

    def new_empty(self) -> None:
        m = self.m
        name = collection_name(self.ctx.uid, m.id, 0)
        self._create(name, m.index_spec)
        m.index_file, m.factory, self._exists = name, self._factory(m.index_spec), (name, True)
        self._removes.append(np.zeros(0, np.int64))  # an empty first commit

    def _factory(self, spec: IndexSpec) -> str:
        kind, params = index_params(spec, self.conn.lite)
        return f"milvus {kind}" + "".join(f",{k}={v}" for k, v in params.items())

    def _create(self, name: str, spec: IndexSpec) -> None:
        from pymilvus import DataType

        kind, params = index_params(spec, self.conn.lite)

        def create(c) -> None:
            if c.has_collection(name):  # left by a crashed rebuild or create: start it afresh
                c.drop_collection(name)
            schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("lang", DataType.VARCHAR, max_length=16)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.m.dim)
            ip = c.prepare_index_params()
            ip.add_index(field_name="vector", index_type=kind, metric_type="IP", params=params)
            c.create_collection(name, schema=schema, index_params=ip, consistency_level="Strong")

        self.conn.call(f"create collection {name}", create)

    def check_spec(self, spec: IndexSpec, dim: int) -> None:
        try:
            index_params(spec, self.conn.lite)
        except IndexerError as exc:
            raise IndexerError(f"model {self.m.name}: {exc}") from None

    # ------------------------------------------------------------------ changes

    def add(self, ids: np.ndarray, vectors: np.ndarray, langs: list[str]) -> None:
        if len(ids):
            self._adds.append((np.asarray(ids, np.int64), np.asarray(vectors, np.float32), list(langs)))

    def remove(self, ids: np.ndarray) -> int:
        if len(ids):
            self._removes.append(np.asarray(ids, np.int64))
        return 0  # Milvus deletes: never tombstones

    def set_tombstones(self, n: int) -> None:
        self.m.tombstones = 0

    def count(self) -> int:
        """Committed vectors plus those staged (the commit-size rule needs no exact number)."""
        return self.m.ntotal + sum(len(ids) for ids, _, _ in self._adds)

    def _count(self, name: str) -> int:
        self.conn.ensure_loaded(name)
        rows = self.conn.call("count", lambda c: c.query(name, filter="", output_fields=["count(*)"]))
        return int(rows[0]["count(*)"])

    def ids(self, name: str | None = None) -> np.ndarray:
        name = name or self.m.index_file
        self.conn.ensure_loaded(name)

        def read(c) -> list[int]:
            out: list[int] = []
            it = c.query_iterator(name, filter="id >= 0", output_fields=["id"], batch_size=MAX_TOPK)
            try:
                while batch := it.next():
                    out.extend(int(r["id"]) for r in batch)
            finally:
                it.close()
            return out

        return np.array(sorted(self.conn.call("list ids", read)), dtype=np.int64)

    def is_exact(self) -> bool:
        return self.m.factory.startswith("milvus FLAT")

    def supports_remove(self) -> bool:
        return True

    # ------------------------------------------------------------------ commit

    def _write(self, name: str, adds, removes, seal: bool = False) -> None:
        """Deletes, then upserts (then a flush on Lite): once this returns, Milvus holds them durably.

        A server has them durably once it acknowledged them (its write-ahead log), and searches and
        counts see them at once (consistency Strong); a flush there would only seal small segments
        (Milvus advises against frequent flushes) and cost ~2.5 s per commit. A rebuild (`seal`)
        flushes once, so the server builds the index of the sealed segments."""
        gone = np.concatenate(removes) if removes else np.zeros(0, np.int64)
        for start in range(0, len(gone), UPSERT_BATCH):
            part = gone[start : start + UPSERT_BATCH].tolist()
            self.conn.call("delete", lambda c, p=part: c.delete(name, ids=p))
        for ids, vecs, langs in adds:
            for start in range(0, len(ids), UPSERT_BATCH):
                rows = [
                    {"id": int(i), "lang": lang, "vector": v}
                    for i, lang, v in zip(
                        ids[start : start + UPSERT_BATCH].tolist(),
                        langs[start : start + UPSERT_BATCH],
                        vecs[start : start + UPSERT_BATCH].tolist(),
                        strict=True,
                    )
                ]
                self.conn.call("upsert", lambda c, r=rows: c.upsert(name, r))
        if self.conn.lite or seal:
            self.conn.call("flush", lambda c: c.flush(name))

    def prepare(self, generation: int) -> Prepared:
        name = self.m.index_file
        self._write(name, self._adds, self._removes)
        self._adds, self._removes = [], []
        values = dict(generation=generation, index_file=name, index_bytes=0, index_crc32=0)
        values.update(ntotal=self._count(name), tombstones=0, factory=self.m.factory)
        return Prepared(values)

    def abort(self, prepared: Prepared) -> None:
        if prepared.undo:  # a rebuild's new collection, never named by the database
            self.conn.call("drop a collection", lambda c: c.drop_collection(prepared.undo))

    def finish(self, prepared: Prepared, old_generation: int) -> None:
        old = self.m.index_file
        self.m.adopt(prepared.values)
        if prepared.undo and old and old != self.m.index_file and NAME_RE.match(old):
            self.conn.call("drop the old collection", lambda c: c.drop_collection(old))
        self._exists = (self.m.index_file, True)

    def rebuild(self, ids: np.ndarray, vectors: np.ndarray, langs: list[str]) -> Prepared:
        m = self.m
        match = NAME_RE.match(m.index_file or "")
        name = collection_name(self.ctx.uid, m.id, int(match.group(2)) + 1 if match else 0)
        self._create(name, m.index_spec)
        prepared = Prepared({}, undo=name)
        try:
            self._write(name, [(ids, vectors, langs)], [], seal=True)
        except BaseException:
            self.abort(prepared)
            raise
        self._adds, self._removes = [], []
        prepared.values = dict(generation=m.generation + 1, index_file=name, index_bytes=0, index_crc32=0)
        prepared.values.update(ntotal=len(ids), tombstones=0, factory=self._factory(m.index_spec))
        return prepared

    def needs_rebuild(self, live: int) -> str | None:
        return None  # Milvus maintains its own index and deletes for real

    # ------------------------------------------------------------------ search

    def search(
        self, query: np.ndarray, k: int, *, allowed: Allowed | None, widen: int = 1, exhaustive: bool = False
    ) -> list[tuple[int, float]]:
        spec, k = self.m.index_spec, min(k, MAX_TOPK)
        params: dict[str, Any] = {}
        if self.m.factory.startswith("milvus HNSW"):
            params["ef"] = max(k, EXHAUSTIVE_EF if exhaustive else spec.ef_search * widen)
        elif self.m.factory.startswith("milvus IVF"):
            params["nprobe"] = 65_536 if exhaustive else spec.nprobe * widen
        expr = lang_filter(allowed.langs) if allowed is not None else ""
        self.conn.ensure_loaded(self.m.index_file)
        res = self.conn.call(
            "search",
            lambda c: c.search(
                self.m.index_file,
                data=[np.asarray(query[0], np.float32).tolist()],
                limit=k,
                filter=expr,
                output_fields=[],
                search_params={"metric_type": "IP", "params": params},
                consistency_level="Strong",
            ),
        )
        return [(int(h["id"]), float(h["distance"])) for h in res[0]]

    # ------------------------------------------------------------------ checks

    def verify(self, live: np.ndarray, report) -> int | None:
        broken = self.broken
        if broken:
            report.problems.append(f"{self.m.name}: {broken}")
            return None
        ids = self.ids()
        if len(ids) != self.m.ntotal:
            report.problems.append(
                f"{self.m.name}: Milvus holds {len(ids)} vectors, the database records {self.m.ntotal}"
            )
        check_ids(self.m.name, ids, live, report, tombstones=0, can_remove=True)
        return len(ids)

    def stray_files(self, models: dict) -> int:
        """Drop this collection's Milvus collections that no model row names (a crashed rebuild's)."""
        return _drop_unnamed(self.ctx, {m.index_file for m in models.values()})

    def close(self) -> None:
        self._adds, self._removes = [], []


def _drop_unnamed(context, named: set[str]) -> int:
    """Drop the Milvus collections of the collection `context` describes that are not `named`."""
    prefix, conn = f"xl_{context.uid[:16]}_m", context.milvus()
    names = conn.call("list collections", lambda c: c.list_collections())
    stray = [n for n in names if n.startswith(prefix) and NAME_RE.match(n) and n not in named]
    for n in stray:
        conn.call("drop a collection", lambda c, n=n: c.drop_collection(n))
    return len(stray)
