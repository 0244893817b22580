"""The docs cannot drift: measured tables equal what their committed JSON renders, the README stays
short, every relative link (and #anchor) resolves, and CI runs the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks import doc_tables

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = [README, ROOT / "SECURITY.md", ROOT / "benchmarks" / "README.md", ROOT / "models" / "README.md"]
DOCS += sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {_slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.M)}


def _links(path: Path) -> list[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return [m.group(1) for m in LINK.finditer(text) if not re.match(r"[a-z]+:", m.group(1))]


def test_committed_tables_equal_what_their_json_renders():
    assert doc_tables.stale() == [], "run `python -m benchmarks.doc_tables` and commit the result"


def test_every_table_is_placed_once_and_rendered_from_json():
    text = "".join((ROOT / doc).read_text(encoding="utf-8") for doc in doc_tables.DOCUMENTS)
    for name in doc_tables.TABLES:
        assert text.count(f"<!-- table:{name} -->") == 1, name
    for match in doc_tables.BLOCK.finditer(text):
        assert match.group("body").count("\n|") >= 2, f"table {match.group('name')} is empty"


def test_an_unknown_table_block_is_an_error_not_silently_kept():
    with pytest.raises(KeyError, match="unknown table block 'nope'"):
        doc_tables.render("<!-- table:nope -->\nold\n<!-- /table -->\n")


def test_check_mode_reports_a_stale_document(tmp_path, capsys):
    for doc in doc_tables.DOCUMENTS:
        (tmp_path / doc).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / doc).write_text((ROOT / doc).read_text(encoding="utf-8"), encoding="utf-8")
    assert doc_tables.stale(tmp_path) == []
    results = tmp_path / "docs" / "results.md"
    results.write_text(
        results.read_text(encoding="utf-8").replace("| 0.455 |", "| 0.555 |"), encoding="utf-8"
    )
    assert doc_tables.stale(tmp_path) == ["docs/results.md"]


def test_readme_is_at_most_250_lines():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 250


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(doc):
    broken = []
    for link in _links(doc):
        target, _, anchor = link.partition("#")
        path = (doc.parent / target).resolve() if target else doc
        if not path.exists():
            broken.append(link)
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(link)
    assert not broken, f"{doc.name}: broken links {broken}"


def test_ci_runs_the_test_command_the_readme_gives():
    development = README.read_text(encoding="utf-8").split("## Development", 1)[1]
    assert "make test " in development or "make test\n" in development
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^make test\b(?!-)", ci, re.M), ".ci/run must call `make test`"


def test_readme_starts_with_the_newcomers_path():
    """install, demo, first search, first own collection, first distillation: in the first screen."""
    first_screen = "\n".join(README.read_text(encoding="utf-8").splitlines()[:40])
    for step in (
        "make install",
        "make demo",
        "indexer search",
        "indexer create",
        "indexer add",
        "distill run",
    ):
        assert step in first_screen, step


def test_model_card_says_what_stage_1_did():
    from distill.config import load_config
    from distill.student.card import _stage1_note

    cfg = load_config("offline")
    assert not cfg.stage1.enabled and "stage 1 was disabled" in _stage1_note(cfg)
    assert "trained into T's space" in _stage1_note(load_config("offline-minilm"))


def test_a_missing_json_is_one_line_of_error(monkeypatch, capsys):
    from benchmarks.common import run_main

    monkeypatch.setattr(doc_tables, "TEACHER_QUALITY", "models/nothing-here.dev_quality.json")
    assert run_main(doc_tables.main, ["--check"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nothing-here.dev_quality.json" in err and "Traceback" not in err
