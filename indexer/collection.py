"""A collection: documents in a database (SQLAlchemy) plus one vector store per model, in one directory.

Layout of `DIR/` (file names and the marker: `indexer.layout`):
- `collection.json`  marker + database URL + vector store (absent URL: `collection.db`, SQLite, in DIR)
- `indexes/m<ID>.g<GEN>.faiss`  the committed FAISS index of model ID, generation GEN (faiss store)
- `milvus.db/`  the Milvus Lite data of the milvus store (unless it names a server)
- `vectors/m<ID>/*.npy`  float16 vector segments of model ID (rebuilds never re-encode)
- `write.lock`  one writer at a time; `rejects/` bad input lines from `--on-error skip`

This module is the public face: create/open/close and the API. It owns one
`indexer.context.CollectionContext` (engine, settings, models, stores, lock, encoders, chunker)
and the parts that work on it: `indexer.writer` (ingest, stage, commit, rebuild: the crash-safe
write protocol), `indexer.recovery` (the write lock, reconcile, verify), `indexer.search` (filters,
over-fetch, hits), `indexer.lifecycle` (create, open checks), `indexer.inspection` (info, export)
and `indexer.stores` (FAISS or Milvus behind one seam).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import indexer.inspection as inspection
import indexer.layout as layout
import indexer.lifecycle as lifecycle
from distill.chunking import Chunker
from distill.documents import Document
from indexer.config import CollectionSettings, IndexSpec, OnError
from indexer.context import CollectionContext
from indexer.errors import CollectionExistsError, CollectionNotFoundError, IndexerError, ReadOnlyError
from indexer.faiss_index import set_bulk_threads
from indexer.layout import COLLECTION_FILE, DB_FILE, LOCK_FILE
from indexer.lock import WriteLock
from indexer.recovery import Recovery
from indexer.results import AddSummary, DeleteSummary, Hit, VerifyReport
from indexer.schema import DocumentRow, checked_db_url, database_errors, make_engine, sqlite_file
from indexer.search import Searcher
from indexer.sources import Record, read_records, records_from_documents, txt_id_clashes
from indexer.state import ModelState, backends_for, check_limits, normalize_spec
from indexer.stores import StoreConfig, StoreContext, StoreKind
from indexer.writer import DEFAULT_COMMIT_EVERY, Writer

if TYPE_CHECKING:
    import numpy as np

__all__ = ["AddSummary", "Collection", "DeleteSummary", "Hit", "VerifyReport", "normalize_spec"]


class Collection:
    """A searchable multilingual document collection (see the module docstring for the layout).

    Open with `Collection.open(path)` (writable: a write takes the collection's lock for its
    duration, and opening reconciles a collection left inconsistent by a crash) or
    `Collection.open(path, read_only=True)`. Searching picks up commits of other processes.
    """

    def __init__(self, ctx: CollectionContext) -> None:
        """Use `Collection.create` or `Collection.open`: they build the context."""
        self._ctx = ctx
        self._writer = Writer(ctx)
        self._recovery = Recovery(ctx, self._writer)
        self._searcher = Searcher(ctx)
        self.repairs: list[str] = []  # what the last reconcile fixed

    @staticmethod
    def _context(
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
        store: StoreConfig | None = None,
    ) -> CollectionContext:
        """The state of the collection in `path` (nothing read from it yet)."""
        check_limits(
            batch_size=batch_size, threads=threads, commit_every=commit_every, lock_timeout=lock_timeout
        )
        engine = make_engine(db_url, read_only=read_only)
        if threads:
            set_bulk_threads(threads)
        return CollectionContext(
            path, db_url, engine, read_only, StoreContext(path, store or StoreConfig(), read_only),
            WriteLock(path / LOCK_FILE), commit_every or DEFAULT_COMMIT_EVERY, batch_size=batch_size,
            threads=threads, show_progress=show_progress, lock_timeout=lock_timeout,
            encoders={normalize_spec(k): v for k, v in (encoders or {}).items()},
        )  # fmt: skip

    # What callers read of the context (the CLI, the app, the tests).
    path = property(lambda self: self._ctx.path)
    db_url = property(lambda self: self._ctx.db_url)
    engine = property(lambda self: self._ctx.engine)
    read_only = property(lambda self: self._ctx.read_only)
    settings = property(lambda self: self._ctx.settings)
    threads = property(lambda self: self._ctx.threads)
    batch_size = property(lambda self: self._ctx.batch_size)
    commit_every = property(lambda self: self._ctx.commit_every)
    show_progress = property(lambda self: self._ctx.show_progress)
    lock_timeout = property(lambda self: self._ctx.lock_timeout)
    _stores = property(lambda self: self._ctx.stores)

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
        ctx = cls._context(
            path, url, read_only=False, lock_timeout=0.0, batch_size=batch_size, store=store, **kw
        )
        ctx.trusted = set(specs) if trust_remote_code else set()
        collection = cls(ctx)
        lifecycle.create(ctx, collection._writer, new_dir, db_url, specs, chosen, spec, settings)
        return collection

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
            ctx = cls._context(
                path, url, read_only=read_only, lock_timeout=lock_timeout, batch_size=batch_size, **kw
            )
        collection = cls(ctx)
        try:
            with database_errors(url):
                lifecycle.check_and_load(ctx, info.get("uid"))
            if not read_only and reconcile:
                collection.repairs = collection._recovery.reconcile_on_open()
        except BaseException:
            ctx.close()
            raise
        return collection

    @classmethod
    def restore_marker(cls, path: str | Path) -> str | None:
        """Rewrite a lost or broken `collection.json` from the collection's SQLite database in `path`
        (which holds the uid, models and settings); return what was done, None if nothing was wrong."""
        return layout.restore_marker(Path(os.path.realpath(Path(path).expanduser())))

    def close(self) -> None:
        self._ctx.close()

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
        return [m.spec for m in self._ctx.ordered_models()]

    @property
    def vector_store(self) -> StoreConfig:
        return self._ctx.stores.config

    def model_backends(self) -> dict[str, str]:
        """spec -> the backend its vectors are computed with (distill.models.Backend)."""
        return {m.spec: m.backend for m in self._ctx.ordered_models()}

    def model_spec(self, model: str | None = None) -> str:
        """The spec of the model `model` names (its spec or display name; None: the first)."""
        return self._ctx.model(model).spec

    # White-box handles for the tests and benchmarks (`_model`, `_chunker_for`, `_stores`, and the
    # helpers `_writer`, `_recovery`, `_searcher`); the helpers themselves use the context.
    def _model(self, model: str | None) -> ModelState:
        return self._ctx.model(model)

    def encoder(self, model: str | None = None, *, allow_new_dim: bool = False):
        """The (cached) encoder of a model of the collection, checked against the collection's dimension."""
        return self._ctx.encoder(model, allow_new_dim=allow_new_dim)

    def _chunker_for(self) -> Chunker:
        return self._ctx.chunker_for()

    def vectors_dir(self, m: ModelState) -> Path:
        return self._ctx.vectors_dir(m)

    # ----------------------------------------------------------------------------- writing

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the write lock across several operations (`with col.lock(): ...`)."""
        ctx = self._ctx
        ctx.require_writable()
        ctx.lock.acquire(timeout=ctx.lock_timeout)
        try:
            yield
        finally:
            ctx.lock.release()

    def _ingest(
        self, sources: list[tuple[str, Callable[[], Iterable[Record]]]], on_error, rejects, *, upsert: bool
    ) -> AddSummary:
        start = time.perf_counter()  # the summary's time includes waiting for the lock and repairs
        with self._recovery.writing():
            summary = self._writer.ingest(sources, on_error, rejects, upsert=upsert)
        summary.seconds = time.perf_counter() - start
        return summary

    def add(
        self, docs: Iterable[Document | dict], on_error: str | OnError = OnError.FAIL, *, rejects=None
    ) -> AddSummary:
        """Add documents (`Document`s or dicts with the fields of a JSONL line); an unchanged document
        (same content hash) is a no-op, a changed one is updated."""
        items = list(docs)
        return self._ingest(
            [("<documents>", lambda: records_from_documents(items))], on_error, rejects, upsert=True
        )

    def update(
        self, docs: Iterable[Document | dict], on_error: str | OnError = OnError.FAIL, *, rejects=None
    ) -> AddSummary:
        """Update existing documents; an id not in the collection is bad input (use `add`)."""
        items = list(docs)
        return self._ingest(
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
        return self._ingest(sources, on_error, rejects, upsert=upsert)

    def delete(self, ids: Iterable[str]) -> DeleteSummary:
        """Delete documents by external id; unknown ids are reported, not an error."""
        with self._recovery.writing():
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
        self.repairs = self._recovery.reconcile()
        return self.repairs

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
        return inspection.stored_vectors(self._ctx, model)

    # ----------------------------------------------------------------------------- inspection

    def info(self) -> dict[str, Any]:
        """Documents per language, chunks, the vector store, and per model the index type, size and state."""
        return inspection.info(self._ctx)

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
        return inspection.documents(self._ctx)

    def export(self, out) -> int:
        """Write every document as JSONL (`id, lang, title, text` + metadata) to the text stream `out`."""
        return inspection.export(self._ctx, out)


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
