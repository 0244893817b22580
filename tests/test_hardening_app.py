"""Issue 14, D2 in the app: collections only by name inside XLSEARCH_COLLECTIONS, one message for every
name that is not one (whether or not a path exists), and user text in messages shown literally."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from distill.documents import Document

APP = str(Path(__file__).resolve().parents[1] / "app" / "streamlit_app.py")
EVIL_NAME = "x`[pwn](https://evil.example)` <img src=x onerror=alert(1)> $x$ :red[y] **b**"


@pytest.fixture(scope="module")
def layout(tmp_path_factory, tiny_model_dir) -> dict[str, Path]:
    """root/tiny (a collection), root/notacol (a plain directory), root/link -> outside/copy (a collection)."""
    import torch

    from indexer import Collection

    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("app_hardening")
    root, outside = base / "root", base / "outside"
    root.mkdir()
    outside.mkdir()
    with Collection.create(root / "tiny", models=[str(tiny_model_dir)]) as col:
        col.add([Document("cat.en", "en", "The cat sits on the mat.", "Cats")])
    shutil.copytree(root / "tiny", outside / "copy")  # a complete collection outside the root
    (root / "notacol").mkdir()
    (root / "link").symlink_to(outside / "copy", target_is_directory=True)
    return {"root": root, "outside": outside, "base": base}


@pytest.fixture
def app_env(monkeypatch, layout, tiny_model_dir, tmp_path):
    monkeypatch.setenv("XLSEARCH_COLLECTIONS", str(layout["root"]))
    monkeypatch.setenv("XLSEARCH_COLLECTION", "tiny")
    monkeypatch.setenv("XLSEARCH_TEACHER", str(tiny_model_dir))
    monkeypatch.setenv("XLSEARCH_STUDENT", str(tmp_path / "no-student"))
    monkeypatch.setenv("XLSEARCH_REPORTS", str(tmp_path / "reports"))
    return layout


def _run(collection: str | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=60)
    if collection is not None:
        at.query_params["collection"] = collection
    return at.run()


def test_picker_offers_only_collections_inside_the_root(app_env):
    at = _run()
    assert not at.exception and not at.error
    assert at.sidebar.selectbox(key="collection").options == ["tiny"]  # not the link, not the plain directory
    assert at.text_input(key="query") is not None  # the collection opened


def _message(at) -> str:
    assert not at.exception
    assert len(at.error) == 1 and not at.text_input  # refused: nothing was opened
    return at.error[0].value


def test_every_name_that_is_not_a_collection_gets_the_same_message(app_env):
    from app.display import md_code

    root, outside, base = app_env["root"], app_env["outside"], app_env["base"]
    reference = _message(_run("nosuch")).replace(md_code("nosuch"), "NAME")
    assert "not found" in reference and "make demo" in reference
    for wanted in [
        str(outside / "copy"),  # an absolute path to a real collection
        str(base / "nowhere"),  # an absolute path to nothing
        str(root / "tiny"),  # even the absolute path of a collection the app offers
        "../outside/copy",
        "..",
        ".",
        "link",  # a symlink in the root that leads out of it
        "notacol",  # a directory that is no collection
        "tiny/../tiny",
    ]:
        assert _message(_run(wanted)).replace(md_code(wanted), "NAME") == reference, wanted


def test_markup_in_a_collection_name_is_shown_literally(app_env):
    markdown_it = pytest.importorskip("markdown_it")  # CommonMark, like the browser's renderer

    body = _message(_run(EVIL_NAME))
    html = markdown_it.MarkdownIt("commonmark").render(body)
    assert "<a " not in html and "<img" not in html and "<strong>" not in html
    assert f"<code>{EVIL_NAME.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')}</code>" in html


def test_md_text_and_md_code_keep_any_text_literal():
    markdown_it = pytest.importorskip("markdown_it")
    from app.display import md_code, md_text

    md = markdown_it.MarkdownIt("commonmark")
    for text in [
        EVIL_NAME,
        "``",
        "a ``` b",
        "line one\n\n# heading\n<script>x</script>",
        "[a]: https://e.example",
    ]:
        rendered = md.render(f"before {md_text(text)} after")
        assert all(tag not in rendered for tag in ("<a ", "<h1>", "<script>", "<img", "<em>", "<strong>")), (
            text
        )
        code = md.render(f"before {md_code(text)} after")
        assert all(tag not in code for tag in ("<a ", "<h1>", "<script>", "<img", "<em>", "<strong>")), text
        assert code.count("<code>") == 1 and "after" in code.split("</code>")[1], text
