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
from typing import TYPE_CHECKING, Any

from indexer.stores.base import Allowed, Prepared, StoreKind, StoreKindOps, VectorStore

if TYPE_CHECKING:
    from indexer.state import ModelState

__all__ = [
    "Allowed",
    "Prepared",
    "StoreConfig",
    "StoreContext",
    "StoreKind",
    "VectorStore",
    "open_store",
    "store_class",
]


def store_class(kind: StoreKind) -> type[VectorStore] | type[StoreKindOps]:
    """The implementation of a store kind (imported on first use: FAISS and Milvus are heavy)."""
    from indexer.stores.faiss import FaissStore
    from indexer.stores.milvus import MilvusStore

    return {StoreKind.FAISS: FaissStore, StoreKind.MILVUS: MilvusStore}[kind]


def open_store(kind: StoreKind, model: ModelState, context: StoreContext) -> VectorStore:
    """The store of `model` in the collection `context` describes."""
    return store_class(kind)(model, context)


@dataclass(frozen=True)
class StoreConfig:
    """What a collection records about its store (never credentials)."""

    kind: StoreKind = StoreKind.FAISS
    uri: str | None = None  # milvus: None = the Lite file DIR/milvus.db

    @classmethod
    def parse(cls, kind: str | StoreKind | None, uri: str | None = None) -> StoreConfig:
        kind = StoreKind.parse(kind)
        return cls(kind, store_class(kind).check_uri(uri))

    @classmethod
    def from_dict(cls, d: dict | None) -> StoreConfig:
        d = d if isinstance(d, dict) else {}
        return cls.parse(d.get("kind"), d.get("uri"))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "uri": self.uri}


@dataclass
class StoreContext:
    """What every store of one open collection shares: its directory, uid, config, and (Milvus)
    one client for all its models."""

    path: Path
    config: StoreConfig
    read_only: bool
    uid: str = ""
    connection: Any = None

    @property
    def ops(self) -> type[StoreKindOps]:
        return store_class(self.config.kind)

    def open(self, model: ModelState) -> VectorStore:
        """The store of `model` (indexer.state.ModelState) in this collection."""
        return open_store(self.config.kind, model, self)

    def milvus(self):
        if self.connection is None:
            from indexer.stores.connection import MilvusConnection

            self.connection = MilvusConnection(self.config.uri, self.path, read_only=self.read_only)
        return self.connection

    def connect(self) -> None:
        """Reach the store now (a Milvus server that is down fails before anything is written)."""
        self.ops.connect(self)

    def session(self):
        """Around one operation: Milvus Lite is released after it, so other processes can open it."""
        return self.ops.session(self)

    def describe(self) -> dict[str, Any]:
        """The store's kind and where it keeps the vectors (`info`)."""
        return self.ops.describe(self)

    def drop_remote(self) -> None:
        """After a failed create: remove what it made outside the directory (a Milvus server's
        collections); the directory itself is removed by the caller."""
        if self.uid:
            self.ops.drop_remote(self)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None
