"""Hostile and careless input (issue 24, items 4-14 and the minor list): one clear line, the
documented exit status, with --json one JSON error object on standard output, and nothing left
behind. Every case here failed before the fix (a traceback, rc 0 on a dead collection, or silence)."""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path

import pytest

from distill.cli import main as distill_main
from indexer.cli import main as indexer_main

Q = ["--threads", "1", "-q"]


def no_traceback(err: str) -> str:
    assert "Traceback" not in err and "internal error" not in err, err
    return err


def json_error(capsys) -> tuple[dict, str]:
    """The one JSON value on stdout (an error object) and stderr."""
    out = capsys.readouterr()
    no_traceback(out.err)
    value = json.loads(out.out)
    assert set(value) == {"error"} and set(value["error"]) == {"kind", "message"}, value
    return value["error"], out.err


def run_usage(main, argv) -> int:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code


@pytest.fixture
def col(tmp_path, tiny_model_dir) -> Path:
    path = tmp_path / "c"
    assert indexer_main(["create", str(path), "--model", str(tiny_model_dir), *Q]) == 0
    return path


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- 4: --json on every error path --------------------------------------------------------------


def test_json_errors_on_runtime_failures(col, tmp_path, tiny_model_dir, capsys):
    capsys.readouterr()
    cases = [
        (["info", str(tmp_path / "nothing"), "--json"], "collection_not_found"),
        (["create", str(col), "--model", str(tiny_model_dir), "--json", *Q], "collection_exists"),
        (["create", str(tmp_path / "n"), "--model", "pkg:nope", "--json", *Q], "indexer"),
        (
            [
                "create",
                str(tmp_path / "f"),
                "--model",
                str(tiny_model_dir),
                "--index-type",
                "Bogus,x",
                "--json",
                *Q,
            ],
            None,
        ),
        (["add", str(col), str(tmp_path / "missing.jsonl"), "--json", *Q], "input"),
        (["add", str(col), str(write(tmp_path / "bad.jsonl", "{oops\n")), "--json", *Q], "input"),
    ]
    for argv, kind in cases:
        assert indexer_main(argv) == 1, argv
        error, err = json_error(capsys)
        assert kind is None or error["kind"] == kind, (argv, error)
        assert error["message"] in err
    assert not (tmp_path / "n").exists() and not (tmp_path / "f").exists()


def test_json_errors_on_usage_errors_and_a_held_lock(col, capsys):
    capsys.readouterr()
    for argv in (
        ["search", str(col), "--json"],  # the query is missing
        ["search", str(col), "x", "--k", "many", "--json"],
        ["delete", str(col), "--json"],
        ["export", str(col), "--json"],  # JSONL is not one JSON value: refused without --out
        ["frobnicate", "--json"],
    ):
        try:
            rc = indexer_main(argv)
        except SystemExit as exc:
            rc = exc.code
        assert rc == 2, argv
        error, _ = json_error(capsys)
        assert error["kind"] == "usage", argv
    from indexer.lock import WriteLock

    lock = WriteLock(col / "write.lock")
    lock.acquire()
    try:
        assert indexer_main(["delete", str(col), "--id", "a", "--json", *Q]) == 1
    finally:
        lock.release()
    assert json_error(capsys)[0]["kind"] == "collection_locked"


def test_json_errors_from_distill_and_interrupts(tmp_path, capsys, monkeypatch):
    assert run_usage(distill_main, ["backends", "--json"]) == 2
    assert json_error(capsys)[0]["kind"] == "usage"
    assert distill_main(["backends", str(tmp_path), "--json"]) == 1
    error, _ = json_error(capsys)
    assert "holds no model" in error["message"]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    from indexer import Collection

    monkeypatch.setattr(Collection, "open", interrupted)
    assert indexer_main(["info", str(tmp_path), "--json"]) == 130
    assert json_error(capsys)[0]["kind"] == "interrupted"


# --- 5, 6, 7 and ?mode=ro: database URLs --------------------------------------------------------


@pytest.mark.parametrize(
    "url, says",
    [
        ("sqlite:///:memory:", "in-memory"),
        ("sqlite://", "in-memory"),
        ("sqlite:///file:x?mode=memory&uri=true", "not supported"),
        ("sqlite:////tmp/x.db?mode=ro", "not supported"),
        ("garbage", "not a database URL"),
        ("sqlite:////proc/self/status", "cannot be used"),
        ("postgresql+psycopg://u:s3cret@127.0.0.1:1/db", "cannot be used"),
    ],
)
def test_bad_database_urls_are_one_line_and_leave_nothing(tmp_path, tiny_model_dir, capsys, url, says):
    target = tmp_path / "c"
    assert indexer_main(["create", str(target), "--model", str(tiny_model_dir), "--db-url", url, *Q]) == 1
    err = no_traceback(capsys.readouterr().err)
    assert says in err and "s3cret" not in err and len(err.strip().splitlines()) == 1, err
    assert not target.exists()


def test_a_directory_as_database_is_refused(tmp_path, tiny_model_dir, capsys):
    url = f"sqlite:///{tmp_path}"
    assert (
        indexer_main(["create", str(tmp_path / "c"), "--model", str(tiny_model_dir), "--db-url", url, *Q])
        == 1
    )
    assert "not a file" in no_traceback(capsys.readouterr().err)


def test_a_relative_sqlite_path_lives_in_the_collection_directory(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (
        indexer_main(["create", "c", "--model", str(tiny_model_dir), "--db-url", "sqlite:///rel.db", *Q]) == 0
    )
    assert (tmp_path / "c" / "rel.db").is_file() and not (tmp_path / "rel.db").exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert indexer_main(["info", str(tmp_path / "c"), "-q"]) == 0


# --- 9, 10 and the "no model there" case: model directories ----------------------------------


def test_pickled_weights_are_refused_in_one_line(tmp_path, tiny_model_dir, capsys):
    import torch
    from safetensors.torch import load_file

    model = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, model)
    torch.save(load_file(model / "model.safetensors"), model / "pytorch_model.bin")
    (model / "model.safetensors").unlink()
    assert indexer_main(["create", str(tmp_path / "c"), "--model", str(model), *Q]) == 1
    err = no_traceback(capsys.readouterr().err)
    assert "pickled weights" in err and "safetensors" in err and "weights_only" not in err


@pytest.mark.parametrize("spec", ["/etc", "EMPTY"])
def test_a_directory_without_a_model_says_so(tmp_path, capsys, spec):
    if spec == "EMPTY":
        spec = str(tmp_path / "empty")
        Path(spec).mkdir()
    assert indexer_main(["create", str(tmp_path / "c"), "--model", spec, *Q]) == 1
    assert "holds no model" in no_traceback(capsys.readouterr().err)
    assert distill_main(["export", spec, "--onnx"]) == 1
    err = no_traceback(capsys.readouterr().err)
    assert "holds no model" in err and "sentencepiece" not in err


def test_deep_or_duplicate_json_in_a_model_config_is_refused(tmp_path, tiny_model_dir, capsys):
    model = tmp_path / "deep"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(
        json.dumps(config)[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    )
    assert indexer_main(["create", str(tmp_path / "c"), "--model", str(model), *Q]) == 1
    assert "config.json: nested more than" in no_traceback(capsys.readouterr().err)
    assert distill_main(["export", str(model), "--onnx"]) == 1
    assert "nested more than" in no_traceback(capsys.readouterr().err)
    (model / "config.json").write_text(json.dumps(config)[:-1] + ', "hidden_size": 1}')
    assert indexer_main(["create", str(tmp_path / "c"), "--model", str(model), *Q]) == 1
    assert "duplicate key 'hidden_size'" in no_traceback(capsys.readouterr().err)


# --- 10 and the minor list: hostile JSONL --------------------------------------------------------


@pytest.mark.parametrize(
    "line, says",
    [
        (
            '{"id": "a", "lang": "en", "text": "t", "m": ' + "[" * 100_000 + "]" * 100_000 + "}",
            "nested more than",
        ),
        ('{"id": "a", "lang": "en", "text": "t", "m": ' + "[" * 70 + "]" * 70 + "}", "nested more than"),
        ('{"id": "a", "lang": "en", "text": "one", "text": "two"}', "duplicate key 'text'"),
        ('{"id": "a", "lang": "en", "text": "t", "score": NaN}', "NaN is not a JSON number"),
        ('{"id": "a", "lang": "en", "text": "t", "score": -Infinity}', "Infinity is not a JSON number"),
        ('{"id": "a", "lang": "en", "text": "t", "score": 1e999}', "out of range"),
        ('{"id": "ab\\u202ecd", "lang": "en", "text": "t"}', "U+202E"),
        ('{"id": "a\\u200b", "lang": "en", "text": "t"}', "U+200B"),
    ],
)
def test_hostile_jsonl_lines_are_rejected_with_file_and_line(col, tmp_path, capsys, line, says):
    src = write(tmp_path / "in.jsonl", '{"id": "ok", "lang": "en", "text": "fine"}\n' + line + "\n")
    assert indexer_main(["add", str(col), str(src), *Q]) == 1
    err = no_traceback(capsys.readouterr().err)
    assert f"{src}:2: " in err and says in err, err


def test_nan_from_the_library_api_never_reaches_export(col, tiny_model_dir):
    from indexer import Collection

    with Collection.open(col, threads=1) as c:
        summary = c.add([{"id": "n", "lang": "en", "text": "t", "score": float("nan")}], on_error="skip")
    assert summary.rejected == 1 and "NaN" in summary.problems[0]


# --- 11, 12, 13, 14 ----------------------------------------------------------------------------


def test_untrim_of_a_model_that_is_not_a_student(tiny_model_dir, tmp_path, capsys):
    assert distill_main(["untrim", str(tiny_model_dir), "--out", str(tmp_path / "o")]) == 1
    assert "is not an xlsearch student" in no_traceback(capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


def test_a_collection_name_too_long_for_the_file_system(tmp_path, tiny_model_dir, capsys):
    long = tmp_path / ("x" * 300)
    assert indexer_main(["create", str(long), "--model", str(tiny_model_dir), *Q]) == 1
    assert "File name too long" in no_traceback(capsys.readouterr().err)
    assert indexer_main(["info", str(long), "--json"]) == 1
    assert "too long" in json_error(capsys)[0]["message"]


@pytest.mark.parametrize("text", ["foo\tbar\nA\tB\nC\tD\n", "en\tde\nThe cat.\tDie Katze.\n"])
def test_bitext_with_an_undocumented_header_or_one_pair_is_refused(tmp_path, tiny_model_dir, capsys, text):
    bitext = write(tmp_path / "b.tsv", text)
    rc = distill_main(
        [
            "evaluate",
            "--model",
            str(tiny_model_dir),
            "--bitext",
            str(bitext),
            "--no-cost",
            "--out",
            str(tmp_path / "r"),
        ]
    )
    assert rc == 1
    err = no_traceback(capsys.readouterr().err)
    assert "b.tsv" in err and ("language" in err or "at least 2" in err), err
    assert not (tmp_path / "r").exists()


def test_standard_input_is_called_stdin_in_messages(col, capsys, monkeypatch):
    data = b'{"id": "x", "lang": "en", "text": "ok"}\n{"id": "y", "lang": "en"}\n'
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    assert indexer_main(["add", str(col), "-", *Q]) == 1
    err = no_traceback(capsys.readouterr().err)
    assert "<stdin>:2: missing field 'text'" in err and "indexer-stdin-" not in err


def test_disk_full_says_the_rows_stay_pending():
    import errno

    from indexer.errors import StorageError, storage_errors

    with pytest.raises(StorageError) as exc, storage_errors("c"):
        raise OSError(errno.ENOSPC, "No space left on device", "c/indexes/x")
    assert "stays pending until the next writer" in str(exc.value)


# --- 8: damaged Milvus Lite data -----------------------------------------------------------------


def test_damaged_milvus_lite_data_is_reported_and_rebuilt(tmp_path, tiny_model_dir, capsys):
    pytest.importorskip("milvus_lite")
    path = tmp_path / "c"
    assert (
        indexer_main(["create", str(path), "--model", str(tiny_model_dir), "--vector-store", "milvus", *Q])
        == 0
    )
    docs = write(tmp_path / "d.jsonl", '{"id": "a", "lang": "en", "text": "The cat sits."}\n')
    assert indexer_main(["add", str(path), str(docs), *Q]) == 0
    for f in (path / "milvus.db").rglob("*"):
        if f.is_file() and f.stat().st_size:
            f.write_bytes(b"\x80\xff garbage" * 20)
    capsys.readouterr()
    assert indexer_main(["verify", str(path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert any("damaged" in p for p in report["problems"]), report
    assert indexer_main(["verify", str(path), "--repair", "-q"]) == 0
    assert "rebuilt" in capsys.readouterr().out
    assert indexer_main(["search", str(path), "cat", "--json", *Q]) == 0
    assert [h["id"] for h in json.loads(capsys.readouterr().out)] == ["a"]
    assert any(p.name.startswith("milvus.db.damaged-") for p in path.iterdir())  # moved aside, not deleted


def test_a_file_given_as_milvus_lite_data_is_named_as_such(tmp_path, tiny_model_dir, capsys):
    pytest.importorskip("milvus_lite")
    sqlite_file = write(tmp_path / "other.db", "not milvus")
    argv = ["create", str(tmp_path / "c"), "--model", str(tiny_model_dir), "--vector-store", "milvus"]
    assert indexer_main([*argv, "--milvus-uri", str(sqlite_file), *Q]) == 1
    err = no_traceback(capsys.readouterr().err)
    assert "is a file, not Milvus Lite data" in err and "in use" not in err
    assert sqlite_file.read_text() == "not milvus"
