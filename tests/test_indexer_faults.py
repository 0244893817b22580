"""Fault injection: `indexer add` of a few thousand real documents, SIGKILLed at 20 random moments.

After every kill, reopening the collection (which reconciles it) must give a clean `verify`, and
every document must be either absent or fully present: the input's exact text, language and title,
and exactly the chunks a complete add produces, each in every model's index. Finishing the job
must leave exactly the input set. The kills land anywhere after the child took the write lock:
while it reconciles the previous crash, validates the file, commits documents, embeds, writes
vector segments or index files, commits them, or deletes old files. The kill test runs against
every vector store (FAISS files, Milvus Lite, a Milvus server).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session
from support.indexer import ntrex_docs, subprocess_env, write_jsonl
from support.milvus import store_args

from distill.langs import canonical_lang
from indexer import Collection
from indexer.schema import ChunkRow, DocumentRow

N_DOCS = 3000  # short NTREX sentences, ~3 chunks each with the tiny models
KILLS = 20


def _holder_pid(path: Path) -> int | None:
    try:
        return json.loads((path / "write.lock").read_text() or "{}").get("pid")
    except (OSError, ValueError):
        return None


def _documents(path: Path) -> int:
    """Committed documents, read the way any reader would while the writer runs."""
    import sqlite3

    with sqlite3.connect(f"file:{path / 'collection.db'}?mode=ro", uri=True, timeout=30) as conn:
        return conn.execute("SELECT count(*) FROM xl_documents").fetchone()[0]


def _check(path: Path, encoders: dict, expected: dict, checked: dict | None = None) -> int:
    """Reopen (reconcile), verify, and check every present document is complete; return how many.

    `checked` (ext id -> chunk spans seen complete before) spares re-chunking documents that an
    earlier round found complete; they must still be there with the same chunks."""
    with Collection.open(path, encoders=encoders, threads=1) as col:
        report = col.verify()
        assert report.ok, report.problems
        chunker = col._chunker_for()
        with Session(col.engine) as s:
            docs = {r.id: r for r in s.scalars(select(DocumentRow))}
            spans: dict[int, list[tuple[int, int]]] = {}
            for c in s.scalars(select(ChunkRow).order_by(ChunkRow.doc_id, ChunkRow.position)):
                spans.setdefault(c.doc_id, []).append((c.start, c.end))
        checked = {} if checked is None else checked
        assert set(checked) <= {row.ext_id for row in docs.values()}, "a complete document disappeared"
        for row in docs.values():
            want = expected.get(row.ext_id)
            assert want is not None, f"{row.ext_id} was never in the input"
            assert (row.lang, row.title, row.text) == (canonical_lang(want.lang), want.title, want.text)
            if row.ext_id not in checked:
                checked[row.ext_id] = [(sp.start, sp.end) for sp in chunker.chunk(row.text)]
            assert spans.get(row.id) == checked[row.ext_id], row.ext_id
        info = col.info()
        assert info["pending_chunks"] == 0
        assert all(m["vectors"] == info["chunks"] for m in info["models"])
        return len(docs)


def test_sigkill_at_random_moments_loses_nothing(
    tmp_path, shared_data, tiny_model_dir, tiny_model_dir_b, encoders, store_kind
):
    docs = ntrex_docs(shared_data, N_DOCS)
    expected = {d.id: d for d in docs}
    src = write_jsonl(tmp_path / "docs.jsonl", docs)
    path = tmp_path / "c"
    specs = [str(tiny_model_dir), str(tiny_model_dir_b)]
    with Collection.create(
        path, specs, index_type="flat", encoders=encoders, threads=1, **store_args(store_kind)
    ) as col:
        col.rebuild("hnsw", models=[specs[1]])  # one flat and one HNSW index
    cmd = [
        sys.executable,
        "-m",
        "indexer",
        "add",
        str(path),
        str(src),
        "--threads",
        "1",
        "-q",
        "--commit-every",
        "200",
    ]
    rng = random.Random(20240605)
    env = subprocess_env()
    landed, present, checked = 0, [0], {}
    for _ in range(KILLS):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        # Most kills land while documents are being added; some earlier (reconciling the previous
        # crash, validating the input, loading the models).
        while proc.poll() is None and _holder_pid(path) != proc.pid and time.monotonic() < deadline:
            time.sleep(0.01)
        if rng.random() < 0.8:
            while proc.poll() is None and _documents(path) <= present[-1] and time.monotonic() < deadline:
                time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 1.0))
        landed += proc.poll() is None
        proc.kill()
        _, err = proc.communicate(timeout=60)
        assert proc.returncode in (-9, 0), err.decode(errors="replace")[-2000:]
        present.append(_check(path, encoders, expected, checked))
    print(f"documents present after each kill: {present[1:]}")
    assert landed >= KILLS * 3 // 4, f"only {landed} of {KILLS} kills hit a running job"
    assert len(set(present)) >= 8, "too few kills came after progress: the job is too short or too slow"

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _check(path, encoders, expected) == N_DOCS
    with Collection.open(path, encoders=encoders, threads=1, read_only=True) as col:
        assert {d.id for d in col.documents()} == set(expected)
    # Vectors belong to their chunks: a chunk's text finds that chunk (model b has no prompts). Checked
    # by exact search over the stored (float16) vectors, which every rebuild and recovery starts from:
    # a tiny random model gives near-identical vectors to texts its 300 pieces cannot read, and HNSW
    # does not rank near-duplicates exactly (its top-1 missed the chunk for ~0.3% of documents).
    with Collection.open(path, encoders=encoders, threads=1) as col:
        col.rebuild("flat", models=[specs[1]])
        chunker = col._chunker_for()
        for doc in random.Random(0).sample(docs, 10):
            span = chunker.chunk(doc.text)[-1]
            hits = col.search(doc.text[span.start : span.end], model=specs[1], k=10)
            assert any(
                np.isclose(h.score, 1.0, atol=1e-3) and (h.doc_id, h.chunk_start) == (doc.id, span.start)
                for h in hits
            ), (doc.id, [(h.doc_id, h.score) for h in hits[:3]])


def test_readers_never_see_a_half_written_index(
    tmp_path, shared_data, tiny_model_dir, tiny_model_dir_b, encoders
):
    """A reader searches in a loop while another process commits new index generations every
    50 chunks (and deletes old ones): every search succeeds and sees only committed documents.

    FAISS only: Milvus Lite serves one process at a time (a reader waits for the writer; with a
    Milvus server, concurrent reads are Milvus's own business)."""
    docs = ntrex_docs(shared_data, 600)
    src = write_jsonl(tmp_path / "docs.jsonl", docs)
    path = tmp_path / "c"
    specs = [str(tiny_model_dir), str(tiny_model_dir_b)]
    Collection.create(path, specs, encoders=encoders, threads=1).close()
    cmd = [
        sys.executable,
        "-m",
        "indexer",
        "add",
        str(path),
        str(src),
        "--threads",
        "1",
        "-q",
        "--commit-every",
        "50",
    ]
    ids = {d.id for d in docs}
    seen_sizes = set()
    with Collection.open(path, read_only=True, encoders=encoders, threads=1) as reader:
        proc = subprocess.Popen(cmd, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        searches = 0
        while proc.poll() is None:
            hits = reader.search(docs[searches % len(docs)].text, model=specs[searches % 2], k=5)
            assert {h.doc_id for h in hits} <= ids
            seen_sizes.add(len(reader.search("x", model=specs[1], k=len(docs))))
            searches += 1
        _, err = proc.communicate()
        assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
        assert len(reader.search("x", model=specs[0], k=len(docs))) == len(docs)
    assert len(seen_sizes) >= 3, f"the reader saw only {sorted(seen_sizes)} documents: no commits in between?"
