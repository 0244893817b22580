"""Input files -> records, one per document or per bad line, never stopping at the first problem.

Formats (by extension): `.jsonl` (one object per line: `id, lang, title?, text, ...`), `.csv`
(comma-separated with a header, standard quoting, strict: a quote that is never closed is an error
at the line that opened it), `.tsv` (tab-separated with a header, no quoting, as in the shared data)
and `.txt` (the whole file is one document: id = the file name without `.txt`, so `notes.de.txt`
is `notes.de`; language from `--lang`, else from `NAME.xx.txt`). Two `.txt` files of one `add` that
would get the same id (`a/notes.txt`, `b/notes.txt`) are refused before anything is written (see
`txt_id_clashes`). Fields other than id/lang/title/text become the document's metadata.

Ids must not contain control characters; texts and titles must not contain C0 controls or DEL
(tab, newline and carriage return excepted): a NUL ends a string for SQLite's `length()` and is
refused by PostgreSQL, and the others are invisible in every listing. C1 controls (U+0080-U+009F)
are allowed in texts and titles: real text carries them as mojibake (the XQuAD demo corpus has
U+0081 and U+0097), and the CLI prints them as spaces.

Each record carries its file and line so a rejected one can be reported and written to a rejects
file; validation that needs the collection (language codes, size limit, duplicates) happens in
`validate`.
"""

from __future__ import annotations

import csv
import json
import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from distill.documents import (
    MAX_JSON_DEPTH,
    DataError,
    Document,
    JsonError,
    json_depth,
    loads_strict,
    parse_document,
)
from distill.langs import canonical_lang, is_known_lang

csv.field_size_limit(sys.maxsize)

FORMATS = (".jsonl", ".csv", ".tsv", ".txt")
MAX_ID_CHARS = 512
_RAW_KEEP = 2000  # characters of a rejected line kept in the rejects file


@dataclass
class Record:
    source: str
    line: int | None
    doc: Document | None = None
    error: str | None = None
    raw: str = ""

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}" if self.line is not None else self.source

    def reject(self, message: str) -> Record:
        self.error, self.doc = message, None
        return self

    def to_reject_json(self) -> str:
        return json.dumps(
            {"file": self.source, "line": self.line, "error": self.error, "raw": self.raw[:_RAW_KEEP]},
            ensure_ascii=False,
        )


def _message(exc: DataError) -> str:
    """The message of a DataError without its `path:line: ` prefix (we add our own)."""
    text = str(exc)
    where = f"{exc.path}:{exc.line}: " if exc.line is not None else f"{exc.path}: "
    return text[len(where) :] if text.startswith(where) else text


def read_records(path: str | Path, *, lang: str | None = None, name: str | None = None) -> Iterator[Record]:
    """Records of one input file; format by extension (see module docstring). `name`: what the
    records call their file (default the path)."""
    path = Path(path)
    source = name or str(path)
    if not path.exists():
        yield Record(source, None, error="file not found")
        return
    if path.is_dir():
        yield Record(source, None, error="is a directory, not a file (name the files in it)")
        return
    if not path.is_file():
        yield Record(source, None, error="not a regular file")
        return
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from _read_jsonl(path, source)
    elif suffix in (".csv", ".tsv"):
        yield from _read_table(path, source, delimiter="," if suffix == ".csv" else "\t")
    elif suffix == ".txt":
        yield _read_txt(path, lang, source)
    else:
        yield Record(
            source, None, error=f"unknown file type {suffix!r}; expected one of {', '.join(FORMATS)}"
        )


def _read_jsonl(path: Path, source: str) -> Iterator[Record]:
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                text = raw.decode("utf-8", errors="replace")
                yield Record(
                    source, number, error=f"invalid UTF-8 ({exc.reason} at byte {exc.start})", raw=text
                )
                continue
            if not line.strip():
                continue
            rec = Record(source, number, raw=line.rstrip("\r\n"))
            try:
                obj = loads_strict(line)
            except JsonError as exc:
                yield rec.reject(str(exc))
                continue
            if not isinstance(obj, dict):
                yield rec.reject(f"expected a JSON object, got {type(obj).__name__}")
                continue
            try:
                rec.doc = parse_document(obj, path, number)
            except DataError as exc:
                rec.reject(_message(exc))
            yield rec


def _has_bad_bytes(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _read_table(path: Path, source: str, delimiter: str) -> Iterator[Record]:
    # surrogateescape keeps undecodable bytes as lone surrogates, so one bad line is reported
    # with its line number instead of failing the whole file.
    with path.open("r", encoding="utf-8", errors="surrogateescape", newline="") as f:
        quoting = csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE
        # strict: an unterminated quote is an error, not a field that swallows the rest of the file.
        reader = csv.reader(f, delimiter=delimiter, quoting=quoting, strict=True)
        header, problem = _table_header(reader, delimiter)
        if problem is not None:
            yield Record(source, None if problem == "file is empty" else 1, error=problem)
            return
        while True:
            line = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                if "unexpected end of data" in str(exc):
                    # The reader is at the end of the file: nothing after the open quote is readable.
                    yield Record(
                        source,
                        line,
                        error="a quoted field opened on this line is never closed "
                        "(unterminated quote); the rest of the file cannot be read",
                    )
                    return
                yield Record(source, line, error=f"malformed row ({exc})")
                continue
            if any(c.strip() for c in cells):
                yield _table_row(path, source, line, header, cells, delimiter)


def _table_header(reader, delimiter: str) -> tuple[list[str], str | None]:
    """The header row of a CSV/TSV file, or why it cannot be used."""
    try:
        header = next(reader)
    except StopIteration:
        return [], "file is empty"
    except csv.Error as exc:
        return [], f"bad header ({exc})"
    if _has_bad_bytes(delimiter.join(header)):
        return header, "invalid UTF-8 in the header"
    missing = [c for c in ("id", "lang", "text") if c not in header]
    if missing:
        return header, f"header lacks column(s) {missing}; found {header}"
    return header, None


def _table_row(
    path: Path, source: str, line: int, header: list[str], cells: list[str], delimiter: str
) -> Record:
    raw = delimiter.join(cells)
    rec = Record(source, line, raw=raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
    if _has_bad_bytes(raw):
        return rec.reject("invalid UTF-8")
    if len(cells) != len(header):
        return rec.reject(f"expected {len(header)} columns, got {len(cells)}")
    try:
        rec.doc = parse_document(dict(zip(header, cells, strict=True)), path, line)
    except DataError as exc:
        rec.reject(_message(exc))
    return rec


def txt_id(path: Path) -> str:
    """The document id of a `.txt` file: its name without `.txt`."""
    return path.name[: -len(".txt")] if path.name.lower().endswith(".txt") else path.name


def txt_id_clashes(paths: Iterable[str | Path]) -> list[str]:
    """Messages for `.txt` files that would get the same id as an earlier one in `paths`."""
    first: dict[str, Path] = {}
    problems = []
    for p in map(Path, paths):
        if p.suffix.lower() != ".txt":
            continue
        doc_id = txt_id(p)
        other = first.setdefault(doc_id, p)
        if other != p and other.resolve() != p.resolve():
            problems.append(
                f"{p}: its document id {doc_id!r} is also the id of {other} (a .txt file's id is its "
                "name without .txt); rename one of them, or add them in separate commands to replace one"
            )
    return problems


def _read_txt(path: Path, lang: str | None, source: str) -> Record:
    doc_id = txt_id(path)
    parts = doc_id.split(".")
    # `name.de.txt` names its language; otherwise --lang must.
    file_lang = parts[-1] if len(parts) >= 2 and is_known_lang(parts[-1]) else None
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return Record(source, line, error=f"invalid UTF-8 ({exc.reason})")
    doc_lang = lang or file_lang
    if not doc_lang:
        return Record(source, None, error="no language: name the file NAME.xx.txt or pass --lang xx")
    if not text.strip():
        return Record(source, None, error="field 'text' is empty")
    return Record(
        source, None, doc=Document(id=doc_id, lang=doc_lang, text=text, title=doc_id), raw=text[:_RAW_KEEP]
    )


def records_from_documents(docs: Iterable[Document | dict], source: str = "<documents>") -> Iterator[Record]:
    """Records for documents given directly (the library API): `Document`s, or dicts with the fields
    of a JSONL line (`id`, `lang`, `title`?, `text`, others become metadata); `line` is the 1-based
    position."""
    for number, doc in enumerate(docs, start=1):
        if isinstance(doc, dict):
            rec = Record(source, number, raw=json.dumps(doc, ensure_ascii=False, default=str)[:_RAW_KEEP])
            try:
                rec.doc = parse_document(doc, source, number)
            except DataError as exc:
                rec.reject(_message(exc))
            yield rec
            continue
        if not isinstance(doc, Document):
            yield Record(source, number, error=f"expected a Document or a dict, got {type(doc).__name__}")
            continue
        yield Record(
            source, number, doc=doc, raw=json.dumps({"id": doc.id, "lang": doc.lang}, ensure_ascii=False)
        )


_ID_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # every C0 and C1 control, and DEL
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # tab, line breaks and C1 allowed


def _control_problem(doc: Document) -> str | None:
    for name, value, pattern in (
        ("id", doc.id, _ID_CONTROL),
        ("title", doc.title or "", _TEXT_CONTROL),
        ("text", doc.text, _TEXT_CONTROL),
    ):
        found = pattern.search(value)
        if found is not None:
            bad = found.start()
            return (
                f"field {name!r} contains the control character U+{ord(value[bad]):04X} at "
                f"character {bad + 1} (of the control characters only tab, line breaks and U+0080-U+009F are allowed in texts and titles)"
            )
    return None


def _id_or_metadata_problem(doc: Document) -> str | None:
    """Format characters in ids (U+202E prints an id reversed, U+200B makes two ids print alike),
    and metadata that JSON cannot carry back out (NaN, Infinity, absurd nesting)."""
    bad = next((ch for ch in doc.id if unicodedata.category(ch) in ("Cf", "Co", "Cs")), None)
    if bad is not None:
        return f"field 'id' contains the invisible or format character U+{ord(bad):04X}; ids must print as they are"
    if json_depth(doc.metadata) > MAX_JSON_DEPTH:
        return f"metadata nested more than {MAX_JSON_DEPTH} levels deep"
    try:
        json.dumps(doc.metadata, allow_nan=False, default=str)
    except ValueError:
        return "metadata holds NaN or Infinity, which JSON (and so export) cannot carry"
    return None


class Validator:
    """Checks that need the collection's rules: language, text size, id length, duplicates.

    Documents come out with a canonical (ISO 639-1) language code.
    """

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.seen: dict[tuple[str, str], str] = {}  # (source, id) -> where first seen

    def check(self, rec: Record) -> Record:
        if rec.error or rec.doc is None:
            return rec
        doc = rec.doc
        if not isinstance(doc.id, str) or not doc.id.strip():
            return rec.reject("empty document id")
        if len(doc.id) > MAX_ID_CHARS:
            return rec.reject(f"document id longer than {MAX_ID_CHARS} characters")
        if not isinstance(doc.text, str) or not doc.text.strip():
            return rec.reject("field 'text' is empty")
        if len(doc.text) > self.max_chars:
            return rec.reject(
                f"text has {len(doc.text):,} characters, over the limit of {self.max_chars:,} (max_chars)"
            )
        if any("\ud800" <= ch <= "\udfff" for ch in doc.text):
            return rec.reject("text contains invalid UTF-8 / lone surrogates")
        problem = _control_problem(doc) or _id_or_metadata_problem(doc)
        if problem:
            return rec.reject(problem)
        if not is_known_lang(doc.lang):
            return rec.reject(f"unknown language code {doc.lang!r}")
        key = (rec.source, doc.id)
        if key in self.seen:
            return rec.reject(f"duplicate document id {doc.id!r} (first at {self.seen[key]})")
        self.seen[key] = rec.where
        lang = canonical_lang(doc.lang)
        if lang != doc.lang:
            rec.doc = Document(
                id=doc.id, lang=lang, text=doc.text, title=doc.title or "", metadata=doc.metadata
            )
        return rec
