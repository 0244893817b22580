"""Errors the indexer raises for conditions a user can fix; the CLI prints them without a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class IndexerError(Exception):
    """Base class: a message meant for the user (what is wrong, and what to do about it)."""


class CollectionNotFoundError(IndexerError):
    pass


class CollectionExistsError(IndexerError):
    pass


class CollectionLockedError(IndexerError):
    """Another process is writing to the collection (one writer at a time)."""


class ReadOnlyError(IndexerError):
    pass


class UnknownModelError(IndexerError):
    pass


class ModelMismatchError(IndexerError):
    """A model no longer matches what the collection recorded for it (dimension)."""


class IndexCorruptError(IndexerError):
    """An index or vector file is missing, truncated or does not match its checksum."""


class InputError(IndexerError):
    """Bad input documents in `--on-error fail` mode; nothing from the offending file was written."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class StorageError(IndexerError):
    """The file system or database refused a write (disk full, quota); committed work is intact."""


@contextmanager
def storage_errors(where: object) -> Iterator[None]:
    """Turn a full disk or a read-only file system under a write into one clear error.

    The write protocol makes any failed write harmless (the last commit stays in force), so the
    user needs one line, not a traceback."""
    import errno

    from sqlalchemy.exc import OperationalError

    after = (
        "the last commit is intact; what was written after it is not searchable and stays pending "
        "until the next writer (`indexer add`, `indexer verify --repair`) finishes or removes it"
    )
    try:
        yield
    except OSError as exc:
        target = exc.filename or where
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageError(
                f"no space left on the device writing {target}; {after}: free some space and "
                "run the command again"
            ) from None
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise ReadOnlyError(f"cannot write {target} ({exc.strerror}); {after}") from None
        raise
    except OperationalError as exc:
        text = str(exc.orig)
        if "disk is full" in text:
            raise StorageError(
                f"the database of {where} could not be written ({text}); {after}: free some "
                "space and run the command again"
            ) from None
        if "readonly database" in text:
            raise ReadOnlyError(f"the database of {where} is read-only for this user; {after}") from None
        raise
