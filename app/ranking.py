"""Running one query against one column's model, and how far the two columns agree."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ColumnResult:
    """What one column shows: its hits, how long the search took, or why it failed."""

    hits: list[Any] = field(default_factory=list)
    latency_ms: float = 0.0
    error: str | None = None

    @property
    def doc_ids(self) -> list[str]:
        return [str(h.doc_id) for h in self.hits]


def timed(search: Callable[[], list[Any]]) -> ColumnResult:
    """Run `search` and time it end to end (query encoding + index search + metadata look-up).

    User errors (a model that cannot be loaded, a bad filter) become a message, not a traceback.
    """
    start = time.perf_counter()
    try:
        hits = list(search())
    except Exception as exc:  # noqa: BLE001 - shown to the user in the column, with its type
        return ColumnResult(
            error=f"{type(exc).__name__}: {exc}", latency_ms=(time.perf_counter() - start) * 1000
        )
    return ColumnResult(hits=hits, latency_ms=(time.perf_counter() - start) * 1000)


@dataclass(frozen=True)
class Agreement:
    shared: int
    compared: int
    k: int
    top1_same: bool
    # rank (1-based) of a's #1 in b's ranking; None when b's list (searched to `depth`) lacks it
    a_top1_rank_in_b: int | None = None
    depth: int = 0
    names: tuple[str, str] = ("teacher", "student")

    @property
    def overlap(self) -> float:
        return self.shared / self.compared if self.compared else 0.0

    def sentence(self) -> str:
        if not self.compared:
            return "Agreement: nothing to compare (no hits)."
        top1 = "same" if self.top1_same else "different"
        a, b = self.names
        if self.a_top1_rank_in_b is not None:
            where = f"{a}'s #1 is the {b}'s #{self.a_top1_rank_in_b}"
        else:
            where = f"{a}'s #1 is not in the {b}'s top {self.depth or self.k}"
        return (
            f"Agreement: overlap@{self.k} = {self.overlap:.2f} ({self.shared} of {self.compared} documents "
            f"in both top-{self.k} lists); top-1 {top1}; {where}."
        )


def agreement(
    a: Sequence[str],
    b: Sequence[str],
    k: int,
    *,
    b_deeper: Sequence[str] | None = None,
    names: tuple[str, str] = ("teacher", "student"),
) -> Agreement:
    """overlap@k = |top-k(a) ∩ top-k(b)| / max(|top-k(a)|, |top-k(b)|), and where a's #1 sits in b.

    The denominator is k unless a language filter leaves fewer than k documents to return, in
    which case two identical short lists still agree fully (1.0, not len/k). `b_deeper` is b's
    ranking searched further than k, to find a's #1 when b's top k lacks it.
    """
    ta, tb = list(dict.fromkeys(a))[:k], list(dict.fromkeys(b))[:k]
    compared = max(len(ta), len(tb))
    shared = len(set(ta) & set(tb))
    top1 = bool(ta and tb and ta[0] == tb[0])
    ranking = list(dict.fromkeys(b_deeper)) if b_deeper is not None else tb
    rank = ranking.index(ta[0]) + 1 if ta and ta[0] in ranking else None
    return Agreement(
        shared=shared,
        compared=compared,
        k=k,
        top1_same=top1,
        a_top1_rank_in_b=rank,
        depth=len(ranking),
        names=names,
    )
