"""The vector store seam's types: the store kinds, the Protocol, what stores share."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from enum import StrEnum
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
    dirty: bool  # staged changes not yet prepared
    # Re-adding an id overwrites its vector (Milvus upserts): a pending chunk the store already
    # holds may never have reached the commit point, so reconcile writes it again. FAISS would
    # hold it twice, and its uncommitted generations are never loaded.
    idempotent_upserts: bool

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
    def set_tombstones(self, n: int) -> None: ...
    def raced(self) -> bool: ...  # the committed state vanished while loading (a newer commit won)
    def new_empty(self) -> None: ...  # an empty first generation (at create)
    def stray_files(self, models: dict) -> int: ...  # delete what no committed model row names
    def close(self) -> None: ...


class StoreKindOps(Protocol):
    """What a kind of store does for the whole collection (class-level: no model needed)."""

    @staticmethod
    def check_uri(uri: str | None) -> str | None: ...  # the `--milvus-uri` as recorded
    @staticmethod
    def connect(context: Any) -> None: ...  # reach the store now (before anything is written)
    @staticmethod
    def session(context: Any) -> AbstractContextManager: ...  # around one operation
    @staticmethod
    def describe(context: Any) -> dict[str, Any]: ...  # kind and location, for `info`
    @staticmethod
    def drop_remote(context: Any) -> None: ...  # a failed create: what it made outside DIR


def check_ids(
    name: str, ids: np.ndarray, live: np.ndarray, report, *, tombstones: int, can_remove: bool
) -> None:
    """The ids a store holds against the live chunk ids of the database."""
    if len(np.unique(ids)) != len(ids):
        report.problems.append(f"{name}: the index holds duplicate ids")
    missing = np.setdiff1d(live, ids)
    orphans = np.setdiff1d(ids, live)
    if len(missing):
        report.problems.append(
            f"{name}: {len(missing)} chunk(s) are not in the index, e.g. {missing[:5].tolist()}"
        )
    if len(orphans):
        if can_remove or len(orphans) != tombstones:
            report.problems.append(
                f"{name}: {len(orphans)} vector(s) in the index belong to no chunk, e.g. {orphans[:5].tolist()}"
                + (f" ({tombstones} tombstones recorded)" if tombstones else "")
            )
        else:
            report.notes.append(
                f"{name}: {len(orphans)} tombstone(s) of deleted chunks (HNSW cannot delete; "
                "`indexer rebuild` reclaims them)"
            )
    elif tombstones:
        report.problems.append(f"{name}: {tombstones} tombstones recorded, none in the index")
