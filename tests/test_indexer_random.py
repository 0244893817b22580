"""Random operations against every vector store (FAISS, Milvus Lite, a Milvus server), checked
against a plain dict after every step.

A seeded sequence of adds, content updates, metadata-only updates, deletes, reopenings, rebuilds
and language-filtered searches. After each step the collection must hold exactly the documents
the dict holds, each findable by its own text (model b has no prompts: a chunk's own text scores
1), a language filter must return only (and up to k of) those languages, and `verify` must pass.
"""

from __future__ import annotations

import random

import pytest
from support.milvus import store_args

from distill.data import Document
from indexer import Collection

LANGS = ["de", "en", "zh", "es"]
WORDS = "cat dog bird fish tree house river stone cloud rain sun moon star road city field".split()
STEPS = 40


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + f" {rng.randrange(10**6)}."


def _check(col: Collection, model: dict[str, Document], spec: str, rng: random.Random) -> None:
    assert {d.id for d in col.documents()} == set(model)
    for d in rng.sample(sorted(model.values(), key=lambda d: d.id), min(3, len(model))):
        got = col.get(d.id)
        assert (got.lang, got.text, got.metadata) == (d.lang, d.text, d.metadata)
        hit = col.search(d.text, model=spec, k=1)[0]
        assert hit.doc_id == d.id and hit.score == pytest.approx(1.0, abs=1e-3)
    langs = rng.sample(LANGS, 2)
    hits = col.search("stone river", model=spec, k=5, langs=langs)
    wanted = [d for d in model.values() if d.lang in langs]
    assert len(hits) == min(5, len(wanted)) and {h.lang for h in hits} <= set(langs)
    assert all(m["vectors"] == col.info()["chunks"] for m in col.info()["models"])


def test_random_operations_agree_with_a_dict(tmp_path, encoders, store_kind):
    rng = random.Random(15)
    specs = list(encoders)
    path = tmp_path / "c"
    model: dict[str, Document] = {}
    col = Collection.create(
        path, specs, encoders=encoders, threads=1, **store_args(store_kind), commit_every=7
    )
    next_id = 0
    try:
        for step in range(STEPS):
            op = rng.choice(["add", "add", "update", "meta", "delete", "reopen", "rebuild"])
            ids = sorted(model)
            if op == "add" or not ids:
                new = [
                    Document(id=f"d{next_id + i}", lang=rng.choice(LANGS), text=_text(rng, 8))
                    for i in range(4)
                ]
                next_id += len(new)
                assert col.add(new).added == len(new)
                model.update({d.id: d for d in new})
            elif op == "update":
                d = model[rng.choice(ids)]
                changed = Document(id=d.id, lang=rng.choice(LANGS), text=_text(rng, 6))
                assert col.update([changed]).updated == 1
                model[d.id] = changed
            elif op == "meta":
                d = model[rng.choice(ids)]
                changed = Document(id=d.id, lang=d.lang, text=d.text, metadata={"step": step})
                assert col.add([changed]).unchanged == 1
                model[d.id] = changed
            elif op == "delete":
                victims = rng.sample(ids, min(2, len(ids)))
                assert sorted(col.delete(victims).deleted) == sorted(victims)
                for v in victims:
                    del model[v]
            elif op == "reopen":
                col.close()
                col = Collection.open(path, encoders=encoders, threads=1, commit_every=7)
                assert col.repairs == []  # nothing was left to repair
            else:
                col.rebuild(rng.choice(["flat", "hnsw"]))
            _check(col, model, specs[1], rng)
        report = col.verify()
        assert report.ok, report.problems
    finally:
        col.close()
