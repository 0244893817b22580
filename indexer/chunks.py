"""Reads of the chunk table that the writer and recovery share (ids, languages, spans)."""

from __future__ import annotations

import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from indexer.schema import ChunkRow, ChunkState, DocumentRow
from indexer.state import SQL_IN_BATCH, batched


def live_ids(engine: Engine) -> np.ndarray:
    """Every chunk id in the database, sorted."""
    with Session(engine) as s:
        ids = s.scalars(select(ChunkRow.id).order_by(ChunkRow.id)).all()
    return np.array(ids, dtype=np.int64)


def pending_ids(engine: Engine) -> np.ndarray:
    """The chunks committed to the database but not yet confirmed in every store, sorted."""
    with Session(engine) as s:
        ids = s.scalars(select(ChunkRow.id).where(ChunkRow.state == ChunkState.PENDING.value)).all()
    return np.array(sorted(ids), dtype=np.int64)


def chunk_langs(engine: Engine, ids: np.ndarray) -> list[str]:
    """The language of each chunk of `ids` ("" for one no longer in the database)."""
    langs: dict[int, str] = {}
    with Session(engine) as s:
        for part in batched(ids.tolist(), SQL_IN_BATCH):
            langs.update(s.execute(select(ChunkRow.id, ChunkRow.lang).where(ChunkRow.id.in_(part))).all())
    return [langs.get(i, "") for i in ids.tolist()]


def chunk_spans(engine: Engine, ids: np.ndarray) -> list[tuple[int, str, str]]:
    """(chunk id, its document's title, its text) of the chunks of `ids` still in the database."""
    out: dict[int, tuple[str, str]] = {}
    columns = (ChunkRow.id, ChunkRow.start, ChunkRow.end, DocumentRow.title, DocumentRow.text)
    with Session(engine) as s:
        for part in batched(ids.tolist(), SQL_IN_BATCH):
            q = (
                select(*columns)
                .join(DocumentRow, DocumentRow.id == ChunkRow.doc_id)
                .where(ChunkRow.id.in_(part))
            )
            for cid, a, b, title, text in s.execute(q):
                out[cid] = (title, text[a:b])
    return [(i, *out[i]) for i in ids.tolist() if i in out]
