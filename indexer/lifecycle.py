"""Creating a collection (everything it writes, undone if it fails) and checking one on open."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.orm import Session

from distill.modelspec import display_name
from distill.roles import Role
from indexer.config import IndexSpec
from indexer.context import STORE_META, TRUSTED_META, CollectionContext
from indexer.errors import CollectionExistsError, CollectionNotFoundError, IndexerError, storage_errors
from indexer.layout import (
    INDEX_DIR,
    LOCK_FILE,
    clear_interrupted_create,
    remove_if_empty,
    undo_create,
    write_marker,
)
from indexer.schema import (
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
from indexer.state import ModelState
from indexer.writer import Writer

log = logging.getLogger("indexer")


def create(
    ctx: CollectionContext,
    writer: Writer,
    new_dir: bool,
    db_url: str | None,
    specs,
    chosen,
    spec: IndexSpec,
    settings,
) -> None:
    """Everything `create` writes, under the lock; a failure leaves nothing behind (and closes `ctx`)."""
    made_schema = ours = False
    lock_file = ctx.path / LOCK_FILE
    had_lock = lock_file.exists()
    try:
        with database_errors(ctx.db_url), storage_errors(ctx.path), ctx.lock, ctx.stores.session():
            clear_interrupted_create(ctx.path)  # under the lock: never while another create runs
            ours = True
            if existing_tables(ctx.engine):
                raise CollectionExistsError(
                    f"the database {masked_url(ctx.db_url)} already holds a collection (tables xl_*); use an empty database"
                )
            ctx.stores.connect()
            encs = {s: ctx.load_encoder(s, chosen[s]) for s in specs}
            for sp, enc in encs.items():  # before anything is written: a bad index type leaves nothing
                probe = ModelState(id=0, spec=sp, name=display_name(sp), dim=enc.dim)
                ctx.stores.open(probe).check_spec(spec, enc.dim)
            create_schema(ctx.engine)
            made_schema = True
            ctx.stores.uid = uid = uuid.uuid4().hex
            (ctx.path / INDEX_DIR).mkdir(exist_ok=True)
            _write_rows(ctx, uid, encs, chosen, spec, settings)
            ctx.load_state()
            for m in ctx.models.values():  # an empty first generation: always a committed store
                m.store.new_empty()
            writer.commit()
            # Last: a directory without it is an unfinished create.
            write_marker(ctx.path, uid, db_url, vector_store=ctx.stores.config.to_dict())
    except BaseException:
        if made_schema:
            _drop_remote_store(ctx)
        ctx.close()
        if ours:
            undo_create(ctx.path, ctx.db_url if made_schema and db_url else None, new_dir)
        else:  # refused someone else's directory: leave it exactly as it was, without our lock file
            if not had_lock:
                lock_file.unlink(missing_ok=True)
            if new_dir:
                remove_if_empty(ctx.path)
        raise


def _write_rows(
    ctx: CollectionContext, uid: str, encs: dict, chosen: dict, spec: IndexSpec, settings
) -> None:
    now = utcnow()
    with Session(ctx.engine) as s, s.begin():
        meta = {"schema_version": SCHEMA_VERSION, "uid": uid, "settings": settings.to_dict()}
        meta.update(created_at=now.isoformat(), last_update=None)
        meta[TRUSTED_META] = sorted(ctx.trusted)
        meta[STORE_META] = ctx.stores.config.to_dict()
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
                    query_prompt=enc.prompt(Role.QUERY), passage_prompt=enc.prompt(Role.PASSAGE),
                    index_spec=spec.to_dict(), factory="", generation=0, index_file=None,
                )
            )  # fmt: skip


def _drop_remote_store(ctx: CollectionContext) -> None:
    """A failed create: drop what it made outside the directory (a Milvus server's collections)."""
    try:
        ctx.stores.drop_remote()
    except Exception as exc:  # the original error matters more
        log.warning("could not drop the store's data of the failed create: %s", exc)


def check_and_load(ctx: CollectionContext, marker_uid: str | None) -> None:
    """The database must hold this directory's collection, in a schema this indexer reads."""
    url = masked_url(ctx.db_url)
    if not existing_tables(ctx.engine):
        raise CollectionNotFoundError(f"the database {url} of {ctx.path} holds no collection")
    with Session(ctx.engine) as s:
        uid = s.get(MetaRow, "uid")
        version = s.get(MetaRow, "schema_version")
    if uid is None or uid.value != marker_uid:
        raise CollectionNotFoundError(
            f"the database {url} belongs to another collection than {ctx.path} (uid differs)"
        )
    if version is None or version.value != SCHEMA_VERSION:
        raise IndexerError(
            f"{ctx.path} has schema version {version and version.value}; this indexer reads {SCHEMA_VERSION}"
        )
    ctx.stores.uid = uid.value
    missing = upgrade_schema(ctx.engine, read_only=ctx.read_only)
    if missing:
        where = "" if ctx.read_only else " (column added)"
        log.info("%s: predates column(s) %s: its models run on torch%s", ctx.path, ", ".join(missing), where)
        ctx.legacy_columns = set(missing) if ctx.read_only else set()
    ctx.load_state()
