"""The output-path rule (issue 24, items 1-3): an output may never be one of the command's inputs or a
file inside a collection directory, and a non-empty directory that is not ours is never replaced.

Each case destroyed data before the fix (the rejects file read back forever, a database truncated to
0 bytes, a user's folder deleted by `distill untrim --out`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from distill.cli import main as distill_main
from distill.fileio import OutputPathError, atomic_directory, check_output_dir, check_output_file
from indexer.cli import main as indexer_main

Q = ["--threads", "1", "-q"]


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file's bytes, but SQLite's own -wal/-shm (a reader may create them)."""
    files = (p for p in sorted(root.rglob("*")) if p.is_file() and not p.name.endswith(("-wal", "-shm")))
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def users_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "thesis.txt").write_text("four years of work")
    (path / "notes").mkdir()
    (path / "notes" / "a.md").write_text("keep me")
    return path


@pytest.fixture
def collection(tmp_path, tiny_model_dir) -> Path:
    col = tmp_path / "c"
    assert indexer_main(["create", str(col), "--model", str(tiny_model_dir), *Q]) == 0
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"id": "a", "lang": "en", "text": "The cat sits."}) + "\n")
    assert indexer_main(["add", str(col), str(good), *Q]) == 0
    return col


def test_rejects_file_may_not_be_the_input(collection, tmp_path, capsys):
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"id": "b", "lang": "en", "text": "ok"}\n{"id": "c"}\n')
    before = inp.read_bytes()
    rc = indexer_main(["add", str(collection), str(inp), "--on-error", "skip", "--rejects", str(inp), *Q])
    assert rc == 2 and "also an input" in capsys.readouterr().err
    assert inp.read_bytes() == before
    link = tmp_path / "link.jsonl"
    os.link(inp, link)  # the same file under another name
    assert (
        indexer_main(["add", str(collection), str(inp), "--on-error", "skip", "--rejects", str(link), *Q])
        == 2
    )
    planted = tmp_path / "planted.jsonl"
    planted.symlink_to(collection / "collection.json")  # appending through it would break the marker
    marker = (collection / "collection.json").read_bytes()
    argv = ["add", str(collection), str(inp), "--on-error", "skip", "--rejects", str(planted), *Q]
    assert indexer_main(argv) == 2
    assert (collection / "collection.json").read_bytes() == marker


@pytest.mark.parametrize("name", ["collection.db", "collection.json", "rejects/mine.jsonl", "new.jsonl"])
def test_rejects_file_may_not_be_inside_a_collection(collection, tmp_path, name, capsys):
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"id": "c"}\n')
    before = snapshot(collection)
    rc = indexer_main(
        ["add", str(collection), str(inp), "--on-error", "skip", "--rejects", str(collection / name), *Q]
    )
    assert rc == 2 and "inside the collection directory" in capsys.readouterr().err
    assert snapshot(collection) == before
    assert indexer_main(["verify", str(collection), "-q"]) == 0


@pytest.mark.parametrize("name", ["collection.db", "collection.json", "indexes/x.jsonl", "."])
def test_export_never_writes_into_the_collection(collection, name, capsys):
    before = snapshot(collection)
    rc = indexer_main(["export", str(collection), "--out", str(collection / name), "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err, err
    assert snapshot(collection) == before
    assert indexer_main(["export", str(collection), "--out", str(collection.parent / "ok.jsonl"), "-q"]) == 0
    assert json.loads((collection.parent / "ok.jsonl").read_text())["id"] == "a"


def test_export_refuses_a_database_kept_outside_the_collection(tmp_path, tiny_model_dir):
    db = tmp_path / "elsewhere.db"
    col = tmp_path / "c"
    assert (
        indexer_main(["create", str(col), "--model", str(tiny_model_dir), "--db-url", f"sqlite:///{db}", *Q])
        == 0
    )
    before = db.read_bytes()
    assert indexer_main(["export", str(col), "--out", str(db), "-q"]) == 2
    assert db.read_bytes() == before


def test_untrim_never_deletes_a_folder_that_is_not_a_model(tiny_model_dir, tmp_path, capsys):
    out = users_folder(tmp_path / "mine")
    before = snapshot(out)
    assert distill_main(["untrim", str(tiny_model_dir), "--out", str(out)]) == 2
    assert "not one this command wrote" in capsys.readouterr().err
    assert snapshot(out) == before
    inside = tiny_model_dir / "sub"
    assert distill_main(["untrim", str(tiny_model_dir), "--out", str(inside)]) == 2
    assert not inside.exists()


def test_ship_student_run_and_evaluate_refuse_a_users_folder(tiny_model_dir, tmp_path):
    from distill.student.ship import ship_student

    out = users_folder(tmp_path / "mine")
    before = snapshot(out)
    with pytest.raises(OutputPathError):
        ship_student(tiny_model_dir, out)
    assert distill_main(["run", f"--out_dir={out}"]) == 2  # before any training starts
    sts = tmp_path / "sts.tsv"
    sts.write_text("sentence1\tsentence2\tscore\nA cat.\tA cat.\t5\nA dog.\tA car.\t1\nSun.\tMoon.\t2\n")
    assert (
        distill_main(
            ["evaluate", "--model", str(tiny_model_dir), "--sts", str(sts), "--no-cost", "--out", str(out)]
        )
        == 2
    )
    assert snapshot(out) == before


def test_a_model_or_report_of_ours_is_replaced(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "modules.json").write_text("[]")
    with atomic_directory(model) as tmp:
        (tmp / "modules.json").write_text("[1]")
    assert (model / "modules.json").read_text() == "[1]"
    report = tmp_path / "report"
    report.mkdir()
    (report / "metrics.json").write_text("{}")
    check_output_dir(report, ours=("metrics.json",))
    check_output_dir(tmp_path / "new")
    (tmp_path / "empty").mkdir()
    check_output_dir(tmp_path / "empty")


def test_symlinks_and_files_are_refused_as_output_directories(tmp_path, tiny_model_dir):
    link = tmp_path / "link"
    link.symlink_to(tiny_model_dir)
    with pytest.raises(OutputPathError, match="symbolic link"):
        check_output_dir(link)
    with pytest.raises(OutputPathError, match="input"):
        check_output_dir(tmp_path / "x", [tmp_path])  # would hold its own input
    f = tmp_path / "f.txt"
    f.write_text("x")
    with pytest.raises(OutputPathError, match="not a directory"):
        check_output_dir(f)
    with pytest.raises(OutputPathError, match="input"):
        check_output_file(tmp_path / "." / "f.txt", [f])
