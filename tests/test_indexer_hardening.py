"""Hostile and careless use of the indexer (issue 14): every case here failed before the fix.

D1-D11 are the defects of the issue, "small" its smaller items, "own" cases found while fixing
them. Tiny random models throughout; the read-only test runs its commands without the root
capabilities that ignore file permissions (`setpriv`), or skips saying why it cannot.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support.indexer import damage_store, subprocess_env
from support.milvus import store_args

from distill.data import Document
from indexer import (
    Collection,
    CollectionExistsError,
    CollectionLockedError,
    CollectionNotFoundError,
    CollectionSettings,
    IndexerError,
    InputError,
)
from indexer import lock as lock_module
from indexer.cli import main as cli_main
from indexer.segments import SegmentStore
from indexer.sources import read_records

WORDS = (
    "cat dog bird fish tree house river stone cloud rain sun moon star road city field book song "
    "light wind snow sea hill door"
).split()


def sentence(i: int, n: int = 8) -> str:
    return " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(n)).capitalize() + f" {i}."


def docs(n: int, prefix: str = "d") -> list[Document]:
    return [Document(id=f"{prefix}{i}", lang="en", text=sentence(i), title="") for i in range(n)]


@pytest.fixture
def specs(tiny_model_dir, tiny_model_dir_b) -> list[str]:
    return [str(tiny_model_dir), str(tiny_model_dir_b)]


def make(path: Path, specs, encoders, store_kind: str = "faiss", **kw) -> Collection:
    return Collection.create(path, specs, encoders=encoders, threads=1, **store_args(store_kind), **kw)


def reopen(path: Path, encoders, **kw) -> Collection:
    return Collection.open(path, encoders=encoders, threads=1, **kw)


def one_error_line(err: str) -> str:
    """The CLI's stderr must be one `indexer CMD: error: ...` line, never a traceback."""
    assert "Traceback" not in err, err
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and ": error: " in lines[0], err
    return lines[0]


def files_under(path: Path) -> dict[str, int]:
    """Files and sizes (SQLite's -wal/-shm, which a reader may leave, aside)."""
    return {
        str(p.relative_to(path)): p.stat().st_size
        for p in sorted(path.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


# ---------------------------------------------------------------------------------------------
# D1: create over a collection whose collection.json is missing


def test_d1_create_refuses_to_delete_a_collection_without_its_marker(
    tmp_path, specs, encoders, capsys, store_kind
):
    path = tmp_path / "c"
    with make(path, specs, encoders, store_kind=store_kind) as col:
        col.add(docs(5))
    (path / "collection.json").unlink()
    with pytest.raises(CollectionNotFoundError, match=r"verify .* --repair") as exc:
        Collection.open(path, read_only=True)
    assert "indexer create" not in str(exc.value).replace("do not run `indexer create`", "")
    before = files_under(path)
    with pytest.raises(CollectionExistsError, match="holds 5 document") as exc:
        make(path, specs, encoders, store_kind=store_kind)
    assert "verify" in str(exc.value) and "--repair" in str(exc.value)
    assert files_under(path) == before  # nothing deleted
    assert cli_main(["verify", str(path), "--repair", "-q", "--threads", "1"]) == 0
    assert "rewrote collection.json" in capsys.readouterr().out
    with reopen(path, encoders, read_only=True) as col:
        assert len(col) == 5 and col.verify().ok
        assert {h.doc_id for h in col.search("cat", k=10)} == {f"d{i}" for i in range(5)}


def test_d1_an_empty_leftover_of_a_create_is_still_cleared(tmp_path, specs, encoders, store_kind):
    path = tmp_path / "c"
    make(path, specs, encoders, store_kind=store_kind).close()
    (path / "collection.json").unlink()  # as if the create died before its last step
    with make(path, specs, encoders, store_kind=store_kind) as col:
        assert len(col) == 0 and col.verify().ok


# ---------------------------------------------------------------------------------------------
# D3: a read-only collection


def _unprivileged() -> tuple[list[str] | None, str]:
    """A command prefix under which file permissions apply, or (None, why not)."""
    if os.geteuid() != 0:
        return [], "not root"
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None, "running as root and `setpriv` (util-linux) is not installed to drop CAP_DAC_OVERRIDE"
    prefix = [setpriv, "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]
    probe = subprocess.run([*prefix, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return (
            None,
            f"running as root and setpriv cannot drop capabilities here: {probe.stderr.strip()[:200]}",
        )
    return prefix, "setpriv"


def test_d3_a_read_only_collection_can_be_searched_and_writers_get_one_line(tmp_path, tiny_model_dir):
    prefix, why = _unprivileged()
    if prefix is None:
        pytest.skip(why)
    path = tmp_path / "c"
    src = tmp_path / "docs.jsonl"
    src.write_text("".join(json.dumps({"id": d.id, "lang": d.lang, "text": d.text}) + "\n" for d in docs(6)))
    assert cli_main(["create", str(path), "--model", str(tiny_model_dir), "--threads", "1", "-q"]) == 0
    assert cli_main(["add", str(path), str(src), "--threads", "1", "-q"]) == 0
    more = tmp_path / "more.jsonl"
    more.write_text(json.dumps({"id": "new", "lang": "en", "text": "A new text."}) + "\n")
    modes = {}
    for p in [path, *path.rglob("*")]:
        modes[p] = p.stat().st_mode
        p.chmod(stat.S_IMODE(modes[p]) & ~0o222)
    before = files_under(path)

    def run(*args: str) -> subprocess.CompletedProcess:
        cmd = [*prefix, sys.executable, "-m", "indexer", *args, "--threads", "1"]
        return subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=300)

    try:
        search = run("search", str(path), "cat", "--json")
        assert search.returncode == 0, search.stderr
        assert {h["id"] for h in json.loads(search.stdout)} <= {f"d{i}" for i in range(6)}
        assert run("info", str(path)).returncode == 0
        verify = run("verify", str(path))
        assert verify.returncode == 0 and "OK" in verify.stdout, verify.stdout + verify.stderr
        for args in (("add", str(path), str(more), "-q"), ("delete", str(path), "--id", "d1")):
            proc = run(*args)
            assert proc.returncode == 1
            assert "not writable" in one_error_line(proc.stderr)
        assert files_under(path) == before
    finally:
        for p, mode in modes.items():
            p.chmod(stat.S_IMODE(mode))


def test_small_a_read_only_open_never_creates_a_database(tmp_path, specs, encoders, store_kind):
    path = tmp_path / "c"
    make(path, specs, encoders, store_kind=store_kind).close()
    (path / "collection.db").unlink()
    for read_only in (True, False):
        with pytest.raises(CollectionNotFoundError, match="collection.db .* is missing"):
            Collection.open(path, read_only=read_only)
        assert not (path / "collection.db").exists()


# ---------------------------------------------------------------------------------------------
# D4: corrupted vector segments


def _zero_segments(path: Path) -> None:
    for seg in (path / "vectors").rglob("*.vec.npy"):
        data = bytearray(seg.read_bytes())
        data[128:] = bytes(len(data) - 128)  # the header stays: same size, same shape
        seg.write_bytes(bytes(data))


def test_d4_a_zeroed_segment_fails_verify_and_rebuild_reembeds_it(tmp_path, specs, encoders, store_kind):
    path = tmp_path / "c"
    corpus = docs(12)
    with make(path, specs, encoders, store_kind=store_kind) as col:
        col.add(corpus)
    _zero_segments(path)
    with reopen(path, encoders, read_only=True) as col:
        report = col.verify()
        assert not report.ok
        assert (
            sum("does not match the one recorded at commit" in p for p in report.problems) == 2
        )  # both models
    with reopen(path, encoders, reconcile=False) as col:
        col.rebuild()
        assert col.verify().ok
        for d in corpus[:4]:  # model b has no prompts: a document's own text scores 1
            hit = col.search(d.text, model=specs[1], k=1)[0]
            assert hit.doc_id == d.id and np.isclose(hit.score, 1.0, atol=1e-3)


def test_d4_repair_reembeds_a_zeroed_segment_and_verify_reports_index_and_segment(
    tmp_path, specs, encoders, store_kind
):
    path = tmp_path / "c"
    with make(path, specs, encoders, store_kind=store_kind) as col:
        col.add(docs(8))
        model = col.info()["models"][0]
    _zero_segments(path)
    word = damage_store(path, model, store_kind)  # and a truncated index (or a dropped Milvus collection)
    with reopen(path, encoders, read_only=True) as col:
        problems = col.verify().problems
    assert any(word in p for p in problems)
    assert sum("CRC-32" in p for p in problems) == 2  # verify goes on past the broken index
    with reopen(path, encoders) as col:  # reconcile
        assert col.verify().ok
        d = docs(8)[3]
        assert np.isclose(col.search(d.text, model=specs[1], k=1)[0].score, 1.0, atol=1e-3)


def test_d4_segments_from_before_checksums_are_checked_by_their_norms(tmp_path):
    from indexer.errors import IndexCorruptError

    store = SegmentStore(tmp_path)
    vecs = np.random.default_rng(0).normal(size=(5, 8))
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    name = "seg-0123456789ab"  # the old naming, without checksums
    np.save(store.vec_path(name), vecs.astype(np.float16))
    np.save(store.ids_path(name), np.arange(5))
    store.check(name, 5, 8)
    data = bytearray(store.vec_path(name).read_bytes())
    data[128:] = bytes(len(data) - 128)
    store.vec_path(name).write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="norm"):
        store.check(name, 5, 8)


# ---------------------------------------------------------------------------------------------
# D5: CSV with an unterminated quote


def test_d5_an_unterminated_csv_quote_is_an_error_at_its_line(tmp_path, tiny_model_dir, capsys):
    path = tmp_path / "c"
    assert cli_main(["create", str(path), "--model", str(tiny_model_dir), "--threads", "1", "-q"]) == 0
    bad = tmp_path / "bad.csv"
    bad.write_text('id,lang,text\nq1,en,"unterminated\nq2,en,fine\n', encoding="utf-8")
    capsys.readouterr()
    assert cli_main(["add", str(path), str(bad), "--threads", "1", "-q"]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:2: " in err and "never closed" in err
    assert (
        cli_main(
            [
                "add",
                str(path),
                str(bad),
                "--on-error",
                "skip",
                "--threads",
                "1",
                "-q",
                "--rejects",
                str(tmp_path / "rej.jsonl"),
            ]
        )
        == 0
    )
    assert "0 added, 0 updated, 0 unchanged, 1 rejected" in capsys.readouterr().out
    with Collection.open(path, read_only=True) as col:
        assert len(col) == 0
    good = tmp_path / "good.csv"  # a quoted field may still span lines
    good.write_text('id,lang,text\nq1,en,"two\nlines"\nq2,en,fine\n', encoding="utf-8")
    assert [r.doc.text for r in read_records(good)] == ["two\nlines", "fine"]


# ---------------------------------------------------------------------------------------------
# D6: .txt files whose ids collide


def test_d6_txt_files_get_distinct_ids_or_a_refusal_naming_both(tmp_path, specs, encoders, store_kind):
    (tmp_path / "d1").mkdir()
    (tmp_path / "d2").mkdir()
    a, b = tmp_path / "d1" / "notes.txt", tmp_path / "d2" / "notes.txt"
    a.write_text("First notes.", encoding="utf-8")
    b.write_text("Second notes.", encoding="utf-8")
    v1, v2 = tmp_path / "report.v1.txt", tmp_path / "report.v2.txt"
    v1.write_text("Version one.", encoding="utf-8")
    v2.write_text("Version two.", encoding="utf-8")
    with make(tmp_path / "c", specs, encoders, store_kind=store_kind) as col:
        for mode in ("fail", "skip"):
            with pytest.raises(InputError, match="also the id of") as exc:
                col.add_files([a, b], lang="en", on_error=mode)
            assert str(a) in str(exc.value) and str(b) in str(exc.value)
            assert len(col) == 0
        summary = col.add_files([v1, v2], lang="en")
        assert (summary.added, summary.updated) == (2, 0)
        assert {d.id for d in col.documents()} == {"report.v1", "report.v2"}


# ---------------------------------------------------------------------------------------------
# D7: control characters


def test_d7_control_characters_are_rejected_with_file_and_line(tmp_path, specs, encoders, store_kind):
    src = tmp_path / "in.jsonl"
    lines = [
        {"id": "ok", "lang": "en", "text": "tab\tand\nnew line are fine"},
        {"id": "nul", "lang": "en", "text": "a \u0000 b"},
        {"id": "esc", "lang": "en", "title": "\u001b[31mred", "text": "x"},
        {"id": "line\nbreak", "lang": "en", "text": "x"},
    ]
    src.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    with make(tmp_path / "c", specs, encoders, store_kind=store_kind) as col:
        with pytest.raises(InputError) as exc:
            col.add_files([src])
        assert [p.split(": ")[0] for p in exc.value.problems] == [f"{src}:2", f"{src}:3", f"{src}:4"]
        assert "U+0000" in exc.value.problems[0] and "U+001B" in exc.value.problems[1]
        summary = col.add_files([src], on_error="skip", rejects=tmp_path / "rej.jsonl")
        assert (summary.added, summary.rejected) == (1, 3)
        assert col.verify().ok


def test_d7_c1_controls_in_real_text_are_indexed_and_printed_as_spaces(tmp_path, specs, encoders, capsys):
    """The XQuAD demo corpus carries U+0081 and U+0097 (mojibake): `make demo` must index it. Ids
    still refuse them, and the CLI never writes a C1 control (U+009B is CSI) to the terminal."""
    from indexer.cli import main as indexer_main

    src = tmp_path / "in.jsonl"
    lines = [
        {"id": "moji", "lang": "en", "title": "Caf\u00c3\u0081", "text": "a \u0081 b \u0097 c \u009b31m red"},
        {"id": "bad\u0085id", "lang": "en", "text": "x"},
    ]
    src.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    with make(tmp_path / "c", specs, encoders) as col:
        with pytest.raises(InputError) as exc:
            col.add_files([src])
        assert [p.split(": ")[0] for p in exc.value.problems] == [
            f"{src}:2"
        ] and "U+0085" in exc.value.problems[0]
        assert col.add_files([src], on_error="skip", rejects=tmp_path / "r.jsonl").added == 1
        assert col.get("moji").text == lines[0]["text"]  # stored as given
    capsys.readouterr()
    assert indexer_main(["search", str(tmp_path / "c"), "red", "--k", "1"]) == 0
    out = capsys.readouterr().out
    assert "moji" in out and not any("\x80" <= ch <= "\x9f" for ch in out)


# ---------------------------------------------------------------------------------------------
# D8, D9: index parameters that FAISS cannot build (now, or once the collection grows)


@pytest.mark.parametrize("index_type", ["IVF0,Garbage", "IVF0,Flat", "HNSW1"])
def test_d8_a_bad_index_type_fails_create_and_leaves_nothing(tmp_path, specs, encoders, index_type):
    path = tmp_path / "c"
    with pytest.raises(IndexerError):
        make(path, specs, encoders, index_type=index_type)
    assert not path.exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(IndexerError):
        make(tmp_path / "empty", specs, encoders, index_type=index_type)
    assert list((tmp_path / "empty").iterdir()) == []
    with make(path, specs, encoders) as col:  # the directory is usable at once
        assert col.verify().ok


def test_d9_index_parameters_are_checked_against_the_dimension(tmp_path, specs, encoders):
    with pytest.raises(IndexerError, match="must divide the dimension 32"):
        make(tmp_path / "x", specs, encoders, index_type="ivfpq", index_params={"pq_m": 7})
    assert not (tmp_path / "x").exists()
    path = tmp_path / "c"
    with make(path, specs, encoders) as col:
        col.add(docs(20))
        with pytest.raises(IndexerError, match="must divide the dimension 32"):
            col.rebuild("ivfpq", index_params={"pq_m": 7})
        assert [m["index_type"] for m in col.info()["models"]] == ["flat", "flat"]
        with pytest.raises(IndexerError, match="pq_nbits must be <= 16"):
            col.rebuild("ivfpq", index_params={"pq_nbits": 30})
        col.add(docs(300, prefix="more"))  # past 256 chunks: nothing was switched to train
        assert col.verify().ok


# ---------------------------------------------------------------------------------------------
# D10: the lock cannot be bypassed


def test_d10_deleting_write_lock_does_not_let_a_second_writer_in(tmp_path, specs, encoders, store_kind):
    path = tmp_path / "c"
    with make(path, specs, encoders, store_kind=store_kind) as first:
        first.add(docs(2))
        with first.lock():
            (path / "write.lock").unlink()
            with reopen(path, encoders) as second:
                with pytest.raises(CollectionLockedError, match="one writer at a time"):
                    second.add(docs(4, prefix="x"))
            proc = subprocess.run(
                [sys.executable, "-m", "indexer", "delete", str(path), "--id", "d0"],
                capture_output=True,
                text=True,
                env=subprocess_env(),
                timeout=120,
            )
            assert proc.returncode == 1 and "one writer at a time" in proc.stderr
            first.add(docs(3))
        assert len(first) == 3


# ---------------------------------------------------------------------------------------------
# D11: a long title with embed_title


def test_d11_a_long_title_takes_a_bounded_share_of_each_chunk(
    tmp_path, tiny_model_dir_b, encoders, caplog, store_kind
):
    spec = str(tiny_model_dir_b)
    rng = np.random.default_rng(0)
    title = " ".join(rng.choice(WORDS, 400))[:1949]
    text = ". ".join(" ".join(rng.choice(WORDS, 10)) for _ in range(80))[:2804]
    settings = CollectionSettings(embed_title=True)
    with make(
        tmp_path / "c", [spec], {spec: encoders[spec]}, settings=settings, store_kind=store_kind
    ) as col:
        with caplog.at_level(logging.WARNING, logger="indexer"):
            summary = col.add([Document(id="long", lang="en", title=title, text=text)])
        assert any("title is embedded only up to" in r.getMessage() for r in caplog.records)
        assert summary.chunks > 1
        ids = np.array(sorted(col._recovery.live_ids()), np.int64)
        enc = col.encoder(spec)
        texts = col._recovery.chunk_texts(ids)
        for _, t in texts:  # the model sees the whole of title + chunk: nothing is truncated
            assert len(enc.tokenizer(t)["input_ids"]) <= enc.max_seq_length
            assert len(t.split("\n", 1)[1]) > 0
        vecs = col._writer.embed(col._model(spec), [t for _, t in texts])
        assert len(np.unique(np.round(vecs, 4), axis=0)) == len(texts)  # every chunk embeds its own text
        chunk = texts[len(texts) // 2][1]
        hit = col.search(chunk, k=1)[0]
        assert hit.doc_id == "long" and hit.score > 0.99


# ---------------------------------------------------------------------------------------------
# Smaller ones


def test_small_non_string_ids_are_rejected(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": true, "lang": "en", "text": "x"}\n{"id": 7, "lang": "en", "text": "y"}\n')
    recs = list(read_records(src))
    assert "field 'id' must be a string, got bool" in recs[0].error
    assert recs[1].doc.id == "7"


def test_small_missing_inputs_and_directories_are_errors_in_every_mode(
    tmp_path, specs, encoders, capsys, store_kind
):
    path = tmp_path / "c"
    make(path, specs, encoders, store_kind=store_kind).close()
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"id": "g", "lang": "en", "text": "Good."}) + "\n")
    for mode in ("fail", "skip"):
        assert (
            cli_main(["add", str(path), str(good), str(tmp_path / "nope.jsonl"), "--on-error", mode, "-q"])
            == 1
        )
        assert "nope.jsonl: file not found; nothing was written" in one_error_line(capsys.readouterr().err)
        assert cli_main(["add", str(path), str(tmp_path), "--on-error", mode, "-q"]) == 1
        assert "is a directory" in one_error_line(capsys.readouterr().err)
    with Collection.open(path, read_only=True) as col:
        assert len(col) == 0


@pytest.mark.parametrize(
    "args",
    [
        ["add", "{c}", "{src}", "--batch-size", "0"],
        ["add", "{c}", "{src}", "--threads", "-1"],
        ["add", "{c}", "{src}", "--commit-every", "0"],
        ["add", "{c}", "{src}", "--lock-timeout", "nan"],
        ["search", "{c}", "cat", "--threads", "-1"],
        ["rebuild", "{c}", "--threads", "0"],
    ],
)
def test_small_bad_numbers_are_one_line_errors_before_any_write(
    tmp_path, specs, encoders, capsys, args, store_kind
):
    path = tmp_path / "c"
    make(path, specs, encoders, store_kind=store_kind).close()
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "a", "lang": "en", "text": "A text."}) + "\n")
    before = files_under(path)
    argv = [a.format(c=path, src=src) for a in args]
    assert cli_main([*argv, "-q"] if argv[0] != "search" else argv) == 1
    assert " must be " in one_error_line(capsys.readouterr().err)
    with Collection.open(path, read_only=True) as col:
        assert len(col) == 0
    assert set(files_under(path)) == set(before)


def test_small_a_marker_that_is_not_an_object_is_a_clear_error_and_repairable(
    tmp_path, specs, encoders, capsys, store_kind
):
    path = tmp_path / "c"
    with make(path, specs, encoders, store_kind=store_kind) as col:
        col.add(docs(3))
    (path / "collection.json").write_text("[]")
    with pytest.raises(CollectionNotFoundError, match="not a collection marker"):
        Collection.open(path, read_only=True)
    assert cli_main(["verify", str(path), "--repair", "-q"]) == 0
    assert "rewrote collection.json" in capsys.readouterr().out
    with Collection.open(path, read_only=True) as col:
        assert len(col) == 3


def test_small_a_full_disk_is_one_line_and_leaves_a_consistent_collection(
    tmp_path, specs, encoders, capsys, monkeypatch, store_kind
):
    path = tmp_path / "c"
    make(path, specs, encoders, store_kind=store_kind).close()
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": d.id, "lang": "en", "text": d.text}) + "\n" for d in docs(10)))
    real_fsync = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    capsys.readouterr()
    assert cli_main(["add", str(path), str(src), "--threads", "1", "-q"]) == 1
    assert "no space left" in one_error_line(capsys.readouterr().err)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert not [p for p in path.rglob("*.tmp")]
    with reopen(path, encoders) as col:  # the documents were committed pending: reconciling indexes them
        assert any("pending" in a for a in col.repairs)
        assert len(col) == 10 and col.verify().ok
        assert col.add(docs(10)).unchanged == 10


def test_small_lock_timeout_is_waited_once(tmp_path, specs, encoders, capsys, monkeypatch, store_kind):
    class Clock:  # the lock's clock: sleeping advances it, so nothing waits for real
        now = 0.0

        def monotonic(self):
            return self.now

        def sleep(self, seconds):
            self.now += seconds

    path = tmp_path / "c"
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "a", "lang": "en", "text": "A text."}) + "\n")
    clock = Clock()
    with make(path, specs, encoders, store_kind=store_kind) as holder, holder.lock():
        monkeypatch.setattr(lock_module, "time", clock)
        assert cli_main(["add", str(path), str(src), "--lock-timeout", "3", "-q"]) == 1
    assert "one writer at a time" in capsys.readouterr().err
    assert 3.0 <= clock.now <= 3.0 + 3 * lock_module.POLL


def test_small_json_messages_say_at_once(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"id": "a", "lang": "en", "text": "raw\ttab"}\n')
    (rec,) = read_records(src)
    assert "Invalid control character at column" in rec.error and "at at" not in rec.error


# ---------------------------------------------------------------------------------------------
# Own cases: a hostile file system around the collection


def test_own_a_symlinked_write_lock_never_truncates_its_target(tmp_path, specs, encoders, store_kind):
    path = tmp_path / "c"
    make(path, specs, encoders, store_kind=store_kind).close()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (path / "write.lock").unlink()
    (path / "write.lock").symlink_to(victim)
    with reopen(path, encoders, reconcile=False) as col:
        with pytest.raises(IndexerError, match="symbolic link"):
            col.add(docs(2))
    assert victim.read_text() == "precious"


def test_own_garbage_in_write_lock_gives_a_printable_message(tmp_path, specs, encoders, store_kind):
    path = tmp_path / "c"
    with make(path, specs, encoders, store_kind=store_kind) as first, first.lock():
        for garbage in ("[]", '{"pid": "\\u001b[2J\\u001b]0;owned\\u0007", "command": 5}', "\x00\xff"):
            (path / "write.lock").write_text(garbage, encoding="latin-1")
            with reopen(path, encoders) as second:
                with pytest.raises(CollectionLockedError) as exc:
                    second.add(docs(1))
            assert str(exc.value).isprintable() and "one writer at a time" in str(exc.value)


def test_own_a_tampered_segment_name_cannot_touch_files_outside(tmp_path, specs, encoders, store_kind):
    from sqlalchemy import update
    from sqlalchemy.orm import Session

    from indexer.schema import SegmentRow

    path = tmp_path / "c"
    with make(path, specs, encoders, store_kind=store_kind) as col:
        col.add(docs(6))
    outside = {tmp_path / "victim.vec.npy": b"keep me", tmp_path / "victim.ids.npy": b"keep me too"}
    for p, data in outside.items():
        p.write_bytes(data)
    with reopen(path, encoders, reconcile=False) as col, Session(col.engine) as s, s.begin():
        s.execute(update(SegmentRow).where(SegmentRow.model_id == 1).values(name="../../victim"))
    with reopen(path, encoders, read_only=True) as col:
        assert any("not a segment name" in p for p in col.verify().problems)
    with reopen(path, encoders) as col:  # reconcile drops the row, re-embeds; rebuild deletes old segments
        col.rebuild()
        assert col.verify().ok
    assert {p: p.read_bytes() for p in outside} == outside


def test_own_a_fifo_as_input_is_refused_without_blocking(tmp_path, specs, encoders, store_kind):
    fifo = tmp_path / "in.jsonl"
    os.mkfifo(fifo)
    with make(tmp_path / "c", specs, encoders, store_kind=store_kind) as col:
        with pytest.raises(InputError, match="not a regular file"):
            col.add_files([fifo], on_error="skip")
