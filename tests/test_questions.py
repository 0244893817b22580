"""The question -> paragraph evaluator (the app's job), FLORES' short half, and how reports lead with them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distill.chunking import CHUNK_OVERLAP, CHUNK_TOKENS, first_sentence_of
from distill.data import Query
from distill.documents import Document
from distill.evaluation import bitext_from_parallel_jsonl, evaluate_models
from distill.evaluation.questions import QuestionEvaluator, question_retrieval
from distill.evaluation.report import build_tables
from distill.models import load_encoder

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def enc_b(tiny_model_dir_b):
    return load_encoder(tiny_model_dir_b)


def _hand_made():
    """2 paragraphs (p0, p1) x languages en, de; 4 questions: each paragraph asked in en and in de."""
    docs = [
        Document(f"{pid}.{lang}", lang, f"text {pid} {lang}", metadata={"parallel_id": pid})
        for pid in ("p0", "p1")
        for lang in ("en", "de")
    ]
    questions = [Query(f"q{i}.{lang}", lang, f"question {i} {lang}") for i in (0, 1) for lang in ("en", "de")]
    answers = {q.id: f"p{q.id[1]}" for q in questions}
    return QuestionEvaluator(questions, docs, answers, name="qa"), docs, questions


def test_r_at_1_per_language_pair_own_language_share_and_ties_by_hand():
    ev, docs, questions = _hand_made()
    # columns: p0.en p0.de p1.en p1.de ; rows: q0.en q0.de q1.en q1.de
    scores = np.array(
        [
            [0.9, 0.1, 0.5, 0.8],  # q0.en: en -> p0 first (hit); de -> p1.de first (miss)
            [
                0.2,
                0.7,
                0.3,
                0.7,
            ],  # q0.de: en -> p1.en (miss); de -> tie p0.de / p1.de, lower id p0.de wins (hit)
            [0.1, 0.2, 0.6, 0.9],  # q1.en: en -> p1.en (hit); de -> p1.de (hit)
            [0.4, 0.1, 0.3, 0.5],  # q1.de: en -> p0.en (miss); de -> p1.de (hit)
        ],
        dtype=np.float32,
    )
    m = ev.score(scores)
    assert m["qa_en-en_r@1"] == 1.0 and m["qa_de-de_r@1"] == 1.0
    assert m["qa_en-de_r@1"] == 0.5 and m["qa_de-en_r@1"] == 0.0
    assert m["qa_xling_r@1"] == pytest.approx(0.25) and m["qa_mono_r@1"] == 1.0
    assert m["qa_en_xling_r@1"] == 0.5 and m["qa_de_xling_r@1"] == 0.0
    # pooled top-10 holds all 4 documents: half of them in the query's language
    assert m["qa_own_lang@10"] == pytest.approx(0.5)
    # pooled rankings: q0.en p0.en (rel), p1.de, p1.en, p0.de (rel) -> AP@20 = (1/1 + 2/4) / 2;
    # q1.en p1.de (rel), p1.en (rel), ... -> 1.0
    assert m["qa_en_map@20"] == pytest.approx((0.75 + 1.0) / 2)
    ev.entries(m)  # every key maps to a report row
    rows = {(e.lang_pair, e.metric) for e in ev.entries(m)}
    assert ("en-de", "r@1") in rows and ("all", "xling_r@1") in rows and ("de", "ndcg@10") in rows


def test_collapse_check_sees_a_collapsed_model():
    ev, docs, questions = _hand_made()
    same = np.tile(np.eye(4, dtype=np.float32)[:1], (4, 1))  # every text on one vector
    m = ev.collapse(same, same, same @ same.T)
    assert m["qa_cos_dd_mean"] == pytest.approx(1.0) and m["qa_cos_dd_std"] == pytest.approx(0.0, abs=1e-6)
    spread = np.eye(4, dtype=np.float32)
    m = ev.collapse(spread, spread, spread @ spread.T)
    assert m["qa_cos_dd_mean"] == pytest.approx(0.0) and m["qa_cos_qd_mean"] < 0.5


def test_pooled_metrics_agree_with_information_retrieval_evaluator(shared_data, enc_b, tiny_model_dir_b):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    ev = question_retrieval(
        shared_data / "dev/xquad_questions_dev.jsonl",
        shared_data / "corpus/xquad_paragraphs.jsonl",
        langs=["de", "es"],
        questions=8,
        paragraphs=10,
    )
    # one chunk per paragraph (first sentences), so "a document scores as its best chunk" is the whole document
    short = [
        Document(d.id, d.lang, first_sentence_of(d.text)[:25].strip(), metadata=d.metadata)
        for d in ev.paragraphs
    ]
    ev = QuestionEvaluator(
        ev.questions, short, dict(zip([q.id for q in ev.questions], ev.answer_pid, strict=True)), name="xq"
    )
    assert ev.chunks(enc_b)[1].tolist() == list(range(len(short)))  # one chunk per paragraph
    ours = ev(enc_b)
    queries = {q.id: q.text for q in ev.questions}
    corpus = {d.id: d.text for d in short}
    qrels = {
        q.id: {d.id for d in short if d.metadata["parallel_id"] == ev.answer_pid[i]}
        for i, q in enumerate(ev.questions)
    }
    st_model = SentenceTransformer(str(tiny_model_dir_b), device="cpu")
    theirs = InformationRetrievalEvaluator(
        queries,
        corpus,
        qrels,
        name="xq",
        map_at_k=[20],
        ndcg_at_k=[10],
        mrr_at_k=[10],
        accuracy_at_k=[1],
        precision_recall_at_k=[10],
        write_csv=False,
    )(st_model)
    assert ours["xq_ndcg@10"] == pytest.approx(theirs["xq_cosine_ndcg@10"], abs=1e-6)
    assert ours["xq_map@20"] == pytest.approx(theirs["xq_cosine_map@20"], abs=1e-6)
    assert ours["xq_recall@10"] == pytest.approx(theirs["xq_cosine_recall@10"], abs=1e-6)
    assert ours["xq_mrr@10"] == pytest.approx(theirs["xq_cosine_mrr@10"], abs=1e-6)


def test_chunks_like_the_indexer_and_scores_a_document_by_its_best_chunk(enc_b):
    from indexer.config import CollectionSettings

    defaults = CollectionSettings()
    assert (CHUNK_TOKENS, CHUNK_OVERLAP, defaults.embed_title) == (
        defaults.chunk_tokens,
        defaults.chunk_overlap,
        False,
    )
    long_text = " ".join(f"Sentence number {i} talks about topic {i % 7}." for i in range(80))
    docs = [
        Document("long.en", "en", long_text, metadata={"parallel_id": "p0"}),
        Document("short.en", "en", "A short paragraph.", metadata={"parallel_id": "p1"}),
    ]
    qs = [Query("q.en", "en", "topic 3")]
    ev = QuestionEvaluator(qs, docs, {"q.en": "p0"}, name="qa", chunk_tokens=40, chunk_overlap=8)
    texts, owner = ev.chunks(enc_b)
    assert owner.tolist().count(0) > 1 and owner.tolist().count(1) == 1
    assert all(t in long_text for t in texts[:-1])
    q = enc_b.encode(["topic 3"], prefix="query")
    c = enc_b.encode(texts, prefix="passage")
    best = float((q @ c[owner == 0].T).max())
    m = ev(enc_b)
    assert m["qa_cos_rel_mean"] == pytest.approx(best, abs=1e-5)


def test_question_files_sample_questions_with_all_their_languages(shared_data):
    ev = question_retrieval(
        shared_data / "dev/xquad_questions_dev.jsonl",
        shared_data / "corpus/xquad_paragraphs.jsonl",
        questions=5,
        paragraphs=7,
    )
    assert len(ev.questions) == 5 * 11 and len(ev.paragraphs) == 7 * 12
    assert set(ev.answer_pid) <= set(ev.d_pids)
    full = question_retrieval(
        shared_data / "dev/xquad_questions_dev.jsonl", shared_data / "corpus/xquad_paragraphs.jsonl"
    )
    assert (len(full.questions), len(full.paragraphs)) == (3542, 2880)


def test_question_file_errors_name_file_and_line(tmp_path, shared_data):
    from distill.data import DataError

    bad = tmp_path / "q.jsonl"
    bad.write_text(
        '{"id": "a", "lang": "en", "text": "Who?", "parallel_id": "xquad.000"}\n{"id": "b", "lang": "en"}\n'
    )
    with pytest.raises(DataError, match=r"q.jsonl:2.*text"):
        question_retrieval(bad, shared_data / "corpus/xquad_paragraphs.jsonl")
    bad.write_text('{"id": "a", "lang": "en", "text": "Who?", "parallel_id": "nowhere"}\n')
    with pytest.raises(DataError, match="no paragraph"):
        question_retrieval(bad, shared_data / "corpus/xquad_paragraphs.jsonl")


def test_flores_short_half_uses_the_shorter_english_sentences(shared_data):
    evs = bitext_from_parallel_jsonl(
        shared_data / "dev/flores200_devtest.jsonl", langs=["de"], name_prefix="flores", short_half=True
    )
    full, short = [e for e in evs if e.src_lang == "deu_Latn"]
    assert (full.name, short.name, short.dataset) == (
        "flores-deu_Latn",
        "flores-short-deu_Latn",
        "flores-short",
    )
    assert len(full.tgt) == 1012 and len(short.tgt) == 506
    assert max(len(t) for t in short.tgt) <= sorted(len(t) for t in full.tgt)[506]


def test_report_leads_with_the_question_task_and_shows_collapse(enc_b, tiny_model_dir, tmp_path):
    ev, _, _ = _hand_made()
    run = evaluate_models({"teacher": tiny_model_dir, "student": enc_b}, [ev], tmp_path / "rep")
    tables = build_tables(run)
    summary = tables["summary"][0]
    assert summary.rows[0][1] == "question" and "cross-lingual" in summary.rows[0][2]
    assert "the app's job" in summary.note
    (collapse,) = tables["collapse"]
    assert collapse.header == ["cosine", "teacher", "student"] and len(collapse.rows) == 5
    assert (tmp_path / "rep/figures/qa-per-language.png").is_file()
    text = (tmp_path / "rep/report.md").read_text()
    assert text.index("R@1 cross-lingual") < text.index("Collapse check") < text.index("## Models")


def test_app_report_is_stale_when_older_or_for_other_models(enc_b, tiny_model_dir, tmp_path):
    from app.quality import REPORT_SUITE, report_is_current

    ev, _, _ = _hand_made()
    evaluate_models({"teacher": tiny_model_dir}, [ev], tmp_path / "old", suite="app-retrieval")
    assert not report_is_current(tmp_path / "old", {"teacher": str(tiny_model_dir)})
    evaluate_models({"teacher": tiny_model_dir}, [ev], tmp_path / "new", suite=REPORT_SUITE)
    assert report_is_current(tmp_path / "new", {"teacher": str(tiny_model_dir)})
    assert not report_is_current(tmp_path / "new", {"teacher": str(tiny_model_dir), "student": "x"})
    assert not report_is_current(tmp_path / "missing", {"teacher": str(tiny_model_dir)})


def test_agreement_says_where_the_teachers_first_hit_is():
    from app.ranking import agreement

    a = agreement(["d1", "d2"], ["d3", "d4"], k=2, b_deeper=["d3", "d4", "d5", "d6", "d7", "d8", "d1"])
    assert a.a_top1_rank_in_b == 7 and "teacher's #1 is the student's #7" in a.sentence()
    missing = agreement(["d1"], ["d3"], k=1, b_deeper=["d3", "d4"])
    assert missing.a_top1_rank_in_b is None and "not in the student's top 2" in missing.sentence()
    assert "student's #1" in agreement(["d1", "d2"], ["d1"], k=2).sentence()
