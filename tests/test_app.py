"""The Streamlit app through `streamlit.testing.v1.AppTest`: the real app script, a real collection
(FAISS + SQLite) built from tiny random models, real searches. No mocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from distill.documents import Document

APP = str(Path(__file__).resolve().parents[1] / "app" / "streamlit_app.py")
TIMEOUT = 60  # the first run opens the collection and loads both models

HTML_TEXT = 'Die <b>fette</b> Katze <script>alert("x")</script> & <img src=x onerror=alert(1)> schläft.'

DOCS = [
    Document("cat.en", "en", "The cat sits on the mat.", "Cats"),
    Document("cat.de", "de", "Die Katze sitzt auf der Matte.", "Katzen"),
    Document("cat.es", "es", "El gato se sienta en la alfombra.", "Gatos"),
    Document("cat.zh", "zh", "猫坐在垫子上。", "猫"),
    Document("guitar.en", "en", "A man is playing a guitar.", "Guitar"),
    Document("guitar.de", "de", "Ein Mann spielt Gitarre.", "Gitarre"),
    Document("guitar.es", "es", "Un hombre toca la guitarra.", "Guitarra"),
    Document("bowl.en", "en", "Who won the Super Bowl? The Denver Broncos won it.", "Super Bowl"),
    Document("bowl.de", "de", "Wer hat den Super Bowl gewonnen? Die Denver Broncos.", "Super Bowl"),
    Document("html.de", "de", HTML_TEXT, "<i>Markup</i> im Titel"),
]


@pytest.fixture(scope="module")
def collections_dir(tmp_path_factory, tiny_model_dir, tiny_model_dir_b) -> Path:
    import torch

    from indexer import Collection

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("collections")
    with Collection.create(
        root / "tiny",
        models=[str(tiny_model_dir), str(tiny_model_dir_b)],
        backends={str(tiny_model_dir_b): "int8"},
    ) as col:
        col.add(DOCS)
    return root


@pytest.fixture
def app_env(monkeypatch, collections_dir, tiny_model_dir, tiny_model_dir_b, tmp_path):
    monkeypatch.setenv("XLSEARCH_COLLECTIONS", str(collections_dir))
    monkeypatch.setenv("XLSEARCH_COLLECTION", "tiny")
    monkeypatch.setenv("XLSEARCH_TEACHER", str(tiny_model_dir))
    monkeypatch.setenv("XLSEARCH_STUDENT", str(tiny_model_dir_b))
    monkeypatch.setenv("XLSEARCH_REPORTS", str(tmp_path / "reports"))
    return collections_dir


def _app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(APP, default_timeout=TIMEOUT)


def _columns_html(at) -> dict[str, str]:
    """role -> the HTML of that column's result cards."""
    out = {}
    for el in at.html:
        body = el.value
        for role in ("teacher", "student"):
            if f'data-role="{role}"' in body:
                out[role] = body
    return out


def _query(at, text: str, **widgets):
    at.text_input(key="query").input(text)
    for key, value in widgets.items():
        if key == "langs":
            at.multiselect(key="langs").set_value(value)
        else:
            at.number_input(key=key).set_value(value)
    return at.run()


def test_query_fills_both_columns(app_env):
    at = _app().run()
    assert not at.exception
    at = _query(at, "Wer hat den Super Bowl gewonnen?", k=5)
    assert not at.exception
    cols = _columns_html(at)
    assert set(cols) == {"teacher", "student"}
    for body in cols.values():
        assert body.count('class="xl-hit"') == 5
    subheaders = [h.value for h in at.subheader]
    assert any(h.startswith("Teacher") for h in subheaders) and any(
        h.startswith("Student") for h in subheaders
    )
    # Issue 25: the header says what the model is, in words read from its files (the tiny models have
    # 4 layers); the spec and the column's backend, as the collection records it, are in its tooltip.
    heads = {h.value.split(" ")[0]: h for h in at.subheader if h.value.startswith(("Teacher", "Student"))}
    assert heads["Teacher"].value.startswith("Teacher (4 layers, ") and "parameters" in heads["Teacher"].value
    assert "backend: torch" in heads["Teacher"].proto.help and "backend: int8" in heads["Student"].proto.help
    assert "/" not in heads["Student"].value  # no path in the header itself
    captions = " ".join(c.value for c in at.caption)
    assert captions.count(" ms (query encoding, search, sentence highlight)") == 2
    # every card shows its match strength beside the cosine
    assert all(body.count('class="xl-strength') == 5 for body in cols.values())
    assert any("overlap@5" in m.value for m in at.markdown)


def test_k_zero_clears_the_hits_and_says_why(app_env):
    at = _app().run()
    at = _query(at, "cat", k=5)
    assert _columns_html(at)
    at.number_input(key="k").set_value(0)
    at = at.run()
    assert not at.exception and not _columns_html(at)
    assert any("k = 0" in i.value for i in at.info)


def test_no_good_match_fades_both_columns(app_env, monkeypatch):
    import app.matching
    import app.search_page

    # Any threshold above every hit: both columns must show the state, by the same rule.
    monkeypatch.setattr(app.matching, "NO_MATCH_BELOW", 1e9)
    monkeypatch.setattr(app.search_page, "NO_MATCH_BELOW", 1e9)
    at = _query(_app().run(), "🙂🙂🙂 qwxz zzkj", k=5)
    cols = _columns_html(at)
    assert set(cols) == {"teacher", "student"}
    assert all('data-match="none"' in body and "xl-faded" in body for body in cols.values())
    assert sum("No good match" in w.value for w in at.warning) == 2
    monkeypatch.setattr(app.matching, "NO_MATCH_BELOW", -1e9)
    monkeypatch.setattr(app.search_page, "NO_MATCH_BELOW", -1e9)
    at = _query(_app().run(), "cat", k=5)
    assert all('data-match="ok"' in body for body in _columns_html(at).values())


def test_long_query_gets_a_notice(app_env):
    at = _query(_app().run(), "Katze " * 700, k=3)
    assert not at.exception
    assert any("tokens long" in i.value for i in at.info)


def test_language_filter_restricts_hits(app_env):
    at = _app().run()
    at = _query(at, "cat", langs=["de", "zh"], k=10)
    assert not at.exception
    cols = _columns_html(at)
    assert set(cols) == {"teacher", "student"}
    for body in cols.values():
        langs = {part.split('"', 1)[0] for part in body.split('class="xl-hit" data-lang="')[1:]}
        # 5 of the documents are German or Chinese: all of them, and nothing else.
        assert body.count('class="xl-hit"') == 5
        assert langs == {"de", "zh"}


def test_empty_query_shows_message(app_env):
    at = _app().run()
    assert not at.exception
    assert any("Type a query" in i.value for i in at.info)
    at = _query(at, "   ")
    assert any("Type a query" in i.value for i in at.info)
    assert not _columns_html(at)


def test_missing_collection_shows_message(app_env, monkeypatch, tmp_path):
    monkeypatch.setenv("XLSEARCH_COLLECTION", "no-such-collection")
    at = _app().run()
    assert not at.exception
    assert any("`no-such-collection` not found" in e.value and "make demo" in e.value for e in at.error)
    assert not at.text_input  # no search box without a collection


def test_html_in_documents_is_escaped(app_env):
    at = _app().run()
    at = _query(at, "Katze", k=10)
    cols = _columns_html(at)
    assert cols
    for body in cols.values():
        body = body.replace("<mark>", "").replace("</mark>", "")  # the app's own highlight may split a tag
        assert "&lt;b&gt;fette&lt;/b&gt;" in body
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body
        assert "&lt;img src=x onerror=alert(1)&gt;" in body
        assert "&lt;i&gt;Markup&lt;/i&gt; im Titel" in body
        assert "<script" not in body and "<img" not in body and "<b>" not in body and "<i>" not in body


def test_example_button_runs_its_query(app_env):
    from app.examples import EXAMPLES

    at = _app().run()
    # issue 25: each chip names its language, and says so when the collection holds none in it
    labels = [o.content for o in at.pills(key="example").proto.options]
    assert all(":" in o for o in labels) and sum("not a document language here" in o for o in labels) >= 1
    for i, (_, text) in enumerate(EXAMPLES[:2]):
        at.pills(key="example").set_value(i)
        at = at.run()
        assert at.text_input(key="query").value == text
        assert at.pills(key="example").value is None
        assert set(_columns_html(at)) == {"teacher", "student"}


def test_collection_page_shows_languages_and_indexes(app_env):
    at = _app().run()
    at.switch_page("collection_page.py").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Documents"] == "10" and metrics["Languages"] == "4"
    models = at.dataframe[0].value
    assert list(models["role"]) == ["Teacher", "Student"]
    assert list(models["vectors"]) == [models["vectors"][0]] * 2 and models["vectors"][0] >= 10
    at.button[0].click().run()  # Verify consistency
    assert any("Consistent" in s.value for s in at.success)


def test_quality_page_computes_the_report(app_env, shared_data, tmp_path):
    at = _app().run()
    at.switch_page("quality_page.py").run()
    assert not at.exception
    assert any("No report on this collection yet" in i.value for i in at.info)
    assert at.button(key="compute-report").label == "Compute the full evaluation"
    at.button(key="compute-report").click().run(timeout=300)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    report = tmp_path / "reports" / "tiny"
    assert {"metrics.json", "report.md", "report.html"} <= {p.name for p in report.iterdir()}
    # The page now shows the report: the summary with the student/teacher ratio, per-pair tables, figures.
    assert any(h.value == "Summary" for h in at.subheader)
    summary = at.dataframe[0].value
    assert {"teacher", "student", "student/teacher"} <= set(summary.columns)
    # the app's job leads: the question task's rows first, the paragraph -> paragraph sanity check after
    assert summary["data set"].iloc[0] == "xquad-questions" and "cross-lingual" in summary["metric"].iloc[0]
    assert set(summary["data set"]) == {"xquad-questions", "xquad", "xquad-pooled"}
    assert any("Collapse check" in e.label for e in at.expander)
    assert len(at.image) >= 4, "figures: question heat maps, per language pair, ratios, size versus quality"


def test_quality_page_shows_progress_then_the_collections_own_report(app_env, tmp_path, collections_dir):
    import json
    import time

    from app.collection_report import evaluate_collection, write_json
    from indexer import Collection

    out = tmp_path / "reports" / "tiny"
    write_json(
        out / "progress.json", {"fraction": 0.4, "message": "teacher: 40/100 questions", "time": time.time()}
    )
    at = _app().run()
    at.switch_page("quality_page.py").run()
    assert not at.exception
    assert "teacher: 40/100" in at.get("progress")[0].proto.text
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        "".join(json.dumps({"id": f"q{i}", "lang": "en", "parallel_id": d.id.split(".")[0], "text": d.text})
                + "\n" for i, d in enumerate(DOCS))
    )  # fmt: skip
    with Collection.open(collections_dir / "tiny", read_only=True) as col:
        write_json(out / "collection.json", evaluate_collection(col, questions, {s: s for s in col.models}))
    (out / "progress.json").unlink()
    at.run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["model"]) == ["Teacher", "Student"]
    assert {"R@1 other lang.", "R@1 same lang.", "nDCG@10 other", "2,880 set: R@1 other"} <= set(
        table.columns
    )
    calibration = at.dataframe[1].value
    assert list(calibration["threshold"]) == [2.75, 2.75]


def test_quality_page_flags_a_report_of_other_models(app_env, shared_data, tmp_path, tiny_model_dir):
    from app.quality import compute_report

    compute_report(
        {"teacher": str(tiny_model_dir)}, tmp_path / "reports" / "tiny", langs=["de", "en"], limit=4
    )
    at = _app().run()
    at.switch_page("quality_page.py").run()
    assert not at.exception
    assert any("does not cover" in w.value for w in at.warning)
    assert at.button(key="compute-report").label == "Recompute the report"
    assert any(h.value == "Summary" for h in at.subheader)  # the old report is still shown


def test_demo_check_decides_reuse_resume_or_rebuild(
    collections_dir, tiny_model_dir, tiny_model_dir_b, tmp_path
):
    import json
    import os

    from app.demo_check import COMPLETE, REBUILD, RESUME, main

    col, stamp = str(collections_dir / "tiny"), tmp_path / "stamp.json"
    specs = [str(tiny_model_dir), str(tiny_model_dir_b)]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": d.id}) + "\n" for d in DOCS))
    assert main([col, "--corpus", str(corpus), "--stamp", str(stamp), "--write-stamp", *specs]) == COMPLETE
    assert main([col, "--corpus", str(corpus), "--stamp", str(stamp), *specs]) == COMPLETE
    # issue 25: a collection of another corpus (the parallel set vs the one-language demo corpus) is rebuilt
    other = tmp_path / "other.jsonl"
    other.write_text('{"id": "cat.en"}\n')
    assert main([col, "--corpus", str(other), "--stamp", str(stamp), *specs]) == REBUILD
    # created for a corpus it does not hold all of yet (an interrupted `indexer add`): resume
    corpus.write_text(corpus.read_text() + '{"id": "one.more"}\n')
    main([col, "--corpus", str(corpus), "--stamp", str(stamp), "--write-stamp", *specs])
    assert main([col, "--corpus", str(corpus), "--stamp", str(stamp), *specs]) == RESUME
    assert main([col, "--stamp", str(stamp), specs[0], "pkg:all-MiniLM-L6-v2"]) == REBUILD
    weights = next(tiny_model_dir_b.glob("*.safetensors"))
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # "retrained" in place
    assert main([col, "--stamp", str(stamp), *specs]) == REBUILD
