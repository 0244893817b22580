"""Where the app finds its collections, models and reports.

Everything is configurable by environment variable so that tests (and users) can point the app at
another collection directory or other models without editing code:

| variable | default |
|---|---|
| `XLSEARCH_COLLECTIONS` | `<data>/collections` (a directory of collections) |
| `XLSEARCH_COLLECTION` | `xquad` (the collection selected first; a name in that directory or a path) |
| `XLSEARCH_TEACHER` | `pkg:multilingual-e5-small` (A, the multilingual assistant) |
| `XLSEARCH_STUDENT` | `<data>/students/offline` (the distilled student) |
| `XLSEARCH_STANDIN` | `pkg:all-MiniLM-L6-v2` (shown, labelled, while no student exists) |
| `XLSEARCH_REPORTS` | `<data>/reports` (quality reports, one folder per collection) |
| `XLSEARCH_THREADS` | `1` (torch threads for query encoding; see below) |

`<data>` is `distill.paths.data_dir()` (`$XLSEARCH_DATA` or `data/` in the repository).
One thread per query: a short query gains little from a second thread, and on a busy 2-core
machine two threads were 10-50x slower (e5: 0.25-6.5 s against 40-80 ms with one, measured while
other jobs ran). A `?collection=NAME` query parameter overrides `XLSEARCH_COLLECTION` for one browser session.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from distill.paths import data_dir

DEFAULT_TEACHER = "pkg:multilingual-e5-small"
DEFAULT_STANDIN = "pkg:all-MiniLM-L6-v2"
DEFAULT_COLLECTION = "xquad"


class Role(StrEnum):
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
            student=env.get("XLSEARCH_STUDENT") or str(data / "students" / "offline"),
            standin=env.get("XLSEARCH_STANDIN") or DEFAULT_STANDIN,
            reports_dir=Path(env.get("XLSEARCH_REPORTS") or data / "reports"),
            threads=int(env.get("XLSEARCH_THREADS") or 1),
        )

    def collection_path(self, name: str) -> Path:
        """A collection name inside `collections_dir`, or a path given as is."""
        candidate = Path(name).expanduser()
        if candidate.is_absolute() or os.sep in name:
            return candidate
        return self.collections_dir / name

    def report_dir(self, collection: str) -> Path:
        return self.reports_dir / Path(collection).name
