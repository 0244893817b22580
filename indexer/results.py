"""What the collection's operations return: search hits, add/delete summaries, verify reports."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Hit:
    """One document found by a search, with its best-matching chunk."""

    doc_id: str  # the document's external id
    chunk_id: int
    score: float  # cosine similarity of the query and the chunk
    lang: str
    title: str
    snippet: str  # the best chunk's text
    chunk_start: int  # character span of the chunk in `text`
    chunk_end: int
    text: str | None = None  # the whole document
    metadata: dict = field(default_factory=dict)
    rank: int = 0  # 1-based
    model: str = ""

    def to_dict(self, with_text: bool = False) -> dict[str, Any]:
        d = {
            "id": self.doc_id,
            "lang": self.lang,
            "title": self.title,
            "score": round(self.score, 6),
            "snippet": self.snippet,
            "rank": self.rank,
            "chunk_id": self.chunk_id,
            "chunk_start": self.chunk_start,
            "chunk_end": self.chunk_end,
            "model": self.model,
            "metadata": self.metadata,
        }
        if with_text:
            d["text"] = self.text
        return d


@dataclass
class AddSummary:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    chunks: int = 0  # chunks embedded (per model)
    seconds: float = 0.0
    encode_seconds: dict[str, float] = field(default_factory=dict)  # per model spec
    rejects_file: str | None = None
    problems: list[str] = field(default_factory=list)  # the first rejected lines, "file:line: message"

    @property
    def documents(self) -> int:
        return self.added + self.updated + self.unchanged

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        rate = (self.added + self.updated) / self.seconds if self.seconds else 0.0
        text = (
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, {self.rejected} rejected; "
            f"{self.chunks} chunks embedded in {self.seconds:.1f} s ({rate:.1f} docs/s)"
        )
        if self.rejects_file:
            text += f"\nrejected lines written to {self.rejects_file}"
        return text


@dataclass
class DeleteSummary:
    deleted: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        text = f"{len(self.deleted)} deleted"
        if self.not_found:
            text += f"; not in the collection: {', '.join(self.not_found[:10])}" + (
                " ..." if len(self.not_found) > 10 else ""
            )
        return text


@dataclass
class VerifyReport:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": self.problems, "notes": self.notes, "stats": self.stats}
