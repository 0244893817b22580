"""The files of a collection directory, and the marker that makes a directory a collection.

`DIR/collection.json` marks a collection and names its database; it is written last by `create`,
so a directory without it is an unfinished create, which the next `create` clears, but only when
it holds no data: a collection that lost its marker is restored from its database
(`restore_marker`, run by `indexer verify --repair`), never deleted.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from indexer.errors import CollectionExistsError, CollectionNotFoundError, IndexCorruptError, ReadOnlyError
from indexer.files import atomic_write
from indexer.schema import SCHEMA_VERSION, MetaRow, existing_tables, make_engine, masked_url, utcnow

log = logging.getLogger("indexer")

COLLECTION_FILE = "collection.json"
DB_FILE = "collection.db"
INDEX_DIR = "indexes"
VECTORS_DIR = "vectors"
REJECTS_DIR = "rejects"
LOCK_FILE = "write.lock"
FORMAT = "xlsearch-collection"


def restore_marker(path: Path) -> str | None:
    """Rewrite a missing or broken marker from the SQLite database in `path`; None if it was fine."""
    from sqlalchemy.orm import Session

    if (path / COLLECTION_FILE).exists():
        try:
            read_marker(path)
            return None
        except CollectionNotFoundError:
            pass  # not a marker (e.g. `[]`): rewritten from the database below
    db = path / DB_FILE
    if not db.is_file():
        raise CollectionNotFoundError(
            f"{path} has no usable {COLLECTION_FILE} and no {DB_FILE}: nothing to restore it from (a collection on a "
            f"database server needs its {COLLECTION_FILE} with the database URL)"
        )
    engine = make_engine(f"sqlite:///{db}", read_only=True)
    try:
        with Session(engine) as s:
            uid = s.get(MetaRow, "uid") if existing_tables(engine) else None
            created = s.get(MetaRow, "created_at") if uid else None
            store = s.get(MetaRow, "vector_store") if uid else None
    except Exception as exc:
        raise IndexCorruptError(
            f"{db} cannot be read ({exc}); {COLLECTION_FILE} cannot be restored"
        ) from None
    finally:
        engine.dispose()
    if uid is None or not uid.value:
        raise CollectionNotFoundError(f"{db} holds no collection; {COLLECTION_FILE} cannot be restored")
    write_marker(path, uid.value, None, created.value if created else None, store.value if store else None)
    return f"rewrote {COLLECTION_FILE} from {DB_FILE} (collection uid {uid.value})"


def write_marker(
    path: Path,
    uid: str,
    db_url: str | None,
    created_at: str | None = None,
    vector_store: dict[str, Any] | None = None,
) -> None:
    """`vector_store`: kind and URI (never credentials: `indexer.stores` refuses URIs that carry them)."""
    marker = {
        "format": FORMAT,
        "version": SCHEMA_VERSION,
        "uid": uid,
        "db_url": db_url,
        "vector_store": vector_store or {"kind": "faiss", "uri": None},
        "created_at": created_at or utcnow().isoformat(),
    }
    atomic_write(path / COLLECTION_FILE, (json.dumps(marker, indent=2) + "\n").encode())


def read_marker(path: Path) -> dict[str, Any]:
    marker = path / COLLECTION_FILE
    if not marker.is_file():
        if (path / DB_FILE).is_file():
            raise CollectionNotFoundError(
                f"{marker} is missing, but {path / DB_FILE} holds the collection: run `indexer verify {path} --repair` "
                f"to rewrite {COLLECTION_FILE} from it (do not run `indexer create` there)"
            )
        raise CollectionNotFoundError(
            f"{path} is not a collection (no {COLLECTION_FILE}); create one with `indexer create {path} --model SPEC`"
        )
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CollectionNotFoundError(f"{marker} is unreadable ({exc})") from None
    if (
        not isinstance(info, dict)
        or not isinstance(info.get("uid"), str)
        or not isinstance(info.get("db_url"), str | None)
    ):
        raise CollectionNotFoundError(
            f'{marker} is not a collection marker (expected a JSON object with "uid" and "db_url")'
            + (
                f"; `indexer verify {path} --repair` rewrites it from {DB_FILE}"
                if (path / DB_FILE).is_file()
                else ""
            )
        )
    return info


def check_writable(path: Path, db_file: str | None) -> None:
    """A writer needs the directory and its database writable: say so in one line, up front."""
    for p in [path, path / INDEX_DIR, *([Path(db_file)] if db_file else [])]:
        if p.exists() and not os.access(p, os.W_OK):
            raise ReadOnlyError(
                f"{p} is not writable for this user, so the collection can only be read (search, info, verify and "
                "export work)"
            )


MILVUS_LITE = "milvus.db"  # the milvus store's default Milvus Lite data (a directory)
OURS = {
    DB_FILE,
    f"{DB_FILE}-wal",
    f"{DB_FILE}-shm",
    f"{DB_FILE}-journal",
    INDEX_DIR,
    VECTORS_DIR,
    LOCK_FILE,
    MILVUS_LITE,
}


def held_documents(path: Path) -> int | None:
    """Documents in the SQLite database of a collection directory (None: it cannot be read)."""
    db = path / DB_FILE
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{quote(str(db))}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error:
        return None
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "xl_documents" not in tables:
            return 0 if not tables else None
        return int(conn.execute("SELECT count(*) FROM xl_documents").fetchone()[0])
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def clear_interrupted_create(path: Path) -> None:
    """A directory left by a `create` that died before writing collection.json: remove our files,
    but only when they hold no data (a collection whose collection.json was lost is restored by
    `indexer verify --repair`, never deleted)."""
    if (path / COLLECTION_FILE).exists():
        raise CollectionExistsError(f"{path} is already a collection; open it, or delete the directory first")
    entries = {p.name for p in path.iterdir()}
    if entries - OURS:
        raise CollectionExistsError(
            f"{path} is not empty and not a collection; choose a new or empty directory"
        )
    docs = held_documents(path)
    vectors = path / VECTORS_DIR
    stored = vectors.is_dir() and any(p.is_file() for p in vectors.rglob("*"))
    if docs is None or docs or stored:
        held = (
            "a database that cannot be read"
            if docs is None
            else (f"{docs} document(s)" if docs else "stored vectors")
        )
        raise CollectionExistsError(
            f"{path} has no {COLLECTION_FILE} but holds {held}; refusing to create a collection over it. "
            f"To restore it, run `indexer verify {path} --repair` (rewrites {COLLECTION_FILE} from the database); "
            "to start over, delete the directory yourself"
        )
    for name in entries - {LOCK_FILE}:  # the lock file is held by this create
        p = path / name
        shutil.rmtree(p) if p.is_dir() else p.unlink()


def remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def undo_create(path: Path, drop_url: str | None, new_dir: bool) -> None:
    """A create failed: remove what it wrote (the directory held nothing else, see clear_interrupted_create)."""
    if drop_url:  # tables this create made in a database server
        from indexer.schema import Base

        engine = make_engine(drop_url)
        try:
            Base.metadata.drop_all(engine)
        except Exception as exc:  # the original error matters more
            log.warning(
                "could not drop the tables of the failed create from %s: %s", masked_url(drop_url), exc
            )
        finally:
            engine.dispose()
    for name in OURS | {COLLECTION_FILE}:
        p = path / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        elif p.exists() or p.is_symlink():
            p.unlink(missing_ok=True)
    if new_dir:
        remove_if_empty(path)
