"""Recovery: make every store agree with the database (reconcile), check it (verify), rebuild.

The database is the source of truth. Reconcile compares each store's ids with the live chunk ids
in both directions: vectors of chunks no longer in the database are removed (or counted as
tombstones where FAISS cannot remove), chunks that are missing or still `pending` are (re)added
from the stored vector segments, or re-embedded where those are gone; a store that cannot be
loaded is rebuilt from the segments; files (and Milvus collections) that no committed row names
are deleted. Re-adding a pending chunk is idempotent: its id is the vector id.

Every write runs inside `Recovery.writing()`: the write lock held, the committed state loaded,
and a crashed writer's leftovers repaired first.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

import indexer.chunks as chunks
from indexer.config import IndexSpec
from indexer.context import CollectionContext
from indexer.errors import CollectionLockedError, IndexCorruptError, IndexerError, storage_errors
from indexer.files import TMP_SUFFIX
from indexer.layout import INDEX_DIR
from indexer.results import VerifyReport
from indexer.schema import ChunkRow, ChunkState, DocumentRow, ModelRow, SegmentRow
from indexer.segments import SegmentStore
from indexer.state import ModelState, backends_for
from indexer.writer import Writer

log = logging.getLogger("indexer")


class Recovery:
    def __init__(self, ctx: CollectionContext, writer: Writer) -> None:
        self.ctx, self.writer = ctx, writer

    # ------------------------------------------------------------------ the write lock

    @contextmanager
    def writing(self, repair: bool = True) -> Iterator[None]:
        """Hold the write lock with the committed state loaded; repair a crashed writer's leftovers first."""
        ctx = self.ctx
        ctx.require_writable()
        with ctx.mutex, storage_errors(ctx.path):
            ctx.lock.acquire(timeout=ctx.lock_timeout)
            try:
                with ctx.stores.session():  # after the lock: Milvus Lite is taken by the writer only
                    ctx.sync()
                    if repair and self._needs_repair():
                        self.reconcile_locked()
                    yield
            except BaseException:
                # Forget staged changes: back to the committed state.
                self.writer.reset()
                ctx.reload()
                raise
            finally:
                ctx.lock.release()

    def _needs_repair(self) -> bool:
        if any(m.broken for m in self.ctx.models.values()):
            return True
        with Session(self.ctx.engine) as s:
            pending = (
                select(func.count()).select_from(ChunkRow).where(ChunkRow.state == ChunkState.PENDING.value)
            )
            return bool(s.scalar(pending))

    # ------------------------------------------------------------------ database reads

    def live_ids(self) -> np.ndarray:
        return chunks.live_ids(self.ctx.engine)

    def chunk_texts(self, ids: np.ndarray) -> list[tuple[int, str]]:
        return self.writer.chunk_texts(ids)

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
        ctx = self.ctx
        with self.writing():
            targets = [ctx.model(x) for x in models] if models else list(ctx.models.values())
            if backend and not reembed:
                raise IndexerError(
                    "changing the backend re-encodes every chunk: add --reembed (reembed=True)"
                )
            new_backends = backends_for([m.spec for m in targets], backend) if backend else {}
            for m in targets:
                if m.spec in new_backends and new_backends[m.spec] != m.backend:
                    ctx.load_encoder(m.spec, new_backends[m.spec])  # fails before anything is rebuilt
                    m.backend = new_backends[m.spec]
            specs = {m.id: self._new_spec(m, index_type, index_params, reembed) for m in targets}
            for m in targets:  # every model's new spec was checked before any index is rebuilt
                m.index_spec = specs[m.id]
                if reembed:
                    m.dim = ctx.encoder(m.spec, allow_new_dim=True).dim
                    ctx.chunker = None  # built again from the new encoders
                self.writer.rebuild_model(m, reembed=reembed)

    def _new_spec(self, m: ModelState, index_type, index_params, reembed: bool) -> IndexSpec:
        spec = m.index_spec
        if index_type is not None or index_params:
            try:
                spec = IndexSpec.parse(
                    index_type if index_type is not None else m.index_spec, **(index_params or {})
                )
            except ValueError as exc:
                raise IndexerError(str(exc)) from None
        dim = self.ctx.encoder(m.spec, allow_new_dim=True).dim if reembed else m.dim
        m.store.check_spec(spec, dim)
        return spec

    # ------------------------------------------------------------------ reconcile

    def reconcile(self) -> list[str]:
        """Repair what is inconsistent (under the lock); return what was done."""
        with self.writing(repair=False):
            actions = self.reconcile_locked()
        for a in actions:
            log.warning("%s: %s", self.ctx.path, a)
        return actions

    def reconcile_on_open(self) -> list[str]:
        """`reconcile` without waiting for the lock: the lock timeout is for the write that follows,
        which repairs first if it must (`writing`), so --lock-timeout is waited once, not twice."""
        wait, self.ctx.lock_timeout = self.ctx.lock_timeout, 0.0
        try:
            return self.reconcile()
        except CollectionLockedError:
            # The active writer keeps the collection consistent; reads see its commits.
            log.warning("%s: another process is writing; opened without reconciling", self.ctx.path)
            return []
        finally:
            self.ctx.lock_timeout = wait

    def reconcile_locked(self) -> list[str]:
        actions: list[str] = []
        live, pending = self.live_ids(), chunks.pending_ids(self.ctx.engine)
        for m in list(self.ctx.models.values()):
            if m.broken:
                actions.append(f"{m.name}: {m.broken}; rebuilt from the stored vectors")
                self._check_segments(m, actions)
                self.writer.rebuild_model(m)
            elif self._check_segments(m, actions):
                self.writer.rebuild_model(m)  # the store is fine, but the vectors a rebuild needs are gone
            else:
                self._reconcile_model(m, live, pending, actions)
        dirty = any(m.store.dirty for m in self.ctx.models.values())
        if len(pending) or dirty:
            self.writer.commit(mark_all=True)
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
            self.writer.rebuild_model(m)
            return
        # A store that upserts (Milvus) may hold vectors of chunks that never reached the commit
        # point: those are written again, with their segment, like missing ones.
        unconfirmed = (
            np.intersect1d(pending, in_store) if m.store.idempotent_upserts else np.zeros(0, np.int64)
        )
        missing = np.union1d(np.setdiff1d(live, in_store), unconfirmed)
        if len(missing):
            self._add_missing(m, missing, actions)

    def _add_missing(self, m: ModelState, missing: np.ndarray, actions: list[str]) -> None:
        got_ids, got_vecs = [], []
        try:
            for ids, vecs in SegmentStore(self.ctx.vectors_dir(m)).iter_rows(
                [n for n, _ in m.segments], missing
            ):
                got_ids.append(ids)
                got_vecs.append(vecs)
        except IndexCorruptError:
            got_ids, got_vecs = [], []
        have = np.concatenate(got_ids) if got_ids else np.array([], np.int64)
        if len(have):
            m.store.add(have, np.concatenate(got_vecs), chunks.chunk_langs(self.ctx.engine, have))
        rest = np.setdiff1d(missing, have)
        if len(rest):
            texts = self.chunk_texts(rest)
            ids = np.array([c for c, _ in texts], np.int64)
            vecs = self.writer.embed(m, [t for _, t in texts])
            self.writer.stage_vectors(m, ids, vecs, chunks.chunk_langs(self.ctx.engine, ids))
        actions.append(
            f"{m.name}: indexed {len(missing)} pending chunk(s) ({len(have)} from stored vectors, {len(rest)} re-embedded)"
        )

    def _check_segments(self, m: ModelState, actions: list[str]) -> bool:
        """Drop registrations of segment files that are missing or unreadable (their chunks get re-embedded)."""
        store = SegmentStore(self.ctx.vectors_dir(m))
        bad = []
        for name, rows in m.segments:
            try:
                store.check(name, rows, m.dim)
            except IndexCorruptError as exc:
                bad.append(name)
                actions.append(f"{m.name}: {exc}; its chunks will be re-embedded if needed")
        if bad:
            with Session(self.ctx.engine) as s, s.begin():
                s.execute(delete(SegmentRow).where(SegmentRow.model_id == m.id, SegmentRow.name.in_(bad)))
            m.segments = [(n, r) for n, r in m.segments if n not in bad]
        return bool(bad)

    def remove_stray_files(self) -> list[str]:
        """Delete what no committed row names: temporary files, uncommitted generations and segments."""
        models = self.ctx.models
        removed = next(iter(models.values())).store.stray_files(models) if models else 0
        for m in models.values():
            store = SegmentStore(self.ctx.vectors_dir(m))
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
        ctx, report = self.ctx, VerifyReport()
        with ctx.mutex, ctx.stores.session():
            with Session(ctx.engine) as s:
                rows = s.scalars(ctx.model_rows()).all()
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
            stray = [p.name for p in (ctx.path / INDEX_DIR).glob("*") if p.name.endswith(TMP_SUFFIX)]
            if stray:
                report.notes.append(
                    f"{len(stray)} temporary file(s) left in {INDEX_DIR}/ (removed by the next writer)"
                )
        return report

    def _verify_rows(self, chunk_rows, doc_rows, report: VerifyReport) -> None:
        pending = sum(1 for r in chunk_rows if r.state != ChunkState.INDEXED.value)
        report.stats = {"documents": len(doc_rows), "chunks": len(chunk_rows), "pending_chunks": pending}
        if self.ctx.lock.is_locked_elsewhere():
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
        m = ModelState(id=row.id)  # the committed row, read apart from the in-memory state
        m.update_from(row)
        vectors = self.ctx.stores.open(m).verify(live, report)
        store = SegmentStore(self.ctx.vectors_dir(m))
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
