"""Where the app finds its collections, models and reports.

Everything is configurable by environment variable so that tests (and users) can point the app at
another collection directory or other models without editing code:

| variable | default |
|---|---|
| `XLSEARCH_COLLECTIONS` | `<data>/collections` (a directory of collections) |
| `XLSEARCH_COLLECTION` | `xquad` (the collection selected first; a name in that directory) |
| `XLSEARCH_TEACHER` | `pkg:multilingual-e5-small` (A, the multilingual assistant) |
| `XLSEARCH_STUDENT` | `<data>/students/offline-untrimmed` (the shipped `models/student-offline` untrimmed by `make demo`), else the shipped one, else `<data>/students/offline` |
| `XLSEARCH_STANDIN` | `pkg:all-MiniLM-L6-v2` (shown, labelled, while no student exists) |
| `XLSEARCH_REPORTS` | `<data>/reports` (quality reports, one folder per collection) |
| `XLSEARCH_THREADS` | `1` (torch threads for query encoding; see below) |

`<data>` is `distill.paths.data_dir()` (`$XLSEARCH_DATA` or `data/` in the repository).
One thread per query: a short query gains little from a second thread, and on a busy 2-core
machine two threads were 10-50x slower (e5: 0.25-6.5 s against 40-80 ms with one, measured while
other jobs ran). A `?collection=NAME` query parameter overrides `XLSEARCH_COLLECTION` for one browser session.

The app opens only collections inside `XLSEARCH_COLLECTIONS`, by name: never a path, `..`, a hidden
directory, or a symbolic link that leads out of it (a link in a URL must not make the server load
an arbitrary directory, or its models).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from distill import paths
from distill.datasets import ASSISTANT_SPEC, TEACHER_SPEC
from distill.paths import data_dir

DEFAULT_TEACHER = ASSISTANT_SPEC
DEFAULT_STANDIN = TEACHER_SPEC
DEFAULT_COLLECTION = "xquad"


def valid_collection_name(name: object) -> bool:
    """A single path component that names no parent or hidden directory."""
    return (
        isinstance(name, str)
        and 0 < len(name) <= 255
        and not name.startswith(".")
        and "/" not in name
        and (os.altsep is None or os.altsep not in name)
        and name.isprintable()
    )


class Column(StrEnum):
    """The two result columns."""

    TEACHER = "teacher"
    STUDENT = "student"


@dataclass(frozen=True)
class AppSettings:
    collections_dir: Path
    collection: str = DEFAULT_COLLECTION
    teacher: str = DEFAULT_TEACHER
    student: str = ""
    standin: str = DEFAULT_STANDIN
    reports_dir: Path = Path("reports")
    threads: int = 1

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> AppSettings:
        env = os.environ if environ is None else environ
        data = data_dir()
        return cls(
            collections_dir=Path(env.get("XLSEARCH_COLLECTIONS") or data / "collections"),
            collection=env.get("XLSEARCH_COLLECTION") or DEFAULT_COLLECTION,
            teacher=env.get("XLSEARCH_TEACHER") or DEFAULT_TEACHER,
            student=env.get("XLSEARCH_STUDENT") or str(paths.default_student(data)),
            standin=env.get("XLSEARCH_STANDIN") or DEFAULT_STANDIN,
            reports_dir=Path(env.get("XLSEARCH_REPORTS") or data / "reports"),
            threads=int(env.get("XLSEARCH_THREADS") or 1),
        )

    def collection_path(self, name: str) -> Path | None:
        """The directory of collection `name` inside `collections_dir`; None for anything but a plain
        name there (a path, `..`, a hidden name, control characters, a link that leaves the directory)."""
        if not valid_collection_name(name):
            return None
        path = self.collections_dir / name
        try:
            root, target = self.collections_dir.resolve(), path.resolve()
        except (OSError, RuntimeError):  # a symlink loop
            return None
        return path if target.is_relative_to(root) and target != root else None

    def report_dir(self, collection: str) -> Path:
        return self.reports_dir / Path(collection).name
