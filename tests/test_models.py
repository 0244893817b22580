from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from distill.models import ModelNotFoundError, Role, load_encoder, mean_pool, read_layout, resolve_model

TEXTS = ["short", "a much longer sentence about cats and mats", "mittel lang", "猫坐在垫子上。", "x"]


def test_encode_shape_dtype_and_normalised(tiny_model_dir):
    enc = load_encoder(tiny_model_dir)
    emb = enc.encode(TEXTS, batch_size=2)
    assert emb.shape == (len(TEXTS), enc.dim) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_length_sorted_batching_keeps_input_order(tiny_model_dir):
    enc = load_encoder(tiny_model_dir)
    batched = enc.encode(TEXTS, batch_size=3)
    one_by_one = np.stack([enc.encode([t], batch_size=1)[0] for t in TEXTS])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


def test_mean_pooling_matches_manual_average(tiny_model_dir):
    enc = load_encoder(tiny_model_dir)
    raw = enc.encode(["hello there"], normalize=False)[0]
    batch = enc.tokenize(["hello there"])
    with torch.inference_mode():
        states = enc.model(**batch).last_hidden_state[0]
    np.testing.assert_allclose(raw, states.mean(0).numpy(), atol=1e-5)
    masked = mean_pool(torch.ones(1, 3, 2), torch.tensor([[1, 1, 0]]))
    assert masked.tolist() == [[1.0, 1.0]]


def test_prompts_by_role(tiny_model_dir):
    enc = load_encoder(tiny_model_dir)
    assert (
        enc.prompt(Role.QUERY) == "query: "
        and enc.prompt("passage") == "passage: "
        and enc.prompt(None) == ""
    )
    q, p = enc.encode(["hello"], prefix="query"), enc.encode(["hello"], prefix="passage")
    assert not np.allclose(q, p)
    np.testing.assert_allclose(q, enc.encode(["query: hello"]), atol=1e-6)
    with pytest.raises(ValueError, match="prefix must be one of"):
        enc.encode(["hello"], prefix="question")


def test_max_seq_length_truncates(tiny_model_dir):
    enc = load_encoder(tiny_model_dir, max_seq_length=8)
    assert enc.tokenize(["word " * 100])["input_ids"].shape[1] == 8
    assert enc.encode(["word " * 100]).shape == (1, enc.dim)


def test_bad_inputs(tiny_model_dir):
    enc = load_encoder(tiny_model_dir)
    assert enc.encode([]).shape == (0, enc.dim)
    with pytest.raises(ValueError, match="batch_size"):
        enc.encode(["a"], batch_size=0)


def test_single_string_gives_one_vector(tiny_model_dir):
    enc = load_encoder(tiny_model_dir)
    one = enc.encode("hello there", prefix="query")
    assert one.shape == (enc.dim,)
    np.testing.assert_allclose(one, enc.encode(["hello there"], prefix="query")[0], atol=1e-6)


def test_layout_round_trip(tiny_model_dir):
    layout = read_layout(tiny_model_dir)
    assert layout.normalize and layout.pooling == "mean" and layout.prompts["query"] == "query: "
    assert layout.max_seq_length == 64


def test_sentence_transformers_loads_our_layout(tiny_model_dir):
    from sentence_transformers import SentenceTransformer

    ours = load_encoder(tiny_model_dir).encode(TEXTS)
    theirs = SentenceTransformer(str(tiny_model_dir), device="cpu").encode(TEXTS)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_hub_id_resolves_from_hub_cache(tiny_model_dir, tmp_path, monkeypatch):
    """A hub id goes through the hub cache; a local cache directory stands in for the hub."""
    import huggingface_hub.constants as hub_constants

    snapshot = tmp_path / "hub" / "models--acme--tiny" / "snapshots" / ("a" * 40)
    shutil.copytree(tiny_model_dir, snapshot)
    (tmp_path / "hub" / "models--acme--tiny" / "refs").mkdir()
    (tmp_path / "hub" / "models--acme--tiny" / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    assert resolve_model("acme/tiny") == snapshot
    enc = load_encoder("acme/tiny")
    np.testing.assert_allclose(enc.encode(TEXTS), load_encoder(tiny_model_dir).encode(TEXTS), atol=1e-6)


def test_unknown_specs_give_clear_errors(tmp_path, monkeypatch):
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelNotFoundError, match="unknown packaged model"):
        resolve_model("pkg:nope")
    with pytest.raises(ModelNotFoundError, match="pkg:multilingual-e5-small"):
        resolve_model("acme/not-cached")
    f = tmp_path / "file.bin"
    f.write_bytes(b"x")
    with pytest.raises(ModelNotFoundError, match="is a file"):
        resolve_model(f)


@pytest.mark.slow
def test_packaged_minilm_offline():
    enc = load_encoder("pkg:all-MiniLM-L6-v2")
    emb = enc.encode(["A man is playing a guitar.", "A man plays guitar.", "The stock market fell."])
    assert emb.shape == (3, 384)
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.3


@pytest.mark.slow
def test_packaged_e5_offline_and_cross_lingual():
    enc = load_encoder("pkg:multilingual-e5-small")
    assert enc.encode(["hello", "hallo"]).shape == (2, 384)
    en = enc.encode(["The cat sits on the mat.", "Stocks fell sharply today."], prefix="query")
    de = enc.encode(["Die Katze sitzt auf der Matte.", "Die Aktien fielen heute stark."], prefix="query")
    sim = en @ de.T
    assert sim[0, 0] > sim[0, 1] and sim[1, 1] > sim[1, 0]
