"""A collection: documents in a database (SQLAlchemy) plus one vector store per model, in one directory.

Layout of `DIR/` (file names and the marker: `indexer.layout`):
- `collection.json`  marker + database URL + vector store (absent URL: `collection.db`, SQLite, in DIR)
- `indexes/m<ID>.g<GEN>.faiss`  the committed FAISS index of model ID, generation GEN (faiss store)
- `milvus.db/`  the Milvus Lite data of the milvus store (unless it names a server)
- `vectors/m<ID>/*.npy`  float16 vector segments of model ID (rebuilds never re-encode)
- `write.lock`  one writer at a time; `rejects/` bad input lines from `--on-error skip`

This module is the facade: create/open/close, models and encoders, and the state loaded from the
database. The parts: `indexer.writer` (ingest, stage, commit: the crash-safe write protocol),
`indexer.recovery` (reconcile, verify, rebuild), `indexer.search` (filters, over-fetch, hits) and
`indexer.stores` (FAISS or Milvus behind one seam).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer

import indexer.inspection as inspection
import indexer.layout as layout
import indexer.lifecycle as lifecycle
from distill.chunking import Chunker, chunker_for
from distill.documents import Document
from indexer.config import CollectionSettings, IndexSpec, OnError
from indexer.errors import (
    CollectionExistsError,
    CollectionLockedError,
    CollectionNotFoundError,
    IndexerError,
    ModelMismatchError,
    ReadOnlyError,
    UnknownModelError,
    storage_errors,
)
from indexer.faiss_index import set_bulk_threads
from indexer.layout import COLLECTION_FILE, DB_FILE, LOCK_FILE, VECTORS_DIR
from indexer.lifecycle import STORE_META, TRUSTED_META
from indexer.lock import WriteLock
from indexer.recovery import Recovery
from indexer.results import AddSummary, DeleteSummary, Hit, VerifyReport
from indexer.search import Searcher
from indexer.sources import read_records, records_from_documents, txt_id_clashes
from indexer.state import ModelState, backends_for, check_limits, normalize_spec
from indexer.store import (
    ChunkRow,
    ChunkState,
    DocumentRow,
    MetaRow,
    ModelRow,
    SegmentRow,
    checked_db_url,
    database_errors,
    make_engine,
    sqlite_file,
)
from indexer.stores import StoreConfig, StoreContext, StoreKind, open_store
from indexer.writer import DEFAULT_COMMIT_EVERY, Writer

if TYPE_CHECKING:
    import numpy as np

__all__ = ["AddSummary", "Collection", "DeleteSummary", "Hit", "VerifyReport", "normalize_spec"]

log = logging.getLogger("indexer")


class Collection:
    """A searchable multilingual document collection (see the module docstring for the layout).

    Open with `Collection.open(path)` (writable: a write takes the collection's lock for its
    duration, and opening reconciles a collection left inconsistent by a crash) or
    `Collection.open(path, read_only=True)`. Searching picks up commits of other processes.
    """

    def __init__(
        self,
        path: Path,
        db_url: str,
        *,
        read_only: bool,
        encoders: dict[str, Any] | None,
        threads: int | None,
        commit_every: int | None,
        show_progress: bool,
        lock_timeout: float,
        batch_size: int,
    ) -> None:
        check_limits(
            batch_size=batch_size, threads=threads, commit_every=commit_every, lock_timeout=lock_timeout
        )
        self.path, self.db_url, self.read_only = path, db_url, read_only
        self.threads, self.show_progress, self.lock_timeout = threads, show_progress, lock_timeout
        self.commit_every = commit_every or DEFAULT_COMMIT_EVERY
        self.batch_size = batch_size
        self.engine = make_engine(db_url, read_only=read_only)
        if threads:
            set_bulk_threads(threads)
        self._encoders: dict[str, Any] = {normalize_spec(k): v for k, v in (encoders or {}).items()}
        self._trusted: set[str] = set()  # specs allowed to run their own code (recorded at create)
        self._encoder_backends: dict[str, str] = {}  # of the encoders loaded here (not given)
        self._legacy_columns: set[str] = set()  # absent from an older collection opened read-only
        self._models: dict[int, ModelState] = {}
        self._mutex = threading.RLock()
        self._lock = WriteLock(path / LOCK_FILE)
        self._chunker: Chunker | None = None
        self._stores = StoreContext(path, StoreConfig(), read_only)
        self._writer, self._recovery, self._searcher = Writer(self), Recovery(self), Searcher(self)
        self._closed = False
        self.settings = CollectionSettings()
        self.repairs: list[str] = []  # what the last reconcile fixed

    # ----------------------------------------------------------------------------- create/open

    @classmethod
    def create(
        cls,
        path: str | Path,
        models: Sequence[str | Path],
        index_type: str | IndexSpec = "flat",
        db_url: str | None = None,
        *,
        index_params: dict[str, Any] | None = None,
        settings: CollectionSettings | None = None,
        encoders: dict[str, Any] | None = None,
        threads: int | None = None,
        commit_every: int | None = None,
        show_progress: bool = False,
        batch_size: int = 32,
        trust_remote_code: bool = False,
        backends: str | Mapping[str, str] | None = None,
        vector_store: str | StoreKind = StoreKind.FAISS,
        milvus_uri: str | None = None,
    ) -> Collection:
        """Create a collection in directory `path` (new or empty) indexing with every model in `models`.

        `trust_remote_code` lets models that ship their own Python code run it; the decision is
        recorded per model, so later writers and readers of the collection load them the same way.
        `backends`: how the models run (distill.models.Backend: torch, int8, onnx, onnx-int8), one
        name for all or `{spec: name}` (others: torch); recorded per model and used for every
        later embedding, until `rebuild(reembed=True, backend=...)` changes it.
        `vector_store`: `faiss` (files in the directory) or `milvus` (`milvus_uri`: a Milvus Lite
        file, default `DIR/milvus.db`, or a server `http://host:19530`); recorded in the collection.
        """
        path = Path(os.path.realpath(Path(path).expanduser()))  # never raises on a symlink loop
        if (path / COLLECTION_FILE).exists():
            raise CollectionExistsError(
                f"{path} is already a collection; open it, or delete the directory first"
            )
        specs = [normalize_spec(m) for m in models]
        if not specs:
            raise IndexerError("a collection needs at least one model (--model SPEC)")
        if len(set(specs)) != len(specs):
            raise IndexerError(f"a model is listed twice: {specs}")
        chosen = backends_for(specs, backends)
        store = StoreConfig.parse(vector_store, milvus_uri)
        try:
            spec = IndexSpec.parse(index_type, **(index_params or {}))
            settings = settings or CollectionSettings()
            settings.validate()
        except ValueError as exc:
            raise IndexerError(str(exc)) from None
        check_limits(batch_size=batch_size, threads=threads, commit_every=commit_every, lock_timeout=0.0)
        db_url = checked_db_url(db_url, path) if db_url else None  # before the directory is made
        new_dir = _make_dir(path)
        url = db_url or f"sqlite:///{path / DB_FILE}"
        kw = dict(encoders=encoders, threads=threads, commit_every=commit_every, show_progress=show_progress)
        col = cls(path, url, read_only=False, lock_timeout=0.0, batch_size=batch_size, **kw)
        col._stores.config = store
        col._trusted = set(specs) if trust_remote_code else set()
        lifecycle.create(col, new_dir, db_url, specs, chosen, spec, settings)
        return col

    @classmethod
    def open(
        cls,
        path: str | Path,
        read_only: bool = False,
        *,
        db_url: str | None = None,
        encoders: dict[str, Any] | None = None,
        threads: int | None = None,
        commit_every: int | None = None,
        show_progress: bool = False,
        lock_timeout: float = 0.0,
        batch_size: int = 32,
        reconcile: bool = True,
    ) -> Collection:
        """Open the collection in `path`. Writable opens reconcile it first unless another writer is active."""
        path = Path(os.path.realpath(Path(path).expanduser()))  # never raises on a symlink loop
        info = layout.read_marker(path)
        url = db_url or info.get("db_url") or f"sqlite:///{path / DB_FILE}"
        db_file = sqlite_file(url)
        if db_file and not Path(db_file).is_file():  # never create an empty database in its place
            raise CollectionNotFoundError(f"the database {db_file} of {path} is missing")
        if not read_only:
            layout.check_writable(path, db_file)
        kw = dict(encoders=encoders, threads=threads, commit_every=commit_every, show_progress=show_progress)
        with database_errors(url):
            col = cls(path, url, read_only=read_only, lock_timeout=lock_timeout, batch_size=batch_size, **kw)
        try:
            with database_errors(url):
                lifecycle.check_and_load(col, info.get("uid"))
            if not read_only and reconcile:
                col._reconcile_on_open()
        except BaseException:
            col.close()
            raise
        return col

    def _reconcile_on_open(self) -> None:
        # Without waiting: the lock timeout is for the write that follows, which repairs first if it
        # must (`_writing`), so --lock-timeout is waited once, not twice.
        wait, self.lock_timeout = self.lock_timeout, 0.0
        try:
            self.reconcile()
        except CollectionLockedError:
            # The active writer keeps the collection consistent; reads see its commits.
            log.warning("%s: another process is writing; opened without reconciling", self.path)
        finally:
            self.lock_timeout = wait

    @classmethod
    def restore_marker(cls, path: str | Path) -> str | None:
        """Rewrite a lost or broken `collection.json` from the collection's SQLite database in `path`
        (which holds the uid, models and settings); return what was done, None if nothing was wrong."""
        return layout.restore_marker(Path(os.path.realpath(Path(path).expanduser())))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._lock.release()
        for m in self._models.values():
            if m.store is not None:
                m.store.close()
        self._stores.close()
        self.engine.dispose()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Collection({str(self.path)!r}, models={self.models}, read_only={self.read_only})"

    # ----------------------------------------------------------------------------- models

    @property
    def models(self) -> list[str]:
        """The model specs of the collection, in the order they were given at creation."""
        return [m.spec for m in sorted(self._models.values(), key=lambda m: m.id)]

    @property
    def vector_store(self) -> StoreConfig:
        return self._stores.config

    def model_backends(self) -> dict[str, str]:
        """spec -> the backend its vectors are computed with (distill.models.Backend)."""
        return {m.spec: m.backend for m in sorted(self._models.values(), key=lambda m: m.id)}

    def _model(self, model: str | None) -> ModelState:
        ordered = sorted(self._models.values(), key=lambda m: m.id)
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

    def _model_rows(self):
        """SELECT of the model rows; a read-only open of an older collection skips columns it lacks."""
        query = select(ModelRow).order_by(ModelRow.id)
        if "backend" in self._legacy_columns:
            query = query.options(defer(ModelRow.backend, raiseload=True))
        return query

    def _load_encoder(self, spec: str, backend: str):
        # An encoder given to the constructor is used whatever the backend; a loaded one is reloaded
        # when another process rebuilt the model on another backend.
        if spec not in self._encoders or self._encoder_backends.get(spec, backend) != backend:
            from distill.models import ModelNotFoundError, load_encoder

            try:
                self._encoders[spec] = load_encoder(
                    spec, threads=self.threads, backend=backend, trust_remote_code=spec in self._trusted
                )
            except (ModelNotFoundError, OSError, ValueError) as exc:
                raise IndexerError(f"cannot load model {spec!r} ({backend}): {exc}") from None
            self._encoder_backends[spec] = backend
        return self._encoders[spec]

    def encoder(self, model: str | None = None, *, allow_new_dim: bool = False):
        """The (cached) encoder of a model of the collection, checked against the collection's dimension."""
        m = self._model(model)
        enc = self._load_encoder(m.spec, m.backend)
        if enc.dim != m.dim and not allow_new_dim:
            raise ModelMismatchError(
                f"model {m.spec} produces {enc.dim}-dimensional vectors, but the collection indexed it with {m.dim}; "
                f"use the original model, or re-encode: `indexer rebuild {self.path} --model {m.spec} --reembed`"
            )
        return enc

    def _chunker_for(self) -> Chunker:
        if self._chunker is None:
            encs = [self.encoder(m.spec) for m in self._models.values()]
            self._chunker = chunker_for(encs, self.settings.chunk_tokens, self.settings.chunk_overlap)
        return self._chunker

    def vectors_dir(self, m: ModelState) -> Path:
        return self.path / VECTORS_DIR / m.key

    # ----------------------------------------------------------------------------- state loading

    def _load_state(self) -> None:
        with Session(self.engine) as s:
            meta = {k: s.get(MetaRow, k) for k in ("settings", TRUSTED_META, STORE_META)}
        self.settings = CollectionSettings.from_dict(meta["settings"].value if meta["settings"] else {})
        trusted = meta[TRUSTED_META]
        self._trusted = {x for x in (trusted.value if trusted else None) or [] if isinstance(x, str)}
        if meta[STORE_META] is not None:  # absent: a collection from before stores were a choice (faiss)
            self._stores.config = StoreConfig.from_dict(meta[STORE_META].value)
        self._sync()

    def _sync(self, attempts: int = 5) -> bool:
        """Bring every model's store to its committed state; True if anything changed."""
        with Session(self.engine) as s:
            rows = s.scalars(self._model_rows()).all()
            segs = s.execute(
                select(SegmentRow.model_id, SegmentRow.name, SegmentRow.rows).order_by(SegmentRow.id)
            ).all()
        changed, raced = False, False
        for row in rows:
            m = self._models.get(row.id)
            if m is None:
                m = self._models[row.id] = ModelState(id=row.id)
                m.store = open_store(self._stores.config.kind, m, self._stores)
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
            self._searcher.invalidate()
        if raced and attempts > 1:
            for m in self._models.values():
                if m.store.raced():
                    m.generation = -1
            time.sleep(0.05)
            return self._sync(attempts - 1) or changed
        return changed

    def _reload(self) -> None:
        """Forget staged changes: back to the committed state (after a failed write)."""
        for m in self._models.values():
            m.generation = -1
        self._writer.reset()
        self._sync()

    def _reload_model(self, m: ModelState) -> None:
        m.generation = -1
        self._sync()

    # ----------------------------------------------------------------------------- writing

    def _require_writable(self) -> None:
        if self._closed:
            raise IndexerError("the collection is closed")
        if self.read_only:
            raise ReadOnlyError(f"{self.path} was opened read-only")

    @contextmanager
    def _writing(self, repair: bool = True) -> Iterator[None]:
        """Hold the write lock with the committed state loaded; repair a crashed writer's leftovers first."""
        self._require_writable()
        with self._mutex, storage_errors(self.path):
            self._lock.acquire(timeout=self.lock_timeout)
            try:
                with self._stores.session():  # after the lock: Milvus Lite is taken by the writer only
                    self._sync()
                    if repair and self._needs_repair():
                        self._recovery.reconcile_locked()
                    yield
            except BaseException:
                self._reload()
                raise
            finally:
                self._lock.release()

    def _needs_repair(self) -> bool:
        if any(m.broken for m in self._models.values()):
            return True
        with Session(self.engine) as s:
            pending = (
                select(func.count()).select_from(ChunkRow).where(ChunkRow.state == ChunkState.PENDING.value)
            )
            return bool(s.scalar(pending))

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the write lock across several operations (`with col.lock(): ...`)."""
        self._require_writable()
        self._lock.acquire(timeout=self.lock_timeout)
        try:
            yield
        finally:
            self._lock.release()

    def add(
        self, docs: Iterable[Document | dict], on_error: str | OnError = OnError.FAIL, *, rejects=None
    ) -> AddSummary:
        """Add documents (`Document`s or dicts with the fields of a JSONL line); an unchanged document
        (same content hash) is a no-op, a changed one is updated."""
        items = list(docs)
        return self._writer.ingest(
            [("<documents>", lambda: records_from_documents(items))], on_error, rejects, upsert=True
        )

    def update(
        self, docs: Iterable[Document | dict], on_error: str | OnError = OnError.FAIL, *, rejects=None
    ) -> AddSummary:
        """Update existing documents; an id not in the collection is bad input (use `add`)."""
        items = list(docs)
        return self._writer.ingest(
            [("<documents>", lambda: records_from_documents(items))], on_error, rejects, upsert=False
        )

    def add_files(
        self,
        paths: Sequence[str | Path],
        on_error: str | OnError = OnError.FAIL,
        *,
        lang: str | None = None,
        rejects: str | Path | None = None,
        upsert: bool = True,
        names: Mapping[str, str] | None = None,
    ) -> AddSummary:
        """`add` (or with `upsert=False`, `update`) from JSONL/CSV/TSV/TXT files; `names`: what
        messages call a file (`<stdin>` for the spool file of standard input).

        A missing input, a directory, or two `.txt` files that would get the same id are errors in
        every `on_error` mode, before anything is written: they are mistakes in the command, not bad records."""
        from indexer.errors import InputError

        problems = [
            f"{rec.where}: {rec.error}"
            for p in paths
            if not Path(p).is_file()
            for rec in read_records(p, lang=lang, name=(names or {}).get(str(p)))
        ]
        problems += txt_id_clashes(paths)
        if problems:
            raise InputError(
                "nothing was written:\n  " + "\n  ".join(problems)
                if len(problems) > 1
                else f"{problems[0]}; nothing was written",
                problems,
            )
        named = [(p, (names or {}).get(str(p), str(p))) for p in paths]
        sources = [(n, (lambda p=p, n=n: read_records(p, lang=lang, name=n))) for p, n in named]
        return self._writer.ingest(sources, on_error, rejects, upsert=upsert)

    def delete(self, ids: Iterable[str]) -> DeleteSummary:
        """Delete documents by external id; unknown ids are reported, not an error."""
        return self._writer.delete(ids)

    def rebuild(
        self,
        index_type: str | IndexSpec | None = None,
        *,
        models: Sequence[str] | None = None,
        reembed: bool = False,
        index_params: dict[str, Any] | None = None,
        backend: str | Mapping[str, str] | None = None,
    ) -> None:
        """Rebuild the store of each model (or of `models`) from the stored vectors, optionally
        switching its index type; `reembed` encodes every chunk again instead (e.g. after a model
        changed). `backend` (one name, or `{spec: name}`) switches how the models run; it needs `reembed`."""
        self._recovery.rebuild(
            index_type, models=models, reembed=reembed, index_params=index_params, backend=backend
        )

    def reconcile(self) -> list[str]:
        """Make every store agree with the database: pending chunks embedded (from stored vectors
        when they exist), orphan vectors removed, corrupt indexes rebuilt, stray files deleted.
        Returns what was done (empty when the collection was consistent)."""
        return self._recovery.reconcile()

    def verify(self) -> VerifyReport:
        """Check that database, stores and stored vectors agree; changes nothing."""
        return self._recovery.verify()

    def search(
        self, query: str, model: str | None = None, k: int = 10, langs: Sequence[str] | None = None
    ) -> list[Hit]:
        """The `k` best documents for `query` (each once, with its best chunk), optionally only in `langs`.

        Language filter: inside the store (FAISS: a bitmap of the chunk ids in those languages;
        Milvus: a filter on its language field), plus over-fetching for documents with several chunks.
        """
        return self._searcher.search(query, model, k, langs)

    def embed_queries(self, queries: Sequence[str], model: str | None = None) -> np.ndarray:
        """`model`'s normalised query vectors of `queries`, as `search` embeds a query."""
        return self._searcher.embed(queries, model)

    def search_vectors(
        self, vectors, model: str | None = None, k: int = 10, langs: Sequence[str] | None = None
    ) -> list[list[Hit]]:
        """`search` for query vectors already embedded (`embed_queries`): one hit list per row."""
        return self._searcher.search_vectors(vectors, model, k, langs)

    def stored_vectors(self, model: str | None = None):
        """(chunk ids, vectors) of every committed chunk, as `model` stored them."""
        return inspection.stored_vectors(self, model)

    # ----------------------------------------------------------------------------- inspection

    def info(self) -> dict[str, Any]:
        """Documents per language, chunks, the vector store, and per model the index type, size and state."""
        return inspection.info(self)

    def languages(self) -> list[str]:
        with Session(self.engine) as s:
            return list(s.scalars(select(DocumentRow.lang).distinct().order_by(DocumentRow.lang)))

    def __len__(self) -> int:
        with Session(self.engine) as s:
            return s.scalar(select(func.count()).select_from(DocumentRow)) or 0

    def get(self, doc_id: str) -> Document | None:
        with Session(self.engine) as s:
            row = s.scalar(select(DocumentRow).where(DocumentRow.ext_id == doc_id))
            if row is None:
                return None
            return Document(
                id=row.ext_id, lang=row.lang, text=row.text, title=row.title, metadata=row.meta or {}
            )

    def documents(self) -> Iterator[Document]:
        """Every document, in insertion order (streamed)."""
        return inspection.documents(self)

    def export(self, out) -> int:
        """Write every document as JSONL (`id, lang, title, text` + metadata) to the text stream `out`."""
        return inspection.export(self, out)


def _make_dir(path: Path) -> bool:
    """The directory of a new collection; True if it did not exist."""
    if path.exists() and not path.is_dir():
        raise CollectionExistsError(f"{path} exists and is not a directory")
    new_dir = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReadOnlyError(f"cannot create {path} ({exc.strerror})") from None
    return new_dir
