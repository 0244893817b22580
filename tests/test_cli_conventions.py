"""CLI conventions shared by `indexer` and `distill`: --json everywhere, --version, exit codes,
`indexer add -` from standard input; and the library API's dict documents."""

from __future__ import annotations

import io
import json
import sys

import pytest

from indexer import Collection, Document
from indexer.cli import COMMANDS
from indexer.cli import main as indexer_main

DOCS = [
    {"id": "a", "lang": "en", "title": "Cat", "text": "The cat sits on the mat."},
    {"id": "b", "lang": "de", "text": "Die Katze sitzt auf der Matte.", "source": "test"},
    {"id": "c", "lang": "zh", "text": "猫坐在垫子上。"},
]


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_every_indexer_command_speaks_json(tmp_path, tiny_model_dir, capsys, monkeypatch):
    col = str(tmp_path / "c")
    common = ["--threads", "1", "-q", "--json"]
    assert indexer_main(["create", col, "--model", str(tiny_model_dir), *common]) == 0
    assert [m["spec"] for m in _json(capsys)["models"]] == [str(tiny_model_dir)]

    stdin = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in DOCS).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    assert indexer_main(["add", col, "-", *common]) == 0
    added = _json(capsys)
    assert added["added"] == 3 and added["rejected"] == 0 and added["chunks"] == 3

    changed = tmp_path / "changed.jsonl"
    changed.write_text(json.dumps({**DOCS[0], "text": "The cat sleeps."}) + "\n", encoding="utf-8")
    assert indexer_main(["update", col, str(changed), *common]) == 0
    assert _json(capsys)["updated"] == 1

    assert indexer_main(["search", col, "cat", "--k", "2", *common]) == 0
    assert len(_json(capsys)) == 2
    assert indexer_main(["info", col, *common]) == 0
    assert _json(capsys)["documents"] == 3
    assert indexer_main(["delete", col, "--id", "b", "zz", *common]) == 0
    assert _json(capsys) == {"deleted": ["b"], "not_found": ["zz"]}
    assert indexer_main(["rebuild", col, "--index-type", "hnsw", *common]) == 0
    assert _json(capsys)[0]["index_type"] == "hnsw"
    assert indexer_main(["verify", col, "--repair", *common]) == 0
    report = _json(capsys)
    assert report["ok"] and report["repairs"] == []
    out = tmp_path / "export.jsonl"
    assert indexer_main(["export", col, "--out", str(out), *common]) == 0
    assert _json(capsys) == {"documents": 2, "out": str(out)}
    assert set(COMMANDS) == {
        "create",
        "add",
        "update",
        "delete",
        "search",
        "info",
        "verify",
        "rebuild",
        "export",
    }


def test_stdin_is_validated_like_a_file(tmp_path, tiny_model_dir, capsys, monkeypatch):
    col = str(tmp_path / "c")
    assert indexer_main(["create", col, "--model", str(tiny_model_dir), "--threads", "1", "-q"]) == 0
    monkeypatch.setattr(
        sys, "stdin", io.TextIOWrapper(io.BytesIO(b'{"id": "x", "lang": "en"}\n'), encoding="utf-8")
    )
    assert indexer_main(["add", col, "-", "--threads", "1", "-q"]) == 1
    assert "<stdin>:1" in capsys.readouterr().err  # not the spool file it was read from (issue 24)
    assert indexer_main(["add", col, "-", "-", "-q"]) == 1
    assert "only once" in capsys.readouterr().err


@pytest.mark.parametrize("main_name", ["indexer", "distill"])
def test_version_and_usage_exit_codes(main_name, capsys):
    from distill import __version__
    from distill.cli import main as distill_main

    main = indexer_main if main_name == "indexer" else distill_main
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"{main_name} {__version__}"
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2


def test_runtime_failures_exit_1(tmp_path, capsys):
    from distill.cli import main as distill_main

    assert indexer_main(["info", str(tmp_path / "missing")]) == 1
    assert "error" in capsys.readouterr().err
    assert (
        distill_main(["evaluate", "--model", str(tmp_path / "no-model"), "--sts", str(tmp_path / "x.tsv")])
        == 1
    )


def test_interrupt_exits_130(tmp_path, tiny_model_dir, capsys, monkeypatch):
    col = str(tmp_path / "c")
    assert indexer_main(["create", col, "--model", str(tiny_model_dir), "--threads", "1", "-q"]) == 0

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Collection, "info", interrupted)
    assert indexer_main(["info", col]) == 130
    from distill.cli import main as distill_main

    monkeypatch.setattr("distill.models.cli.main", interrupted)
    assert distill_main(["models"]) == 130


def test_collection_add_takes_dicts(tmp_path, tiny_model_dir):
    with Collection.create(tmp_path / "c", [str(tiny_model_dir)], threads=1, show_progress=False) as col:
        summary = col.add(
            [Document(id="a", lang="en", text="The cat."), DOCS[1], {"id": "bad", "text": "no lang"}],
            on_error="skip",
        )
        assert (summary.added, summary.rejected) == (2, 1)
        assert "lang" in summary.problems[0]
        hit = col.search("Katze", k=2, langs=["de"])[0]
        assert hit.doc_id == "b" and hit.metadata == {"source": "test"}
        assert json.loads(json.dumps(summary.to_dict()))["added"] == 2


def test_data_dir_outside_a_checkout(tmp_path, monkeypatch):
    from distill import paths

    monkeypatch.delenv("XLSEARCH_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert paths.in_checkout() and paths.data_dir() == paths.REPO_ROOT / "data"
    monkeypatch.setattr(paths, "in_checkout", lambda: False)
    if sys.platform.startswith("linux"):
        assert paths.data_dir() == tmp_path / "cache" / "xlsearch"
    monkeypatch.setenv("XLSEARCH_DATA", str(tmp_path / "mine"))
    assert paths.data_dir() == tmp_path / "mine" and (tmp_path / "mine").is_dir()
