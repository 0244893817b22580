"""The indexer on the real packaged models (slow): cross-lingual search on XQuAD paragraphs."""

from __future__ import annotations

import pytest
from support.indexer import xquad_docs

from indexer import Collection

pytestmark = pytest.mark.slow

TEACHER = "pkg:multilingual-e5-small"
STANDIN = "pkg:all-MiniLM-L6-v2"


def test_spanish_question_finds_super_bowl_paragraphs_in_other_languages(tmp_path, shared_data):
    # Paragraphs 0-4 are about Super Bowl 50, 5-9 about Warsaw.
    docs = xquad_docs(shared_data, paragraphs=range(10), langs=("en", "de", "zh", "es", "ar"))
    with Collection.create(tmp_path / "c", [TEACHER, STANDIN], threads=2) as col:
        summary = col.add(docs)
        assert summary.added == len(docs)
        info = col.info()
        assert [m["dim"] for m in info["models"]] == [384, 384] and info["pending_chunks"] == 0
        hits = col.search("¿Quién ganó el Super Bowl 50?", model=TEACHER, k=6, langs=["en", "de", "zh"])
        assert len(hits) == 6 and {h.lang for h in hits} <= {"en", "de", "zh"}
        assert all(h.title == "Super Bowl 50" for h in hits[:5]), [(h.doc_id, h.title) for h in hits]
        assert {h.lang for h in hits[:5]} == {"en", "de", "zh"}  # cross-lingual: every language is found
        hits = col.search("Wie viele Einwohner hat Warschau?", model=TEACHER, k=5, langs=["zh", "ar"])
        assert all(h.title == "Warsaw" for h in hits[:3])
        # The English stand-in finds English documents for an English query.
        hits = col.search("Which team won Super Bowl 50?", model=STANDIN, k=3, langs=["en"])
        assert all(h.title == "Super Bowl 50" for h in hits)
        assert col.verify().ok
