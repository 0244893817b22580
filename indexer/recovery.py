"""Recovery: make every store agree with the database (reconcile), check it (verify), rebuild.

The database is the source of truth. Reconcile compares each store's ids with the live chunk ids
in both directions: vectors of chunks no longer in the database are removed (or counted as
tombstones where FAISS cannot remove), chunks that are missing or still `pending` are (re)added
from the stored vector segments, or re-embedded where those are gone; a store that cannot be
loaded is rebuilt from the segments; files (and Milvus collections) that no committed row names
are deleted. Re-adding a pending chunk is idempotent: its id is the vector id.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session
from tqdm.auto import tqdm

from indexer.config import IndexSpec
from indexer.errors import IndexCorruptError, IndexerError
from indexer.files import TMP_SUFFIX
from indexer.layout import INDEX_DIR
from indexer.results import VerifyReport
from indexer.segments import SegmentStore
from indexer.state import SQL_IN_BATCH, ModelState, backends_for, batched
from indexer.store import ChunkRow, ChunkState, DocumentRow, MetaRow, ModelRow, SegmentRow, utcnow
from indexer.stores import StoreKind

if TYPE_CHECKING:
    from indexer.collection import Collection

log = logging.getLogger("indexer")

EMBED_BATCH = 1024  # chunks re-embedded per progress step


class Recovery:
    def __init__(self, col: Collection) -> None:
        self.col = col

    # ------------------------------------------------------------------ database reads

    def live_ids(self) -> np.ndarray:
        with Session(self.col.engine) as s:
            ids = s.scalars(select(ChunkRow.id).order_by(ChunkRow.id)).all()
        return np.array(ids, dtype=np.int64)

    def pending_ids(self) -> np.ndarray:
        with Session(self.col.engine) as s:
            ids = s.scalars(select(ChunkRow.id).where(ChunkRow.state == ChunkState.PENDING.value)).all()
        return np.array(sorted(ids), dtype=np.int64)

    def chunk_texts(self, ids: np.ndarray) -> list[tuple[int, str]]:
        out: dict[int, str] = {}
        titled = self.col.settings.embed_title
        title_of = self.col._writer.embedded_title
        columns = (ChunkRow.id, ChunkRow.start, ChunkRow.end, DocumentRow.title, DocumentRow.text)
        with Session(self.col.engine) as s:
            for part in batched(ids.tolist(), SQL_IN_BATCH):
                q = (
                    select(*columns)
                    .join(DocumentRow, DocumentRow.id == ChunkRow.doc_id)
                    .where(ChunkRow.id.in_(part))
                )
                for cid, a, b, title, text in s.execute(q):
                    out[cid] = f"{title_of(title)}\n{text[a:b]}" if titled and title else text[a:b]
        return [(i, out[i]) for i in ids.tolist() if i in out]

    def chunk_langs(self, ids: np.ndarray) -> list[str]:
        langs: dict[int, str] = {}
        with Session(self.col.engine) as s:
            for part in batched(ids.tolist(), SQL_IN_BATCH):
                langs.update(s.execute(select(ChunkRow.id, ChunkRow.lang).where(ChunkRow.id.in_(part))).all())
        return [langs.get(i, "") for i in ids.tolist()]

    # ------------------------------------------------------------------ rebuild

    def rebuild(
        self,
        index_type: str | IndexSpec | None,
        *,
        models: Sequence[str] | None,
        reembed: bool,
        index_params: dict[str, Any] | None,
        backend: str | Mapping[str, str] | None,
    ) -> None:
        col = self.col
        with col._writing():
            targets = [col._model(x) for x in models] if models else list(col._models.values())
            if backend and not reembed:
                raise IndexerError(
                    "changing the backend re-encodes every chunk: add --reembed (reembed=True)"
                )
            new_backends = backends_for([m.spec for m in targets], backend) if backend else {}
            for m in targets:
                if m.spec in new_backends and new_backends[m.spec] != m.backend:
                    col._load_encoder(m.spec, new_backends[m.spec])  # fails before anything is rebuilt
                    m.backend = new_backends[m.spec]
            specs = {m.id: self._new_spec(m, index_type, index_params, reembed) for m in targets}
            for m in targets:  # every model's new spec was checked before any index is rebuilt
                m.index_spec = specs[m.id]
                if reembed:
                    m.dim = col.encoder(m.spec, allow_new_dim=True).dim
                    col._chunker = None
                self.rebuild_model(m, reembed=reembed)

    def _new_spec(self, m: ModelState, index_type, index_params, reembed: bool) -> IndexSpec:
        spec = m.index_spec
        if index_type is not None or index_params:
            try:
                spec = IndexSpec.parse(
                    index_type if index_type is not None else m.index_spec, **(index_params or {})
                )
            except ValueError as exc:
                raise IndexerError(str(exc)) from None
        dim = self.col.encoder(m.spec, allow_new_dim=True).dim if reembed else m.dim
        m.store.check_spec(spec, dim)
        return spec

    def _live_vectors(self, m: ModelState, live: np.ndarray, reembed: bool) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of every live chunk: from the trusted segments, the rest re-embedded."""
        found_ids: list[np.ndarray] = []
        found_vecs: list[np.ndarray] = []
        names = [] if reembed else self._trusted_segments(m)
        if names:
            try:
                for ids, vecs in SegmentStore(self.col.vectors_dir(m)).iter_rows(names, wanted=live):
                    found_ids.append(ids)
                    found_vecs.append(vecs)
            except IndexCorruptError as exc:
                log.warning("%s; re-encoding instead", exc)
                found_ids, found_vecs = [], []
        have = np.concatenate(found_ids) if found_ids else np.array([], np.int64)
        chunks = self.chunk_texts(np.setdiff1d(live, have))
        steps = list(batched(chunks, EMBED_BATCH))
        show = self.col.show_progress and len(chunks) >= EMBED_BATCH
        for part in tqdm(steps, desc=f"encode {m.name}", unit="batch", disable=not show):
            found_ids.append(np.array([c for c, _ in part], np.int64))
            found_vecs.append(self.col._writer.embed(m, [t for _, t in part]))
        ids = np.concatenate(found_ids) if found_ids else np.array([], np.int64)
        vecs = np.concatenate(found_vecs) if found_vecs else np.zeros((0, m.dim), np.float32)
        return ids, vecs

    def rebuild_model(self, m: ModelState, *, reembed: bool = False) -> None:
        """A new store (and one compacted vector segment) for the live chunks; committed at once."""
        col = self.col
        ids, vecs = self._live_vectors(m, self.live_ids(), reembed)
        segments = SegmentStore(col.vectors_dir(m))
        prepared = m.store.rebuild(ids, vecs, self.chunk_langs(ids))
        seg = None
        try:
            seg = segments.write(ids, vecs, prefix="compact") if len(ids) else None
            now = utcnow()
            values = {k: v for k, v in prepared.values.items() if k != "index"}
            values.update(index_spec=m.index_spec.to_dict(), dim=m.dim, updated_at=now, backend=m.backend)
            with Session(col.engine) as s, s.begin():
                s.execute(delete(SegmentRow).where(SegmentRow.model_id == m.id))
                if seg:
                    s.add(SegmentRow(model_id=m.id, name=seg, rows=len(ids), created_at=now))
                s.execute(update(ModelRow).where(ModelRow.id == m.id).values(**values))
                s.merge(MetaRow(key="last_update", value=now.isoformat()))
        except BaseException:
            m.store.abort(prepared)
            if seg:
                segments.delete(seg)
            raise
        m.store.finish(prepared, m.generation)
        m.updated_at = now
        m.clear_staged()
        for old, _ in m.segments:
            segments.delete(old)
        m.segments = [(seg, len(ids))] if seg else []
        col._searcher.invalidate()

    def _trusted_segments(self, m: ModelState) -> list[str]:
        """Segments of `m` that pass their checks; the chunks of the others are re-embedded."""
        store = SegmentStore(self.col.vectors_dir(m))
        good = []
        for name, rows in m.segments:
            try:
                store.check(name, rows, m.dim)
                good.append(name)
            except IndexCorruptError as exc:
                log.warning("%s: %s; re-embedding its chunks", m.name, exc)
        return good

    # ------------------------------------------------------------------ reconcile

    def reconcile(self) -> list[str]:
        with self.col._writing(repair=False):
            actions = self.reconcile_locked()
        for a in actions:
            log.warning("%s: %s", self.col.path, a)
        self.col.repairs = actions
        return actions

    def reconcile_locked(self) -> list[str]:
        actions: list[str] = []
        live, pending = self.live_ids(), self.pending_ids()
        for m in list(self.col._models.values()):
            if m.broken:
                actions.append(f"{m.name}: {m.broken}; rebuilt from the stored vectors")
                self._check_segments(m, actions)
                self.rebuild_model(m)
            elif self._check_segments(m, actions):
                self.rebuild_model(m)  # the store is fine, but the vectors a rebuild needs are gone
            else:
                self._reconcile_model(m, live, pending, actions)
        dirty = any(m.store.dirty for m in self.col._models.values())
        if len(pending) or dirty:
            self.col._writer.commit(mark_all=True)
        if len(pending) and not actions:
            actions.append(
                f"marked {len(pending)} pending chunk(s) indexed (their vectors were already committed)"
            )
        actions += self.remove_stray_files()
        return actions

    def _reconcile_model(
        self, m: ModelState, live: np.ndarray, pending: np.ndarray, actions: list[str]
    ) -> None:
        in_store = m.store.ids()
        orphans = np.setdiff1d(in_store, live)
        if len(orphans):
            tomb = m.store.remove(orphans)
            if len(orphans) > tomb:
                actions.append(f"{m.name}: removed {len(orphans) - tomb} orphan vector(s)")
            m.store.set_tombstones(tomb)
        elif m.tombstones:
            m.store.set_tombstones(0)
        if len(np.unique(in_store)) != len(in_store):
            actions.append(f"{m.name}: duplicate ids in the index; rebuilt")
            self.rebuild_model(m)
            return
        # A store that upserts (Milvus) may hold vectors of chunks that never reached the commit
        # point: those are written again, with their segment, like missing ones.
        unconfirmed = (
            np.intersect1d(pending, in_store) if m.store.kind != StoreKind.FAISS else np.zeros(0, np.int64)
        )
        missing = np.union1d(np.setdiff1d(live, in_store), unconfirmed)
        if len(missing):
            self._add_missing(m, missing, actions)

    def _add_missing(self, m: ModelState, missing: np.ndarray, actions: list[str]) -> None:
        got_ids, got_vecs = [], []
        try:
            for ids, vecs in SegmentStore(self.col.vectors_dir(m)).iter_rows(
                [n for n, _ in m.segments], missing
            ):
                got_ids.append(ids)
                got_vecs.append(vecs)
        except IndexCorruptError:
            got_ids, got_vecs = [], []
        have = np.concatenate(got_ids) if got_ids else np.array([], np.int64)
        if len(have):
            m.store.add(have, np.concatenate(got_vecs), self.chunk_langs(have))
        rest = np.setdiff1d(missing, have)
        if len(rest):
            chunks = self.chunk_texts(rest)
            ids = np.array([c for c, _ in chunks], np.int64)
            self.col._writer.stage_vectors(
                m, ids, self.col._writer.embed(m, [t for _, t in chunks]), self.chunk_langs(ids)
            )
        actions.append(
            f"{m.name}: indexed {len(missing)} pending chunk(s) ({len(have)} from stored vectors, {len(rest)} re-embedded)"
        )

    def _check_segments(self, m: ModelState, actions: list[str]) -> bool:
        """Drop registrations of segment files that are missing or unreadable (their chunks get re-embedded)."""
        store = SegmentStore(self.col.vectors_dir(m))
        bad = []
        for name, rows in m.segments:
            try:
                store.check(name, rows, m.dim)
            except IndexCorruptError as exc:
                bad.append(name)
                actions.append(f"{m.name}: {exc}; its chunks will be re-embedded if needed")
        if bad:
            with Session(self.col.engine) as s, s.begin():
                s.execute(delete(SegmentRow).where(SegmentRow.model_id == m.id, SegmentRow.name.in_(bad)))
            m.segments = [(n, r) for n, r in m.segments if n not in bad]
        return bool(bad)

    def remove_stray_files(self) -> list[str]:
        """Delete what no committed row names: temporary files, uncommitted generations and segments."""
        models = self.col._models
        removed = next(iter(models.values())).store.stray_files(models) if models else 0
        for m in models.values():
            store = SegmentStore(self.col.vectors_dir(m))
            for name in store.files() - {n for n, _ in m.segments}:
                store.delete(name)
                removed += 1
            if store.root.is_dir():
                for p in store.root.glob(f"*{TMP_SUFFIX}"):
                    p.unlink(missing_ok=True)
                    removed += 1
        return [f"removed {removed} uncommitted or temporary file(s)"] if removed else []

    # ------------------------------------------------------------------ verify

    def verify(self) -> VerifyReport:
        """Check that database, stores and stored vectors agree; changes nothing."""
        col, report = self.col, VerifyReport()
        with col._mutex, col._stores.session():
            with Session(col.engine) as s:
                rows = s.scalars(col._model_rows()).all()
                seg_rows = s.execute(select(SegmentRow.model_id, SegmentRow.name, SegmentRow.rows)).all()
                chunk_rows = s.execute(
                    select(ChunkRow.id, ChunkRow.doc_id, ChunkRow.start, ChunkRow.end, ChunkRow.state)
                ).all()
                doc_rows = s.execute(
                    select(DocumentRow.id, DocumentRow.ext_id, func.length(DocumentRow.text))
                ).all()
            live = np.array(sorted(r.id for r in chunk_rows), dtype=np.int64)
            self._verify_rows(chunk_rows, doc_rows, report)
            for row in rows:
                self._verify_model(row, [(n, c) for mid, n, c in seg_rows if mid == row.id], live, report)
            stray = [p.name for p in (col.path / INDEX_DIR).glob("*") if p.name.endswith(TMP_SUFFIX)]
            if stray:
                report.notes.append(
                    f"{len(stray)} temporary file(s) left in {INDEX_DIR}/ (removed by the next writer)"
                )
        return report

    def _verify_rows(self, chunk_rows, doc_rows, report: VerifyReport) -> None:
        pending = sum(1 for r in chunk_rows if r.state != ChunkState.INDEXED.value)
        report.stats = {"documents": len(doc_rows), "chunks": len(chunk_rows), "pending_chunks": pending}
        if self.col._lock.is_locked_elsewhere():
            report.notes.append("another process is writing to the collection now; work in progress may show")
        if pending:
            report.problems.append(
                f"{pending} chunk(s) are pending (committed to the database, not in every index)"
            )
        length = {r.id: r[2] for r in doc_rows}
        with_chunks = set()
        for r in chunk_rows:
            with_chunks.add(r.doc_id)
            if r.doc_id not in length:
                report.problems.append(f"chunk {r.id} belongs to no document")
            elif not 0 <= r.start < r.end <= length[r.doc_id]:
                report.problems.append(f"chunk {r.id} has span {r.start}:{r.end} outside its document")
        without = [r.ext_id for r in doc_rows if r.id not in with_chunks]
        if without:
            report.problems.append(f"{len(without)} document(s) have no chunks, e.g. {without[:3]}")

    def _verify_model(self, row: ModelRow, segments: list[tuple[str, int]], live: np.ndarray, report) -> None:
        from indexer.stores import open_store

        m = ModelState(id=row.id)  # the committed row, read apart from the in-memory state
        m.update_from(row)
        vectors = open_store(self.col._stores.config.kind, m, self.col._stores).verify(live, report)
        store = SegmentStore(self.col.vectors_dir(m))
        stored: list[np.ndarray] = []
        bad_segments = 0
        for seg, rows in segments:
            try:
                store.check(seg, rows, row.dim)
                stored.append(store.ids(seg))
            except IndexCorruptError as exc:
                report.problems.append(f"{row.name}: {exc}")
                bad_segments += 1
        unstored = np.setdiff1d(live, np.unique(np.concatenate(stored)) if stored else np.array([], np.int64))
        if bad_segments:
            report.notes.append(
                f"{row.name}: `indexer verify --repair` re-embeds the chunks of the {bad_segments} broken segment(s)"
            )
        elif len(unstored):
            report.problems.append(
                f"{row.name}: {len(unstored)} chunk(s) have no stored vector (a rebuild would re-encode them)"
            )
        report.stats[row.name] = {
            "index": row.factory,
            "vectors": vectors,
            "tombstones": row.tombstones,
            "index_bytes": row.index_bytes,
        }
