"""What a collection shows about itself: `info` (documents, chunks, store, models), its documents."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from distill.documents import Document
from indexer.context import CollectionContext
from indexer.schema import ChunkRow, ChunkState, DocumentRow, MetaRow, masked_url
from indexer.segments import SegmentStore
from indexer.state import ModelState


def info(ctx: CollectionContext) -> dict[str, Any]:
    """Documents per language, chunks, the vector store, and per model the index type, size and state."""
    with ctx.mutex, ctx.stores.session():
        ctx.sync()
        with Session(ctx.engine) as s:
            docs = s.scalar(select(func.count()).select_from(DocumentRow)) or 0
            chunks = s.scalar(select(func.count()).select_from(ChunkRow)) or 0
            pending = (
                select(func.count()).select_from(ChunkRow).where(ChunkRow.state == ChunkState.PENDING.value)
            )
            pending = s.scalar(pending) or 0
            by_lang = (
                select(DocumentRow.lang, func.count()).group_by(DocumentRow.lang).order_by(DocumentRow.lang)
            )
            langs = dict(s.execute(by_lang).all())
            meta = {r.key: r.value for r in s.scalars(select(MetaRow))}
        return {
            "path": str(ctx.path),
            "database": masked_url(ctx.db_url),
            "vector_store": ctx.stores.describe(),
            "documents": docs,
            "chunks": chunks,
            "pending_chunks": pending,
            "languages": langs,
            "models": [model_info(ctx, m) for m in ctx.ordered_models()],
            "settings": ctx.settings.to_dict(),
            "created_at": meta.get("created_at"),
            "last_update": meta.get("last_update"),
        }


def model_info(ctx: CollectionContext, m: ModelState) -> dict[str, Any]:
    return {
        "spec": m.spec, "name": m.name, "dim": m.dim, "backend": m.backend,
        "index_type": m.index_spec.label(), "factory": m.factory, "index_params": m.index_spec.to_dict(),
        "vectors": m.ntotal - m.tombstones, "tombstones": m.tombstones, "index_bytes": m.index_bytes,
        "stored_vector_bytes": SegmentStore(ctx.vectors_dir(m)).nbytes([n for n, _ in m.segments]),
        "segments": len(m.segments), "generation": m.generation, "index_file": m.index_file,
        "updated_at": m.updated_at.isoformat() if m.updated_at else None, "broken": m.broken,
        "trust_remote_code": m.spec in ctx.trusted,
    }  # fmt: skip


def documents(ctx: CollectionContext) -> Iterator[Document]:
    """Every document, in insertion order (streamed)."""
    last = 0
    while True:
        with Session(ctx.engine) as s:
            rows = s.scalars(
                select(DocumentRow).where(DocumentRow.id > last).order_by(DocumentRow.id).limit(1000)
            ).all()
            batch = [
                (
                    r.id,
                    Document(id=r.ext_id, lang=r.lang, text=r.text, title=r.title, metadata=r.meta or {}),
                )
                for r in rows
            ]
        if not batch:
            return
        for _, doc in batch:
            yield doc
        last = batch[-1][0]


def export(ctx: CollectionContext, out) -> int:
    """Write every document as JSONL (`id, lang, title, text` + metadata) to the text stream `out`."""
    n = 0
    for doc in documents(ctx):
        record = {"id": doc.id, "lang": doc.lang, "title": doc.title, "text": doc.text}
        record.update({k: v for k, v in (doc.metadata or {}).items() if k not in record})
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        n += 1
    return n


def stored_vectors(ctx: CollectionContext, model: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(chunk ids, float32 vectors) of every committed chunk as `model` stored them (no re-embedding)."""
    with ctx.mutex, ctx.stores.session():
        ctx.sync()
        m = ctx.model(model)
        with Session(ctx.engine) as s:
            live = np.array(
                sorted(s.scalars(select(ChunkRow.id).where(ChunkRow.state != ChunkState.PENDING.value))),
                dtype=np.int64,
            )
        blocks = list(SegmentStore(ctx.vectors_dir(m)).iter_rows([n for n, _ in m.segments], wanted=live))
    if not blocks:
        return np.zeros(0, np.int64), np.zeros((0, m.dim), np.float32)
    ids = np.concatenate([b[0] for b in blocks])
    order = np.argsort(ids)
    return ids[order], np.concatenate([b[1] for b in blocks])[order]
