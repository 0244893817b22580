"""Creating a collection (everything it writes, undone if it fails) and checking one on open."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from distill.modelspec import display_name
from indexer.config import IndexSpec
from indexer.errors import CollectionExistsError, CollectionNotFoundError, IndexerError, storage_errors
from indexer.layout import (
    INDEX_DIR,
    LOCK_FILE,
    clear_interrupted_create,
    remove_if_empty,
    undo_create,
    write_marker,
)
from indexer.state import ModelState
from indexer.store import (
    SCHEMA_VERSION,
    MetaRow,
    ModelRow,
    create_schema,
    database_errors,
    existing_tables,
    masked_url,
    upgrade_schema,
    utcnow,
)
from indexer.stores import StoreKind, open_store

if TYPE_CHECKING:
    from indexer.collection import Collection

log = logging.getLogger("indexer")

TRUSTED_META = "trust_remote_code"  # xl_meta key: the specs whose own Python the user allowed at create
STORE_META = "vector_store"  # xl_meta key: StoreConfig


def create(
    col: Collection, new_dir: bool, db_url: str | None, specs, chosen, spec: IndexSpec, settings
) -> None:
    """Everything `create` writes, under the lock; a failure leaves nothing behind."""
    made_schema = ours = False
    lock_file = col.path / LOCK_FILE
    had_lock = lock_file.exists()
    try:
        with database_errors(col.db_url), storage_errors(col.path), col._lock, col._stores.session():
            clear_interrupted_create(col.path)  # under the lock: never while another create runs
            ours = True
            if existing_tables(col.engine):
                raise CollectionExistsError(
                    f"the database {masked_url(col.db_url)} already holds a collection (tables xl_*); use an empty database"
                )
            col._stores.connect()
            encs = {s: col._load_encoder(s, chosen[s]) for s in specs}
            for sp, enc in encs.items():  # before anything is written: a bad index type leaves nothing
                probe = ModelState(id=0, spec=sp, name=display_name(sp), dim=enc.dim)
                open_store(col._stores.config.kind, probe, col._stores).check_spec(spec, enc.dim)
            create_schema(col.engine)
            made_schema = True
            col._stores.uid = uid = uuid.uuid4().hex
            (col.path / INDEX_DIR).mkdir(exist_ok=True)
            _write_rows(col, uid, encs, chosen, spec, settings)
            col._load_state()
            for m in col._models.values():  # an empty first generation: always a committed store
                m.store.new_empty()
            col._writer.commit()
            # Last: a directory without it is an unfinished create.
            write_marker(col.path, uid, db_url, vector_store=col._stores.config.to_dict())
    except BaseException:
        _drop_remote_store(col, made_schema)
        col.close()
        if ours:
            undo_create(col.path, col.db_url if made_schema and db_url else None, new_dir)
        else:  # refused someone else's directory: leave it exactly as it was, without our lock file
            if not had_lock:
                lock_file.unlink(missing_ok=True)
            if new_dir:
                remove_if_empty(col.path)
        raise


def _write_rows(col: Collection, uid: str, encs: dict, chosen: dict, spec: IndexSpec, settings) -> None:
    now = utcnow()
    with Session(col.engine) as s, s.begin():
        meta = {"schema_version": SCHEMA_VERSION, "uid": uid, "settings": settings.to_dict()}
        meta.update(created_at=now.isoformat(), last_update=None)
        meta[TRUSTED_META] = sorted(col._trusted)
        meta[STORE_META] = col._stores.config.to_dict()
        s.add_all([MetaRow(key=k, value=v) for k, v in meta.items()])
        names: set[str] = set()
        for sp, enc in encs.items():
            name = display_name(sp)
            if name in names:
                name = f"{name}#{len(names) + 1}"
            names.add(name)
            s.add(
                ModelRow(
                    spec=sp, name=name, dim=enc.dim, normalize=bool(enc.normalize), backend=chosen[sp],
                    query_prompt=enc.prompt("query"), passage_prompt=enc.prompt("passage"),
                    index_spec=spec.to_dict(), factory="", generation=0, index_file=None,
                )
            )  # fmt: skip


def _drop_remote_store(col: Collection, made_schema: bool) -> None:
    """A failed create on a Milvus server: drop the Milvus collections it made (Lite's are in DIR)."""
    config = col._stores.config
    if not made_schema or config.kind != StoreKind.MILVUS or config.uri is None or not col._stores.uid:
        return
    try:
        open_store(config.kind, ModelState(id=0), col._stores).stray_files({})
    except Exception as exc:  # the original error matters more
        log.warning("could not drop the Milvus collections of the failed create: %s", exc)


def check_and_load(col: Collection, marker_uid: str | None) -> None:
    """The database must hold this directory's collection, in a schema this indexer reads."""
    url = masked_url(col.db_url)
    if not existing_tables(col.engine):
        raise CollectionNotFoundError(f"the database {url} of {col.path} holds no collection")
    with Session(col.engine) as s:
        uid = s.get(MetaRow, "uid")
        version = s.get(MetaRow, "schema_version")
    if uid is None or uid.value != marker_uid:
        raise CollectionNotFoundError(
            f"the database {url} belongs to another collection than {col.path} (uid differs)"
        )
    if version is None or version.value != SCHEMA_VERSION:
        raise IndexerError(
            f"{col.path} has schema version {version and version.value}; this indexer reads {SCHEMA_VERSION}"
        )
    col._stores.uid = uid.value
    missing = upgrade_schema(col.engine, read_only=col.read_only)
    if missing:
        where = "" if col.read_only else " (column added)"
        log.info("%s: predates column(s) %s: its models run on torch%s", col.path, ", ".join(missing), where)
        col._legacy_columns = set(missing) if col.read_only else set()
    col._load_state()
