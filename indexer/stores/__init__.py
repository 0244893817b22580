"""The vector store seam: where a collection keeps its vectors for nearest-neighbour search.

One `VectorStore` per model of a collection, chosen by name (`StoreKind`) when the collection is
created and recorded in it (database and `collection.json`), so `open` needs no flag:

- `faiss` (default): one FAISS index file per model in `DIR/indexes/`, written as generations
  (tmp + fsync + rename, size and CRC-32 recorded), language filter as an `IDSelectorBitmap`.
- `milvus`: one Milvus collection per model, the chunk id as INT64 primary key (upserts are
  idempotent), the language as a scalar field filtered inside Milvus. `uri`: a Milvus Lite file
  (default `DIR/milvus.db`) or a server `http://host:19530`; credentials come from the environment
  (MILVUS_TOKEN, or MILVUS_USER and MILVUS_PASSWORD), never from the collection.

Whatever the store, the SQL database is the source of truth: a chunk is `indexed` only after the
store confirmed its vector (FAISS: the generation file is durable; Milvus: the server acknowledged
the upsert, Milvus Lite after `flush`), and reconcile compares the store's ids with the database
in both directions. The writer owns the float16 vector segments (`indexer.segments`) both stores
rebuild from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexer.stores.base import Allowed, Prepared, StoreConfig, StoreKind, VectorStore

__all__ = ["Allowed", "Prepared", "StoreConfig", "StoreContext", "StoreKind", "VectorStore", "open_store"]


def open_store(kind: StoreKind, model: Any, context: Any) -> VectorStore:
    """The store of `model` (indexer.state.ModelState) in the collection `context` describes."""
    if kind == StoreKind.MILVUS:
        from indexer.stores.milvus import MilvusStore

        return MilvusStore(model, context)
    from indexer.stores.faiss import FaissStore

    return FaissStore(model, context)


@dataclass
class StoreContext:
    """What every store of one open collection shares: its directory, uid, config, and (Milvus)
    one client for all its models."""

    path: Path
    config: StoreConfig
    read_only: bool
    uid: str = ""
    connection: Any = None

    def milvus(self):
        if self.connection is None:
            from indexer.stores.connection import MilvusConnection

            self.connection = MilvusConnection(self.config.uri, self.path, read_only=self.read_only)
        return self.connection

    def connect(self) -> None:
        """Reach the store now (a Milvus server that is down fails before anything is written)."""
        if self.config.kind == StoreKind.MILVUS:
            self.milvus().client()

    def session(self):
        """Around one operation: Milvus Lite is released after it, so other processes can open it."""
        from contextlib import nullcontext

        if self.config.kind != StoreKind.MILVUS:
            return nullcontext()
        return self.milvus().session()

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None
