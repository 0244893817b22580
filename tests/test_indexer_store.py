"""The collection store on SQLite and on a real PostgreSQL server (started in a temp dir).

The same lifecycle runs on both: create, add, search with language filters, update, delete,
verify, rebuild, reopen from the directory alone, a failed write recovered on reopen, export.
"""

from __future__ import annotations

import io
import json

import pytest
from support.indexer import fresh_postgres_url, postgres_server, xquad_docs  # noqa: F401 - fixture

from distill.data import Document
from indexer import Collection, CollectionExistsError, CollectionNotFoundError


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request) -> str | None:
    if request.param == "sqlite":
        return None  # the default: collection.db inside the directory
    return fresh_postgres_url(request.getfixturevalue("postgres_server"))


def test_lifecycle(tmp_path, db_url, encoders, shared_data, monkeypatch):
    docs = xquad_docs(shared_data, paragraphs=range(6), langs=("en", "de", "ar", "zh"))
    specs = list(encoders)
    path = tmp_path / "c"
    with Collection.create(
        path, specs, index_type="hnsw", db_url=db_url, encoders=encoders, threads=1
    ) as col:
        backend = "postgresql" if db_url else "sqlite"
        assert col.info()["database"].startswith(backend)
        summary = col.add(docs)
        assert summary.added == len(docs) and summary.chunks > len(docs)
        hits = col.search("Wer hat gewonnen?", k=5, langs=["ar", "zh"])
        assert len(hits) == 5 and {h.lang for h in hits} <= {"ar", "zh"}
        changed = Document(id=docs[0].id, lang=docs[0].lang, title="New", text="Ein ganz neuer Text. Kurz.")
        assert col.add([changed, *docs[1:]]).updated == 1
        assert col.delete([docs[1].id, docs[2].id]).deleted == [docs[1].id, docs[2].id]
        assert col.verify().ok
        col.rebuild("flat")
        assert col.info()["models"][0]["factory"] == "Flat"

        # A write that fails half-way (documents committed, vectors not) is finished on reopen.
        from distill.models import Encoder

        def broken(self, *a, **k):
            raise RuntimeError("encoder crashed")

        monkeypatch.setattr(Encoder, "encode", broken)
        with pytest.raises(RuntimeError):
            col.add([Document(id="late", lang="en", text="A late document. It arrives after the others.")])
        monkeypatch.undo()
        assert not col.verify().ok
    # The directory alone is enough to reopen: collection.json names the database.
    with Collection.open(path, encoders=encoders, threads=1) as col:
        assert col.repairs and col.verify().ok
        assert len(col) == len(docs) - 2 + 1
        hit = col.search("Ein ganz neuer Text. Kurz.", model=specs[1], k=1)[0]
        assert (hit.doc_id, hit.title) == (docs[0].id, "New") and hit.score == pytest.approx(
            1.0, abs=2e-3
        )  # rebuilt from float16
        out = io.StringIO()
        assert col.export(out) == len(col)
        assert {json.loads(x)["id"] for x in out.getvalue().splitlines()} == {d.id for d in col.documents()}
    with Collection.open(path, read_only=True, encoders=encoders) as col:
        assert "late" in {h.doc_id for h in col.search("late document", k=20)}


def test_a_database_holds_one_collection(tmp_path, db_url, encoders):
    specs = list(encoders)
    if db_url is None:
        db_url = f"sqlite:///{tmp_path / 'shared.db'}"
    with Collection.create(tmp_path / "a", specs, db_url=db_url, encoders=encoders, threads=1):
        pass
    with pytest.raises(CollectionExistsError, match="already holds a collection"):
        Collection.create(tmp_path / "b", specs, db_url=db_url, encoders=encoders, threads=1)
    with Collection.create(tmp_path / "c", specs, encoders=encoders, threads=1):
        pass
    with pytest.raises(CollectionNotFoundError, match="belongs to another collection"):
        Collection.open(tmp_path / "c", db_url=db_url, encoders=encoders)
