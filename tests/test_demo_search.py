"""Issue 25: the one-language demo corpus, match strength and its calibration, the collection's own
question report, backend measurements read instead of re-timed, model facts for column headers."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from app.calibration import NO_MATCH_BELOW, Reference, build, load, sample_reference
from app.collection_report import calibration_table, evaluate_collection, group_of, score_question
from app.demo_corpus import LANGS, demo_language, select, write_demo_corpus
from app.matching import ColumnSearch, sentence_spans
from distill.documents import Document

REPO = Path(__file__).resolve().parents[1]


def _parallel_records(n: int = 240) -> list[dict]:
    return [
        {
            "id": f"xquad.{i:03d}.{lang}",
            "lang": lang,
            "title": f"A{i // 5}",
            "text": f"p{i} {lang}",
            "parallel_id": f"xquad.{i:03d}",
        }
        for lang in LANGS
        for i in range(n)
    ]


def test_demo_corpus_keeps_each_paragraph_once_20_per_language_articles_span_languages(tmp_path):
    chosen = select(_parallel_records())
    assert len(chosen) == 240 and len({r["parallel_id"] for r in chosen}) == 240
    assert set(Counter(r["lang"] for r in chosen).values()) == {20}
    by_article: dict[str, set[str]] = {}
    for r in chosen:
        by_article.setdefault(r["title"], set()).add(r["lang"])
    assert all(len(langs) == 5 for langs in by_article.values())  # 5 paragraphs, 5 languages
    assert demo_language(9) == "th"  # the Warsaw stock exchange paragraph: the browser test's example
    src, dst = tmp_path / "all.jsonl", tmp_path / "out" / "demo.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in _parallel_records()))
    assert write_demo_corpus(src, dst) == 240
    assert dst.read_text() == "".join(
        json.dumps(r, ensure_ascii=False) + "\n" for r in chosen
    )  # deterministic
    src.write_text("".join(json.dumps(r) + "\n" for r in _parallel_records() if r["lang"] != "th"))
    with pytest.raises(ValueError, match="240 paragraphs but 220"):
        write_demo_corpus(src, dst)


def test_strength_is_relative_to_the_querys_unrelated_cosines():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(500, 256)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ref = sample_reference(vectors)
    assert len(ref.vectors) == 256 and abs(ref.pair_mean) < 0.05
    query = vectors[7]
    unrelated = float(vectors[300] @ query)
    strong, weak = ref.strengths(query, [0.9, unrelated])
    assert strong > NO_MATCH_BELOW > weak
    # A query close to everything (an emoji under e5): a high cosine that stands out from nothing.
    hub = vectors[:256].mean(0) / np.linalg.norm(vectors[:256].mean(0))
    shifted = Reference(0.2 * ref.vectors + 0.8 * hub, 0.0, ref.pair_std)
    scores = shifted.vectors @ hub
    assert scores.max() > 0.8 and shifted.strengths(hub, [scores.max()])[0] < NO_MATCH_BELOW


def test_no_good_match_state_and_sentence_spans():
    assert ColumnSearch(hits=[object()], strengths=[NO_MATCH_BELOW - 0.1]).no_good_match
    assert not ColumnSearch(hits=[object()], strengths=[NO_MATCH_BELOW]).no_good_match
    assert not ColumnSearch().no_good_match
    text = "Erste Aussage. Zweite Aussage!  Dritte? 第四句。第五句"
    assert [text[a:b] for a, b in sentence_spans(text)] == [
        "Erste Aussage.", "Zweite Aussage!", "Dritte?", "第四句。", "第五句",
    ]  # fmt: skip
    abbreviated = "Y. pestis wurde z. B. gefunden. Danach mehr."
    assert [abbreviated[a:b] for a, b in sentence_spans(abbreviated)] == [
        "Y. pestis wurde z. B. gefunden.", "Danach mehr.",
    ]  # fmt: skip
    thai = "ตลาดหลักทรัพย์แห่งแรก ก่อตั้งในปี 1817"
    assert len(sentence_spans(thai, lang="th")) == 3
    assert sentence_spans("  one. two", 2, 6) == [(2, 6)]


def test_question_scoring_and_calibration_table():
    assert score_question(["a", "b"], {"a"}) == (True, 1.0)
    hit, ndcg = score_question(["b", "a"], {"a"})
    assert not hit and ndcg == pytest.approx(1 / np.log2(3))
    assert score_question([], {"a"}) == (False, 0.0)
    rows = {r["threshold"]: r for r in calibration_table([1.0, 2.5, 3.0, 9.0], [False, True, True, True])}
    five = rows[NO_MATCH_BELOW]
    assert (five["below"], five["below_correct"], five["above"], five["above_correct"]) == (2, 0.5, 2, 1.0)
    assert group_of("xquad.009.th") == "xquad.009" and group_of("x", {"parallel_id": "g"}) == "g"


@pytest.fixture(scope="module")
def small_collection(tmp_path_factory, tiny_model_dir, tiny_model_dir_b):
    from indexer import Collection

    docs = [
        Document(f"p{i}.{lang}", lang, f"Paragraph {i} about topic {i} in {lang}.")
        for i, lang in enumerate("de en es zh".split() * 3)
    ]
    path = tmp_path_factory.mktemp("cal") / "c"
    with Collection.create(path, models=[str(tiny_model_dir), str(tiny_model_dir_b)]) as col:
        col.add(docs)
    return path


def test_calibration_is_stored_with_the_collection_and_the_report_reuses_its_vectors(
    small_collection, tmp_path
):
    from indexer import Collection

    with Collection.open(small_collection, read_only=True) as col:
        build(col)
        refs = load(small_collection)
        assert set(refs) == set(col.models)
        ids, vectors = col.stored_vectors(col.models[0])
        assert len(ids) == len(vectors) >= 12
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-2)
        questions = tmp_path / "q.jsonl"
        qs = [{"id": f"q{i}", "lang": "en", "parallel_id": f"p{i}", "text": f"topic {i}?"} for i in range(12)]
        qs.append({"id": "gone", "lang": "en", "parallel_id": "p99", "text": "not in the collection"})
        questions.write_text("".join(json.dumps(q) + "\n" for q in qs))
        calls = []
        encode = col.embed_queries
        col.embed_queries = lambda texts, spec: calls.append(len(texts)) or encode(texts, spec)
        result = evaluate_collection(col, questions, {"t": col.models[0], "s": col.models[1]})
    assert sum(calls) == 24  # only the questions (12 answerable, once per model) were embedded
    assert result["questions"] == 12 and result["documents"] == 12
    for m in result["models"].values():
        assert m["same"]["questions"] + m["other"]["questions"] == 12
        cal = {r["threshold"]: r for r in m["calibration"]}[NO_MATCH_BELOW]
        assert cal["below"] + cal["above"] == 12
    assert load(tmp_path) == {}  # no calibration: none (the app then draws one from the stored vectors)


def test_backend_measurements_are_read_not_retimed(tmp_path, monkeypatch, tiny_model_dir):
    import shutil

    from app import backend_pick

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    monkeypatch.setenv("XLSEARCH_DATA", str(tmp_path / "data"))
    timed = []
    monkeypatch.setattr(
        backend_pick, "measure", lambda spec: timed.append(spec) or {"best": "int8", "trials": []}
    )
    entry, source = backend_pick.pick(str(model))
    assert entry["best"] == "int8" and "cached" in source and timed == [str(model)]
    entry, source = backend_pick.pick(str(model))  # the second fresh start reads the cache
    assert timed == [str(model)] and source.endswith(".json")
    (model / "backends.json").write_text(json.dumps({"best": "onnx", "trials": []}))
    assert backend_pick.pick(str(model)) == ({"best": "onnx", "trials": []}, str(model / "backends.json"))
    shipped = backend_pick.stored("pkg:multilingual-e5-small")
    assert shipped is not None and shipped[1].endswith("models/multilingual-e5-small.backends.json")


def test_column_header_facts_come_from_the_model_files(tiny_model_dir):
    from safetensors.numpy import load_file

    from app.model_facts import ModelFacts, describe, model_facts

    facts = model_facts(str(tiny_model_dir), "torch")
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert facts.layers == config["num_hidden_layers"]
    tensors = load_file(next(tiny_model_dir.glob("*.safetensors")))
    assert facts.params == sum(t.size for t in tensors.values() if t.dtype.kind == "f") > 0
    teacher = ModelFacts(None, 12, 117_653_760, 10.0)
    student = ModelFacts(None, 6, 35_568_384, 47.0)
    assert (
        describe("Student", student, teacher)
        == "Student (6 layers, 36M parameters, 4.7x faster than the teacher)"
    )
    assert describe("Teacher", ModelFacts(None)) == "Teacher"


def test_untrim_step_is_skipped_for_a_student_that_needs_none(tmp_path, monkeypatch):
    from distill import paths

    shipped = tmp_path / "models" / "student-offline"
    shipped.mkdir(parents=True)
    (shipped / "modules.json").write_text("[]")
    (shipped / "model.safetensors").write_bytes(b"")
    monkeypatch.setattr(paths, "shipped_student", lambda: shipped)
    (shipped / "config.json").write_text(
        json.dumps({"model_type": "xlsearch_recurrent", "vocab_size": 64000})
    )
    assert paths.needs_untrim(shipped) and paths.default_student(tmp_path / "data") == shipped
    (shipped / "config.json").write_text(
        json.dumps({"model_type": "xlsearch_recurrent", "token_map_size": 250002})
    )
    assert not paths.needs_untrim(shipped) and paths.default_student(tmp_path / "data") == shipped
    untrimmed = tmp_path / "data" / "students" / paths.UNTRIMMED_STUDENT
    untrimmed.mkdir(parents=True)
    (untrimmed / "model.safetensors").write_bytes(b"")
    assert paths.default_student(tmp_path / "data") == shipped  # a stale untrimmed copy is not served


DEMO = Path(os.environ.get("XLSEARCH_DATA") or REPO / "data") / "reports" / "xquad" / "collection.json"


@pytest.mark.slow
def test_calibration_on_the_dev_questions_separates_right_from_wrong_first_hits():
    """On the demo collection's report (`make demo`): per model, first hits at or above the threshold
    are right far more often than those below it, and the teacher is right on most of them."""
    if not DEMO.is_file():
        pytest.skip(f"no demo report at {DEMO} (run `make demo`)")
    result = json.loads(DEMO.read_text())
    assert result["no_match_below"] == NO_MATCH_BELOW and result["documents"] == 240
    for label, m in result["models"].items():
        row = next(r for r in m["calibration"] if r["threshold"] == NO_MATCH_BELOW)
        assert row["above"] > 0 and row["below"] > 0, label
        assert row["above_correct"] > row["below_correct"] + 0.15, (label, row)
        assert m["other"]["questions"] > 10 * m["same"]["questions"]  # 11 in 12 answers in another language
    teacher = next(m for m in result["models"].values() if "e5" in m["spec"])
    assert next(r for r in teacher["calibration"] if r["threshold"] == NO_MATCH_BELOW)["below"] < 0.35 * 3542


def test_best_sentence_is_one_of_the_hits_sentences(small_collection):
    from app.matching import best_sentences, search_column
    from indexer import Collection

    with Collection.open(small_collection, read_only=True) as col:
        spec = col.models[0]
        result = search_column(col, spec, "topic 3", 8, [], None)
        assert not result.error and len(result.hits) == 8 and result.strengths == []
        assert set(result.marks) == set(range(5))  # the first five hits, single-chunk ones included
        for i, (a, b) in result.marks.items():
            hit = result.hits[i]
            assert (a, b) in sentence_spans(hit.text, hit.chunk_start, hit.chunk_end, hit.lang)
        assert best_sentences(col.encoder(spec), col.embed_queries(["x"], spec)[0], []) == {}
