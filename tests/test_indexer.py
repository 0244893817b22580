"""Indexer on tiny models: chunking, input parsing, the collection API, crash recovery, locks, CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support.indexer import subprocess_env, write_jsonl, xquad_docs
from support.milvus import store_args

from distill.chunking import Chunker, sentence_spans
from distill.data import Document
from indexer import (
    Collection,
    CollectionExistsError,
    CollectionLockedError,
    CollectionNotFoundError,
    CollectionSettings,
    IndexCorruptError,
    IndexerError,
    IndexSpec,
    InputError,
    ModelMismatchError,
    ReadOnlyError,
    UnknownModelError,
)
from indexer.cli import COMMANDS, build_parser
from indexer.cli import main as cli_main
from indexer.sources import Validator, read_records


@pytest.fixture(scope="session")
def encoders(tiny_model_dir, tiny_model_dir_b):
    from distill.models import load_encoder

    return {
        str(tiny_model_dir): load_encoder(tiny_model_dir, threads=1),
        str(tiny_model_dir_b): load_encoder(tiny_model_dir_b, threads=1),
    }


@pytest.fixture
def specs(tiny_model_dir, tiny_model_dir_b) -> list[str]:
    return [str(tiny_model_dir), str(tiny_model_dir_b)]


@pytest.fixture(scope="module")
def docs(shared_data) -> list[Document]:
    return xquad_docs(shared_data)  # 8 paragraphs x en, de, es, zh


def make(path: Path, specs, encoders, store_kind: str = "faiss", **kw) -> Collection:
    return Collection.create(path, specs, encoders=encoders, threads=1, **store_args(store_kind), **kw)


def reopen(path: Path, encoders, **kw) -> Collection:
    return Collection.open(path, encoders=encoders, threads=1, **kw)


# ---------------------------------------------------------------------------------------------
# chunking


def test_sentence_spans_across_scripts():
    text = 'He said "Go." Then he left!  猫坐在垫子上。狗在外面。 القطة هنا؟ नमस्ते। Last one'
    sents = [text[s.start : s.end] for s in sentence_spans(text)]
    assert sents == [
        'He said "Go."',
        "Then he left!",
        "猫坐在垫子上。",
        "狗在外面。",
        "القطة هنا؟",
        "नमस्ते।",
        "Last one",
    ]


def test_chunker_budget_overlap_and_coverage(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = " ".join(f"Sentence number {i} is about cats." for i in range(40))
    chunker = Chunker([tok], budget=100, overlap=30)  # ~27 tokens per sentence here: 3 per chunk, 1 carried
    spans = chunker.chunk(text)
    assert len(spans) > 3
    for s in spans:
        assert (
            len(tok(text[s.start : s.end], add_special_tokens=False)["input_ids"]) <= 100 + 2
        )  # sums of sentence counts
    # Every sentence is in some chunk, chunks are in order, and consecutive chunks overlap by a sentence.
    for sent in sentence_spans(text):
        assert any(c.start <= sent.start and sent.end <= c.end for c in spans)
    assert all(a.start < b.start for a, b in zip(spans, spans[1:], strict=False))
    assert all(b.start < a.end for a, b in zip(spans, spans[1:], strict=False))


def test_chunker_cuts_a_long_unpunctuated_text_into_equal_windows(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = "แมวนั่งบนเสื่อ " * 30  # Thai: no sentence punctuation
    n = len(tok(text.strip(), add_special_tokens=False)["input_ids"])
    spans = Chunker([tok], budget=50, overlap=10).chunk(text)
    assert len(spans) == -(-n // 50)
    sizes = [len(tok(text[s.start : s.end], add_special_tokens=False)["input_ids"]) for s in spans]
    assert min(sizes) >= 25 and max(sizes) <= 55  # balanced windows, no scrap at the end
    assert spans[0].start == 0 and spans[-1].end == len(text.rstrip())


# ---------------------------------------------------------------------------------------------
# settings and input files


def test_index_spec_parsing():
    assert IndexSpec.parse("flat").factory_string(384, 10) == "Flat"
    assert IndexSpec.parse("hnsw", hnsw_m=16).factory_string(384, 10) == "HNSW16"
    assert IndexSpec.parse("ivfpq", nlist=64).factory_string(384, 10_000) == "IVF64,PQ48x8"
    assert IndexSpec.parse("ivfpq").factory_string(384, 10_000) == "IVF256,PQ48x8"
    assert IndexSpec.parse("auto").factory_string(384, 200_000) == "HNSW32"
    assert IndexSpec.parse("IVF16,SQ8").factory == "IVF16,SQ8"
    # An IVF index trained on the first batch is retrained once the collection needs twice the lists.
    auto = IndexSpec.parse("ivfpq")
    assert auto.factory_string(384, 2_000) == "IVF51,PQ48x8" and not auto.outgrown("IVF51,PQ48x8", 3_000)
    assert auto.outgrown("IVF51,PQ48x8", 100_000) and not auto.outgrown("IVF1264,PQ48x8", 100_000)
    assert not IndexSpec.parse("ivfpq", nlist=51).outgrown("IVF51,PQ48x8", 100_000)  # a fixed nlist stays
    assert not IndexSpec.parse("hnsw").outgrown("HNSW32", 100_000)
    with pytest.raises(ValueError, match="IDMap"):
        IndexSpec.parse("IDMap,Flat")
    with pytest.raises(ValueError, match="unknown index parameter"):
        IndexSpec.parse("hnsw", efsearch=3)
    with pytest.raises(ValueError, match="must divide"):
        IndexSpec.parse("ivfpq", pq_m=7).factory_string(384, 10_000)


def test_jsonl_records_report_every_bad_line(tmp_path):
    path = tmp_path / "in.jsonl"
    good = {"id": "a", "lang": "de", "text": "Hallo Welt.", "source": "x"}
    path.write_bytes(
        b"\n".join(
            [
                json.dumps(good).encode(),
                b'{"id": "b", "lang": "en", "text": ',  # truncated JSON
                b'{"id": "c", "lang": "en", "text": "caf\xe9"}',  # latin-1 byte: invalid UTF-8
                b"[1, 2]",
                json.dumps({"id": "d", "lang": "en"}).encode(),
                json.dumps({"id": "e", "lang": "en", "text": "   "}).encode(),
                json.dumps({"id": "a", "lang": "de", "text": "again"}).encode(),
                json.dumps({"id": "f", "lang": "xx-klingon", "text": "Qapla'"}).encode(),
                json.dumps({"id": "g", "lang": "deu_Latn", "text": "x" * 101}).encode(),
            ]
        )
        + b"\n"
    )
    validator = Validator(max_chars=100)
    recs = [validator.check(r) for r in read_records(path)]
    by_line = {r.line: r for r in recs}
    assert by_line[1].doc.metadata == {"source": "x"} and by_line[1].error is None
    assert "invalid JSON" in by_line[2].error
    assert "invalid UTF-8" in by_line[3].error
    assert "expected a JSON object" in by_line[4].error
    assert "missing field 'text'" in by_line[5].error
    assert "'text' is empty" in by_line[6].error
    assert "duplicate document id 'a' (first at " in by_line[7].error and f"{path}:1" in by_line[7].error
    assert "unknown language code 'xx-klingon'" in by_line[8].error
    assert "over the limit of 100" in by_line[9].error
    assert all(r.where == f"{path}:{r.line}" for r in recs)


def test_csv_tsv_and_txt_inputs(tmp_path):
    csv_path = tmp_path / "docs.csv"
    csv_path.write_text(
        'id,lang,title,text,year\n1,de,T,"Ein Text, mit Komma.",2020\n2,fr,,"Un ""texte"".",\n',
        encoding="utf-8",
    )
    recs = list(read_records(csv_path))
    assert [r.doc.id for r in recs] == ["1", "2"]
    assert recs[0].doc.text == "Ein Text, mit Komma." and recs[0].doc.metadata == {"year": "2020"}
    assert recs[1].doc.text == 'Un "texte".' and recs[1].line == 3
    tsv_path = tmp_path / "docs.tsv"
    tsv_path.write_bytes(
        b'id\tlang\ttext\nx\ten\tHe said "hi".\ny\ten\tbad \xff byte\nz\ten\tonly two\textra\n'
    )
    recs = list(read_records(tsv_path))
    assert recs[0].doc.text == 'He said "hi".'
    assert recs[1].line == 3 and "invalid UTF-8" in recs[1].error
    assert recs[2].line == 4 and "expected 3 columns" in recs[2].error
    txt = tmp_path / "brief.de.txt"
    txt.write_text("Sehr geehrte Damen und Herren.", encoding="utf-8")
    (rec,) = read_records(txt)
    assert (rec.doc.id, rec.doc.lang) == ("brief.de", "de")
    (rec,) = read_records(tmp_path / "missing.jsonl")
    assert rec.error == "file not found"
    other = tmp_path / "notes.txt"
    other.write_text("text", encoding="utf-8")
    assert "no language" in next(read_records(other)).error
    assert next(read_records(other, lang="en")).doc.lang == "en"


# ---------------------------------------------------------------------------------------------
# the collection API


def test_add_search_reopen(tmp_path, specs, encoders, docs, store_kind):
    path = tmp_path / "c"
    with make(path, specs, encoders, store_kind=store_kind) as col:
        summary = col.add(docs)
        assert (summary.added, summary.updated, summary.unchanged, summary.rejected) == (len(docs), 0, 0, 0)
        assert summary.chunks > len(
            docs
        )  # the tiny models' 64-token limit forces several chunks per paragraph
        info = col.info()
        assert info["documents"] == len(docs) and info["languages"] == {"de": 8, "en": 8, "es": 8, "zh": 8}
        assert info["chunks"] == summary.chunks and info["pending_chunks"] == 0
        assert [m["vectors"] for m in info["models"]] == [summary.chunks] * 2
        assert col.models == specs
    with reopen(path, encoders, read_only=True) as col:
        assert col.verify().ok
        for model in specs:
            hits = col.search(docs[5].text[:200], model=model, k=10)
            assert len(hits) == 10
            assert len({h.doc_id for h in hits}) == 10  # each document once
            assert [h.rank for h in hits] == list(range(1, 11))
            assert all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))
            for h in hits:
                assert h.snippet == h.text[h.chunk_start : h.chunk_end] and h.snippet
                assert h.model == model
        # A chunk's own text finds that chunk first (model b has no prompts: identical vectors).
        probe = col.search("Super Bowl", model=specs[1], k=3)[2]
        again = col.search(probe.snippet, model=specs[1], k=1)[0]
        assert (again.doc_id, again.chunk_id) == (probe.doc_id, probe.chunk_id)
        assert again.score == pytest.approx(1.0, abs=1e-4)
        assert col.search("   ", k=3) == []
        with pytest.raises(UnknownModelError, match="not in this collection"):
            col.search("x", model="pkg:nope")
        with pytest.raises(ReadOnlyError):
            col.add(docs[:1])


def test_language_filter_returns_k_documents_of_those_languages(tmp_path, specs, encoders, docs, store_kind):
    with make(tmp_path / "c", specs, encoders, index_type="hnsw", store_kind=store_kind) as col:
        col.add(docs)
        for langs in (["zh"], ["de", "es"], ["deu"], ["en", "de", "zh"]):
            hits = col.search("Wer hat gewonnen?", k=6, langs=langs)
            wanted = {x if len(x) == 2 else "de" for x in langs}
            assert len(hits) == 6 and {h.lang for h in hits} <= wanted
        assert len(col.search("x", k=20, langs=["zh"])) == 8  # all of them, not fewer
        assert col.search("x", k=5, langs=["ru"]) == []
        with pytest.raises(IndexerError, match="unknown language"):
            col.search("x", langs=["klingon"])


def test_unchanged_readd_is_a_noop_and_changes_are_updates(tmp_path, specs, encoders, docs, store_kind):
    with make(tmp_path / "c", specs, encoders, store_kind=store_kind) as col:
        col.add(docs)
        before = col.info()
        again = col.add(docs)
        assert (again.added, again.updated, again.unchanged, again.chunks) == (0, 0, len(docs), 0)
        assert [m["generation"] for m in col.info()["models"]] == [m["generation"] for m in before["models"]]
        changed = Document(
            id=docs[0].id,
            lang=docs[0].lang,
            title=docs[0].title,
            text="A completely new text about penguins. It has two sentences.",
        )
        meta_only = Document(
            id=docs[1].id,
            lang=docs[1].lang,
            title=docs[1].title,
            text=docs[1].text,
            metadata={"parallel_id": "changed"},
        )
        summary = col.update([changed, meta_only])
        assert (summary.updated, summary.unchanged, summary.chunks) == (1, 1, 1)
        assert col.get(docs[1].id).metadata == {"parallel_id": "changed"}
        hit = col.search(changed.text, model=specs[1], k=1)[0]
        assert (
            hit.doc_id == docs[0].id
            and hit.snippet == changed.text
            and hit.score == pytest.approx(1.0, abs=1e-4)
        )
        info = col.info()
        assert info["documents"] == len(docs)
        assert all(m["vectors"] == info["chunks"] for m in info["models"])  # the old chunks' vectors are gone
        assert col.verify().ok
        with pytest.raises(InputError, match="not in the collection"):
            col.update([Document(id="new-id", lang="en", text="hello")])
        skipped = col.update(
            [Document(id="new-id", lang="en", text="hello")], on_error="skip", rejects=tmp_path / "rej.jsonl"
        )
        assert skipped.rejected == 1 and col.get("new-id") is None
        assert json.loads((tmp_path / "rej.jsonl").read_text())["error"].startswith(
            "document id 'new-id' is not"
        )


@pytest.mark.parametrize("index_type", ["flat", "hnsw", "ivfpq", "IVF4,Flat"])
def test_delete_rebuild_and_switch_type_without_reencoding(
    tmp_path, specs, encoders, docs, index_type, monkeypatch
):
    with make(tmp_path / "c", specs, encoders, index_type=index_type) as col:
        col.add(docs)
        info = col.info()["models"][0]
        assert info["factory"] != "Flat" or index_type == "flat"  # trained once there were enough vectors
        victims = [d.id for d in docs if d.lang == "de"][:4]
        summary = col.delete(victims + ["no-such-id"])
        assert sorted(summary.deleted) == sorted(victims) and summary.not_found == ["no-such-id"]
        report = col.verify()
        assert report.ok, report.problems
        for model in specs:
            hits = col.search("text", model=model, k=len(docs))
            assert not {h.doc_id for h in hits} & set(victims)
            assert len(hits) == len(docs) - 4
            if index_type != "ivfpq":  # exact vectors: each hit's score is the cosine of its own chunk
                enc = col.encoder(model)
                q = enc.encode(["text"], prefix="query")[0]
                chunk_vecs = enc.encode([h.snippet for h in hits], prefix="passage")
                # (atol: vectors of a rebuilt index come from the float16 store)
                assert np.allclose([h.score for h in hits], chunk_vecs @ q, atol=2e-3)  # no id drift
        m = col.info()["models"][0]
        if index_type == "flat":
            assert m["tombstones"] == 0
        else:  # HNSW cannot delete, IVF inside an id map must not: tombstones until a rebuild
            assert m["tombstones"] > 0 and any("tombstone" in n for n in report.notes)

        # Rebuilding (and switching type) uses the stored vectors: the encoders are not called.
        from distill.models import Encoder

        def no_encoding(*a, **k):
            raise AssertionError("rebuild re-encoded")

        monkeypatch.setattr(Encoder, "encode", no_encoding)
        col.rebuild()
        m = col.info()["models"][0]
        assert m["tombstones"] == 0 and m["vectors"] == col.info()["chunks"] and m["segments"] == 1
        col.rebuild("hnsw", index_params={"hnsw_m": 8})
        assert [x["factory"] for x in col.info()["models"]] == ["HNSW8", "HNSW8"]
        col.rebuild("flat", models=[specs[1]])
        assert [x["factory"] for x in col.info()["models"]] == ["HNSW8", "Flat"]
        assert col.verify().ok
        monkeypatch.undo()
        assert len(col.search("text", k=100)) == len(docs) - 4


def test_ivfpq_stands_in_flat_until_it_can_train(tmp_path, specs, encoders, docs):
    with make(tmp_path / "c", specs[:1], encoders, index_type="ivfpq") as col:
        col.add(docs[:4])
        m = col.info()["models"][0]
        assert m["factory"] == "Flat" and m["vectors"] < 256
        col.add(docs)
        m = col.info()["models"][0]
        assert m["factory"].startswith("IVF") and ",PQ4x8" in m["factory"] and m["vectors"] >= 256
        assert col.verify().ok
        hits = col.search(docs[3].text[:100], k=5, langs=["zh"])
        assert len(hits) == 5 and {h.lang for h in hits} == {"zh"}


def test_reader_sees_commits_of_a_writer(tmp_path, specs, encoders, docs, store_kind):
    path = tmp_path / "c"
    with (
        make(path, specs, encoders, store_kind=store_kind) as writer,
        reopen(path, encoders, read_only=True) as reader,
    ):
        assert reader.search("x", k=5) == []
        writer.add(docs[:10])
        assert len(reader.search("x", k=50)) == 10
        writer.delete([docs[0].id])
        assert docs[0].id not in {h.doc_id for h in reader.search("x", k=50)}


def test_failure_mid_add_leaves_a_recoverable_collection(
    tmp_path, specs, encoders, docs, monkeypatch, store_kind
):
    """The encoder fails after the documents were committed (pending): nothing is lost or half-indexed."""
    from distill.models import Encoder

    path = tmp_path / "c"
    with make(path, specs, encoders, commit_every=50, store_kind=store_kind) as col:
        col.add(docs[:8])
        real_encode = Encoder.encode
        calls = {"n": 0}

        def flaky(self, *a, **k):
            calls["n"] += 1
            if calls["n"] == 2:  # model b, after the documents were committed and model a embedded them
                raise RuntimeError("simulated out-of-memory in the encoder")
            return real_encode(self, *a, **k)

        monkeypatch.setattr(Encoder, "encode", flaky)
        with pytest.raises(RuntimeError, match="simulated"):
            col.add(docs)
        monkeypatch.undo()
        report = col.verify()
        assert not report.ok and any("pending" in p for p in report.problems)
        # Searching still works on the committed state: pending documents are just not findable yet.
        assert {h.doc_id for h in col.search("x", k=100)} <= {d.id for d in docs}
    with reopen(path, encoders) as col:  # writable open reconciles
        assert any("pending" in a for a in col.repairs)
        assert col.verify().ok
        present = {h.doc_id for h in col.search("x", k=100)}
        in_db = {d.id for d in col.documents()}
        assert present == in_db
        assert col.add(docs).added == len(docs) - len(in_db)
        assert len(col) == len(docs) and col.verify().ok


def test_corrupt_index_is_reported_and_repaired_from_stored_vectors(tmp_path, specs, encoders, docs):
    path = tmp_path / "c"
    with make(path, specs, encoders) as col:
        col.add(docs)
        index_file = path / "indexes" / col.info()["models"][0]["index_file"]
    data = index_file.read_bytes()
    index_file.write_bytes(data[: len(data) // 2])  # truncated, as by an interrupted in-place write
    with reopen(path, encoders, read_only=True) as col:
        report = col.verify()
        assert not report.ok and any("truncated" in p for p in report.problems)
        with pytest.raises(IndexCorruptError, match="truncated"):
            col.search("x", model=specs[0])
        assert col.search("x", model=specs[1], k=3)  # the other model's index is fine
    index_file.write_bytes(data[:-8] + b"\x00" * 8)  # same size, different bytes
    with reopen(path, encoders, read_only=True) as col:
        assert any("CRC-32" in p for p in col.verify().problems)
    with reopen(path, encoders) as col:
        assert any("rebuilt from the stored vectors" in a for a in col.repairs)
        assert col.verify().ok
        assert len(col.search("x", k=100, model=specs[0])) == len(docs)


def test_orphan_files_and_vectors_are_cleaned_up(tmp_path, specs, encoders, docs):
    path = tmp_path / "c"
    with make(path, specs, encoders) as col:
        col.add(docs)
    (path / "indexes" / ".m1.g000099.faiss.1234.tmp").write_bytes(b"half")
    (path / "indexes" / "m1.g000099.faiss").write_bytes(b"never committed")
    (path / "vectors" / "m1" / "seg-dead.vec.npy").write_bytes(b"x")
    with reopen(path, encoders) as col:
        assert any("removed 3" in a for a in col.repairs)
    assert not (path / "indexes" / "m1.g000099.faiss").exists()


def test_one_writer_at_a_time(tmp_path, specs, encoders, docs, store_kind):
    path = tmp_path / "c"
    with make(path, specs, encoders, store_kind=store_kind) as first:
        first.add(docs[:2])
        with first.lock():
            with reopen(path, encoders) as second:  # opens (without reconciling) while the first writes
                with pytest.raises(CollectionLockedError, match=f"process {os.getpid()}"):
                    second.add(docs[2:4])
                assert len(second.search("x", k=5)) == 2  # reading is fine
            # Another process gets a clear message and a non-zero exit.
            proc = subprocess.run(
                [sys.executable, "-m", "indexer", "delete", str(path), "--id", docs[0].id],
                capture_output=True,
                text=True,
                env=subprocess_env(),
                timeout=120,
            )
            assert proc.returncode == 1
            assert "is being written by process" in proc.stderr and "one writer at a time" in proc.stderr
        with reopen(path, encoders) as second:
            assert second.add(docs[2:4]).added == 2


def test_model_dimension_change_is_caught(tmp_path, tiny_model_dir, encoders, docs):
    from conftest import build_tiny_bert, build_tiny_tokenizer

    from distill.models import write_sentence_transformers_files

    model = tmp_path / "student"
    shutil.copytree(tiny_model_dir, model)
    path = tmp_path / "c"
    with Collection.create(path, [str(model)], threads=1) as col:
        col.add(docs[:4])
    tok = build_tiny_tokenizer()  # the "student" is retrained with another width
    bert = build_tiny_bert(tok, hidden=48, layers=2)
    bert.save_pretrained(model)
    write_sentence_transformers_files(model, dim=48, max_seq_length=64)
    with Collection.open(path, threads=1) as col:
        with pytest.raises(
            ModelMismatchError, match="48-dimensional vectors, but the collection indexed it with 32"
        ):
            col.search("x")
        with pytest.raises(ModelMismatchError, match="--reembed"):
            col.add(docs[4:6])
        assert len(col) == 4  # nothing written
        col.rebuild(reembed=True)
        assert col.info()["models"][0]["dim"] == 48 and col.verify().ok
        assert len(col.search("x", k=10)) == 4


def test_create_and_open_errors(tmp_path, specs, encoders):
    with pytest.raises(CollectionNotFoundError, match="not a collection"):
        Collection.open(tmp_path)
    with make(tmp_path / "c", specs, encoders):
        pass
    with pytest.raises(CollectionExistsError):
        make(tmp_path / "c", specs, encoders)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.tex").write_text("x")
    with pytest.raises(CollectionExistsError, match="not empty"):
        make(tmp_path / "busy", specs, encoders)
    with pytest.raises(IndexerError, match="listed twice"):
        make(tmp_path / "d", [specs[0], specs[0]], encoders)
    with pytest.raises(IndexerError, match="cannot load model"):
        Collection.create(tmp_path / "e", ["pkg:no-such-model"])
    with pytest.raises(IndexerError, match="cannot build index 'Nonsense,,'"):
        make(tmp_path / "f", specs, encoders, index_type="Nonsense,,")
    with pytest.raises(IndexerError, match="neither flat"):
        make(tmp_path / "g", specs, encoders, index_type="flat; rm -rf")


def test_title_embedding_and_long_documents(tmp_path, specs, encoders, store_kind):
    settings = CollectionSettings(chunk_tokens=40, chunk_overlap=8, embed_title=True, max_chars=5000)
    long_doc = Document(
        id="long", lang="en", title="Cats", text=" ".join(f"Cat fact number {i}." for i in range(60))
    )
    with make(tmp_path / "c", specs, encoders, settings=settings, store_kind=store_kind) as col:
        summary = col.add([long_doc])
        assert summary.chunks > 5
        hits = col.search("Cat fact number 30.", model=specs[1], k=5)
        assert len(hits) == 1 and hits[0].doc_id == "long"  # one document, however many chunks match
        with pytest.raises(InputError, match="over the limit of 5,000"):
            col.add([Document(id="huge", lang="en", text="x" * 5001)])


# ---------------------------------------------------------------------------------------------
# CLI


def test_every_command_has_help_with_an_example(capsys):
    parser = build_parser()
    for name in COMMANDS:
        with pytest.raises(SystemExit) as exc:
            parser.parse_args([name, "--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert "example" in out and f"indexer {name}" in out and "DIR" in out


def test_cli_end_to_end(tmp_path, tiny_model_dir, tiny_model_dir_b, docs, capsys):
    path = tmp_path / "c"
    corpus = write_jsonl(tmp_path / "docs.jsonl", docs)
    assert (
        cli_main(
            [
                "create",
                str(path),
                "--model",
                str(tiny_model_dir),
                "--model",
                str(tiny_model_dir_b),
                "--index-type",
                "hnsw",
                "--ef-search",
                "32",
                "--threads",
                "1",
                "-q",
            ]
        )
        == 0
    )
    assert "created" in capsys.readouterr().out
    assert cli_main(["add", str(path), str(corpus), "--threads", "1", "-q"]) == 0
    assert f"{len(docs)} added" in capsys.readouterr().out
    assert (
        cli_main(
            ["search", str(path), "Wer gewann?", "--lang", "en,zh", "--k", "4", "--json", "--threads", "1"]
        )
        == 0
    )
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 4 and {h["lang"] for h in hits} <= {"en", "zh"}
    assert all({"id", "lang", "title", "score", "snippet"} <= set(h) for h in hits)
    assert cli_main(["search", str(path), "Wer gewann?", "--k", "3", "--model", str(tiny_model_dir_b)]) == 0
    table = capsys.readouterr().out
    assert "score" in table and len(table.strip().splitlines()) == 5
    assert cli_main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["documents"] == len(docs) and info["models"][0]["index_type"] == "hnsw"
    assert cli_main(["info", str(path)]) == 0
    assert "documents    32 in 4 language(s)" in capsys.readouterr().out
    assert cli_main(["delete", str(path), "--id", docs[0].id, docs[1].id]) == 0
    assert "2 deleted" in capsys.readouterr().out
    assert cli_main(["verify", str(path)]) == 0
    assert "OK" in capsys.readouterr().out
    assert cli_main(["rebuild", str(path), "--index-type", "ivfpq", "--nlist", "4", "-q"]) == 0
    assert "IVF4,PQ4x8" in capsys.readouterr().out
    out = tmp_path / "export.jsonl"
    assert cli_main(["export", str(path), "--out", str(out)]) == 0
    exported = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert {e["id"] for e in exported} == {d.id for d in docs[2:]}
    assert exported[0]["parallel_id"] == docs[2].metadata["parallel_id"]  # metadata round-trips
    # The export is valid input: re-adding it changes nothing.
    assert cli_main(["add", str(path), str(out), "-q", "--threads", "1"]) == 0
    assert f"0 added, 0 updated, {len(docs) - 2} unchanged" in capsys.readouterr().out
    assert cli_main(["search", str(tmp_path / "nowhere"), "x"]) == 1
    assert "not a collection" in capsys.readouterr().err


BAD_INPUT = {
    "malformed JSON": (b'{"id": "b1", "lang": "en", "text": "oops"\n', "invalid JSON"),
    "invalid UTF-8": (b'{"id": "b2", "lang": "en", "text": "na\xefve"}\n', "invalid UTF-8"),
    "empty text": (b'{"id": "b3", "lang": "en", "text": ""}\n', "'text' is empty"),
    "too long": (
        json.dumps({"id": "b4", "lang": "en", "text": "y" * 3000}).encode() + b"\n",
        "over the limit",
    ),
    "duplicate id": (
        json.dumps({"id": "ok1", "lang": "en", "text": "dup"}).encode() + b"\n",
        "duplicate document id 'ok1'",
    ),
    "unknown language": (
        json.dumps({"id": "b6", "lang": "zz", "text": "hm"}).encode() + b"\n",
        "unknown language code 'zz'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_fail_writes_nothing_and_skip_records_rejects(tmp_path, tiny_model_dir, case, capsys):
    path = tmp_path / "c"
    assert (
        cli_main(
            [
                "create",
                str(path),
                "--model",
                str(tiny_model_dir),
                "--max-chars",
                "2000",
                "--threads",
                "1",
                "-q",
            ]
        )
        == 0
    )
    good = b"".join(
        json.dumps({"id": f"ok{i}", "lang": "de", "text": f"Guter Text Nummer {i}."}).encode() + b"\n"
        for i in range(1, 4)
    )
    bad, message = BAD_INPUT[case]
    src = tmp_path / "in.jsonl"
    src.write_bytes(good + bad + good.replace(b'"ok', b'"more'))
    capsys.readouterr()
    assert cli_main(["add", str(path), str(src), "--threads", "1", "-q"]) == 1
    err = capsys.readouterr().err
    assert f"{src}:4: " in err and message in err and "nothing from this file was written" in err
    with Collection.open(path, read_only=True) as col:
        assert len(col) == 0
    rejects = tmp_path / "rejects.jsonl"
    assert (
        cli_main(
            [
                "add",
                str(path),
                str(src),
                "--on-error",
                "skip",
                "--rejects",
                str(rejects),
                "--threads",
                "1",
                "-q",
            ]
        )
        == 0
    )
    assert "6 added, 0 updated, 0 unchanged, 1 rejected" in capsys.readouterr().out
    (reject,) = [json.loads(x) for x in rejects.read_text(encoding="utf-8").splitlines()]
    assert reject["file"] == str(src) and reject["line"] == 4 and message in reject["error"] and reject["raw"]
    with Collection.open(path, read_only=True) as col:
        assert len(col) == 6 and col.verify().ok


def test_fail_mode_rejects_only_the_bad_file(tmp_path, specs, encoders, docs):
    good = write_jsonl(tmp_path / "good.jsonl", docs[:5])
    bad = write_jsonl(tmp_path / "bad.jsonl", docs[5:9])
    with bad.open("a", encoding="utf-8") as f:
        f.write('{"id": "x", "lang": "en"}\n')
    with make(tmp_path / "c", specs, encoders) as col:
        with pytest.raises(InputError, match=f"{bad}: 1 bad record") as exc:
            col.add_files([good, bad])
        assert exc.value.problems == [f"{bad}:5: missing field 'text'"]
        assert {d.id for d in col.documents()} == {d.id for d in docs[:5]}
        report = col.verify()  # the good file was committed in full before the bad one was read
        assert report.ok, report.problems
