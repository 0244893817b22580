"""In-memory state of one model of a collection, and small helpers the collection's parts share."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from distill.documents import Document
from distill.modelspec import display_name, normalize_spec
from indexer.config import IndexSpec
from indexer.errors import IndexerError
from indexer.schema import ModelRow

SQL_IN_BATCH = 900  # SQLite's default limit on bound parameters is 32766 (999 before 3.32)

_ROW_FIELDS = (
    "spec",
    "name",
    "dim",
    "normalize",
    "factory",
    "generation",
    "index_file",
    "index_bytes",
    "index_crc32",
    "ntotal",
    "tombstones",
    "updated_at",
)


@dataclass
class ModelState:
    """A model row as last committed, its vector store, and the vectors staged since the commit."""

    id: int
    spec: str = ""
    name: str = ""
    dim: int = 0
    normalize: bool = True
    index_spec: IndexSpec = field(default_factory=IndexSpec)
    factory: str = ""
    generation: int = -1  # -1: not loaded yet
    index_file: str | None = None  # faiss: the generation's file; milvus: the collection's name
    index_bytes: int = 0
    index_crc32: int = 0
    ntotal: int = 0
    tombstones: int = 0
    updated_at: datetime | None = None
    backend: str = "torch"  # distill.models.Backend: how every embedding of this model is computed
    segments: list[tuple[str, int]] = field(default_factory=list)
    store: Any = None  # indexer.stores.VectorStore
    # Embedded since the last commit: written as one vector segment at the next commit.
    staged_ids: list[np.ndarray] = field(default_factory=list)
    staged_vecs: list[np.ndarray] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"m{self.id}"

    @property
    def broken(self) -> str | None:
        return self.store.broken if self.store is not None else "not loaded"

    def update_from(self, row: ModelRow) -> None:
        for name in _ROW_FIELDS:
            setattr(self, name, getattr(row, name))
        self.backend = row.__dict__.get("backend") or "torch"  # not loaded: a collection older than backends
        self.index_spec = IndexSpec.from_dict(row.index_spec)

    def adopt(self, values: dict[str, Any]) -> None:
        """Take the values a commit wrote to the model's row."""
        for name, value in values.items():
            if name == "index_spec":
                value = IndexSpec.from_dict(value)
            setattr(self, name, value)

    def clear_staged(self) -> None:
        self.staged_ids, self.staged_vecs = [], []


def content_hash(doc: Document) -> str:
    """What the vectors depend on; metadata-only changes do not re-embed."""
    payload = json.dumps([doc.lang, doc.title or "", doc.text], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def batched(items: Sequence, n: int) -> Iterator[Sequence]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def check_limits(
    *, batch_size: int, threads: int | None, commit_every: int | None, lock_timeout: float
) -> None:
    """Bad numbers from the command line fail before anything is opened or written."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise IndexerError(f"batch size must be >= 1, got {batch_size}")
    if threads is not None and threads < 1:
        raise IndexerError(f"threads must be >= 1 (or omitted for all cores), got {threads}")
    if commit_every is not None and commit_every < 1:
        raise IndexerError(f"commit-every must be >= 1 chunks, got {commit_every}")
    if not lock_timeout >= 0:  # also NaN
        raise IndexerError(f"lock timeout must be >= 0 seconds, got {lock_timeout}")


def backends_for(specs: Sequence[str], backends: str | Mapping[str, str] | None) -> dict[str, str]:
    """spec -> validated backend name, from one name for all models or a `{spec: name}` mapping."""
    from distill.models import Backend, BackendError

    if backends is None or isinstance(backends, str):
        wanted = dict.fromkeys(specs, backends)
    else:
        wanted = dict.fromkeys(specs)
        for key, name in backends.items():
            spec = normalize_spec(key)
            match = next((s for s in specs if spec == s or display_name(s) == str(key)), None)
            if match is None:
                raise IndexerError(f"--backend names model {key!r}, which is not among {list(specs)}")
            wanted[match] = name
    try:
        return {s: Backend.parse(name).value for s, name in wanted.items()}
    except BackendError as exc:
        raise IndexerError(str(exc)) from None
