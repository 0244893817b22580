"""What a text is to the model (standard library only: the config, the data readers and the
chunker use it without loading torch). `distill.models.Role` is the same enum."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What a text is to the model; models such as e5 prepend a different prompt per role.

    Use QUERY on both sides of symmetric tasks (bitext, STS): it is what e5 recommends.
    """

    QUERY = "query"
    PASSAGE = "passage"
