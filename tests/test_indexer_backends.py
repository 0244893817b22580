"""The backend of each model is recorded in the collection and used for every embedding of it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text
from support.indexer import write_jsonl, xquad_docs

from distill.models import load_encoder
from indexer import Collection, IndexerError
from indexer.cli import main as cli_main


@pytest.fixture(scope="module")
def docs(shared_data):
    return xquad_docs(shared_data)[:12]


@pytest.fixture
def models(tiny_model_dir, tiny_model_dir_b, tmp_path) -> list[str]:
    """Private copies: ONNX files are exported beside the weights."""
    return [
        str(shutil.copytree(tiny_model_dir, tmp_path / "a")),
        str(shutil.copytree(tiny_model_dir_b, tmp_path / "b")),
    ]


def stored_vectors(col: Collection, spec: str) -> tuple[np.ndarray, np.ndarray]:
    from indexer.segments import SegmentStore

    m = col._model(spec)
    ids, vecs = zip(*SegmentStore(col.vectors_dir(m)).iter_rows([n for n, _ in m.segments]), strict=True)
    return np.concatenate(ids), np.concatenate(vecs).astype(np.float32)


def test_backend_per_model_is_recorded_and_used(tmp_path, models, docs):
    a, b = models
    path = tmp_path / "c"
    with Collection.create(path, models, threads=1, backends={a: "onnx", b: "int8"}) as col:
        assert col.model_backends() == {a: "onnx", b: "int8"}
        col.add(docs)
        assert col.encoder(a).backend == "onnx" and col.encoder(b).backend == "int8"
        assert [m["backend"] for m in col.info()["models"]] == ["onnx", "int8"]
    with Collection.open(path, read_only=True, threads=1) as col:
        assert col.encoder(a).backend == "onnx"  # from the collection, not a default
        ids, vecs = stored_vectors(col, a)
        chunks = dict(col._recovery.chunk_texts(ids))
        torch_vecs = load_encoder(a).encode([chunks[i] for i in ids.tolist()], prefix="passage")
        cos = (vecs * torch_vecs).sum(1)  # float16 storage; both sides unit length
        assert cos.min() >= 0.99
        hits = col.search(docs[0].text[:80], model=a, k=3)
        assert hits and hits[0].doc_id == docs[0].id


def test_rebuild_switches_the_backend_and_reembeds(tmp_path, models, docs):
    a, b = models
    path = tmp_path / "c"
    with Collection.create(path, models, threads=1, backends="onnx-int8") as col:
        col.add(docs)
        before = col.search(docs[3].text[:80], model=a, k=3)
    with Collection.open(path, read_only=True, threads=1) as reader:
        assert reader.encoder(a).backend == "onnx-int8"
        with Collection.open(path, threads=1) as writer:
            with pytest.raises(IndexerError, match="--reembed"):
                writer.rebuild(backend="torch")
            with pytest.raises(IndexerError, match="unknown backend 'fp16'"):
                writer.rebuild(backend="fp16", reembed=True)
            assert writer.model_backends() == {a: "onnx-int8", b: "onnx-int8"}  # nothing changed
            writer.rebuild(models=[a], reembed=True, backend="torch")
            assert writer.model_backends() == {a: "torch", b: "onnx-int8"}
            assert writer.verify().ok
        # Another process's rebuild: the reader reloads the model on the new backend.
        after = reader.search(docs[3].text[:80], model=a, k=3)
        assert reader.encoder(a).backend == "torch"
        assert [h.doc_id for h in after][:1] == [h.doc_id for h in before][:1]
        ids, vecs = stored_vectors(reader, a)
        chunks = dict(reader._recovery.chunk_texts(ids))
        exact = load_encoder(a).encode([chunks[i] for i in ids.tolist()], prefix="passage")
        assert (vecs * exact).sum(1).min() >= 0.999  # re-embedded with torch (float16 storage)


def test_bad_backend_names_fail_before_anything_is_written(tmp_path, models):
    with pytest.raises(IndexerError, match="choose from torch, int8, onnx, onnx-int8"):
        Collection.create(tmp_path / "c", models, threads=1, backends="gpu")
    with pytest.raises(IndexerError, match="not among"):
        Collection.create(tmp_path / "c", models, threads=1, backends={"pkg:other": "int8"})
    assert not (tmp_path / "c" / "collection.json").exists()


def test_a_collection_without_the_backend_column_opens_as_torch(tmp_path, models, docs):
    """Collections made before backends existed: the column is added, the models run on torch."""
    path = tmp_path / "c"
    with Collection.create(path, models[:1], threads=1) as col:
        col.add(docs[:2])
        col.engine.dispose()
    from indexer.schema import make_engine

    engine = make_engine(f"sqlite:///{path / 'collection.db'}")
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE xl_models DROP COLUMN backend"))
    engine.dispose()
    with Collection.open(path, read_only=True, threads=1) as col:  # reads around the missing column
        assert col.model_backends() == {models[0]: "torch"}
        assert col.search("x", k=1) and col.verify().ok
    with Collection.open(path, threads=1) as col:  # a writer adds it
        assert col.model_backends() == {models[0]: "torch"}
        col.rebuild(reembed=True, backend="int8")
    with Collection.open(path, read_only=True, threads=1) as col:
        assert col.model_backends() == {models[0]: "int8"}


def test_cli_backend_options(tmp_path, models, docs, capsys):
    a, b = models
    path = tmp_path / "c"
    corpus = write_jsonl(tmp_path / "docs.jsonl", docs)
    assert (
        cli_main(
            [
                "create",
                str(path),
                "--model",
                a,
                "--model",
                b,
                "--backend",
                f"{a}=onnx",
                "--backend",
                f"{Path(b).name}=int8",
                "--threads",
                "1",
                "-q",
            ]
        )
        == 0
    )
    assert "onnx)" in capsys.readouterr().out
    assert cli_main(["add", str(path), str(corpus), "--threads", "1", "-q"]) == 0
    capsys.readouterr()
    assert cli_main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "backend onnx)" in out and "backend int8)" in out
    assert cli_main(["rebuild", str(path), "--backend", "torch", "-q"]) == 1
    assert "--reembed" in capsys.readouterr().err
    assert cli_main(["rebuild", str(path), "--reembed", "--backend", "onnx-int8", "--model", b, "-q"]) == 0
    assert "backend onnx-int8" in capsys.readouterr().out
    assert cli_main(["info", str(path), "--json"]) == 0
    assert [m["backend"] for m in json.loads(capsys.readouterr().out)["models"]] == ["onnx", "onnx-int8"]
    assert (
        cli_main(["create", str(tmp_path / "d"), "--model", a, "--backend", "int8", "--backend", f"{a}=onnx"])
        == 1
    )
    assert "not both" in capsys.readouterr().err
