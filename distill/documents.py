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


MAX_JSON_DEPTH = 64  # arrays/objects nested deeper are refused: no input needs it, recursion breaks on it


class JsonError(ValueError):
    """Text that strict JSON refuses (`loads_strict`); the message says why, without file and line."""


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise JsonError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> float:
    raise JsonError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise JsonError(f"{text} is out of range for a number")
    return value


def json_depth(obj: object) -> int:
    """How deeply arrays and objects nest in `obj` (counted up to just past MAX_JSON_DEPTH)."""
    deepest, todo = 0, [(obj, 1)]
    while todo:
        node, depth = todo.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            if depth <= MAX_JSON_DEPTH:
                todo += [(v, depth + 1) for v in (node.values() if isinstance(node, dict) else node)]
    return deepest


def loads_strict(text: str | bytes) -> object:
    """`json.loads` that refuses what later breaks: duplicate keys (Python keeps the last silently),
    NaN/Infinity (not JSON; `json.dumps` would write invalid JSON back) and nesting deeper than
    MAX_JSON_DEPTH (a RecursionError otherwise). Raises JsonError."""
    import json

    try:
        obj = json.loads(
            text, object_pairs_hook=_unique_keys, parse_constant=_no_constant, parse_float=_finite
        )
    except RecursionError:
        raise JsonError(f"nested more than {MAX_JSON_DEPTH} levels deep") from None
    except json.JSONDecodeError as exc:
        msg = exc.msg[: -len(" at")] if exc.msg.endswith(" at") else exc.msg
        raise JsonError(f"invalid JSON ({msg} at column {exc.colno})") from None
    if json_depth(obj) > MAX_JSON_DEPTH:
        raise JsonError(f"nested more than {MAX_JSON_DEPTH} levels deep")
    return obj
