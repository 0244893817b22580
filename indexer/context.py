"""The state one open collection shares between its parts, passed to each of them explicitly.

`indexer.collection.Collection` (the public face) owns one `CollectionContext` and hands it to its
helpers (`Writer`, `Searcher`, `Recovery`, and the functions of `lifecycle` and `inspection`):
the database engine, the settings and model states loaded from it, the vector stores' shared
context, the write lock and the in-process mutex, the encoders and the chunker. What the
helpers hold of their own (the writer's staged chunk ids, the searcher's filter cache) stays
with them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, defer

from distill.chunking import Chunker, chunker_for
from indexer.config import CollectionSettings
from indexer.errors import IndexerError, ModelMismatchError, ReadOnlyError, UnknownModelError
from indexer.layout import VECTORS_DIR
from indexer.lock import WriteLock
from indexer.schema import MetaRow, ModelRow, SegmentRow
from indexer.state import ModelState, normalize_spec
from indexer.stores import StoreConfig, StoreContext

TRUSTED_META = "trust_remote_code"  # xl_meta key: the specs whose own Python the user allowed at create
STORE_META = "vector_store"  # xl_meta key: StoreConfig


@dataclass(eq=False)
class CollectionContext:
    path: Path
    db_url: str
    engine: Engine
    read_only: bool
    stores: StoreContext
    lock: WriteLock
    commit_every: int
    batch_size: int = 32
    threads: int | None = None
    show_progress: bool = False
    lock_timeout: float = 0.0
    settings: CollectionSettings = field(default_factory=CollectionSettings)
    models: dict[int, ModelState] = field(default_factory=dict)
    encoders: dict[str, Any] = field(default_factory=dict)  # spec -> encoder (given or loaded)
    encoder_backends: dict[str, str] = field(default_factory=dict)  # of the encoders loaded here
    trusted: set[str] = field(default_factory=set)  # specs allowed to run their own code (at create)
    legacy_columns: set[str] = field(default_factory=set)  # absent from an older collection opened read-only
    chunker: Chunker | None = None  # built on first use from every model's tokenizer
    mutex: threading.RLock = field(default_factory=threading.RLock)  # one operation at a time per process
    closed: bool = False
    # Bumped whenever the committed state changes (our commit or another process's): caches of
    # database reads (the searcher's language filters) compare it with what they saw.
    commits: int = 0

    # ----------------------------------------------------------------------------- models

    def ordered_models(self) -> list[ModelState]:
        """The models in the order they were given at creation."""
        return sorted(self.models.values(), key=lambda m: m.id)

    def model(self, model: str | None) -> ModelState:
        """The model `model` names (spec or display name); None: the first."""
        ordered = self.ordered_models()
        if model is None:
            return ordered[0]
        wanted = normalize_spec(model)
        for m in ordered:
            if wanted in (m.spec, m.name) or model in (m.spec, m.name):
                return m
        raise UnknownModelError(
            f"model {model!r} is not in this collection; its models are: "
            + ", ".join(m.spec for m in ordered)
        )

    def model_rows(self):
        """SELECT of the model rows; a read-only open of an older collection skips columns it lacks."""
        query = select(ModelRow).order_by(ModelRow.id)
        if "backend" in self.legacy_columns:
            query = query.options(defer(ModelRow.backend, raiseload=True))
        return query

    def load_encoder(self, spec: str, backend: str):
        # An encoder given to the constructor is used whatever the backend; a loaded one is reloaded
        # when another process rebuilt the model on another backend.
        if spec not in self.encoders or self.encoder_backends.get(spec, backend) != backend:
            from distill.models import ModelNotFoundError, load_encoder

            try:
                self.encoders[spec] = load_encoder(
                    spec, threads=self.threads, backend=backend, trust_remote_code=spec in self.trusted
                )
            except (ModelNotFoundError, OSError, ValueError) as exc:
                raise IndexerError(f"cannot load model {spec!r} ({backend}): {exc}") from None
            self.encoder_backends[spec] = backend
        return self.encoders[spec]

    def encoder(self, model: str | None = None, *, allow_new_dim: bool = False):
        """The (cached) encoder of a model of the collection, checked against the collection's dimension."""
        m = self.model(model)
        enc = self.load_encoder(m.spec, m.backend)
        if enc.dim != m.dim and not allow_new_dim:
            raise ModelMismatchError(
                f"model {m.spec} produces {enc.dim}-dimensional vectors, but the collection indexed it with {m.dim}; "
                f"use the original model, or re-encode: `indexer rebuild {self.path} --model {m.spec} --reembed`"
            )
        return enc

    def chunker_for(self) -> Chunker:
        """The chunker every model's tokenizer agrees with (loads every model)."""
        if self.chunker is None:
            encs = [self.encoder(m.spec) for m in self.models.values()]
            self.chunker = chunker_for(encs, self.settings.chunk_tokens, self.settings.chunk_overlap)
        return self.chunker

    def vectors_dir(self, m: ModelState) -> Path:
        return self.path / VECTORS_DIR / m.key

    # ----------------------------------------------------------------------------- state

    def require_writable(self) -> None:
        if self.closed:
            raise IndexerError("the collection is closed")
        if self.read_only:
            raise ReadOnlyError(f"{self.path} was opened read-only")

    def require_open(self) -> None:
        if self.closed:
            raise IndexerError("the collection is closed")

    def load_state(self) -> None:
        """Settings, trusted specs and the store config from the database, then every model."""
        with Session(self.engine) as s:
            meta = {k: s.get(MetaRow, k) for k in ("settings", TRUSTED_META, STORE_META)}
        self.settings = CollectionSettings.from_dict(meta["settings"].value if meta["settings"] else {})
        trusted = meta[TRUSTED_META]
        self.trusted = {x for x in (trusted.value if trusted else None) or [] if isinstance(x, str)}
        if meta[STORE_META] is not None:  # absent: a collection from before stores were a choice (faiss)
            self.stores.config = StoreConfig.from_dict(meta[STORE_META].value)
        self.sync()

    def sync(self, attempts: int = 5) -> bool:
        """Bring every model's store to its committed state; True if anything changed."""
        with Session(self.engine) as s:
            rows = s.scalars(self.model_rows()).all()
            segs = s.execute(
                select(SegmentRow.model_id, SegmentRow.name, SegmentRow.rows).order_by(SegmentRow.id)
            ).all()
        changed, raced = False, False
        for row in rows:
            m = self.models.get(row.id)
            if m is None:
                m = self.models[row.id] = ModelState(id=row.id)
                m.store = self.stores.open(m)
            if m.generation != row.generation:
                m.update_from(row)
                m.clear_staged()
                m.store.load()
                changed = True
                # A writer may have committed two more generations (and deleted this one) between
                # our read of the row and of the file: read the row again.
                raced |= m.store.raced()
            m.segments = [(name, n) for mid, name, n in segs if mid == row.id]
        if changed:
            self.commits += 1
        if raced and attempts > 1:
            for m in self.models.values():
                if m.store.raced():
                    m.generation = -1
            time.sleep(0.05)
            return self.sync(attempts - 1) or changed
        return changed

    def reload(self, models: list[ModelState] | None = None) -> None:
        """Forget the staged changes of `models` (default: all): back to their committed state."""
        for m in self.models.values() if models is None else models:
            m.generation = -1
        self.sync()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.lock.release()
        for m in self.models.values():
            if m.store is not None:
                m.store.close()
        self.stores.close()
        self.engine.dispose()
