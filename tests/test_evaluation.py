"""Evaluators on tiny random models: agreement with sentence-transformers, the cache, cost, builders, suite."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distill.data import DataError
from distill.evaluation import (
    BitextEvaluator,
    CostEvaluator,
    EmbeddingCache,
    RetrievalEvaluator,
    StsEvaluator,
    bitext_from_pair_tsv,
    bitext_from_parallel_jsonl,
    dev_suite,
    parallel_corpus_retrieval,
    retrieval_from_files,
    run_evaluators,
    sts_from_tsv,
)
from distill.models import load_encoder

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def enc_b(tiny_model_dir_b):
    return load_encoder(tiny_model_dir_b)


@pytest.fixture(scope="module")
def enc_a(tiny_model_dir):
    return load_encoder(tiny_model_dir)


@pytest.fixture(scope="module")
def st_model(tiny_model_dir_b):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(tiny_model_dir_b), device="cpu")


# --- agreement with sentence-transformers' evaluators (same model, same real data) ---------------


def test_bitext_agrees_with_translation_evaluator(shared_data, enc_b, st_model):
    from sentence_transformers.sentence_transformer.evaluation import TranslationEvaluator

    ev = bitext_from_pair_tsv(shared_data / "parallel/multi30k/multi30k.val.en-de.tsv", limit=60, name="m30k")
    ours = ev(enc_b)
    theirs = TranslationEvaluator(ev.src, ev.tgt, name="m30k", write_csv=False)(st_model)
    assert ours["m30k_src2trg_acc"] == pytest.approx(theirs["m30k_src2trg_accuracy"])
    assert ours["m30k_trg2src_acc"] == pytest.approx(theirs["m30k_trg2src_accuracy"])
    assert ours["m30k_accuracy"] == pytest.approx(theirs["m30k_mean_accuracy"])
    assert ours["m30k_accuracy"] > 1 / 60  # a random tiny model still beats chance on real bitext


def test_sts_agrees_with_embedding_similarity_evaluator(shared_data, enc_b, st_model):
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    (ev,) = sts_from_tsv(shared_data / "sts/stsb_multi_mt/stsb-de-dev.tsv", limit=80, name="de")
    ours = ev(enc_b)
    theirs = EmbeddingSimilarityEvaluator(
        ev.sentences1, ev.sentences2, ev.scores.tolist(), name="de", write_csv=False
    )(st_model)
    assert ours["de_spearman"] == pytest.approx(theirs["de_spearman_cosine"], abs=1e-6)
    assert ours["de_pearson"] == pytest.approx(theirs["de_pearson_cosine"], abs=1e-5)  # float32 noise


def test_retrieval_agrees_with_information_retrieval_evaluator(shared_data, enc_b, st_model):
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    ev = parallel_corpus_retrieval(
        shared_data / "corpus/xquad_paragraphs.jsonl",
        name="xq",
        query_langs=["en", "es"],
        doc_langs=["de", "zh"],
        limit=6,
        per_target_language=False,
    )
    assert not ev.excluded  # no query's own copy in this corpus: the same task as sentence-transformers'
    ours = ev(enc_b)
    queries = {ev.q_ids[i]: ev.q_texts[i] for i in ev.relevant}
    corpus = dict(zip(ev.d_ids, ev.d_texts, strict=True))
    qrels = {ev.q_ids[i]: {ev.d_ids[j] for j in docs} for i, docs in ev.relevant.items()}
    theirs = InformationRetrievalEvaluator(
        queries,
        corpus,
        qrels,
        name="xq",
        map_at_k=[len(corpus)],
        accuracy_at_k=[1],
        precision_recall_at_k=[1, 5, 10],
        write_csv=False,
        score_functions={
            "cosine": lambda a, b: a @ b.T / (a.norm(dim=1, keepdim=True) * b.norm(dim=1).unsqueeze(0))
        },
    )(st_model)
    assert ours["xq_ndcg@10"] == pytest.approx(theirs["xq_cosine_ndcg@10"], abs=1e-6)
    assert ours["xq_mrr@10"] == pytest.approx(theirs["xq_cosine_mrr@10"], abs=1e-6)
    assert ours["xq_map"] == pytest.approx(theirs[f"xq_cosine_map@{len(corpus)}"], abs=1e-6)
    for k in (1, 5, 10):
        assert ours[f"xq_recall@{k}"] == pytest.approx(theirs[f"xq_cosine_recall@{k}"], abs=1e-6)


# --- prompts, cache, training mode ---------------------------------------------------------------


def test_prefixes_query_for_symmetric_tasks_passage_for_documents(enc_a):
    cache = EmbeddingCache()
    src, tgt = (
        ["Die Katze sitzt auf der Matte.", "Ein Mann spielt Gitarre."],
        ["The cat sits on the mat.", "A man is playing a guitar."],
    )
    BitextEvaluator(src, tgt, name="b", cache=cache)(enc_a)
    expected = enc_a.encode(src, prefix="query")
    got = cache.embed(enc_a, src, prefix="query")
    np.testing.assert_allclose(got, expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-5)
    assert cache.misses == 4 and cache.hits == 2
    passage = cache.embed(enc_a, src, prefix="passage")  # e5-style prompts differ: new embeddings
    assert cache.misses == 6 and not np.allclose(passage, got)


def test_cache_reuses_texts_and_sees_weight_updates(tiny_model_dir_b):
    enc = load_encoder(tiny_model_dir_b)
    cache = EmbeddingCache()
    texts = ["Who won the Super Bowl?", "Wer hat den Super Bowl gewonnen?"]
    ev = BitextEvaluator(texts[:1], texts[1:], name="b", cache=cache)
    first = cache.embed(enc, texts, prefix="query")
    ev(enc)
    assert cache.hits == 2 and cache.misses == 2
    with torch.no_grad():  # an optimizer step updates weights in place, like this
        next(enc.model.parameters()).add_(0.5)
    second = cache.embed(enc, texts, prefix="query")
    assert cache.misses == 4
    assert not np.allclose(first, second)


def test_model_without_prompts_embeds_query_and_passage_once(enc_b):
    cache = EmbeddingCache()
    cache.embed(enc_b, ["a b c"], prefix="query")
    cache.embed(enc_b, ["a b c"], prefix="passage")
    assert (cache.misses, cache.hits) == (1, 1)


def test_evaluation_runs_in_eval_mode_and_restores_training(tiny_model_dir_b):
    enc = load_encoder(tiny_model_dir_b)
    enc.model.train()  # dropout on, as during distillation
    texts = ["The cat sits on the mat.", "Le chat est assis sur le tapis.", "猫坐在垫子上。"]
    ev = StsEvaluator(texts, texts[::-1], [1.0, 5.0, 1.0], name="s", cache=EmbeddingCache())
    a, b = ev(enc), ev.__class__(texts, texts[::-1], [1.0, 5.0, 1.0], name="s", cache=EmbeddingCache())(enc)
    assert a == b  # deterministic: dropout was off
    assert enc.model.training


def test_run_evaluators_merges_and_rejects_clashes(enc_b):
    texts = ["The cat sits on the mat.", "A man is playing a guitar.", "Who won the Super Bowl?"]
    de = ["Die Katze sitzt auf der Matte.", "Ein Mann spielt Gitarre.", "Wer hat den Super Bowl gewonnen?"]
    evs = [BitextEvaluator(de, texts, name="b"), StsEvaluator(texts, de, [4.0, 5.0, 3.0], name="s")]
    calls = []
    merged = run_evaluators(enc_b, evs, progress=lambda i, n, name: calls.append((i, n, name)))
    assert set(merged) == {"b_src2trg_acc", "b_trg2src_acc", "b_accuracy", "s_spearman", "s_pearson"}
    assert calls[-1] == (2, 2, "done")
    with pytest.raises(ValueError, match="repeats metric keys"):
        run_evaluators(enc_b, [evs[0], BitextEvaluator(texts, de, name="b")])


def test_evaluator_input_checks():
    with pytest.raises(ValueError, match="must align"):
        BitextEvaluator(["a", "b"], ["x"], name="b")
    with pytest.raises(ValueError, match="no sentence pairs"):
        BitextEvaluator([], [], name="b")
    with pytest.raises(ValueError, match="at least two"):
        StsEvaluator(["a"], ["b"], [1.0], name="s")
    with pytest.raises(ValueError, match="differ in length"):
        StsEvaluator(["a", "b"], ["b", "c"], [1.0], name="s")


# --- cost ---------------------------------------------------------------------------------------


def test_cost_counts_parameters_disk_and_speed(tiny_model_dir_b):
    enc = load_encoder(tiny_model_dir_b)
    m = CostEvaluator(["a short sentence"] * 40, batch_size=8, threads=1)(enc)
    stored = sum(p.numel() for p in enc.model.parameters())
    assert m["cost_params_stored"] == stored
    assert m["cost_params_effective"] == stored  # a plain BERT applies each weight once
    assert m["cost_params_embedding"] == sum(
        e.weight.numel() for e in enc.model.modules() if isinstance(e, torch.nn.Embedding)
    )
    on_disk = sum(f.stat().st_size for f in tiny_model_dir_b.rglob("*") if f.is_file())
    assert m["cost_disk_mb"] == pytest.approx(on_disk / 2**20)
    assert m["cost_memory_mb"] == pytest.approx(stored * 4 / 2**20, rel=0.05)  # fp32 + a few buffers
    assert m["cost_sentences_per_s"] > 0 and m["cost_peak_mb"] >= 0
    assert torch.get_num_threads() == 1


def test_cost_counts_recurrent_layers_once_per_pass(tiny_model_dir_b):
    enc = load_encoder(tiny_model_dir_b)
    layers = enc.model.encoder.layer
    shared = layers[0]
    enc.model.encoder.layer = torch.nn.ModuleList([layers[0], layers[1], shared])  # L0 L1 L0: recurrence
    enc.model.config.num_hidden_layers = 3
    m = CostEvaluator(["a b"], batch_size=1)(enc)
    layer_params = sum(p.numel() for p in shared.parameters())
    assert m["cost_params_stored"] == sum(p.numel() for p in enc.model.parameters())
    assert m["cost_params_effective"] == m["cost_params_stored"] + layer_params


# --- builders from files: clear errors on malformed input ----------------------------------------


def test_pair_tsv_builder_and_errors(tmp_path):
    good = tmp_path / "pairs.tsv"
    good.write_text("en\tde\nThe cat.\tDie Katze.\nA man.\tEin Mann.\n", encoding="utf-8")
    ev = bitext_from_pair_tsv(good)
    assert (ev.src, ev.tgt, ev.lang_pair) == (["Die Katze.", "Ein Mann."], ["The cat.", "A man."], "de-en")
    bad = tmp_path / "bad.tsv"
    bad.write_text("en\tde\nonly one column\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.tsv:2: expected 2 tab-separated columns"):
        bitext_from_pair_tsv(bad)
    empty = tmp_path / "empty.tsv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="file is empty"):
        bitext_from_pair_tsv(empty)


def test_sts_builder_groups_language_pairs_and_errors(tmp_path):
    path = tmp_path / "sts.tsv"
    rows = [
        "sentence1\tsentence2\tscore\tlang1\tlang2",
        "a\tb\t1\ten\ten",
        "c\td\t2\ten\ten",
        "e\tf\t3\ten\tde",
        "g\th\t4\ten\tde",
        "i\tj\t5\ten\tde",
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    evs = sts_from_tsv(path)
    assert [(e.name, e.lang_pair, len(e.scores)) for e in evs] == [
        ("sts-en-en", "en-en", 2),
        ("sts-en-de", "en-de", 3),
    ]
    missing = tmp_path / "missing.tsv"
    missing.write_text("sentence1\tsentence2\na\tb\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"lacks column\(s\) \['score'\]"):
        sts_from_tsv(missing)


def test_retrieval_files_with_unknown_ids_fail_clearly(tmp_path):
    q, c, r = tmp_path / "q.jsonl", tmp_path / "c.jsonl", tmp_path / "r.tsv"
    q.write_text('{"id": "q1", "lang": "en", "text": "who"}\n', encoding="utf-8")
    c.write_text('{"id": "d1", "lang": "de", "text": "wer"}\n', encoding="utf-8")
    r.write_text("query_id\tdoc_id\trelevance\nq1\td2\t1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"document id\(s\) not in"):
        retrieval_from_files(q, c, r)
    r.write_text("query_id\tdoc_id\trelevance\nq1\td1\t1\n", encoding="utf-8")
    ev = retrieval_from_files(q, c, r)
    assert isinstance(ev, RetrievalEvaluator) and ev.name == "q"


def test_parallel_jsonl_builder_selects_languages(tmp_path):
    path = tmp_path / "flores.jsonl"
    lines = []
    for i in range(3):
        for lang in ("eng_Latn", "deu_Latn", "fra_Latn"):
            lines.append(f'{{"id": "s{i}", "lang": "{lang}", "text": "{lang} {i}"}}')
    path.write_text("\n".join(lines), encoding="utf-8")
    evs = bitext_from_parallel_jsonl(path, langs=["de"], limit=2)
    assert [e.name for e in evs] == ["flores-deu_Latn"]
    assert len(evs[0].src) == 2 and evs[0].tgt[0].startswith("eng_Latn")
    with pytest.raises(DataError, match="none of the languages"):
        bitext_from_parallel_jsonl(path, langs=["zh"])


# --- the dev suite ------------------------------------------------------------------------------------


def test_quick_suite_contents(shared_data):
    evs = dev_suite(quick=True, data_dir=shared_data)
    names = [e.name for e in evs]
    flores = [
        f"flores{short}-{code}"
        for code in ("arb_Arab", "deu_Latn", "spa_Latn", "zho_Hans")
        for short in ("", "-short")
    ]
    assert names == ["xquad-questions", *flores, "multi30k-de", "stsb-en", "stsb-de", "stsb-en-de", "cost"]
    questions = evs[0]
    # the question task first (the app's job), on a fixed sample: 50 questions x 11 languages, 60 paragraphs x 12
    assert questions.primary_metric == "xquad-questions_xling_r@1"
    assert len(questions.questions) == 50 * 11 and len(questions.paragraphs) == 60 * 12
    # FLORES against all 1,012 candidates, and its short half
    assert (
        len(evs[1].src) == 1012
        and evs[1].primary_metric == "flores-arb_Arab_accuracy"
        and len(evs[2].src) == 506
    )
    stsb_en, stsb_de, cross = evs[10:13]
    assert (
        cross.sentences1 == stsb_en.sentences1 and cross.sentences2 == stsb_de.sentences2
    )  # joined on pair_id


def test_full_suite_respects_langs(shared_data):
    evs = dev_suite(langs=["deu_Latn", "fr"], data_dir=shared_data, include_cost=False)
    names = [e.name for e in evs]
    assert evs[0].info()["query_langs"] == ["de", "en"] and evs[0].info()["documents"] == 240 * 2
    assert names == [
        "xquad-questions",
        "flores-deu_Latn",
        "flores-short-deu_Latn",
        "flores-fra_Latn",
        "flores-short-fra_Latn",
        "multi30k-de",
        "multi30k-fr",
        "stsb-en",
        "stsb-de",
        "stsb-fr",
        "stsb-en-de",
        "stsb-en-fr",
        "xquad",
        "xquad-pooled",
        "xquad-sentence",
    ]
    xquad, pooled, sentence = evs[-3:]
    assert xquad.info()["doc_langs"] == ["de", "en"] and xquad.info()["documents"] == 40
    # each query's own copy is in the corpus: it must leave the ranking, not take rank 1
    assert len(pooled.excluded) == len(pooled.relevant) == 40
    assert all(pooled.d_texts[d[0]] == pooled.q_texts[q] for q, d in pooled.excluded.items())
    # the same set with only each paragraph's first sentence as the query
    assert sentence.d_texts == pooled.d_texts and sentence.relevant.keys() == pooled.relevant.keys()
    assert all(pooled.q_texts[i].startswith(q) for i, q in enumerate(sentence.q_texts))
    shorter = sum(len(q) < len(pooled.q_texts[i]) for i, q in enumerate(sentence.q_texts))
    assert shorter >= 0.9 * len(sentence.q_texts)  # a one-sentence paragraph is its own first sentence


def test_suite_parts_for_the_app(shared_data):
    evs = dev_suite(data_dir=shared_data, parts=["retrieval", "cost"])
    assert [e.name for e in evs] == ["xquad", "xquad-pooled", "xquad-sentence", "cost"]
    with pytest.raises(ValueError, match="unknown dev suite parts"):
        dev_suite(data_dir=shared_data, parts=["bogus"])


# --- the real packaged models ----------------------------------------------------------------------


@pytest.mark.slow
def test_quick_suite_on_the_real_models(shared_data):
    """The multilingual teacher beats the English-only MiniLM across languages; MiniLM agrees with ST."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import TranslationEvaluator

    from distill.models import resolve_model

    suite = dev_suite(quick=True, langs=["de"], data_dir=shared_data, include_cost=False)
    e5 = run_evaluators(load_encoder("pkg:multilingual-e5-small"), suite)
    minilm_enc = load_encoder("pkg:all-MiniLM-L6-v2")
    minilm = run_evaluators(minilm_enc, suite)
    assert e5["flores-deu_Latn_accuracy"] >= 0.9
    assert e5["flores-deu_Latn_accuracy"] > minilm["flores-deu_Latn_accuracy"]
    assert e5["stsb-en-de_spearman"] > minilm["stsb-en-de_spearman"]
    assert minilm["stsb-en_spearman"] > 0.7  # MiniLM is a good English model
    # the app's job: a German question finds its English paragraph (and back) with e5, far less with MiniLM
    assert e5["xquad-questions_xling_r@1"] > 0.7 > minilm["xquad-questions_xling_r@1"]
    flores = next(ev for ev in suite if ev.name == "flores-deu_Latn")
    st = SentenceTransformer(str(resolve_model("pkg:all-MiniLM-L6-v2")), device="cpu")
    theirs = TranslationEvaluator(flores.src, flores.tgt, name="f", write_csv=False)(st)
    assert minilm["flores-deu_Latn_accuracy"] == pytest.approx(theirs["f_mean_accuracy"])
