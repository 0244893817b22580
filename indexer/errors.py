"""Errors the indexer raises for conditions a user can fix; the CLI prints them without a traceback."""

from __future__ import annotations


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
