"""The collection's database: documents, chunks, models and index state (SQLAlchemy 2.x ORM).

Any SQLAlchemy URL works; the tests run on SQLite and PostgreSQL. Chunk ids are the FAISS ids.
They come from AUTOINCREMENT (SQLite) or a sequence (PostgreSQL), so an id is never reused after a
delete: a stale vector left in an index (an HNSW tombstone, or an orphan after a crash) can never
be mistaken for a newer chunk. Reused positional ids are how txtai's index and database drift apart.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    create_engine,
    event,
    inspect,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = 1

# BIGINT on servers (FAISS ids are int64); plain INTEGER on SQLite so the column is the rowid.
Id = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class ChunkState(enum.StrEnum):
    PENDING = "pending"  # committed to the database, not yet in every model's index
    INDEXED = "indexed"


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class MetaRow(Base):
    """Key/value settings of the collection (schema version, uid, chunking settings, timestamps)."""

    __tablename__ = "xl_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


class ModelRow(Base):
    """One model of the collection and the state of its index (the committed generation)."""

    __tablename__ = "xl_models"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    spec: Mapped[str] = mapped_column(String(1024), unique=True)
    name: Mapped[str] = mapped_column(String(256))
    dim: Mapped[int] = mapped_column(Integer)
    normalize: Mapped[bool] = mapped_column(
        Boolean
    )  # the model's own setting; indexed vectors are always L2-normalised
    # How the model runs (distill.models.Backend); every embedding of this model uses it.
    backend: Mapped[str] = mapped_column(String(32), default="torch", server_default="torch")
    query_prompt: Mapped[str] = mapped_column(String(256), default="")
    passage_prompt: Mapped[str] = mapped_column(String(256), default="")
    index_spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    factory: Mapped[str] = mapped_column(String(256), default="Flat")  # what the current index file holds
    generation: Mapped[int] = mapped_column(Integer, default=0)
    index_file: Mapped[str | None] = mapped_column(String(256), nullable=True)
    index_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    index_crc32: Mapped[int] = mapped_column(BigInteger, default=0)
    ntotal: Mapped[int] = mapped_column(BigInteger, default=0)
    tombstones: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DocumentRow(Base):
    __tablename__ = "xl_documents"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    ext_id: Mapped[str] = mapped_column(String(512), unique=True)
    lang: Mapped[str] = mapped_column(String(16), index=True)
    title: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    content_hash: Mapped[str] = mapped_column(String(64))  # of lang, title, text: what the vectors depend on
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChunkRow(Base):
    """A span of a document's text; its id is the vector id in every model's index."""

    __tablename__ = "xl_chunks"
    __table_args__ = (Index("ix_xl_chunks_doc", "doc_id", "position"), {"sqlite_autoincrement": True})
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    doc_id: Mapped[int] = mapped_column(Id, ForeignKey("xl_documents.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    # Copied from the document so the per-language id sets of the search filter need no join.
    lang: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default=ChunkState.PENDING.value, index=True)


class SegmentRow(Base):
    """A file of stored float16 vectors (and their chunk ids) of one model, for rebuilds."""

    __tablename__ = "xl_segments"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(Id, ForeignKey("xl_models.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(256))
    rows: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


TABLES = [t.name for t in Base.metadata.sorted_tables]


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers (the app) never block the writer and never see uncommitted data.
    # synchronous=FULL: a commit survives power loss, not only a killed process.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_read_only_connect(db_file: str):
    """A connection that never writes: `mode=ro`, or `immutable=1` where even that cannot open
    (a WAL database on read-only media, whose -shm file cannot be created)."""
    import sqlite3
    from urllib.parse import quote

    uri = f"file:{quote(db_file)}"
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30, check_same_thread=False)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        conn = sqlite3.connect(f"{uri}?immutable=1", uri=True, timeout=30, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def sqlite_file(url: str) -> str | None:
    """The database file of a SQLite URL (None for other databases and in-memory SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return parsed.database


def make_engine(url: str, read_only: bool = False) -> Engine:
    """An engine for `url`; `read_only` SQLite engines open the file read-only and never create it."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        db_file = sqlite_file(url)
        if read_only and db_file:
            # No WAL switch and no file creation: readers work on read-only media.
            return create_engine(url, creator=lambda: _sqlite_read_only_connect(db_file))
        # check_same_thread=False: the app searches from Streamlit's script threads; the pool
        # still gives each connection to one thread at a time.
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    return engine


def existing_tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) & set(TABLES)


def create_schema(engine: Engine) -> None:
    Base.metadata.create_all(engine)


def upgrade_schema(engine: Engine, *, read_only: bool = False) -> list[str]:
    """The columns a collection made by an earlier release lacks, added unless `read_only` (additive
    only, so older readers still open it; a read-only reader reads around them)."""
    missing = []
    columns = {c["name"] for c in inspect(engine).get_columns(ModelRow.__tablename__)}
    if "backend" not in columns:
        missing.append("backend")
        if not read_only:
            with engine.begin() as conn:
                conn.exec_driver_sql(
                    f"ALTER TABLE {ModelRow.__tablename__} ADD COLUMN backend VARCHAR(32) NOT NULL DEFAULT 'torch'"
                )
    return missing


def masked_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def checked_db_url(url: str, directory: Path) -> str:
    """A `--db-url` checked before anything is written: one clear error (password masked) for what
    cannot hold a collection, and a relative SQLite path made absolute against the collection
    directory (so every later command, from any directory, finds the same file)."""
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from indexer.errors import IndexerError

    try:
        parsed = make_url(url)
        dialect = parsed.get_dialect()
    except (ArgumentError, ValueError) as exc:
        raise IndexerError(
            f"--db-url {url!r} is not a database URL ({exc}); e.g. sqlite:////abs/path.db or "
            "postgresql+psycopg://user@host/db"
        ) from None
    except NoSuchModuleError:
        raise IndexerError(
            f"--db-url {masked_url(url)}: no database driver for {parsed.drivername!r}"
        ) from None
    shown = parsed.render_as_string(hide_password=True)
    try:
        getattr(dialect, "import_dbapi", getattr(dialect, "dbapi", lambda: None))()
    except ImportError as exc:
        raise IndexerError(f"--db-url {shown}: its database driver is not installed ({exc})") from None
    if parsed.get_backend_name() != "sqlite":
        return url
    db = parsed.database
    if db in (None, "", ":memory:") or db.startswith("file:") or parsed.query:
        what = (
            "SQLite URL options such as ?mode= are not supported" if parsed.query else "an in-memory database"
        )
        raise IndexerError(
            f"--db-url {shown}: {what}; a collection needs a database file, e.g. sqlite:////abs/path.db "
            "(readers open it read-only by themselves)"
        )
    file = Path(db).expanduser()
    file = file if file.is_absolute() else directory / file
    if file.exists() and not file.is_file():
        raise IndexerError(f"--db-url {shown}: {file} exists and is not a file")
    return parsed.set(database=str(file)).render_as_string(hide_password=False)


@contextmanager
def database_errors(url: str) -> Iterator[None]:
    """A database that refuses (unreachable, not a database, wrong password) is one line naming
    its URL with the password masked, never a driver traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    from indexer.errors import IndexerError

    try:
        yield
    except SQLAlchemyError as exc:
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())[:300]
        raise IndexerError(f"the database {masked_url(url)} cannot be used: {reason}") from None
