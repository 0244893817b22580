"""The vector store seam's types: the store kinds, what a collection records, the Protocol."""

from __future__ import annotations

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
