"""The milvus vector store on a real Milvus Lite: CLI, recovery, its quirks, careless and hostile input.

The tests shared with FAISS (API, faults, random operations, hardening) run against it through the
`store_kind` fixture; these are the cases only Milvus has.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
from support.indexer import damage_store, subprocess_env, write_jsonl

pytest.importorskip("pymilvus", reason="pymilvus not installed: pip install 'xlsearch[milvus]'")
pytest.importorskip(
    "milvus_lite", reason="milvus-lite not installed (Linux/macOS only): pip install 'xlsearch[milvus]'"
)

from indexer import Collection, IndexCorruptError, IndexerError  # noqa: E402
from indexer.cli import main as cli_main  # noqa: E402
from indexer.stores import Allowed, StoreConfig  # noqa: E402
from indexer.stores.milvus import lang_filter  # noqa: E402


def make(path, encoders, **kw) -> Collection:
    return Collection.create(path, list(encoders), encoders=encoders, threads=1, vector_store="milvus", **kw)


def test_cli_end_to_end_on_milvus_lite(tmp_path, tiny_model_dir, tiny_model_dir_b, docs, capsys, monkeypatch):
    monkeypatch.setenv("MILVUS_TOKEN", "s3cret-token")  # used for servers only, and never recorded
    path, corpus = tmp_path / "c", write_jsonl(tmp_path / "docs.jsonl", docs)
    models = ["--model", str(tiny_model_dir), "--model", str(tiny_model_dir_b)]
    assert cli_main(["create", str(path), *models, "--vector-store", "milvus", "--threads", "1", "-q"]) == 0
    assert "milvus (Milvus Lite" in capsys.readouterr().out
    marker = json.loads((path / "collection.json").read_text())
    assert marker["vector_store"] == {"kind": "milvus", "uri": None} and "s3cret" not in json.dumps(marker)
    assert cli_main(["add", str(path), str(corpus), "--threads", "1", "-q"]) == 0
    assert f"{len(docs)} added" in capsys.readouterr().out
    assert cli_main(["search", str(path), "Wer gewann?", "--lang", "en,zh", "--k", "4", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 4 and {h["lang"] for h in hits} <= {"en", "zh"}
    assert cli_main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["vector_store"] == {"kind": "milvus", "uri": str(path / "milvus.db"), "lite": True}
    assert info["documents"] == len(docs) and info["models"][0]["factory"] == "milvus FLAT"
    assert cli_main(["info", str(path)]) == 0
    assert "vector store milvus (Milvus Lite" in capsys.readouterr().out
    fixed = tmp_path / "fixed.jsonl"
    fixed.write_text(
        json.dumps({"id": docs[2].id, "lang": "en", "text": "Penguins live in the south."}) + "\n"
    )
    assert cli_main(["update", str(path), str(fixed), "-q", "--threads", "1"]) == 0
    assert "1 updated" in capsys.readouterr().out
    assert cli_main(["delete", str(path), "--id", docs[0].id, docs[1].id]) == 0
    assert "2 deleted" in capsys.readouterr().out
    assert cli_main(["rebuild", str(path), "--index-type", "hnsw", "--hnsw-m", "8", "-q"]) == 0
    assert "milvus HNSW,M=8" in capsys.readouterr().out
    assert cli_main(["rebuild", str(path), "--reembed", "-q"]) == 0
    capsys.readouterr()
    assert cli_main(["verify", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["stats"]["chunks"] == report["stats"][info["models"][0]["name"]]["vectors"]
    assert cli_main(["search", str(path), "Penguins live in the south.", "--k", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["id"] == docs[2].id


@pytest.mark.parametrize(
    "args, message",
    [
        (["--vector-store", "nope"], "unknown vector store 'nope'"),
        (["--milvus-uri", "http://h:19530"], "--milvus-uri is for --vector-store milvus"),
        (["--vector-store", "milvus", "--milvus-uri", "http://me:pw@h:19530"], "must not carry credentials"),
        (
            ["--vector-store", "milvus", "--milvus-uri", "http://h:19530/?token=x"],
            "must not carry credentials",
        ),
        (["--vector-store", "milvus", "--milvus-uri", "notes.txt"], "neither a server URL"),
        (["--vector-store", "milvus", "--milvus-uri", "http://127.0.0.1:1"], "cannot connect to Milvus"),
        (["--vector-store", "milvus", "--index-type", "ivfpq"], "ivfpq needs a Milvus server"),
        (["--vector-store", "milvus", "--index-type", "IVF4,Flat"], "not available with Milvus Lite"),
    ],
)
def test_bad_store_options_fail_in_one_line_and_leave_nothing(
    tmp_path, tiny_model_dir, capsys, args, message
):
    path = tmp_path / "c"
    assert cli_main(["create", str(path), "--model", str(tiny_model_dir), "--threads", "1", "-q", *args]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not path.exists()


def test_language_values_cannot_inject_into_the_filter_expression(tmp_path, encoders, docs):
    assert lang_filter(("de", "zh")) == 'lang in ["de", "zh"]'
    for evil in ('de"] or id >= 0 or lang in ["x', "de' or '1'='1", "de\\", "", "x" * 17, 'de"]) ||'):
        with pytest.raises(IndexerError, match="invalid language"):
            lang_filter(("en", evil))
    with make(tmp_path / "c", encoders) as col:
        col.add(docs[:8])
        with pytest.raises(IndexerError, match="unknown language"):
            col.search("x", langs=['en"] or lang != ["'])
        m = col._model(None)
        with pytest.raises(IndexerError, match="invalid language"):  # the store checks on its own too
            m.store.search(
                np.zeros((1, m.dim), np.float32), 3, allowed=Allowed(('en" or id > 0',), np.array([1]))
            )


def test_a_dropped_milvus_collection_is_reported_and_rebuilt_from_stored_vectors(tmp_path, encoders, docs):
    path = tmp_path / "c"
    with make(path, encoders) as col:
        col.add(docs)
        model = col.info()["models"][0]
    assert damage_store(path, model, "milvus") == "missing"
    with Collection.open(path, encoders=encoders, read_only=True) as col:
        assert any("is missing" in p for p in col.verify().problems)
        with pytest.raises(IndexCorruptError, match="is missing"):
            col.search("x")
    with Collection.open(path, encoders=encoders) as col:
        assert any("rebuilt from the stored vectors" in a for a in col.repairs)
        assert col.verify().ok and len(col.search("x", k=100)) == len(docs)


def test_a_crash_between_flush_and_database_commit_is_replayed_idempotently(
    tmp_path, encoders, docs, monkeypatch
):
    """Milvus has the vectors (flushed), the database never marked the chunks indexed: reopening
    writes them again under the same ids, so nothing is duplicated and nothing is lost."""
    from indexer.writer import Writer

    path = tmp_path / "c"
    with make(path, encoders) as col:
        col.add(docs[:8])

        def crash(self, *a, **k):
            raise OSError(5, "simulated crash at the commit point")

        monkeypatch.setattr(Writer, "_commit_rows", crash)
        with pytest.raises(OSError, match="simulated"):
            col.add(docs[8:])
        monkeypatch.undo()
        report = col.verify()
        assert any("pending" in p for p in report.problems)
    with Collection.open(path, encoders=encoders) as col:
        assert any("pending" in a for a in col.repairs)
        report = col.verify()
        assert report.ok, report.problems
        info = col.info()
        assert all(m["vectors"] == info["chunks"] for m in info["models"])
        assert len(col.search("x", k=100)) == len(docs)


def test_a_stray_collection_of_a_crashed_rebuild_is_dropped(tmp_path, encoders, docs):
    path = tmp_path / "c"
    with make(path, encoders) as col:
        col.add(docs[:4])
        m = col._model(None)
        with col._stores.session():
            prepared = m.store.rebuild(
                np.array([1]), np.ones((1, m.dim), np.float32), ["en"]
            )  # never committed
        stray = prepared.undo
    with Collection.open(path, encoders=encoders) as col:
        assert any("removed 1" in a for a in col.repairs)
        with col._stores.session():
            assert stray not in col._stores.milvus().client().list_collections()
        assert col.verify().ok


def test_milvus_lite_held_by_another_process_is_waited_for_then_a_clear_error(
    tmp_path, encoders, docs, monkeypatch
):
    import indexer.stores.connection as connection

    path = tmp_path / "c"
    with make(path, encoders) as col:
        col.add(docs[:4])
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from pymilvus import MilvusClient; MilvusClient({str(path / 'milvus.db')!r}); "
         "print('held', flush=True); import time; time.sleep(30)"],
        stdout=subprocess.PIPE, env=subprocess_env(), text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(connection, "LITE_WAIT", 0.5)
        with Collection.open(path, encoders=encoders, read_only=True) as col:
            start = time.monotonic()
            with pytest.raises(IndexerError, match="serves one process at a time"):
                col.search("x")
            assert time.monotonic() - start < 10
    finally:
        holder.kill()
        holder.wait()
    with Collection.open(path, encoders=encoders, read_only=True) as col:  # released: readable again
        assert len(col.search("x", k=10)) == 4


def test_without_pymilvus_the_error_says_what_to_install(tmp_path, encoders, monkeypatch):
    monkeypatch.setitem(sys.modules, "pymilvus", None)
    with pytest.raises(IndexerError, match=r"pip install 'xlsearch\[milvus\]'"):
        make(tmp_path / "c", encoders)
    assert not (tmp_path / "c").exists()
    assert StoreConfig.parse("milvus").uri is None  # parsing needs no client
