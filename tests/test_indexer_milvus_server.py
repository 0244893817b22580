"""The milvus vector store against a real Milvus server (tests/support/milvus.py): the cases only a
server has. The tests shared with FAISS and Milvus Lite run against it through `store_kind`.

Some of these stop and restart the session's server; each leaves it running again.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time

import pytest
from support.indexer import ntrex_docs, subprocess_env, write_jsonl
from support.milvus import server_client, store_args, use_server

from indexer import Collection, IndexerError
from indexer.cli import main as cli_main

pytestmark = pytest.mark.milvus_server


@pytest.fixture
def server(milvus_server, monkeypatch):
    use_server(monkeypatch, milvus_server)
    return milvus_server


def make(path, encoders, **kw) -> Collection:
    return Collection.create(
        path, list(encoders), encoders=encoders, threads=1, **store_args("milvus-server"), **kw
    )


def _documents(path) -> int:
    with sqlite3.connect(f"file:{path / 'collection.db'}?mode=ro", uri=True, timeout=30) as conn:
        return conn.execute("SELECT count(*) FROM xl_documents").fetchone()[0]


def _one_line(err: str) -> str:
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


def test_server_stopped_and_restarted_mid_add_loses_nothing(tmp_path, server, encoders, shared_data):
    """The server goes away while `indexer add` commits: the add fails in one line (or rides it out),
    and after the restart the collection reconciles, the add completes, and nothing is lost."""
    all_docs = ntrex_docs(shared_data, 1200)
    src = write_jsonl(tmp_path / "docs.jsonl", all_docs)
    path = tmp_path / "c"
    make(path, encoders, index_type="hnsw").close()
    cmd = [sys.executable, "-m", "indexer", "add", str(path), str(src), "--threads", "1", "-q"]
    proc = subprocess.Popen(
        [*cmd, "--commit-every", "100"], env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and _documents(path) < 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the add finished before the server could be stopped"
        server.stop()
        time.sleep(2)  # the add meets a dead server for a while
    finally:
        server.start()
    _, err = proc.communicate(timeout=300)
    if proc.returncode != 0:
        assert proc.returncode == 1 and "Milvus" in _one_line(err.decode())
    done = subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with Collection.open(path, encoders=encoders, threads=1) as col:
        report = col.verify()
        assert report.ok, report.problems
        assert {d.id for d in col.documents()} == {d.id for d in all_docs}
        info = col.info()
        assert info["pending_chunks"] == 0 and all(m["vectors"] == info["chunks"] for m in info["models"])
        doc = all_docs[777]  # (top-10: HNSW does not rank the tiny model's near-duplicates exactly)
        assert doc.id in {h.doc_id for h in col.search(doc.text, model=list(encoders)[1], k=10)}


def test_server_unreachable_at_search_time_is_one_clear_line(tmp_path, server, encoders, docs, capsys):
    path = tmp_path / "c"
    with make(path, encoders) as col:
        col.add(docs[:8])
    with Collection.open(path, encoders=encoders, read_only=True) as col:
        assert len(col.search("x", k=20)) == 8  # connected and loaded
        server.stop()
        try:
            start = time.monotonic()
            with pytest.raises(
                IndexerError, match=r"Milvus \(http://127\.0\.0\.1:\d+\) failed to .*unavailable"
            ) as e:
                col.search("x")
            assert "\n" not in str(e.value) and time.monotonic() - start < 60
            assert cli_main(["search", str(path), "who won?"]) == 1
            err = _one_line(capsys.readouterr().err)  # a fresh process: its first call fails
            assert err.startswith("indexer search: error: ") and server.uri in err and "unavailable" in err
        finally:
            server.start()
        assert len(col.search("x", k=20)) == 8  # the same open collection reconnects
    assert cli_main(["search", str(path), "who won?", "--json"]) == 0


def test_two_collections_share_one_server(tmp_path, server, encoders, docs):
    a, b = tmp_path / "a", tmp_path / "b"
    with make(a, encoders) as ca, make(b, encoders, index_type="hnsw") as cb:
        ca.add(docs[:16])
        cb.add(docs[16:])
        assert {h.doc_id for h in ca.search("x", k=100)} == {d.id for d in docs[:16]}
        assert {h.doc_id for h in cb.search("x", k=100)} == {d.id for d in docs[16:]}
        ca.rebuild("hnsw")  # a new Milvus collection for a; the old one dropped, b's untouched
        ca.delete([docs[0].id])
        assert len(cb.search("x", k=100)) == len(docs) - 16
    for path, n in ((a, 15), (b, len(docs) - 16)):
        with Collection.open(path, encoders=encoders) as col:  # reconcile drops only its own strays
            assert col.repairs == [] and col.verify().ok and len(col.search("x", k=100)) == n
    client = server_client()
    names = client.list_collections()
    client.close()
    for path in (a, b):
        uid = json.loads((path / "collection.json").read_text())["uid"]
        assert sum(n.startswith(f"xl_{uid[:16]}_m") for n in names) == 2  # one per model


def test_credentials_come_from_the_environment_and_never_reach_the_disk(
    tmp_path, server, tiny_model_dir, docs, capsys, monkeypatch
):
    path, corpus = tmp_path / "c", write_jsonl(tmp_path / "docs.jsonl", docs)
    create = ["create", str(path), "--model", str(tiny_model_dir), "--threads", "1", "-q"]
    server_args = ["--vector-store", "milvus", "--milvus-uri", server.uri]
    assert cli_main([*create, *server_args]) == 0
    assert cli_main(["add", str(path), str(corpus), "--threads", "1", "-q"]) == 0
    capsys.readouterr()
    assert cli_main(["search", str(path), "Wer gewann?", "--k", "3", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3
    for f in [p for p in path.rglob("*") if p.is_file()]:
        data = f.read_bytes()
        assert server.password.encode() not in data and server.token.encode() not in data, f
    assert json.loads((path / "collection.json").read_text())["vector_store"]["uri"] == server.uri

    monkeypatch.delenv("MILVUS_TOKEN")  # MILVUS_USER + MILVUS_PASSWORD work as well
    monkeypatch.setenv("MILVUS_USER", "root")
    monkeypatch.setenv("MILVUS_PASSWORD", server.password)
    assert cli_main(["search", str(path), "Wer gewann?", "--json"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("MILVUS_PASSWORD", "wrong")
    assert cli_main(["search", str(path), "Wer gewann?"]) == 1
    err = _one_line(capsys.readouterr().err)
    assert f"cannot connect to Milvus at {server.uri}" in err and server.password not in err
    monkeypatch.delenv("MILVUS_USER")
    assert cli_main([*create[:1], str(tmp_path / "d"), *create[2:], *server_args]) == 1  # no credentials
    assert "cannot connect to Milvus" in _one_line(capsys.readouterr().err)
    assert not (tmp_path / "d").exists()
