"""Typed settings of a collection: the FAISS index type per model and the chunking/input limits.

Both are stored in the collection's database (as JSON), so every process that opens the
collection uses the same settings.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields, replace
from enum import StrEnum
from typing import Any

from distill.chunking import CHUNK_OVERLAP, CHUNK_TOKENS

# Below this many chunks an exact (flat) index is fast enough on a laptop (a few ms per query);
# `auto` switches to HNSW above it.
AUTO_FLAT_LIMIT = 100_000


class IndexKind(StrEnum):
    AUTO = "auto"  # flat below AUTO_FLAT_LIMIT chunks, HNSW above
    FLAT = "flat"
    HNSW = "hnsw"
    IVFPQ = "ivfpq"
    FACTORY = "factory"  # any FAISS index_factory string


class OnError(StrEnum):
    FAIL = "fail"  # reject the whole file on the first bad record; nothing from it is written
    SKIP = "skip"  # write the good records, record the bad ones in a rejects file


_FACTORY_RE = re.compile(r"^[A-Za-z0-9_,.=/]+$")


@dataclass(frozen=True)
class IndexSpec:
    """How one model's vectors are indexed. Metric: inner product on L2-normalised vectors."""

    kind: IndexKind = IndexKind.FLAT
    factory: str = ""  # only for kind=factory, e.g. "IVF256,SQ8" or "HNSW16"
    hnsw_m: int = 32
    ef_construction: int = 40
    ef_search: int = 64
    nlist: int = 0  # IVF lists; 0 = chosen from the number of vectors at training time
    pq_m: int = 0  # PQ sub-quantizers; 0 = dim / 8 (the largest divisor of dim not above it)
    pq_nbits: int = 8
    nprobe: int = 16

    @classmethod
    def parse(cls, text: str | IndexSpec | None, **params: Any) -> IndexSpec:
        """`flat` | `hnsw` | `ivfpq` | `auto` | a FAISS factory string; `params` override fields."""
        if isinstance(text, IndexSpec):
            spec = text
        else:
            text = (text or "flat").strip()
            try:
                spec = cls(kind=IndexKind(text.lower()))
            except ValueError:
                if not _FACTORY_RE.match(text) or "IDMap" in text:
                    raise ValueError(
                        f"index type {text!r} is neither flat/hnsw/ivfpq/auto nor a FAISS factory string "
                        "(e.g. 'IVF256,SQ8'; without IDMap, which the indexer adds itself)"
                    ) from None
                spec = cls(kind=IndexKind.FACTORY, factory=text)
        known = {f.name for f in fields(cls)}
        unknown = set(params) - known
        if unknown:
            raise ValueError(f"unknown index parameter(s) {sorted(unknown)}; known: {sorted(known)}")
        spec = replace(spec, **{k: v for k, v in params.items() if v is not None})
        spec.validate()
        return spec

    def validate(self) -> None:
        for name in ("hnsw_m", "ef_construction", "ef_search", "pq_nbits", "nprobe"):
            if getattr(self, name) < 1:
                raise ValueError(f"index parameter {name} must be >= 1")
        if self.hnsw_m < 2:  # FAISS aborts the process on the first add with M=1
            raise ValueError("index parameter hnsw_m must be >= 2")
        if self.pq_nbits > 16:
            raise ValueError("index parameter pq_nbits must be <= 16 (training needs 2^pq_nbits vectors)")
        if self.nlist < 0 or self.pq_m < 0:
            raise ValueError("nlist and pq_m must be >= 0 (0 = automatic)")
        if self.kind == IndexKind.FACTORY and not self.factory:
            raise ValueError("a factory index needs a factory string")
        # FAISS builds these, then fails (IVF0: no list to probe) or aborts the process (HNSW0/1)
        # at the first add or search, after the collection committed them.
        if self.kind == IndexKind.FACTORY and (
            re.search(r"(?<!\d)0+(?!\d)", self.factory) or re.search(r"HNSW[01](?!\d)", self.factory)
        ):
            raise ValueError(f"index type {self.factory!r} has a size of 0 (or HNSW with M < 2)")

    def resolve(self, n: int) -> IndexKind:
        """The concrete kind for a collection of `n` chunks (`auto` -> flat or hnsw)."""
        if self.kind == IndexKind.AUTO:
            return IndexKind.HNSW if n >= AUTO_FLAT_LIMIT else IndexKind.FLAT
        return self.kind

    def factory_string(self, dim: int, n: int) -> str:
        """The FAISS factory string for `n` vectors of `dim` (IVF sizes depend on `n`)."""
        kind = self.resolve(n)
        if kind == IndexKind.FLAT:
            return "Flat"
        if kind == IndexKind.HNSW:
            return f"HNSW{self.hnsw_m}"
        if kind == IndexKind.IVFPQ:
            return f"IVF{self.ivf_lists(n)},PQ{self.pq_subquantizers(dim)}x{self.pq_nbits}"
        return self.factory

    def ivf_lists(self, n: int) -> int:
        if self.nlist:
            return self.nlist
        # ~4 sqrt(n) lists (FAISS guideline), but at least 39 training points per list.
        return max(1, min(int(4 * math.sqrt(max(n, 1))), n // 39))

    def outgrown(self, factory: str, n: int) -> bool:
        """True when an automatically sized IVF index built as `factory` has at most half the lists that
        `n` vectors call for: it was trained when the collection was small, and retraining at each
        doubling keeps the lists short for an amortised O(n) cost."""
        built = re.match(r"IVF(\d+),", factory)
        if self.nlist or not built or self.resolve(n) != IndexKind.IVFPQ:
            return False
        return self.ivf_lists(n) >= 2 * int(built.group(1))

    def pq_subquantizers(self, dim: int) -> int:
        if self.pq_m:
            if dim % self.pq_m:
                raise ValueError(f"pq_m={self.pq_m} must divide the dimension {dim}")
            return self.pq_m
        return max(m for m in range(1, max(dim // 8, 1) + 1) if dim % m == 0)

    def min_train_points(self, dim: int, n: int) -> int:
        """Vectors needed before the index can be trained (0 for indexes without training)."""
        kind = self.resolve(n)
        if kind == IndexKind.IVFPQ:
            return max(2**self.pq_nbits, self.ivf_lists(n))
        return 0

    def label(self) -> str:
        return self.factory if self.kind == IndexKind.FACTORY else self.kind.value

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kind"] = self.kind.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IndexSpec:
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        d["kind"] = IndexKind(d.get("kind", "flat"))
        return cls(**d)


@dataclass(frozen=True)
class CollectionSettings:
    """Chunking and input limits, fixed when the collection is created."""

    chunk_tokens: int = CHUNK_TOKENS  # token budget per chunk (capped by every model's max_seq_length)
    # at most this many tokens of whole trailing sentences repeat in the next chunk
    chunk_overlap: int = CHUNK_OVERLAP
    max_chars: int = 1_000_000  # longer texts are rejected as bad input
    embed_title: bool = False  # prepend the title to every chunk before embedding

    def validate(self) -> None:
        if self.chunk_tokens < 8:
            raise ValueError("chunk_tokens must be >= 8")
        if not 0 <= self.chunk_overlap < self.chunk_tokens:
            raise ValueError("chunk_overlap must be >= 0 and below chunk_tokens")
        if self.max_chars < 1:
            raise ValueError("max_chars must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CollectionSettings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
