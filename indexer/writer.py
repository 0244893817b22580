"""The write path of a collection: validate, store documents and pending chunks, embed, stage, commit.

Commit protocol (README "Crash safety"): documents and their chunks are committed first with the
chunks `pending`; their vectors are staged in every model's store; at a commit point each model
writes one float16 vector segment and makes its store durable (`VectorStore.prepare`: FAISS writes
the next generation file, Milvus upserts and flushes); then one database transaction registers
the segments, points the models at what was written and marks the chunks `indexed`. That
transaction is the commit point: a crash before it leaves pending chunks that the next writer
indexes again (`indexer.recovery`), idempotently (chunk ids are the vector ids).

A rebuild (a new store and one compacted segment for every live chunk, committed at once) is a
write too: the writer runs one after a commit when a store asks for it (`maintain`).
The writer works under the write lock its caller holds (`Recovery.writing`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session
from tqdm.auto import tqdm

import indexer.chunks as chunks
from distill.documents import Document
from distill.roles import Role
from distill.vectors import l2_normalize
from indexer.config import OnError
from indexer.context import CollectionContext
from indexer.errors import IndexCorruptError, IndexerError, InputError
from indexer.layout import REJECTS_DIR
from indexer.results import AddSummary, DeleteSummary
from indexer.schema import ChunkRow, ChunkState, DocumentRow, MetaRow, ModelRow, SegmentRow, utcnow
from indexer.segments import SegmentStore
from indexer.sources import Record, Validator
from indexer.state import SQL_IN_BATCH, ModelState, batched, content_hash

log = logging.getLogger("indexer")

DOC_BATCH = 64  # documents per database transaction
DEFAULT_COMMIT_EVERY = 2048  # chunks embedded between commits (at least; grows with the collection)
COMMIT_GROWTH = 0.05  # ... to 5% of the index, so rewriting the index file stays O(n) in total
MAX_SEGMENTS = 64  # vector segments per model before they are compacted into one (a rebuild)
TITLE_SHARE = 4  # with embed_title, a title takes at most 1/TITLE_SHARE of a chunk's token budget
EMBED_BATCH = 1024  # chunks re-embedded per progress step of a rebuild

Chunk = tuple[int, str, str]  # chunk id, text to embed, language


class Writer:
    def __init__(self, ctx: CollectionContext) -> None:
        self.ctx = ctx
        self.staged_chunk_ids: list[np.ndarray] = []
        self.staged_since_commit = 0
        self._titles: dict[str, tuple[str, bool]] = {}  # title -> (what is embedded, was it cut)

    def reset(self) -> None:
        self.staged_chunk_ids, self.staged_since_commit = [], 0

    # ------------------------------------------------------------------ ingest

    def ingest(
        self,
        sources: list[tuple[str, Callable[[], Iterable[Record]]]],
        on_error: str | OnError,
        rejects: str | Path | None,
        *,
        upsert: bool,
    ) -> AddSummary:
        """Add (or update) the records of every source; the caller holds the write lock."""
        on_error = OnError(on_error)
        summary = AddSummary()
        out = _Rejects(self.ctx.path, rejects, summary)
        try:
            self.ctx.chunker_for()  # loads every model now: one that fails to load fails before any write
            for source, make_records in sources:
                self._ingest_source(source, make_records, on_error, upsert, summary, out)
                self.commit()  # each file is committed before the next one is validated
        finally:
            out.close()
        return summary

    def _ingest_source(self, source, make_records, on_error: OnError, upsert: bool, summary, out) -> None:
        total = self._prevalidate(source, make_records, upsert) if on_error == OnError.FAIL else None
        validator = Validator(self.ctx.settings.max_chars)
        batch: list[Record] = []
        bar = tqdm(
            desc=f"add {Path(source).name}", unit="doc", total=total, disable=not self.ctx.show_progress
        )
        for rec in make_records():
            validator.check(rec)
            if rec.error:
                if on_error == OnError.FAIL:  # changed between the two passes
                    raise InputError(f"{rec.where}: {rec.error}")
                out.write(rec)
                continue
            batch.append(rec)
            if len(batch) >= DOC_BATCH:
                self._add_batch(batch, summary, upsert, out)
                bar.update(len(batch))
                batch = []
        if batch:
            self._add_batch(batch, summary, upsert, out)
            bar.update(len(batch))
        bar.close()

    def _prevalidate(self, source: str, make_records: Callable[[], Iterable[Record]], upsert: bool) -> int:
        """`--on-error fail`: read the whole source first; any bad record -> InputError, nothing written.
        Returns the number of records."""
        validator = Validator(self.ctx.settings.max_chars)
        problems: list[str] = []
        ids: list[str] = []
        count = 0
        for rec in make_records():
            validator.check(rec)
            if rec.error:
                problems.append(f"{rec.where}: {rec.error}")
            elif not upsert:
                ids.append(rec.doc.id)
            count += 1
        if not upsert and ids:
            known = self.existing_ext_ids(ids)
            problems += [
                f"{source}: document id {i!r} is not in the collection (use `add`)"
                for i in ids
                if i not in known
            ]
        if problems:
            shown = "\n  ".join(problems[:10])
            more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
            raise InputError(
                f"{source}: {len(problems)} bad record(s); nothing from this file was written "
                f"(use --on-error skip to index the good ones):\n  {shown}{more}",
                problems,
            )
        return count

    def existing_ext_ids(self, ids: list[str]) -> set[str]:
        found: set[str] = set()
        with Session(self.ctx.engine) as s:
            for part in batched(list(ids), SQL_IN_BATCH):
                found.update(s.scalars(select(DocumentRow.ext_id).where(DocumentRow.ext_id.in_(part))))
        return found

    def _add_batch(self, batch: list[Record], summary: AddSummary, upsert: bool, out: _Rejects) -> None:
        """One transaction of documents + pending chunks, then embed and stage their vectors."""
        with Session(self.ctx.engine) as s, s.begin():
            to_chunk, removed, unknown = self._upsert_documents(s, batch, summary, upsert)
            s.flush()
            rows = self._chunk_rows(to_chunk)
            s.add_all([r for r, _ in rows])
            s.flush()
            new_chunks = [(r.id, t, r.lang) for r, t in rows]
        for rec in unknown:
            out.write(rec)
        self.stage(new_chunks, np.array(removed, dtype=np.int64), summary)

    def _upsert_documents(self, s: Session, batch: list[Record], summary: AddSummary, upsert: bool):
        """Insert new documents, replace changed ones (their old chunks go), touch metadata-only changes."""
        docs, now = [r.doc for r in batch], utcnow()
        existing = {
            r.ext_id: r
            for r in s.scalars(select(DocumentRow).where(DocumentRow.ext_id.in_([d.id for d in docs])))
        }
        to_chunk: list[tuple[DocumentRow, Document]] = []
        removed: list[int] = []
        unknown: list[Record] = []
        for rec, doc in zip(batch, docs, strict=True):
            row = existing.get(doc.id)
            if row is None and not upsert:
                unknown.append(rec.reject(f"document id {doc.id!r} is not in the collection (use `add`)"))
                continue
            digest = content_hash(doc)
            if row is not None and row.content_hash == digest:
                if (row.meta or {}) != (doc.metadata or {}):
                    row.meta, row.updated_at = dict(doc.metadata), now
                summary.unchanged += 1
                continue
            if row is not None:
                removed += list(s.scalars(select(ChunkRow.id).where(ChunkRow.doc_id == row.id)))
                s.execute(delete(ChunkRow).where(ChunkRow.doc_id == row.id))
                row.lang, row.title, row.text = doc.lang, doc.title or "", doc.text
                row.meta, row.content_hash, row.updated_at = dict(doc.metadata), digest, now
                summary.updated += 1
            else:
                row = DocumentRow(
                    ext_id=doc.id, lang=doc.lang, title=doc.title or "", text=doc.text, meta=dict(doc.metadata),
                    content_hash=digest, created_at=now, updated_at=now,
                )  # fmt: skip
                s.add(row)
                existing[doc.id] = row
                summary.added += 1
            to_chunk.append((row, doc))
        return to_chunk, removed, unknown

    def _chunk_rows(self, to_chunk: list[tuple[DocumentRow, Document]]) -> list[tuple[ChunkRow, str]]:
        chunker = self.ctx.chunker_for()
        titled = self.ctx.settings.embed_title
        titles = [self.embedded_title(d.title, d.id) if titled and d.title else "" for _, d in to_chunk]
        reserves = [(chunker._counts([t])[0] + 1) if t else 0 for t in titles]
        spans = chunker.chunk_many([d.text for _, d in to_chunk], reserves)
        rows: list[tuple[ChunkRow, str]] = []
        for (row, doc), doc_spans, title in zip(to_chunk, spans, titles, strict=True):
            for pos, sp in enumerate(doc_spans):
                text = doc.text[sp.start : sp.end]
                chunk = ChunkRow(
                    doc_id=row.id, position=pos, start=sp.start, end=sp.end, lang=doc.lang,
                    state=ChunkState.PENDING.value,
                )  # fmt: skip
                rows.append((chunk, f"{title}\n{text}" if title else text))
        return rows

    def embedded_title(self, title: str, doc_id: str | None = None) -> str:
        """The title as embedded before each chunk: cut to 1/TITLE_SHARE of the chunk budget, so a
        long title cannot crowd the chunk's own text out of the model's input."""
        chunker = self.ctx.chunker_for()
        if title not in self._titles:
            cut = chunker.cut(title, max(chunker.budget // TITLE_SHARE, 1))
            self._titles[title] = (cut, cut != title)
            if len(self._titles) > 10_000:
                self._titles.clear()
        cut, was_cut = self._titles[title]
        if was_cut and doc_id is not None:
            log.warning(
                "document %s: its title is embedded only up to %r (at most 1/%d of the %d-token chunk "
                "budget goes to the title)",
                doc_id,
                cut[-40:],
                TITLE_SHARE,
                chunker.budget,
            )
        return cut

    # ------------------------------------------------------------------ embed, stage, commit

    def embed(self, m: ModelState, texts: list[str], summary: AddSummary | None = None) -> np.ndarray:
        enc = self.ctx.encoder(m.spec)
        t0 = time.perf_counter()
        vecs = enc.encode(texts, batch_size=self.ctx.batch_size, prefix=Role.PASSAGE)
        if summary is not None:
            summary.encode_seconds[m.spec] = (
                summary.encode_seconds.get(m.spec, 0.0) + time.perf_counter() - t0
            )
        return l2_normalize(vecs)

    def stage(self, chunks: list[Chunk], removed: np.ndarray, summary: AddSummary | None = None) -> None:
        """Embed `chunks` with every model and stage them (and the removal of `removed`) in its store."""
        ids = np.array([c[0] for c in chunks], dtype=np.int64)
        texts, langs = [c[1] for c in chunks], [c[2] for c in chunks]
        models = self.ctx.models.values()
        for m in models:
            if len(removed):
                m.store.set_tombstones(m.tombstones + m.store.remove(removed))
            if len(ids):
                self.stage_vectors(m, ids, self.embed(m, texts, summary), langs)
        if len(ids):
            self.staged_chunk_ids.append(ids)
            self.staged_since_commit += len(ids)
            if summary is not None:
                summary.chunks += len(ids)
        ntotal = max((m.store.count() for m in models), default=0)
        if self.staged_since_commit >= max(self.ctx.commit_every, int(COMMIT_GROWTH * ntotal)):
            self.commit()

    def stage_vectors(self, m: ModelState, ids: np.ndarray, vecs: np.ndarray, langs: list[str]) -> None:
        """Vectors for the store and for the model's next vector segment."""
        m.store.add(ids, vecs, langs)
        m.staged_ids.append(ids)
        m.staged_vecs.append(vecs)

    def commit(self, mark_all: bool = False) -> None:
        """Make staged vectors durable (segments, then each store), then commit the database.

        `mark_all`: every chunk is now in every store (reconcile), so mark all pending ones indexed."""
        models = [m for m in self.ctx.models.values() if m.store.dirty or m.staged_ids]
        if not models and not self.staged_chunk_ids and not mark_all:
            return
        written = []
        try:
            for m in models:
                seg, rows = self._write_segment(m)
                gen = m.generation + 1 if m.generation >= 0 else 1
                written.append((m, m.store.prepare(gen), seg, rows))
            now = utcnow()
            self._commit_rows(written, now, mark_all)
        except BaseException:
            for m, prepared, _, _ in written:
                m.store.abort(prepared)
            raise
        for m, prepared, seg, rows in written:
            m.store.finish(prepared, m.generation)
            m.updated_at = now
            if seg:
                m.segments.append((seg, rows))
            m.clear_staged()
        self.reset()
        self.ctx.commits += 1
        self.maintain()

    def _write_segment(self, m: ModelState) -> tuple[str | None, int]:
        if not m.staged_ids:
            return None, 0
        ids = np.concatenate(m.staged_ids)
        return SegmentStore(self.ctx.vectors_dir(m)).write(ids, np.concatenate(m.staged_vecs)), len(ids)

    def _commit_rows(self, written, now: datetime, mark_all: bool) -> None:
        """The commit point: one transaction for model rows, segments and chunk states."""
        chunk_ids = np.concatenate(self.staged_chunk_ids) if self.staged_chunk_ids else np.array([], np.int64)
        with Session(self.ctx.engine) as s, s.begin():
            for m, prepared, seg, rows in written:
                values = dict(prepared.values, index_spec=m.index_spec.to_dict(), dim=m.dim, updated_at=now)
                values.pop("index", None)
                s.execute(update(ModelRow).where(ModelRow.id == m.id).values(**values))
                if seg:
                    s.add(SegmentRow(model_id=m.id, name=seg, rows=rows, created_at=now))
            indexed = ChunkState.INDEXED.value
            if mark_all:
                s.execute(
                    update(ChunkRow).where(ChunkRow.state == ChunkState.PENDING.value).values(state=indexed)
                )
            for part in batched(chunk_ids.tolist(), SQL_IN_BATCH):
                s.execute(update(ChunkRow).where(ChunkRow.id.in_(part)).values(state=indexed))
            s.merge(MetaRow(key="last_update", value=now.isoformat()))

    def maintain(self) -> None:
        """After a commit: rebuild a store that asks for it (FAISS: a flat stand-in that can now be
        trained, too many tombstones, outgrown IVF lists), or whose vectors are in too many segments."""
        for m in list(self.ctx.models.values()):
            live = m.store.count() - m.tombstones
            reason = m.store.needs_rebuild(live)
            if reason is None and len(m.segments) > MAX_SEGMENTS:
                reason = f"{len(m.segments)} vector segments"  # a rebuild writes one compacted segment
            if reason is None:
                continue
            log.info("rebuilding the index of %s (%s)", m.spec, reason)
            try:
                self.rebuild_model(m)
            except (IndexerError, ValueError) as exc:
                # The commit before this stands; an index type that cannot be built (recorded by an
                # older version) must not turn every later write into an error.
                log.warning(
                    "%s: the index stays %s: %s (`indexer rebuild --index-type` switches it)",
                    m.name,
                    m.factory,
                    exc,
                )
                self.ctx.reload([m])

    # ------------------------------------------------------------------ rebuild

    def chunk_texts(self, ids: np.ndarray) -> list[tuple[int, str]]:
        """(chunk id, the text its vector embeds) of the chunks of `ids` still in the database."""
        titled = self.ctx.settings.embed_title
        return [
            (cid, f"{self.embedded_title(title)}\n{text}" if titled and title else text)
            for cid, title, text in chunks.chunk_spans(self.ctx.engine, ids)
        ]

    def rebuild_model(self, m: ModelState, *, reembed: bool = False) -> None:
        """A new store (and one compacted vector segment) for the live chunks; committed at once."""
        ctx = self.ctx
        ids, vecs = self._live_vectors(m, chunks.live_ids(ctx.engine), reembed)
        segments = SegmentStore(ctx.vectors_dir(m))
        prepared = m.store.rebuild(ids, vecs, chunks.chunk_langs(ctx.engine, ids))
        seg = None
        try:
            seg = segments.write(ids, vecs, prefix="compact") if len(ids) else None
            now = utcnow()
            values = {k: v for k, v in prepared.values.items() if k != "index"}
            values.update(index_spec=m.index_spec.to_dict(), dim=m.dim, updated_at=now, backend=m.backend)
            with Session(ctx.engine) as s, s.begin():
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
        ctx.commits += 1

    def _live_vectors(self, m: ModelState, live: np.ndarray, reembed: bool) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of every live chunk: from the trusted segments, the rest re-embedded."""
        found_ids: list[np.ndarray] = []
        found_vecs: list[np.ndarray] = []
        names = [] if reembed else self._trusted_segments(m)
        if names:
            try:
                for ids, vecs in SegmentStore(self.ctx.vectors_dir(m)).iter_rows(names, wanted=live):
                    found_ids.append(ids)
                    found_vecs.append(vecs)
            except IndexCorruptError as exc:
                log.warning("%s; re-encoding instead", exc)
                found_ids, found_vecs = [], []
        have = np.concatenate(found_ids) if found_ids else np.array([], np.int64)
        texts = self.chunk_texts(np.setdiff1d(live, have))
        steps = list(batched(texts, EMBED_BATCH))
        show = self.ctx.show_progress and len(texts) >= EMBED_BATCH
        for part in tqdm(steps, desc=f"encode {m.name}", unit="batch", disable=not show):
            found_ids.append(np.array([c for c, _ in part], np.int64))
            found_vecs.append(self.embed(m, [t for _, t in part]))
        ids = np.concatenate(found_ids) if found_ids else np.array([], np.int64)
        vecs = np.concatenate(found_vecs) if found_vecs else np.zeros((0, m.dim), np.float32)
        return ids, vecs

    def _trusted_segments(self, m: ModelState) -> list[str]:
        """Segments of `m` that pass their checks; the chunks of the others are re-embedded."""
        store = SegmentStore(self.ctx.vectors_dir(m))
        good = []
        for name, rows in m.segments:
            try:
                store.check(name, rows, m.dim)
                good.append(name)
            except IndexCorruptError as exc:
                log.warning("%s: %s; re-embedding its chunks", m.name, exc)
        return good

    # ------------------------------------------------------------------ delete

    def delete(self, ids: Iterable[str]) -> DeleteSummary:
        """Delete documents by external id (under the caller's write lock); unknown ids are reported."""
        wanted = list(dict.fromkeys(str(i) for i in ids))
        summary = DeleteSummary()
        removed: list[int] = []
        with Session(self.ctx.engine) as s, s.begin():
            for part in batched(wanted, SQL_IN_BATCH):
                rows = s.execute(
                    select(DocumentRow.id, DocumentRow.ext_id).where(DocumentRow.ext_id.in_(part))
                ).all()
                doc_ids = [r.id for r in rows]
                summary.deleted += [r.ext_id for r in rows]
                if doc_ids:
                    removed += list(s.scalars(select(ChunkRow.id).where(ChunkRow.doc_id.in_(doc_ids))))
                    s.execute(delete(ChunkRow).where(ChunkRow.doc_id.in_(doc_ids)))
                    s.execute(delete(DocumentRow).where(DocumentRow.id.in_(doc_ids)))
            s.merge(MetaRow(key="last_update", value=utcnow().isoformat()))
        found = set(summary.deleted)
        summary.not_found = [i for i in wanted if i not in found]
        if removed:
            self.stage([], np.array(removed, dtype=np.int64))
            self.commit()
        return summary


class _Rejects:
    """Where `--on-error skip` writes bad records (opened at the first one)."""

    def __init__(self, path: Path, target: str | Path | None, summary: AddSummary) -> None:
        self.path, self.target, self.summary, self.out = path, target, summary, None

    def write(self, rec: Record) -> None:
        summary = self.summary
        summary.rejected += 1
        if len(summary.problems) < 20:
            summary.problems.append(f"{rec.where}: {rec.error}")
        log.debug("rejected %s: %s", rec.where, rec.error)
        if self.out is None:
            target = self.target
            if target is None:
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
                name = Path(rec.source).name.strip("<>")  # `<stdin>` -> stdin
                target = self.path / REJECTS_DIR / f"{name}.{stamp}.{os.getpid()}.jsonl"
            target = Path(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            self.out = target.open("a", encoding="utf-8")
            summary.rejects_file = str(target)
        self.out.write(rec.to_reject_json() + "\n")
        self.out.flush()

    def close(self) -> None:
        if self.out is not None:
            self.out.close()
