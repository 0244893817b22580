"""The app's pure logic: agreement between rankings, which model fills which column, escaping."""

from __future__ import annotations

import pytest

from app.display import highlight, hit_html, snippet_html
from app.ranking import agreement, timed
from app.roles import choose_models, short_name
from app.settings import AppSettings
from distill.modelspec import same_spec

E5, MINI, STUDENT = "pkg:multilingual-e5-small", "pkg:all-MiniLM-L6-v2", "/models/students/offline"


def test_overlap_at_k_by_hand():
    a = agreement(["d1", "d2", "d3", "d4"], ["d3", "d9", "d1", "d8"], k=4)
    assert (a.shared, a.compared, a.top1_same) == (2, 4, False)
    assert a.overlap == pytest.approx(0.5)
    assert "overlap@4 = 0.50 (2 of 4" in a.sentence()
    # only the top k count
    assert agreement(["d1", "d2", "d3"], ["d1", "d3", "d2"], k=1).overlap == 1.0
    assert agreement(["d1", "d2", "d3"], ["d2", "d1"], k=1).overlap == 0.0


def test_overlap_with_fewer_hits_than_k():
    # A language filter left 3 documents: identical lists agree fully, not 3/10.
    full = agreement(["a", "b", "c"], ["c", "b", "a"], k=10)
    assert (full.shared, full.compared, full.overlap) == (3, 3, 1.0)
    none = agreement([], [], k=10)
    assert none.overlap == 0.0 and "nothing to compare" in none.sentence()


def test_timed_turns_errors_into_messages():
    ok = timed(lambda: [1, 2])
    assert ok.hits == [1, 2] and ok.error is None and ok.latency_ms >= 0

    def fail():
        raise ValueError("model 'x' is not in this collection")

    bad = timed(fail)
    assert bad.hits == [] and bad.error == "ValueError: model 'x' is not in this collection"


def test_same_spec_compares_directories_by_path(tmp_path, monkeypatch):
    (tmp_path / "students" / "offline").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert same_spec(E5, E5) and not same_spec(E5, MINI)
    assert same_spec(
        str(tmp_path / "students" / "offline"), str(tmp_path / "students" / ".." / "students" / "offline")
    )
    assert (
        short_name(E5) == "multilingual-e5-small"
        and short_name("/a/b/students/offline") == "students/offline"
    )


def test_choose_models_prefers_the_student_then_the_labelled_standin():
    both = choose_models([E5, STUDENT], teacher=E5, student=STUDENT, standin=MINI)
    assert (both.teacher.spec, both.student.spec, both.student.report_label) == (E5, STUDENT, "student")
    assert both.student.label.startswith("Student ·") and not both.warnings

    standin = choose_models([E5, MINI], teacher=E5, student=STUDENT, standin=MINI)
    assert standin.student.spec == MINI and standin.student.report_label == "stand-in"
    assert standin.student.label.startswith("Student (stand-in)") and "stands in" in standin.student.note

    other = choose_models(["pkg:x", E5], teacher=E5, student=STUDENT, standin=MINI)
    assert (
        other.teacher.spec == E5 and other.student.spec == "pkg:x" and other.student.report_label == "second"
    )


def test_choose_models_explains_missing_roles():
    single = choose_models([E5], teacher=E5, student=STUDENT, standin=MINI)
    assert single.student is None and "single model" in single.warnings[0]
    no_teacher = choose_models([MINI, "pkg:x"], teacher=E5, student=STUDENT, standin=MINI)
    assert no_teacher.teacher.spec == MINI and "not indexed" in no_teacher.warnings[0]
    empty = choose_models([], teacher=E5, student=STUDENT, standin=MINI)
    assert empty.teacher is None and empty.warnings


def test_snippet_marks_the_chunk_only_inside_longer_documents():
    text = "First sentence. <b>Second</b> sentence & more. Third one."
    start = text.index("<b>")
    end = text.index(" Third")
    html, complete = snippet_html(text, start, end)
    assert html == "First sentence. <mark>&lt;b&gt;Second&lt;/b&gt; sentence &amp; more.</mark> Third one."
    assert complete is True  # nothing clipped: the snippet is the whole text, no "full text" needed
    whole, complete = snippet_html(text, 0, len(text))
    assert "<mark>" not in whole and complete is True
    # issue 25: a single-chunk paragraph still gets its best sentence marked
    one, _ = snippet_html("Only one sentence here.", 0, 23, sentence=True)
    assert one == "<mark>Only one sentence here.</mark>"
    far = "x " * 300 + "Answer sentence."
    clipped_before, complete = snippet_html(far, far.index("Answer"), len(far), sentence=True)
    assert clipped_before.startswith("… ") and "<mark>Answer sentence.</mark>" in clipped_before
    assert complete is False
    long = "word " * 200
    clipped, complete = snippet_html(long, 0, len(long), max_chars=50)
    assert len(clipped) <= 52 and clipped.endswith(" …") and complete is False
    assert highlight("a<b", 1, 2) == "a<mark>&lt;</mark>b"


def test_hit_card_escapes_every_document_field():
    card = hit_html(
        1,
        doc_id='x"><script>',
        lang='de"',
        title="<img src=x onerror=alert(1)>",
        score=0.5,
        text="<script>alert(1)</script> long text " * 20,
        start=0,
        end=30,
    )
    assert "<script" not in card and "<img" not in card
    assert "&lt;script&gt;" in card and "&lt;img src=x onerror=alert(1)&gt;" in card
    assert 'data-lang="de&quot;"' in card and "x&quot;&gt;&lt;script&gt;" in card
    assert "<details>" in card  # the full text is one click away


def test_settings_from_environment(tmp_path):
    s = AppSettings.from_env(
        {"XLSEARCH_COLLECTIONS": str(tmp_path), "XLSEARCH_TEACHER": "pkg:t", "XLSEARCH_THREADS": "2"}
    )
    assert s.collections_dir == tmp_path and s.teacher == "pkg:t" and s.threads == 2
    assert s.collection_path("xquad") == tmp_path / "xquad"
    assert s.collection_path(str(tmp_path / "elsewhere")) is None  # a name, never a path (issue 14, D2)
    # the shipped student when the checkout has one, else the one `distill run --config offline` writes
    assert s.standin == MINI and s.student.endswith(
        ("models/student-offline", "students/offline", "students/offline-untrimmed")
    )
