"""A corpus document, and how one is read from a JSON record.

The input of both the evaluation readers (`distill.data`) and the indexer, kept apart from the
training code so that the indexer can describe its input without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class DataError(ValueError):
    """Malformed input; the message names file and line."""

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        self.path, self.line = str(path), line
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Document:
    id: str
    lang: str
    text: str
    title: str = ""
    metadata: dict = field(default_factory=dict, hash=False, compare=False)


def parse_document(obj: dict, path: str | Path, line: int) -> Document:
    """One corpus record (`{"id", "lang", "title"?, "text", ...}`; other fields become metadata)."""
    extra = {k: v for k, v in obj.items() if k not in ("id", "lang", "title", "text")}
    return Document(
        id=record_field(obj, "id", path, line),
        lang=record_field(obj, "lang", path, line),
        text=record_field(obj, "text", path, line),
        title=record_field(obj, "title", path, line, required=False),
        metadata=extra,
    )


def record_field(obj: dict, name: str, path: str | Path, line: int, *, required: bool = True) -> str:
    """`obj[name]` as a string (ids may be JSON numbers), validated; "" for a missing optional field."""
    value = obj.get(name)
    if value is None:
        if required:
            raise DataError(path, line, f"missing field '{name}'")
        return ""
    # bool is an int in Python: `"id": true` would become the id "True".
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise DataError(path, line, f"field '{name}' must be a string, got {type(value).__name__}")
    value = str(value)
    if required and not value.strip():
        raise DataError(path, line, f"field '{name}' is empty")
    return value
