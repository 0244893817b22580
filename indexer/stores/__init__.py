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
store confirmed its vector (FAISS: the generation file is durable; Milvus: after `flush`), and
reconcile compares the store's ids with the database in both directions. The writer owns the
float16 vector segments (`indexer.segments`) both stores rebuild from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from indexer.config import IndexSpec
from indexer.errors import IndexerError


class StoreKind(StrEnum):
    FAISS = "faiss"
    MILVUS = "milvus"

    @classmethod
    def parse(cls, name: str | StoreKind | None) -> StoreKind:
        try:
            return cls((name or cls.FAISS).strip().lower() if isinstance(name, str) else name or cls.FAISS)
        except ValueError:
            raise IndexerError(
                f"unknown vector store {name!r}; choose one of: {', '.join(k.value for k in cls)}"
            ) from None


@dataclass(frozen=True)
class StoreConfig:
    """What a collection records about its store (never credentials)."""

    kind: StoreKind = StoreKind.FAISS
    uri: str | None = None  # milvus: None = the Lite file DIR/milvus.db

    @classmethod
    def parse(cls, kind: str | StoreKind | None, uri: str | None = None) -> StoreConfig:
        kind = StoreKind.parse(kind)
        if uri is not None and kind != StoreKind.MILVUS:
            raise IndexerError(
                "--milvus-uri is for --vector-store milvus; the faiss store keeps files in DIR"
            )
        if kind == StoreKind.MILVUS and uri is not None:
            from indexer.stores.connection import check_uri

            uri = check_uri(uri)
        return cls(kind, uri)

    @classmethod
    def from_dict(cls, d: dict | None) -> StoreConfig:
        d = d if isinstance(d, dict) else {}
        return cls.parse(d.get("kind"), d.get("uri"))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "uri": self.uri}


@dataclass
class Allowed:
    """The chunk ids a language-filtered search may return (from the database), per language set.

    Stores use what they need: FAISS the ids (as a bitmap selector, cached here), Milvus the
    languages (as a filter expression)."""

    langs: tuple[str, ...]
    ids: np.ndarray
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.ids)


@dataclass
class Prepared:
    """A store's half of a commit: written and durable, not yet named by the database."""

    values: dict[str, Any]  # columns of the model's row
    undo: Any = None  # what `abort` removes if the database commit fails


class VectorStore(Protocol):
    """The vectors of one model of a collection. Staged changes become durable in `prepare`;
    the database commit that follows is what makes them part of the collection."""

    kind: StoreKind
    broken: str | None  # why the store cannot be searched (None: it can)

    def load(self) -> None: ...  # bring the store to the model row's committed state
    def add(self, ids: np.ndarray, vectors: np.ndarray, langs: list[str]) -> None: ...
    def remove(self, ids: np.ndarray) -> int: ...  # -> how many became tombstones
    def search(
        self, query: np.ndarray, k: int, *, allowed: Allowed | None, widen: int, exhaustive: bool
    ) -> list[tuple[int, float]]: ...
    def count(self) -> int: ...
    def ids(self) -> np.ndarray: ...
    def is_exact(self) -> bool: ...
    def check_spec(self, spec: IndexSpec, dim: int) -> None: ...
    def prepare(self, generation: int) -> Prepared: ...
    def finish(self, prepared: Prepared, old_generation: int) -> None: ...
    def abort(self, prepared: Prepared) -> None: ...
    def rebuild(self, ids: np.ndarray, vectors: np.ndarray, langs: list[str]) -> Prepared: ...
    def needs_rebuild(self, live: int) -> str | None: ...
    def verify(self, live: np.ndarray, report: Any) -> int | None: ...
    def close(self) -> None: ...


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

            self.connection = MilvusConnection(self.config.uri, self.path)
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
