"""A collection: documents in a database (SQLAlchemy) plus one FAISS index per model, in one directory.

Layout of `DIR/` (file names and the marker: `indexer.layout`):
- `collection.json`  marker + database URL (absent URL: `collection.db`, SQLite, in the directory)
- `indexes/m<ID>.g<GEN>.faiss`  the committed FAISS index of model ID, generation GEN
- `vectors/m<ID>/*.npy`  float16 vector segments of model ID (rebuilds never re-encode)
- `write.lock`  one writer at a time; `rejects/` bad input lines from `--on-error skip`

Write protocol (crash-safe, see README "Indexer"): documents and their chunks are committed first
with chunks `pending`; vectors are added to the in-memory indexes; the new index generation and
vector segment are written to temporary files, fsynced and renamed; then one transaction points the
model rows at the new files and marks the chunks `indexed`. The database commit is the single
commit point: a crash before it leaves the previous generation in force and pending chunks that the
next writer re-embeds (`reconcile`); files no committed row names are garbage and are removed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, defer
from tqdm.auto import tqdm

from distill.data import Document
from distill.langs import canonical_lang, is_known_lang
from indexer import faiss_index, layout
from indexer.chunking import Chunker, chunker_for
from indexer.config import CollectionSettings, IndexKind, IndexSpec, OnError
from indexer.errors import (
    CollectionExistsError,
    CollectionLockedError,
    CollectionNotFoundError,
    IndexCorruptError,
    IndexerError,
    InputError,
    ModelMismatchError,
    ReadOnlyError,
    UnknownModelError,
    storage_errors,
)
from indexer.files import TMP_SUFFIX
from indexer.layout import COLLECTION_FILE, DB_FILE, INDEX_DIR, LOCK_FILE, REJECTS_DIR, VECTORS_DIR
from indexer.lock import WriteLock
from indexer.segments import SegmentStore
from indexer.sources import Record, Validator, read_records, records_from_documents, txt_id_clashes
from indexer.store import (
    SCHEMA_VERSION,
    ChunkRow,
    ChunkState,
    DocumentRow,
    MetaRow,
    ModelRow,
    SegmentRow,
    create_schema,
    existing_tables,
    make_engine,
    masked_url,
    sqlite_file,
    upgrade_schema,
    utcnow,
)

log = logging.getLogger("indexer")


DOC_BATCH = 64  # documents per database transaction
DEFAULT_COMMIT_EVERY = 2048  # chunks embedded between index commits (at least; grows with the collection)
COMMIT_GROWTH = 0.05  # ... to 5% of the index, so rewriting the index file stays O(n) in total
TOMBSTONE_REBUILD = 0.25  # rebuild an index that cannot delete once this share of it is tombstones
MAX_SEGMENTS = 64  # vector segments per model before they are compacted into one
SQL_IN_BATCH = 900  # SQLite's default limit on bound parameters is 32766 (999 before 3.32)
TRUSTED_META = "trust_remote_code"  # xl_meta key: the specs whose own Python the user allowed at create
TITLE_SHARE = 4  # with embed_title, a title takes at most 1/TITLE_SHARE of a chunk's token budget
_INDEX_FILE_RE = re.compile(r"^m(\d+)\.g(\d+)\.faiss$")


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Hit:
    """One document found by a search, with its best-matching chunk."""

    doc_id: str  # the document's external id
    chunk_id: int
    score: float  # cosine similarity of the query and the chunk
    lang: str
    title: str
    snippet: str  # the best chunk's text
    chunk_start: int  # character span of the chunk in `text`
    chunk_end: int
    text: str | None = None  # the whole document
    metadata: dict = field(default_factory=dict)
    rank: int = 0  # 1-based
    model: str = ""

    def to_dict(self, with_text: bool = False) -> dict[str, Any]:
        d = {
            "id": self.doc_id,
            "lang": self.lang,
            "title": self.title,
            "score": round(self.score, 6),
            "snippet": self.snippet,
            "rank": self.rank,
            "chunk_id": self.chunk_id,
            "chunk_start": self.chunk_start,
            "chunk_end": self.chunk_end,
            "model": self.model,
            "metadata": self.metadata,
        }
        if with_text:
            d["text"] = self.text
        return d


@dataclass
class AddSummary:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    chunks: int = 0  # chunks embedded (per model)
    seconds: float = 0.0
    encode_seconds: dict[str, float] = field(default_factory=dict)  # per model spec
    rejects_file: str | None = None
    problems: list[str] = field(default_factory=list)  # the first rejected lines, "file:line: message"

    @property
    def documents(self) -> int:
        return self.added + self.updated + self.unchanged

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        rate = (self.added + self.updated) / self.seconds if self.seconds else 0.0
        text = (
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, {self.rejected} rejected; "
            f"{self.chunks} chunks embedded in {self.seconds:.1f} s ({rate:.1f} docs/s)"
        )
        if self.rejects_file:
            text += f"\nrejected lines written to {self.rejects_file}"
        return text


@dataclass
class DeleteSummary:
    deleted: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        text = f"{len(self.deleted)} deleted"
        if self.not_found:
            text += f"; not in the collection: {', '.join(self.not_found[:10])}" + (
                " ..." if len(self.not_found) > 10 else ""
            )
        return text


@dataclass
class VerifyReport:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": self.problems, "notes": self.notes, "stats": self.stats}


# ---------------------------------------------------------------------------------------------
# In-memory state of one model


@dataclass
class _Model:
    id: int
    spec: str
    name: str
    dim: int
    normalize: bool
    index_spec: IndexSpec
    factory: str
    generation: int
    index_file: str | None
    index_bytes: int
    index_crc32: int
    ntotal: int
    tombstones: int
    updated_at: datetime | None
    backend: str = "torch"  # distill.models.Backend: how every embedding of this model is computed
    segments: list[tuple[str, int]] = field(default_factory=list)
    index: Any = None  # faiss.IndexIDMap2, the committed generation plus staged changes
    broken: str | None = None  # why the index could not be loaded
    # Staged (embedded, not yet committed) vectors and removals.
    staged_ids: list[np.ndarray] = field(default_factory=list)
    staged_vecs: list[np.ndarray] = field(default_factory=list)
    dirty: bool = False

    @property
    def key(self) -> str:
        return f"m{self.id}"

    def update_from(self, row: ModelRow) -> None:
        for name in (
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
        ):
            setattr(self, name, getattr(row, name))
        self.backend = row.__dict__.get("backend") or "torch"  # not loaded: a collection older than backends
        self.index_spec = IndexSpec.from_dict(row.index_spec)

    @classmethod
    def from_row(cls, row: ModelRow) -> _Model:
        m = cls(
            id=row.id,
            spec="",
            name="",
            dim=0,
            normalize=True,
            index_spec=IndexSpec(),
            factory="",
            generation=-1,
            index_file=None,
            index_bytes=0,
            index_crc32=0,
            ntotal=0,
            tombstones=0,
            updated_at=None,
        )
        m.update_from(row)
        m.generation = -1  # not loaded yet
        return m


def _content_hash(doc: Document) -> str:
    """What the vectors depend on; metadata-only changes do not re-embed."""
    payload = json.dumps([doc.lang, doc.title or "", doc.text], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _model_name(spec: str) -> str:
    if spec.startswith("pkg:"):
        return spec[4:]
    return Path(spec).name or spec


def normalize_spec(spec: str | Path) -> str:
    """Local model directories are stored as absolute paths; `pkg:` and hub ids as given."""
    text = str(spec).strip()
    if not text.startswith("pkg:") and Path(text).expanduser().exists():
        return str(Path(text).expanduser().resolve())
    return text


def _batched(items: Sequence, n: int) -> Iterator[Sequence]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


# ---------------------------------------------------------------------------------------------


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
        import threading

        _check_limits(
            batch_size=batch_size, threads=threads, commit_every=commit_every, lock_timeout=lock_timeout
        )
        self.path = path
        self.db_url = db_url
        self.read_only = read_only
        self.threads = threads
        self.commit_every = commit_every or DEFAULT_COMMIT_EVERY
        self.show_progress = show_progress
        self.lock_timeout = lock_timeout
        self.batch_size = batch_size
        self.engine = make_engine(db_url, read_only=read_only)
        if threads:
            faiss_index.set_bulk_threads(threads)
        self._encoders: dict[str, Any] = {normalize_spec(k): v for k, v in (encoders or {}).items()}
        self._trusted: set[str] = set()  # specs allowed to run their own code (recorded at create)
        self._encoder_backends: dict[str, str] = {}  # of the encoders loaded here (not given)
        self._legacy_columns: set[str] = set()  # absent from an older collection opened read-only
        self._models: dict[int, _Model] = {}
        self._mutex = threading.RLock()
        self._lock = WriteLock(path / LOCK_FILE)
        self._chunker: Chunker | None = None
        self._titles: dict[str, tuple[str, bool]] = {}  # title -> (what is embedded, was it cut)
        self._selectors: dict[tuple[str, ...], tuple[Any, np.ndarray, int]] = {}
        self._selector_version: tuple = ()
        self._staged_chunk_ids: list[np.ndarray] = []
        self._staged_since_commit = 0
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
    ) -> Collection:
        """Create a collection in directory `path` (new or empty) indexing with every model in `models`.

        `trust_remote_code` lets models that ship their own Python code run it; the decision is
        recorded per model, so later writers and readers of the collection load them the same way.
        `backends`: how the models run (distill.models.Backend: torch, int8, onnx, onnx-int8), one
        name for all or `{spec: name}` (others: torch); recorded per model and used for every
        later embedding, until `rebuild(reembed=True, backend=...)` changes it.
        """
        path = Path(path).expanduser().resolve()
        if (path / COLLECTION_FILE).exists():
            raise CollectionExistsError(
                f"{path} is already a collection; open it, or delete the directory first"
            )
        specs = [normalize_spec(m) for m in models]
        if not specs:
            raise IndexerError("a collection needs at least one model (--model SPEC)")
        if len(set(specs)) != len(specs):
            raise IndexerError(f"a model is listed twice: {specs}")
        chosen = _backends_for(specs, backends)
        try:
            spec = IndexSpec.parse(index_type, **(index_params or {}))
        except ValueError as exc:
            raise IndexerError(str(exc)) from None
        settings = settings or CollectionSettings()
        try:
            settings.validate()
        except ValueError as exc:
            raise IndexerError(str(exc)) from None
        _check_limits(batch_size=batch_size, threads=threads, commit_every=commit_every, lock_timeout=0.0)
        if path.exists() and not path.is_dir():
            raise CollectionExistsError(f"{path} exists and is not a directory")
        new_dir = not path.exists()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ReadOnlyError(f"cannot create {path} ({exc.strerror})") from None
        url = db_url or f"sqlite:///{path / DB_FILE}"
        col = cls(
            path,
            url,
            read_only=False,
            encoders=encoders,
            threads=threads,
            commit_every=commit_every,
            show_progress=show_progress,
            lock_timeout=0.0,
            batch_size=batch_size,
        )
        made_schema = ours = False
        try:
            col._trusted = set(specs) if trust_remote_code else set()
            with storage_errors(path), col._lock:
                layout.clear_interrupted_create(path)  # under the lock: never while another create runs
                ours = True
                if existing_tables(col.engine):
                    raise CollectionExistsError(
                        f"the database {masked_url(url)} already holds a collection (tables xl_*); use an empty database"
                    )
                encs = {s: col._load_encoder(s, chosen[s]) for s in specs}
                for sp, enc in encs.items():  # before anything is written: a bad index type leaves nothing
                    faiss_index.check_spec(spec, enc.dim, f"model {sp}: ")
                create_schema(col.engine)
                made_schema = True
                uid = uuid.uuid4().hex
                now = utcnow()
                (path / INDEX_DIR).mkdir(exist_ok=True)
                with Session(col.engine) as s, s.begin():
                    s.add_all(
                        [
                            MetaRow(key="schema_version", value=SCHEMA_VERSION),
                            MetaRow(key="uid", value=uid),
                            MetaRow(key="settings", value=settings.to_dict()),
                            MetaRow(key="created_at", value=now.isoformat()),
                            MetaRow(key="last_update", value=None),
                            MetaRow(key=TRUSTED_META, value=sorted(col._trusted)),
                        ]
                    )
                    names: set[str] = set()
                    for sp, enc in encs.items():
                        name = _model_name(sp)
                        if name in names:
                            name = f"{name}#{len(names) + 1}"
                        names.add(name)
                        s.add(
                            ModelRow(
                                spec=sp,
                                name=name,
                                dim=enc.dim,
                                normalize=bool(enc.normalize),
                                backend=chosen[sp],
                                query_prompt=enc.prompt("query"),
                                passage_prompt=enc.prompt("passage"),
                                index_spec=spec.to_dict(),
                                factory="",
                                generation=0,
                                index_file=None,
                            )
                        )
                col._load_state()
                # An empty first generation, so every model always has a committed index file.
                for m in col._models.values():
                    m.factory = col._initial_factory(m)
                    m.index = col._new_index(m, m.factory)
                    m.dirty = True
                col._commit()
                col._write_marker(uid, db_url)  # last: a directory without it is an unfinished create
        except BaseException:
            col.close()
            if ours:
                layout.undo_create(path, url if made_schema and db_url else None, new_dir)
            elif new_dir:
                layout.remove_if_empty(path)
            raise
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
        path = Path(path).expanduser().resolve()
        info = layout.read_marker(path)
        url = db_url or info.get("db_url") or f"sqlite:///{path / DB_FILE}"
        db_file = sqlite_file(url)
        if db_file and not Path(db_file).is_file():  # never create an empty database in its place
            raise CollectionNotFoundError(f"the database {db_file} of {path} is missing")
        if not read_only:
            layout.check_writable(path, db_file)
        col = cls(
            path,
            url,
            read_only=read_only,
            encoders=encoders,
            threads=threads,
            commit_every=commit_every,
            show_progress=show_progress,
            lock_timeout=lock_timeout,
            batch_size=batch_size,
        )
        try:
            if not existing_tables(col.engine):
                raise CollectionNotFoundError(f"the database {masked_url(url)} of {path} holds no collection")
            with Session(col.engine) as s:
                uid = s.get(MetaRow, "uid")
                version = s.get(MetaRow, "schema_version")
            if uid is None or uid.value != info.get("uid"):
                raise CollectionNotFoundError(
                    f"the database {masked_url(url)} belongs to another collection than {path} (uid differs)"
                )
            if version is None or version.value != SCHEMA_VERSION:
                raise IndexerError(
                    f"{path} has schema version {version and version.value}; this indexer reads {SCHEMA_VERSION}"
                )
            missing = upgrade_schema(col.engine, read_only=read_only)
            if missing:
                log.info(
                    "%s: predates column(s) %s: its models run on torch%s",
                    path,
                    ", ".join(missing),
                    "" if read_only else " (column added)",
                )
                col._legacy_columns = set(missing) if read_only else set()
            col._load_state()
            if not read_only and reconcile:
                # Without waiting: the lock timeout is for the write that follows, which repairs
                # first if it must (`_writing`), so --lock-timeout is waited once, not twice.
                col.lock_timeout = 0.0
                try:
                    col.reconcile()
                except CollectionLockedError:
                    # The active writer keeps the collection consistent; reads see its commits.
                    log.warning("%s: another process is writing; opened without reconciling", path)
                finally:
                    col.lock_timeout = lock_timeout
        except BaseException:
            col.close()
            raise
        return col

    def _write_marker(self, uid: str, db_url: str | None) -> None:
        layout.write_marker(self.path, uid, db_url)

    @classmethod
    def restore_marker(cls, path: str | Path) -> str | None:
        """Rewrite a lost or broken `collection.json` from the collection's SQLite database in `path`
        (which holds the uid, models and settings); return what was done, None if nothing was wrong."""
        return layout.restore_marker(Path(path).expanduser().resolve())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._lock.release()
        for m in self._models.values():
            m.index = None
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

    def model_names(self) -> dict[str, str]:
        """spec -> short display name."""
        return {m.spec: m.name for m in sorted(self._models.values(), key=lambda m: m.id)}

    def _model(self, model: str | None) -> _Model:
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

    def model_backends(self) -> dict[str, str]:
        """spec -> the backend its vectors are computed with (distill.models.Backend)."""
        return {m.spec: m.backend for m in sorted(self._models.values(), key=lambda m: m.id)}

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

    # ----------------------------------------------------------------------------- state loading

    def _load_state(self) -> None:
        with Session(self.engine) as s:
            settings = s.get(MetaRow, "settings")
            trusted = s.get(MetaRow, TRUSTED_META)
        self.settings = CollectionSettings.from_dict(settings.value if settings else {})
        self._trusted = {x for x in (trusted.value if trusted else None) or [] if isinstance(x, str)}
        self._sync()

    def _sync(self, attempts: int = 5) -> bool:
        """Bring the in-memory indexes to the committed generations; True if anything changed."""
        with Session(self.engine) as s:
            rows = s.scalars(self._model_rows()).all()
            segs = s.execute(
                select(SegmentRow.model_id, SegmentRow.name, SegmentRow.rows).order_by(SegmentRow.id)
            ).all()
        changed, raced = False, False
        for row in rows:
            m = self._models.get(row.id)
            if m is None:
                m = self._models[row.id] = _Model.from_row(row)
            if m.generation != row.generation or (m.index is None and m.broken is None):
                m.update_from(row)
                self._load_index(m)
                changed = True
                # A writer may have committed two more generations (and deleted this one) between
                # our read of the row and of the file: read the row again.
                raced |= m.index is None and not (self.path / INDEX_DIR / (m.index_file or "-")).exists()
            m.segments = [(name, n) for mid, name, n in segs if mid == row.id]
        if changed:
            self._selectors.clear()
        if raced and attempts > 1:
            for m in self._models.values():
                if m.index is None:
                    m.generation = -1
            time.sleep(0.05)
            return self._sync(attempts - 1) or changed
        return changed

    def _load_index(self, m: _Model) -> None:
        m.staged_ids, m.staged_vecs, m.dirty = [], [], False
        m.index, m.broken = None, None
        if not m.index_file:
            m.broken = f"no committed index for model {m.spec}"
            return
        if not _INDEX_FILE_RE.match(m.index_file):  # never a path outside indexes/
            m.broken = f"the database names an index file {m.index_file!r}, which is not an index file name"
            return
        try:
            m.index = faiss_index.load(self.path / INDEX_DIR / m.index_file, m.index_bytes, m.index_crc32)
        except IndexCorruptError as exc:
            m.broken = str(exc)
            return
        if m.index.d != m.dim:
            m.index, m.broken = (
                None,
                f"index file {m.index_file} has dimension {m.index.d}, the collection {m.dim}",
            )

    def _reload(self) -> None:
        """Forget staged changes: back to the committed state (after a failed write)."""
        for m in self._models.values():
            m.generation = -1
            m.index = None
            m.broken = None
        self._staged_chunk_ids = []
        self._staged_since_commit = 0
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
                self._sync()
                if repair and self._needs_repair():
                    self._reconcile_locked()
                yield
            except BaseException:
                self._reload()
                raise
            finally:
                self._lock.release()

    def _needs_repair(self) -> bool:
        if any(m.index is None for m in self._models.values()):
            return True
        with Session(self.engine) as s:
            return bool(
                s.scalar(
                    select(func.count())
                    .select_from(ChunkRow)
                    .where(ChunkRow.state == ChunkState.PENDING.value)
                )
            )

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
        self,
        docs: Iterable[Document | dict],
        on_error: str | OnError = OnError.FAIL,
        *,
        rejects: str | Path | None = None,
    ) -> AddSummary:
        """Add documents (`Document`s or dicts with the fields of a JSONL line); an unchanged document
        (same content hash) is a no-op, a changed one is updated."""
        items = list(docs)
        return self._ingest(
            [("<documents>", lambda: records_from_documents(items))], on_error, rejects, upsert=True
        )

    def update(
        self,
        docs: Iterable[Document | dict],
        on_error: str | OnError = OnError.FAIL,
        *,
        rejects: str | Path | None = None,
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
    ) -> AddSummary:
        """`add` (or with `upsert=False`, `update`) from JSONL/CSV/TSV/TXT files.

        A missing input, a directory, or two `.txt` files that would get the same id are errors in
        every `on_error` mode, before anything is written: they are mistakes in the command, not bad records."""
        problems = [
            f"{rec.where}: {rec.error}"
            for p in paths
            if not Path(p).is_file()
            for rec in read_records(p, lang=lang)
        ]
        problems += txt_id_clashes(paths)
        if problems:
            raise InputError(
                "nothing was written:\n  " + "\n  ".join(problems)
                if len(problems) > 1
                else f"{problems[0]}; nothing was written",
                problems,
            )
        sources = [(str(p), (lambda p=p: read_records(p, lang=lang))) for p in paths]
        return self._ingest(sources, on_error, rejects, upsert=upsert)

    def _ingest(
        self,
        sources: list[tuple[str, Callable[[], Iterable[Record]]]],
        on_error: str | OnError,
        rejects: str | Path | None,
        *,
        upsert: bool,
    ) -> AddSummary:
        on_error = OnError(on_error)
        summary = AddSummary()
        start = time.perf_counter()
        reject_out = None
        try:
            with self._writing():
                self._chunker_for()  # loads every model now: a model that fails to load fails before any write
                for source, make_records in sources:
                    total = (
                        self._prevalidate(source, make_records, upsert) if on_error == OnError.FAIL else None
                    )
                    validator = Validator(self.settings.max_chars)
                    batch: list[Record] = []
                    bar = tqdm(
                        desc=f"add {Path(source).name}",
                        unit="doc",
                        total=total,
                        disable=not self.show_progress,
                    )
                    for rec in make_records():
                        validator.check(rec)
                        if rec.error:
                            if on_error == OnError.FAIL:  # changed between the two passes
                                raise InputError(f"{rec.where}: {rec.error}")
                            reject_out = self._reject(rec, summary, reject_out, rejects)
                            continue
                        batch.append(rec)
                        if len(batch) >= DOC_BATCH:
                            reject_out = self._add_batch(batch, summary, upsert, reject_out, rejects)
                            bar.update(len(batch))
                            batch = []
                    if batch:
                        reject_out = self._add_batch(batch, summary, upsert, reject_out, rejects)
                        bar.update(len(batch))
                    bar.close()
                    self._commit()  # each file is committed before the next one is validated
        finally:
            if reject_out is not None:
                reject_out.close()
            summary.seconds = time.perf_counter() - start
        return summary

    def _prevalidate(self, source: str, make_records: Callable[[], Iterable[Record]], upsert: bool) -> int:
        """`--on-error fail`: read the whole source first; any bad record -> InputError, nothing written.
        Returns the number of records."""
        validator = Validator(self.settings.max_chars)
        problems: list[str] = []
        ids: list[str] = []
        count = 0
        for rec in make_records():
            validator.check(rec)
            if rec.error:
                problems.append(f"{rec.where}: {rec.error}")
            elif not upsert:
                ids.append(rec.doc.id)
            count += 1
        if not upsert and ids:
            known = self._existing_ext_ids(ids)
            problems += [
                f"{source}: document id {i!r} is not in the collection (use `add`)"
                for i in ids
                if i not in known
            ]
        if problems:
            shown = "\n  ".join(problems[:10])
            more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
            raise InputError(
                f"{source}: {len(problems)} bad record(s); nothing from this file was written "
                f"(use --on-error skip to index the good ones):\n  {shown}{more}",
                problems,
            )
        return count

    def _existing_ext_ids(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        with Session(self.engine) as s:
            for part in _batched(list(ids), SQL_IN_BATCH):
                found.update(s.scalars(select(DocumentRow.ext_id).where(DocumentRow.ext_id.in_(part))))
        return found

    def _reject(self, rec: Record, summary: AddSummary, out, rejects: str | Path | None):
        summary.rejected += 1
        if len(summary.problems) < 20:
            summary.problems.append(f"{rec.where}: {rec.error}")
        log.debug("rejected %s: %s", rec.where, rec.error)
        if out is None:
            if rejects is None:
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
                rejects = self.path / REJECTS_DIR / f"{Path(rec.source).name}.{stamp}.{os.getpid()}.jsonl"
            rejects = Path(rejects)
            rejects.parent.mkdir(parents=True, exist_ok=True)
            out = rejects.open("a", encoding="utf-8")
            summary.rejects_file = str(rejects)
        out.write(rec.to_reject_json() + "\n")
        out.flush()
        return out

    def _add_batch(self, batch: list[Record], summary: AddSummary, upsert: bool, reject_out, rejects):
        """One transaction of documents + pending chunks, then embed and stage their vectors."""
        docs = [r.doc for r in batch]
        chunker = self._chunker_for()
        new_chunks: list[tuple[int, str]] = []
        removed: list[int] = []
        unknown: list[Record] = []
        now = utcnow()
        with Session(self.engine) as s, s.begin():
            existing = {
                r.ext_id: r
                for r in s.scalars(select(DocumentRow).where(DocumentRow.ext_id.in_([d.id for d in docs])))
            }
            to_chunk: list[tuple[DocumentRow, Document]] = []
            for rec, doc in zip(batch, docs, strict=True):
                row = existing.get(doc.id)
                if row is None and not upsert:
                    unknown.append(rec.reject(f"document id {doc.id!r} is not in the collection (use `add`)"))
                    continue
                digest = _content_hash(doc)
                if row is not None and row.content_hash == digest:
                    if (row.meta or {}) != (doc.metadata or {}):
                        row.meta, row.updated_at = dict(doc.metadata), now
                    summary.unchanged += 1
                    continue
                if row is not None:
                    removed += list(s.scalars(select(ChunkRow.id).where(ChunkRow.doc_id == row.id)))
                    s.execute(delete(ChunkRow).where(ChunkRow.doc_id == row.id))
                    row.lang, row.title, row.text = doc.lang, doc.title or "", doc.text
                    row.meta, row.content_hash, row.updated_at = dict(doc.metadata), digest, now
                    summary.updated += 1
                else:
                    row = DocumentRow(
                        ext_id=doc.id,
                        lang=doc.lang,
                        title=doc.title or "",
                        text=doc.text,
                        meta=dict(doc.metadata),
                        content_hash=digest,
                        created_at=now,
                        updated_at=now,
                    )
                    s.add(row)
                    existing[doc.id] = row
                    summary.added += 1
                to_chunk.append((row, doc))
            s.flush()
            titled = self.settings.embed_title
            titles = [self._embedded_title(d.title, d.id) if titled and d.title else "" for _, d in to_chunk]
            reserves = [(chunker._counts([t])[0] + 1) if t else 0 for t in titles]
            spans = chunker.chunk_many([d.text for _, d in to_chunk], reserves)
            rows: list[tuple[ChunkRow, str]] = []
            for (row, doc), doc_spans, title in zip(to_chunk, spans, titles, strict=True):
                for pos, sp in enumerate(doc_spans):
                    text = doc.text[sp.start : sp.end]
                    if title:
                        text = f"{title}\n{text}"
                    rows.append(
                        (
                            ChunkRow(
                                doc_id=row.id,
                                position=pos,
                                start=sp.start,
                                end=sp.end,
                                lang=doc.lang,
                                state=ChunkState.PENDING.value,
                            ),
                            text,
                        )
                    )
            s.add_all([r for r, _ in rows])
            s.flush()
            new_chunks = [(r.id, t) for r, t in rows]
        for rec in unknown:
            reject_out = self._reject(rec, summary, reject_out, rejects)
        self._stage(new_chunks, np.array(removed, dtype=np.int64), summary)
        return reject_out

    def _embedded_title(self, title: str, doc_id: str | None = None) -> str:
        """The title as embedded before each chunk: cut to 1/TITLE_SHARE of the chunk budget, so a
        long title cannot crowd the chunk's own text out of the model's input."""
        if title not in self._titles:
            chunker = self._chunker_for()
            limit = max(chunker.budget // TITLE_SHARE, 1)
            cut = chunker.cut(title, limit)
            self._titles[title] = (cut, cut != title)
            if len(self._titles) > 10_000:
                self._titles.clear()
        cut, was_cut = self._titles[title]
        if was_cut and doc_id is not None:
            log.warning(
                "document %s: its title is embedded only up to %r (at most 1/%d of the %d-token chunk "
                "budget goes to the title)",
                doc_id,
                cut[-40:],
                TITLE_SHARE,
                self._chunker_for().budget,
            )
        return cut

    def _embed(self, m: _Model, texts: list[str], summary: AddSummary | None = None) -> np.ndarray:
        enc = self.encoder(m.spec)
        t0 = time.perf_counter()
        vecs = enc.encode(texts, batch_size=self.batch_size, prefix="passage")
        if summary is not None:
            summary.encode_seconds[m.spec] = (
                summary.encode_seconds.get(m.spec, 0.0) + time.perf_counter() - t0
            )
        return _l2_normalize(vecs)

    def _stage(
        self, chunks: list[tuple[int, str]], removed: np.ndarray, summary: AddSummary | None = None
    ) -> None:
        """Embed `chunks` with every model and add them (and remove `removed`) in memory."""
        ids = np.array([c for c, _ in chunks], dtype=np.int64)
        texts = [t for _, t in chunks]
        for m in self._models.values():
            if len(removed):
                _, tomb = faiss_index.remove(m.index, removed)
                m.tombstones += tomb
                m.dirty = True
            if len(ids):
                vecs = self._embed(m, texts, summary)
                faiss_index.add(m.index, vecs, ids)
                m.staged_ids.append(ids)
                m.staged_vecs.append(vecs)
                m.dirty = True
        if len(ids):
            self._staged_chunk_ids.append(ids)
            self._staged_since_commit += len(ids)
            if summary is not None:
                summary.chunks += len(ids)
        ntotal = max((m.index.ntotal for m in self._models.values()), default=0)
        if self._staged_since_commit >= max(self.commit_every, int(COMMIT_GROWTH * ntotal)):
            self._commit()

    def _commit(self, mark_all: bool = False) -> None:
        """Write staged vectors and changed indexes (tmp + fsync + rename), then commit the database.

        `mark_all`: every chunk is now in every index (reconcile), so mark all pending ones indexed."""
        if not any(m.dirty for m in self._models.values()) and not self._staged_chunk_ids and not mark_all:
            return
        written: list[tuple[_Model, int, str, int, int, str | None, int]] = []
        new_files: list[Path] = []
        try:
            for m in self._models.values():
                if not m.dirty:
                    continue
                seg, rows = None, 0
                if m.staged_ids:
                    ids = np.concatenate(m.staged_ids)
                    seg = SegmentStore(self._vectors_dir(m)).write(ids, np.concatenate(m.staged_vecs))
                    rows = len(ids)
                gen = m.generation + 1 if m.generation >= 0 else 1
                name = f"{m.key}.g{gen:06d}.faiss"
                nbytes, crc = faiss_index.save(m.index, self.path / INDEX_DIR / name)
                new_files.append(self.path / INDEX_DIR / name)
                written.append((m, gen, name, nbytes, crc, seg, rows))
            chunk_ids = (
                np.concatenate(self._staged_chunk_ids) if self._staged_chunk_ids else np.array([], np.int64)
            )
            now = utcnow()
            with Session(self.engine) as s, s.begin():
                for m, gen, name, nbytes, crc, seg, rows in written:
                    s.execute(
                        update(ModelRow)
                        .where(ModelRow.id == m.id)
                        .values(
                            generation=gen,
                            index_file=name,
                            index_bytes=nbytes,
                            index_crc32=crc,
                            ntotal=int(m.index.ntotal),
                            tombstones=m.tombstones,
                            factory=m.factory,
                            index_spec=m.index_spec.to_dict(),
                            dim=m.dim,
                            updated_at=now,
                        )
                    )
                    if seg:
                        s.add(SegmentRow(model_id=m.id, name=seg, rows=rows, created_at=now))
                if mark_all:
                    s.execute(
                        update(ChunkRow)
                        .where(ChunkRow.state == ChunkState.PENDING.value)
                        .values(state=ChunkState.INDEXED.value)
                    )
                for part in _batched(chunk_ids.tolist(), SQL_IN_BATCH):
                    s.execute(
                        update(ChunkRow).where(ChunkRow.id.in_(part)).values(state=ChunkState.INDEXED.value)
                    )
                s.merge(MetaRow(key="last_update", value=now.isoformat()))
        except BaseException:
            for p in new_files:  # never committed: not referenced by anything
                p.unlink(missing_ok=True)
            raise
        for m, gen, name, nbytes, crc, seg, rows in written:
            old_gen = m.generation
            m.generation, m.index_file, m.index_bytes, m.index_crc32 = gen, name, nbytes, crc
            m.ntotal, m.updated_at = int(m.index.ntotal), now
            if seg:
                m.segments.append((seg, rows))
            m.staged_ids, m.staged_vecs, m.dirty, m.broken = [], [], False, None
            self._remove_old_generations(m, keep_from=old_gen)
        self._staged_chunk_ids = []
        self._staged_since_commit = 0
        self._selectors.clear()
        self._maintain()

    def _remove_old_generations(self, m: _Model, keep_from: int) -> None:
        """Delete index files of `m` older than `keep_from` (the previous generation stays for readers)."""
        for p in (self.path / INDEX_DIR).glob(f"{m.key}.g*.faiss"):
            match = _INDEX_FILE_RE.match(p.name)
            if match and int(match.group(2)) < keep_from:
                p.unlink(missing_ok=True)

    def _maintain(self) -> None:
        """After a commit: switch a stand-in flat index to its real type once it can be trained, and
        rebuild an index whose tombstones exceed TOMBSTONE_REBUILD."""
        for m in list(self._models.values()):
            n = int(m.index.ntotal) - m.tombstones
            kind = m.index_spec.resolve(n)
            upgrade = m.factory == "Flat" and kind != IndexKind.FLAT and n >= self._min_train(m, n)
            too_many_tombstones = (
                m.tombstones > max(TOMBSTONE_REBUILD * m.index.ntotal, 0) and m.tombstones > 0
            )
            # Many small adds leave many small segments; a rebuild writes one compacted segment.
            too_many_segments = len(m.segments) > MAX_SEGMENTS
            outgrown = m.index_spec.outgrown(m.factory, n)
            if upgrade or too_many_tombstones or too_many_segments or outgrown:
                log.info(
                    "rebuilding the index of %s (upgrade %s, tombstones %d, segments %d, outgrown %s)",
                    m.spec,
                    upgrade,
                    m.tombstones,
                    len(m.segments),
                    outgrown,
                )
                try:
                    self._rebuild_model(m)
                except (IndexerError, ValueError) as exc:
                    # The commit before this stands; an index type that cannot be built (recorded by an
                    # older version) must not turn every later write into an error.
                    log.warning(
                        "%s: the index stays %s: %s (`indexer rebuild --index-type` switches it)",
                        m.name,
                        m.factory,
                        exc,
                    )
                    self._reload_model(m)

    def _reload_model(self, m: _Model) -> None:
        m.generation = -1
        self._sync()

    def _vectors_dir(self, m: _Model) -> Path:
        return self.path / VECTORS_DIR / m.key

    def _min_train(self, m: _Model, n: int) -> int:
        if m.index_spec.kind == IndexKind.FACTORY:
            probe = faiss_index.new_index(m.index_spec.factory, m.dim)
            if probe.is_trained:
                return 0
            nlist = re.search(r"IVF(\d+)", m.index_spec.factory)
            return max(256, int(nlist.group(1)) if nlist else 0)
        return m.index_spec.min_train_points(m.dim, n)

    def _initial_factory(self, m: _Model) -> str:
        """The factory of a new, empty index: flat stands in for a type that needs training."""
        if self._min_train(m, 0) > 0:
            return "Flat"
        return m.index_spec.factory_string(m.dim, 0)

    def _new_index(self, m: _Model, factory: str):
        index = faiss_index.new_index(factory, m.dim)
        base = faiss_index.inner(index)
        if hasattr(base, "hnsw"):
            base.hnsw.efConstruction = m.index_spec.ef_construction
            base.hnsw.efSearch = m.index_spec.ef_search
        return index

    # ----------------------------------------------------------------------------- delete

    def delete(self, ids: Iterable[str]) -> DeleteSummary:
        """Delete documents by external id; unknown ids are reported, not an error."""
        wanted = list(dict.fromkeys(str(i) for i in ids))
        summary = DeleteSummary()
        with self._writing():
            removed: list[int] = []
            with Session(self.engine) as s, s.begin():
                for part in _batched(wanted, SQL_IN_BATCH):
                    rows = s.execute(
                        select(DocumentRow.id, DocumentRow.ext_id).where(DocumentRow.ext_id.in_(part))
                    ).all()
                    doc_ids = [r.id for r in rows]
                    summary.deleted += [r.ext_id for r in rows]
                    if doc_ids:
                        removed += list(s.scalars(select(ChunkRow.id).where(ChunkRow.doc_id.in_(doc_ids))))
                        s.execute(delete(ChunkRow).where(ChunkRow.doc_id.in_(doc_ids)))
                        s.execute(delete(DocumentRow).where(DocumentRow.id.in_(doc_ids)))
                s.merge(MetaRow(key="last_update", value=utcnow().isoformat()))
            found = set(summary.deleted)
            summary.not_found = [i for i in wanted if i not in found]
            if removed:
                self._stage([], np.array(removed, dtype=np.int64))
                self._commit()
        return summary

    # ----------------------------------------------------------------------------- rebuild / reconcile

    def _live_ids(self) -> np.ndarray:
        with Session(self.engine) as s:
            ids = s.scalars(select(ChunkRow.id).order_by(ChunkRow.id)).all()
        return np.array(ids, dtype=np.int64)

    def _chunk_texts(self, ids: np.ndarray) -> list[tuple[int, str]]:
        out: dict[int, str] = {}
        titled = self.settings.embed_title
        with Session(self.engine) as s:
            for part in _batched(ids.tolist(), SQL_IN_BATCH):
                q = (
                    select(ChunkRow.id, ChunkRow.start, ChunkRow.end, DocumentRow.title, DocumentRow.text)
                    .join(DocumentRow, DocumentRow.id == ChunkRow.doc_id)
                    .where(ChunkRow.id.in_(part))
                )
                for cid, a, b, title, text in s.execute(q):
                    out[cid] = (
                        f"{self._embedded_title(title)}\n{text[a:b]}" if titled and title else text[a:b]
                    )
        return [(i, out[i]) for i in ids.tolist() if i in out]

    def rebuild(
        self,
        index_type: str | IndexSpec | None = None,
        *,
        models: Sequence[str] | None = None,
        reembed: bool = False,
        index_params: dict[str, Any] | None = None,
        backend: str | Mapping[str, str] | None = None,
    ) -> None:
        """Rebuild the index of each model (or of `models`) from the stored vectors, optionally
        switching its type; `reembed` encodes every chunk again instead (e.g. after a model changed).
        `backend` (one name, or `{spec: name}`) switches how the models run; it needs `reembed`."""
        with self._writing():
            targets = [self._model(x) for x in models] if models else list(self._models.values())
            new_backends = _backends_for([m.spec for m in targets], backend) if backend else {}
            if backend and not reembed:
                raise IndexerError(
                    "changing the backend re-encodes every chunk: add --reembed (reembed=True)"
                )
            for m in targets:
                if m.spec in new_backends and new_backends[m.spec] != m.backend:
                    self._load_encoder(m.spec, new_backends[m.spec])  # fails before anything is rebuilt
                    m.backend = new_backends[m.spec]
            specs: dict[int, IndexSpec] = {}
            for m in targets:  # every model's new spec is checked before any index is rebuilt
                spec = m.index_spec
                if index_type is not None or index_params:
                    try:
                        spec = IndexSpec.parse(
                            index_type if index_type is not None else m.index_spec, **(index_params or {})
                        )
                    except ValueError as exc:
                        raise IndexerError(str(exc)) from None
                dim = self.encoder(m.spec, allow_new_dim=True).dim if reembed else m.dim
                faiss_index.check_spec(spec, dim, f"model {m.name}: ")
                specs[m.id] = spec
            for m in targets:
                m.index_spec = specs[m.id]
                if reembed:
                    enc = self.encoder(m.spec, allow_new_dim=True)
                    m.dim = enc.dim
                    self._chunker = None
                self._rebuild_model(m, reembed=reembed)

    def _rebuild_model(self, m: _Model, *, reembed: bool = False) -> None:
        """A new index (and one compacted vector segment) for the live chunks; committed at once."""
        live = self._live_ids()
        store = SegmentStore(self._vectors_dir(m))
        n = len(live)
        seg_names = [name for name, _ in m.segments] if reembed else self._trusted_segments(m)
        # Too few vectors to train (IVF/PQ): a flat index stands in until a later commit has enough.
        factory = "Flat" if n < self._min_train(m, n) else m.index_spec.factory_string(m.dim, n)
        index = self._new_index(m, factory)
        found_ids: list[np.ndarray] = []
        found_vecs: list[np.ndarray] = []
        if not reembed and seg_names:
            try:
                for ids, vecs in store.iter_rows(seg_names, wanted=live):
                    found_ids.append(ids)
                    found_vecs.append(vecs)
            except IndexCorruptError as exc:
                log.warning("%s; re-encoding instead", exc)
                found_ids, found_vecs = [], []
        have = np.concatenate(found_ids) if found_ids else np.array([], np.int64)
        missing = np.setdiff1d(live, have)
        if len(missing):
            chunks = self._chunk_texts(missing)
            for part in tqdm(
                list(_batched(chunks, 1024)),
                desc=f"encode {m.name}",
                unit="batch",
                disable=not self.show_progress or len(chunks) < 1024,
            ):
                found_ids.append(np.array([c for c, _ in part], np.int64))
                found_vecs.append(self._embed(m, [t for _, t in part]))
        all_ids = np.concatenate(found_ids) if found_ids else np.array([], np.int64)
        all_vecs = np.concatenate(found_vecs) if found_vecs else np.zeros((0, m.dim), np.float32)
        if not index.is_trained:
            rng = np.random.default_rng(0)
            sample = all_vecs[rng.choice(len(all_vecs), size=min(len(all_vecs), 100_000), replace=False)]
            faiss_index.train(index, sample)
        faiss_index.add(index, all_vecs, all_ids)
        seg = store.write(all_ids, all_vecs, prefix="compact") if len(all_ids) else None
        gen = m.generation + 1
        name = f"{m.key}.g{gen:06d}.faiss"
        path = self.path / INDEX_DIR / name
        nbytes, crc = faiss_index.save(index, path)
        now = utcnow()
        try:
            with Session(self.engine) as s, s.begin():
                s.execute(delete(SegmentRow).where(SegmentRow.model_id == m.id))
                if seg:
                    s.add(SegmentRow(model_id=m.id, name=seg, rows=len(all_ids), created_at=now))
                s.execute(
                    update(ModelRow)
                    .where(ModelRow.id == m.id)
                    .values(
                        generation=gen,
                        index_file=name,
                        index_bytes=nbytes,
                        index_crc32=crc,
                        ntotal=int(index.ntotal),
                        tombstones=0,
                        factory=factory,
                        index_spec=m.index_spec.to_dict(),
                        dim=m.dim,
                        updated_at=now,
                        backend=m.backend,
                    )
                )
                s.merge(MetaRow(key="last_update", value=now.isoformat()))
        except BaseException:
            path.unlink(missing_ok=True)
            if seg:
                store.delete(seg)
            raise
        old_gen = m.generation
        m.index, m.broken, m.factory, m.tombstones = index, None, factory, 0
        m.generation, m.index_file, m.index_bytes, m.index_crc32, m.ntotal = (
            gen,
            name,
            nbytes,
            crc,
            int(index.ntotal),
        )
        m.updated_at, m.dirty, m.staged_ids, m.staged_vecs = now, False, [], []
        for old, _ in m.segments:
            store.delete(old)
        m.segments = [(seg, len(all_ids))] if seg else []
        self._remove_old_generations(m, keep_from=old_gen)
        self._selectors.clear()

    def _trusted_segments(self, m: _Model) -> list[str]:
        """Segments of `m` that pass their checks; the chunks of the others are re-embedded."""
        store = SegmentStore(self._vectors_dir(m))
        good = []
        for name, rows in m.segments:
            try:
                store.check(name, rows, m.dim)
                good.append(name)
            except IndexCorruptError as exc:
                log.warning("%s: %s; re-embedding its chunks", m.name, exc)
        return good

    def reconcile(self) -> list[str]:
        """Make every index agree with the database: pending chunks embedded (from stored vectors
        when they exist), orphan vectors removed, corrupt indexes rebuilt, stray files deleted.
        Returns what was done (empty when the collection was consistent)."""
        with self._writing(repair=False):
            actions = self._reconcile_locked()
        for a in actions:
            log.warning("%s: %s", self.path, a)
        self.repairs = actions
        return actions

    def _reconcile_locked(self) -> list[str]:
        actions: list[str] = []
        live = self._live_ids()
        with Session(self.engine) as s:
            pending = s.scalar(
                select(func.count()).select_from(ChunkRow).where(ChunkRow.state == ChunkState.PENDING.value)
            )
        for m in list(self._models.values()):
            if m.index is None:
                actions.append(f"{m.name}: {m.broken}; rebuilt from the stored vectors")
                self._check_segments(m, actions)
                self._rebuild_model(m)
                continue
            if self._check_segments(m, actions):
                # The index is fine, but the vectors a rebuild needs are gone: store them again.
                self._rebuild_model(m)
                continue
            in_index = faiss_index.index_ids(m.index)
            orphans = np.setdiff1d(in_index, live)
            if len(orphans):
                removed, tomb = faiss_index.remove(m.index, orphans)
                if removed:
                    actions.append(f"{m.name}: removed {removed} orphan vector(s)")
                    m.dirty = True
                if tomb != m.tombstones:
                    m.tombstones = tomb
                    m.dirty = True
            elif m.tombstones:
                m.tombstones, m.dirty = 0, True
            if len(np.unique(in_index)) != len(in_index):
                actions.append(f"{m.name}: duplicate ids in the index; rebuilt")
                self._rebuild_model(m)
                continue
            missing = np.setdiff1d(live, in_index)
            if len(missing):
                got_ids, got_vecs = [], []
                try:
                    for ids, vecs in SegmentStore(self._vectors_dir(m)).iter_rows(
                        [n for n, _ in m.segments], missing
                    ):
                        got_ids.append(ids)
                        got_vecs.append(vecs)
                except IndexCorruptError:
                    got_ids, got_vecs = [], []
                have = np.concatenate(got_ids) if got_ids else np.array([], np.int64)
                if len(have):
                    faiss_index.add(m.index, np.concatenate(got_vecs), have)
                    m.dirty = True
                rest = np.setdiff1d(missing, have)
                if len(rest):
                    chunks = self._chunk_texts(rest)
                    vecs = self._embed(m, [t for _, t in chunks])
                    ids = np.array([c for c, _ in chunks], np.int64)
                    faiss_index.add(m.index, vecs, ids)
                    m.staged_ids.append(ids)
                    m.staged_vecs.append(vecs)
                    m.dirty = True
                actions.append(
                    f"{m.name}: indexed {len(missing)} pending chunk(s) "
                    f"({len(have)} from stored vectors, {len(rest)} re-embedded)"
                )
        if pending or any(m.dirty for m in self._models.values()):
            self._commit(mark_all=True)
        if pending and not actions:
            actions.append(
                f"marked {pending} pending chunk(s) indexed (their vectors were already committed)"
            )
        actions += self._remove_stray_files()
        return actions

    def _check_segments(self, m: _Model, actions: list[str]) -> bool:
        """Drop registrations of segment files that are missing or unreadable (their chunks get re-embedded)."""
        store = SegmentStore(self._vectors_dir(m))
        bad = []
        for name, rows in m.segments:
            try:
                store.check(name, rows, m.dim)
            except IndexCorruptError as exc:
                bad.append(name)
                actions.append(f"{m.name}: {exc}; its chunks will be re-embedded if needed")
        if bad:
            with Session(self.engine) as s, s.begin():
                s.execute(delete(SegmentRow).where(SegmentRow.model_id == m.id, SegmentRow.name.in_(bad)))
            m.segments = [(n, r) for n, r in m.segments if n not in bad]
        return bool(bad)

    def _remove_stray_files(self) -> list[str]:
        """Delete files no committed row names: temporary files, uncommitted generations and segments."""
        removed = 0
        index_dir = self.path / INDEX_DIR
        current = {m.index_file for m in self._models.values()}
        for p in index_dir.glob("*"):
            match = _INDEX_FILE_RE.match(p.name)
            if p.name.endswith(TMP_SUFFIX):
                p.unlink(missing_ok=True)
                removed += 1
            elif match:
                m = self._models.get(int(match.group(1)))
                gen = int(match.group(2))
                # Written but never committed, or older than the previous generation.
                if m is None or (p.name not in current and (gen > m.generation or gen < m.generation - 1)):
                    p.unlink(missing_ok=True)
                    removed += 1
        for m in self._models.values():
            store = SegmentStore(self._vectors_dir(m))
            registered = {n for n, _ in m.segments}
            for name in store.files() - registered:
                store.delete(name)
                removed += 1
            if store.root.is_dir():
                for p in store.root.glob(f"*{TMP_SUFFIX}"):
                    p.unlink(missing_ok=True)
                    removed += 1
        return [f"removed {removed} uncommitted or temporary file(s)"] if removed else []

    # ----------------------------------------------------------------------------- search

    def _selector(self, langs: tuple[str, ...]) -> tuple[Any, np.ndarray, int]:
        if langs not in self._selectors:
            with Session(self.engine) as s:
                ids = np.array(
                    s.scalars(select(ChunkRow.id).where(ChunkRow.lang.in_(langs))).all(), dtype=np.int64
                )
            sel, bitmap = faiss_index.bitmap_selector(ids) if len(ids) else (None, np.zeros(0, np.uint8))
            if len(self._selectors) > 64:
                self._selectors.clear()
            self._selectors[langs] = (sel, bitmap, len(ids))
        return self._selectors[langs]

    def search(
        self, query: str, model: str | None = None, k: int = 10, langs: Sequence[str] | None = None
    ) -> list[Hit]:
        """The `k` best documents for `query` (each once, with its best chunk), optionally only in `langs`.

        Language filter: an id selector inside FAISS (a bitmap of the chunk ids in those languages),
        which works with every index type, plus over-fetching for documents with several chunks.
        """
        if k < 1:
            raise IndexerError("k must be >= 1")
        if not query or not query.strip():
            return []
        lang_key: tuple[str, ...] | None = None
        if langs:
            bad = [x for x in langs if not is_known_lang(x)]
            if bad:
                raise IndexerError(f"unknown language code(s) {bad}")
            lang_key = tuple(sorted({canonical_lang(x) for x in langs}))
        with self._mutex:
            if self._closed:
                raise IndexerError("the collection is closed")
            self._sync()
            m = self._model(model)
            if m.index is None:
                raise IndexCorruptError(
                    f"{m.broken}; open the collection writable (e.g. `indexer verify {self.path} --repair`) to repair it"
                )
            enc = self.encoder(m.spec)
            q = _l2_normalize(enc.encode([query], batch_size=1, prefix="query"))
            return self._search_vector(m, q, k, lang_key)

    def _search_vector(self, m: _Model, q: np.ndarray, k: int, lang_key: tuple[str, ...] | None) -> list[Hit]:
        ntotal = int(m.index.ntotal)
        if ntotal == 0:
            return []
        selector, allowed = None, ntotal
        if lang_key:
            selector, _bitmap, allowed = self._selector(lang_key)
            if allowed == 0:
                return []
        # Tombstones are never in the selector (their chunk ids are gone from the database).
        limit = min(allowed, ntotal) if lang_key else ntotal
        # Over-fetch chunks (a document may own several), widening until k documents are found.
        # An approximate index can return fewer than asked under a selective filter (HNSW visits
        # filtered-out nodes without returning them), so the last round searches it exhaustively.
        fetch = min(max(4 * k, 32), limit)
        factor, full = 1, False
        while True:
            scores, ids = faiss_index.search(
                m.index,
                q,
                fetch,
                selector=selector,
                ef_search=ntotal if full else max(m.index_spec.ef_search, fetch),
                nprobe=ntotal if full else m.index_spec.nprobe * factor,
            )
            found = [(int(i), float(sc)) for i, sc in zip(ids[0], scores[0], strict=True) if i >= 0]
            best = self._best_per_document(found)
            if len(best) >= k or full:
                break
            if fetch >= limit:
                if faiss_index.is_exact(m.index):
                    break
                full = True
            else:
                fetch, factor = min(fetch * 4, limit), factor * 4
        top = sorted(best.values(), key=lambda x: -x[1])[:k]
        return self._hits(m, top)

    def _best_per_document(self, found: list[tuple[int, float]]) -> dict[int, tuple[int, float]]:
        """doc row id -> (chunk id, score) of its best chunk; ids no longer in the database are dropped."""
        doc_of: dict[int, int] = {}
        with Session(self.engine) as s:
            for part in _batched([i for i, _ in found], SQL_IN_BATCH):
                for cid, doc in s.execute(select(ChunkRow.id, ChunkRow.doc_id).where(ChunkRow.id.in_(part))):
                    doc_of[cid] = doc
        best: dict[int, tuple[int, float]] = {}
        for cid, score in found:
            doc = doc_of.get(cid)
            if doc is not None and (doc not in best or score > best[doc][1]):
                best[doc] = (cid, score)
        return best

    def _hits(self, m: _Model, top: list[tuple[int, float]]) -> list[Hit]:
        if not top:
            return []
        rows = {}
        with Session(self.engine) as s:
            for part in _batched([c for c, _ in top], SQL_IN_BATCH):
                q = (
                    select(
                        ChunkRow.id,
                        ChunkRow.start,
                        ChunkRow.end,
                        DocumentRow.ext_id,
                        DocumentRow.lang,
                        DocumentRow.title,
                        DocumentRow.text,
                        DocumentRow.meta,
                    )
                    .join(DocumentRow, DocumentRow.id == ChunkRow.doc_id)
                    .where(ChunkRow.id.in_(part))
                )
                rows.update({r[0]: r for r in s.execute(q)})
        hits = []
        for cid, score in top:
            r = rows.get(cid)
            if r is None:  # deleted between the two queries
                continue
            _, a, b, ext_id, lang, title, text, meta = r
            hits.append(
                Hit(
                    doc_id=ext_id,
                    chunk_id=cid,
                    score=score,
                    lang=lang,
                    title=title or "",
                    snippet=text[a:b],
                    chunk_start=a,
                    chunk_end=b,
                    text=text,
                    metadata=meta or {},
                    rank=len(hits) + 1,
                    model=m.spec,
                )
            )
        return hits

    # ----------------------------------------------------------------------------- inspection

    def info(self) -> dict[str, Any]:
        """Documents per language, chunks, and per model the index type, size and state."""
        with self._mutex:
            self._sync()
            with Session(self.engine) as s:
                docs = s.scalar(select(func.count()).select_from(DocumentRow)) or 0
                chunks = s.scalar(select(func.count()).select_from(ChunkRow)) or 0
                pending = (
                    s.scalar(
                        select(func.count())
                        .select_from(ChunkRow)
                        .where(ChunkRow.state == ChunkState.PENDING.value)
                    )
                    or 0
                )
                langs = {
                    lang: n
                    for lang, n in s.execute(
                        select(DocumentRow.lang, func.count())
                        .group_by(DocumentRow.lang)
                        .order_by(DocumentRow.lang)
                    )
                }
                meta = {r.key: r.value for r in s.scalars(select(MetaRow))}
            models = []
            for m in sorted(self._models.values(), key=lambda x: x.id):
                store = SegmentStore(self._vectors_dir(m))
                models.append(
                    {
                        "spec": m.spec,
                        "name": m.name,
                        "dim": m.dim,
                        "backend": m.backend,
                        "index_type": m.index_spec.label(),
                        "factory": m.factory,
                        "index_params": m.index_spec.to_dict(),
                        "vectors": m.ntotal - m.tombstones,
                        "tombstones": m.tombstones,
                        "index_bytes": m.index_bytes,
                        "stored_vector_bytes": store.nbytes([n for n, _ in m.segments]),
                        "segments": len(m.segments),
                        "generation": m.generation,
                        "index_file": m.index_file,
                        "updated_at": m.updated_at.isoformat() if m.updated_at else None,
                        "broken": m.broken,
                        "trust_remote_code": m.spec in self._trusted,
                    }
                )
            return {
                "path": str(self.path),
                "database": masked_url(self.db_url),
                "documents": docs,
                "chunks": chunks,
                "pending_chunks": pending,
                "languages": langs,
                "models": models,
                "settings": self.settings.to_dict(),
                "created_at": meta.get("created_at"),
                "last_update": meta.get("last_update"),
            }

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
        last = 0
        while True:
            with Session(self.engine) as s:
                rows = s.scalars(
                    select(DocumentRow).where(DocumentRow.id > last).order_by(DocumentRow.id).limit(1000)
                ).all()
                batch = [
                    (
                        r.id,
                        Document(id=r.ext_id, lang=r.lang, text=r.text, title=r.title, metadata=r.meta or {}),
                    )
                    for r in rows
                ]
            if not batch:
                return
            for _, doc in batch:
                yield doc
            last = batch[-1][0]

    def export(self, out) -> int:
        """Write every document as JSONL (`id, lang, title, text` + metadata) to the text stream `out`."""
        n = 0
        for doc in self.documents():
            record = {"id": doc.id, "lang": doc.lang, "title": doc.title, "text": doc.text}
            record.update({k: v for k, v in (doc.metadata or {}).items() if k not in record})
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
        return n

    def verify(self) -> VerifyReport:
        """Check that database, index files and stored vectors agree; changes nothing."""
        report = VerifyReport()
        with self._mutex:
            with Session(self.engine) as s:
                rows = s.scalars(self._model_rows()).all()
                seg_rows = s.execute(select(SegmentRow.model_id, SegmentRow.name, SegmentRow.rows)).all()
                chunk_rows = s.execute(
                    select(ChunkRow.id, ChunkRow.doc_id, ChunkRow.start, ChunkRow.end, ChunkRow.state)
                ).all()
                doc_rows = s.execute(
                    select(DocumentRow.id, DocumentRow.ext_id, func.length(DocumentRow.text))
                ).all()
            live = np.array(sorted(r.id for r in chunk_rows), dtype=np.int64)
            pending = sum(1 for r in chunk_rows if r.state != ChunkState.INDEXED.value)
            report.stats = {"documents": len(doc_rows), "chunks": len(live), "pending_chunks": pending}
            if self._lock.is_locked_elsewhere():
                report.notes.append(
                    "another process is writing to the collection now; work in progress may show"
                )
            if pending:
                report.problems.append(
                    f"{pending} chunk(s) are pending (committed to the database, not in every index)"
                )
            length = {r.id: r[2] for r in doc_rows}
            with_chunks = set()
            for r in chunk_rows:
                with_chunks.add(r.doc_id)
                if r.doc_id not in length:
                    report.problems.append(f"chunk {r.id} belongs to no document")
                elif not 0 <= r.start < r.end <= length[r.doc_id]:
                    report.problems.append(f"chunk {r.id} has span {r.start}:{r.end} outside its document")
            without = [r.ext_id for r in doc_rows if r.id not in with_chunks]
            if without:
                report.problems.append(f"{len(without)} document(s) have no chunks, e.g. {without[:3]}")
            for row in rows:
                self._verify_model(row, [(n, c) for mid, n, c in seg_rows if mid == row.id], live, report)
            stray = [p.name for p in (self.path / INDEX_DIR).glob("*") if p.name.endswith(TMP_SUFFIX)]
            if stray:
                report.notes.append(
                    f"{len(stray)} temporary file(s) left in {INDEX_DIR}/ (removed by the next writer)"
                )
        return report

    def _verify_model(
        self, row: ModelRow, segments: list[tuple[str, int]], live: np.ndarray, report: VerifyReport
    ) -> None:
        name = row.name
        try:
            if row.index_file and not _INDEX_FILE_RE.match(row.index_file):
                raise IndexCorruptError(
                    f"the database names an index file {row.index_file!r}, which is not an index file name"
                )
            index = faiss_index.load(
                self.path / INDEX_DIR / (row.index_file or "<none>"), row.index_bytes, row.index_crc32
            )
        except IndexCorruptError as exc:
            report.problems.append(f"{name}: {exc}")
            index = None  # the stored vectors are still checked
        if index is not None:
            self._verify_index(row, index, live, report)
        store = SegmentStore(self.path / VECTORS_DIR / f"m{row.id}")
        stored: list[np.ndarray] = []
        bad_segments = 0
        for seg, rows in segments:
            try:
                store.check(seg, rows, row.dim)
                stored.append(store.ids(seg))
            except IndexCorruptError as exc:
                report.problems.append(f"{name}: {exc}")
                bad_segments += 1
        have = np.unique(np.concatenate(stored)) if stored else np.array([], np.int64)
        unstored = np.setdiff1d(live, have)
        if bad_segments:
            report.notes.append(
                f"{name}: `indexer verify --repair` re-embeds the chunks of the {bad_segments} "
                "broken segment(s)"
            )
        elif len(unstored):
            report.problems.append(
                f"{name}: {len(unstored)} chunk(s) have no stored vector (a rebuild would re-encode them)"
            )
        report.stats[name] = {
            "index": row.factory,
            "vectors": int(index.ntotal) if index is not None else None,
            "tombstones": row.tombstones,
            "index_bytes": row.index_bytes,
        }

    def _verify_index(self, row: ModelRow, index, live: np.ndarray, report: VerifyReport) -> None:
        name = row.name
        if index.d != row.dim:
            report.problems.append(f"{name}: index dimension {index.d}, the collection records {row.dim}")
        if index.ntotal != row.ntotal:
            report.problems.append(
                f"{name}: index holds {index.ntotal} vectors, the database records {row.ntotal}"
            )
        ids = faiss_index.index_ids(index)
        if len(np.unique(ids)) != len(ids):
            report.problems.append(f"{name}: the index holds duplicate ids")
        missing = np.setdiff1d(live, ids)
        orphans = np.setdiff1d(ids, live)
        if len(missing):
            report.problems.append(
                f"{name}: {len(missing)} chunk(s) are not in the index, e.g. {missing[:5].tolist()}"
            )
        if len(orphans):
            if faiss_index.supports_remove(index) or len(orphans) != row.tombstones:
                report.problems.append(
                    f"{name}: {len(orphans)} vector(s) in the index belong to no chunk, e.g. {orphans[:5].tolist()}"
                    + (f" ({row.tombstones} tombstones recorded)" if row.tombstones else "")
                )
            else:
                report.notes.append(
                    f"{name}: {len(orphans)} tombstone(s) of deleted chunks (HNSW cannot delete; "
                    "`indexer rebuild` reclaims them)"
                )
        elif row.tombstones:
            report.problems.append(f"{name}: {row.tombstones} tombstones recorded, none in the index")


def _check_limits(
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


def _backends_for(specs: Sequence[str], backends: str | Mapping[str, str] | None) -> dict[str, str]:
    """spec -> validated backend name, from one name for all models or a `{spec: name}` mapping."""
    from distill.models import Backend, BackendError

    if backends is None or isinstance(backends, str):
        wanted = dict.fromkeys(specs, backends)
    else:
        wanted = dict.fromkeys(specs)
        for key, name in backends.items():
            spec = normalize_spec(key)
            match = next((s for s in specs if spec == s or _model_name(s) == str(key)), None)
            if match is None:
                raise IndexerError(f"--backend names model {key!r}, which is not among {list(specs)}")
            wanted[match] = name
    try:
        return {s: Backend.parse(name).value for s, name in wanted.items()}
    except BackendError as exc:
        raise IndexerError(str(exc)) from None
