"""Search: the language filter inside the store, over-fetching chunks, the best chunk per document.

The filter runs inside the store for every index type (FAISS: a bitmap of the chunk ids in those
languages; Milvus: `lang in [...]` on its scalar field). The search asks for 4k chunks (at least
32), groups them by document and widens (x4, with efSearch/nprobe) until it has k documents; an
approximate index that still returns too few under a selective filter gets one exhaustive round.
Post-filtering would silently return fewer than k whenever other languages crowd the top.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from distill.langs import canonical_lang, is_known_lang
from distill.roles import Role
from distill.vectors import l2_normalize
from indexer.context import CollectionContext
from indexer.errors import IndexCorruptError, IndexerError
from indexer.results import Hit
from indexer.schema import ChunkRow, DocumentRow
from indexer.state import SQL_IN_BATCH, ModelState, batched
from indexer.stores import Allowed

MAX_CACHED_FILTERS = 64


def lang_key(langs: Sequence[str] | None) -> tuple[str, ...] | None:
    """The canonical, sorted language set of a filter; unknown codes are an error."""
    if not langs:
        return None
    bad = [x for x in langs if not isinstance(x, str) or not is_known_lang(x)]
    if bad:
        raise IndexerError(f"unknown language code(s) {bad}")
    return tuple(sorted({canonical_lang(x) for x in langs}))


class Searcher:
    def __init__(self, ctx: CollectionContext) -> None:
        self.ctx = ctx
        self._allowed: dict[tuple[str, ...], Allowed] = {}
        self._seen = ctx.commits  # the commits the cached filters were read at

    def allowed(self, langs: tuple[str, ...]) -> Allowed:
        if self._seen != self.ctx.commits:  # a commit (ours or another process's) changed the ids
            self._allowed.clear()
            self._seen = self.ctx.commits
        if langs not in self._allowed:
            with Session(self.ctx.engine) as s:
                ids = s.scalars(select(ChunkRow.id).where(ChunkRow.lang.in_(langs))).all()
            if len(self._allowed) > MAX_CACHED_FILTERS:
                self._allowed.clear()
            self._allowed[langs] = Allowed(langs, np.array(ids, dtype=np.int64))
        return self._allowed[langs]

    def search(self, query: str, model: str | None, k: int, langs: Sequence[str] | None) -> list[Hit]:
        if k < 1:
            raise IndexerError("k must be >= 1")
        if not query or not query.strip():
            return []
        return self.search_vectors(self.embed([query], model), model, k, langs)[0]

    def embed(self, queries: Sequence[str], model: str | None, batch_size: int = 32) -> np.ndarray:
        """The L2-normalised query vectors of `queries` (query prompt), one row each."""
        ctx = self.ctx
        with ctx.mutex:
            ctx.require_open()
            enc = ctx.encoder(ctx.model(model).spec)
            return l2_normalize(enc.encode(list(queries), batch_size=batch_size, prefix=Role.QUERY))

    def search_vectors(
        self, vectors: np.ndarray, model: str | None, k: int, langs: Sequence[str] | None
    ) -> list[list[Hit]]:
        """The `k` best documents for each row of `vectors` (query vectors of `model`)."""
        if k < 1:
            raise IndexerError("k must be >= 1")
        key = lang_key(langs)
        ctx = self.ctx
        with ctx.mutex, ctx.stores.session():
            ctx.require_open()
            ctx.sync()
            m = ctx.model(model)
            if m.broken:
                raise IndexCorruptError(
                    f"{m.broken}; open the collection writable (e.g. `indexer verify {ctx.path} --repair`) to repair it"
                )
            vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, m.dim)
            return [self.search_vector(m, vectors[i : i + 1], k, key) for i in range(len(vectors))]

    def search_vector(self, m: ModelState, q: np.ndarray, k: int, langs: tuple[str, ...] | None) -> list[Hit]:
        ntotal = m.store.count()
        if ntotal == 0:
            return []
        allowed = self.allowed(langs) if langs else None
        if allowed is not None and allowed.count == 0:
            return []
        # Tombstones are never allowed (their chunk ids are gone from the database).
        limit = min(allowed.count, ntotal) if allowed is not None else ntotal
        # Over-fetch chunks (a document may own several), widening until k documents are found.
        fetch = min(max(4 * k, 32), limit)
        widen, exhaustive = 1, False
        while True:
            found = m.store.search(q, fetch, allowed=allowed, widen=widen, exhaustive=exhaustive)
            best = self.best_per_document(found)
            if len(best) >= k or exhaustive:
                break
            if fetch >= limit:
                if m.store.is_exact():
                    break
                exhaustive = True
            else:
                fetch, widen = min(fetch * 4, limit), widen * 4
        top = sorted(best.values(), key=lambda x: -x[1])[:k]
        return self.hits(m, top)

    def best_per_document(self, found: list[tuple[int, float]]) -> dict[int, tuple[int, float]]:
        """doc row id -> (chunk id, score) of its best chunk; ids no longer in the database are dropped."""
        doc_of: dict[int, int] = {}
        with Session(self.ctx.engine) as s:
            for part in batched([i for i, _ in found], SQL_IN_BATCH):
                for cid, doc in s.execute(select(ChunkRow.id, ChunkRow.doc_id).where(ChunkRow.id.in_(part))):
                    doc_of[cid] = doc
        best: dict[int, tuple[int, float]] = {}
        for cid, score in found:
            doc = doc_of.get(cid)
            if doc is not None and (doc not in best or score > best[doc][1]):
                best[doc] = (cid, score)
        return best

    def hits(self, m: ModelState, top: list[tuple[int, float]]) -> list[Hit]:
        if not top:
            return []
        rows = {}
        columns = (ChunkRow.id, ChunkRow.start, ChunkRow.end, DocumentRow.ext_id, DocumentRow.lang)
        columns += (DocumentRow.title, DocumentRow.text, DocumentRow.meta)
        with Session(self.ctx.engine) as s:
            for part in batched([c for c, _ in top], SQL_IN_BATCH):
                q = (
                    select(*columns)
                    .join(DocumentRow, DocumentRow.id == ChunkRow.doc_id)
                    .where(ChunkRow.id.in_(part))
                )
                rows.update({r[0]: r for r in s.execute(q)})
        hits = []
        for cid, score in top:
            r = rows.get(cid)
            if r is None:  # deleted between the two queries
                continue
            _, a, b, ext_id, lang, title, text, meta = r
            hits.append(
                Hit(
                    doc_id=ext_id,
                    chunk_id=cid,
                    score=score,
                    lang=lang,
                    title=title or "",
                    snippet=text[a:b],
                    chunk_start=a,
                    chunk_end=b,
                    text=text,
                    metadata=meta or {},
                    rank=len(hits) + 1,
                    model=m.spec,
                )  # fmt: skip
            )
        return hits
