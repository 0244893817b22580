"""Models saved by sentence-transformers itself load with the same vectors (no network: tiny
random models built here with sentence-transformers' own module classes)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import build_tiny_bert, build_tiny_tokenizer

from distill.models import Pooling, UnsupportedModelError, load_encoder, read_layout, torch_threads

torch.set_num_threads(1)
TEXTS = ["The cat sits on the mat.", "猫坐在垫子上。", "Wer hat den Super Bowl gewonnen?", "a"]


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory):
    tokenizer = build_tiny_tokenizer()
    path = tmp_path_factory.mktemp("raw") / "bert"
    build_tiny_bert(tokenizer, seed=3).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _save_st(
    raw_dir,
    path,
    *,
    pooling: str,
    dense: int | None = None,
    normalize: bool = True,
    prompts=None,
    activation=None,
    lower: bool = False,
):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Dense, Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling as STPooling

    torch.manual_seed(7)
    modules = [Transformer(str(raw_dir), max_seq_length=64, do_lower_case=lower), STPooling(32, pooling)]
    if dense:
        kw = {} if activation is None else {"activation_function": activation}
        modules.append(Dense(32, dense, **kw))
    if normalize:
        modules.append(Normalize())
    SentenceTransformer(modules=modules, prompts=prompts or {}).save(str(path))
    return path


def _assert_same(path, **encode_kw):
    from sentence_transformers import SentenceTransformer

    ours = load_encoder(path, device="cpu")
    theirs = SentenceTransformer(str(path), device="cpu")
    a = ours.encode(TEXTS, batch_size=2, **{k: v for k, v in encode_kw.items() if k == "prefix"})
    b = theirs.encode(TEXTS, batch_size=2, **{k: v for k, v in encode_kw.items() if k == "prompt_name"})
    assert a.shape == b.shape == (len(TEXTS), theirs.get_embedding_dimension())
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cos.min() >= 0.9999, cos
    return ours


@pytest.mark.parametrize(
    "pooling,dense,normalize",
    [
        ("cls", 16, True),  # LaBSE-like: CLS, Dense (tanh) to a smaller dimension, normalised
        ("max", None, False),
        ("weightedmean", None, True),
        ("lasttoken", None, True),
        ("mean_sqrt_len_tokens", 24, False),
        ("mean", 16, True),  # distiluse-like
    ],
)
def test_sentence_transformers_models_give_the_same_vectors(raw_dir, tmp_path, pooling, dense, normalize):
    path = _save_st(raw_dir, tmp_path / pooling, pooling=pooling, dense=dense, normalize=normalize)
    enc = _assert_same(path)
    assert enc.pooling == Pooling(pooling) and enc.normalize == normalize
    assert enc.dim == (dense or 32) and len(enc.dense) == (1 if dense else 0)


def test_dense_activation_and_document_prompt(raw_dir, tmp_path):
    path = _save_st(
        raw_dir,
        tmp_path / "m",
        pooling="mean",
        dense=8,
        activation=torch.nn.Identity(),
        prompts={"query": "q: ", "document": "doc: "},
    )
    enc = _assert_same(path, prefix="passage", prompt_name="document")
    assert enc.prompt("passage") == "doc: " and enc.prompt("query") == "q: "
    _assert_same(path, prefix="query", prompt_name="query")


def test_do_lower_case(raw_dir, tmp_path):
    path = _save_st(raw_dir, tmp_path / "m", pooling="mean", lower=True)
    enc = _assert_same(path)
    np.testing.assert_allclose(enc.encode("THE CAT"), enc.encode("the cat"), atol=1e-6)


@pytest.mark.parametrize(
    "saved,expected",
    [
        ({"corpus": "c: "}, "c: "),
        ({"passage": "p: ", "corpus": "c: "}, "p: "),
        ({"document": "d: ", "passage": "p: "}, "d: "),
    ],
)
def test_document_prompt_names(tmp_path, saved, expected):
    (tmp_path / "modules.json").write_text(
        json.dumps([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}])
    )
    (tmp_path / "config_sentence_transformers.json").write_text(json.dumps({"prompts": saved}))
    assert read_layout(tmp_path).prompts["passage"] == expected


def test_unsupported_modules_are_refused_by_name(raw_dir, tmp_path):
    path = _save_st(raw_dir, tmp_path / "m", pooling="mean")
    modules = json.loads((path / "modules.json").read_text())
    modules.append(
        {"idx": 9, "name": "9", "path": "9_LayerNorm", "type": "sentence_transformers.models.LayerNorm"}
    )
    (path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(UnsupportedModelError, match="LayerNorm"):
        load_encoder(path)
    cfg = path / "1_Pooling" / "config.json"
    (path / "modules.json").write_text(json.dumps(modules[:-1]))
    cfg.write_text(json.dumps({"embedding_dimension": 32, "pooling_mode": ["mean", "max"]}))
    with pytest.raises(UnsupportedModelError, match="combined pooling"):
        read_layout(path)
    cfg.write_text(json.dumps({"embedding_dimension": 32, "pooling_mode": "median"}))
    with pytest.raises(UnsupportedModelError, match="median"):
        read_layout(path)
    cfg.write_text(json.dumps({"embedding_dimension": 32, "pooling_mode": "mean"}))
    (path / "modules.json").write_text(json.dumps(list(reversed(modules[:-1]))))
    assert read_layout(path).pooling == Pooling.MEAN  # order is by idx, not by list position
    for m in modules:
        m["idx"] = {"0": 1, "1": 0}.get(m["name"], m["idx"])
    (path / "modules.json").write_text(json.dumps(modules[:-1]))
    with pytest.raises(UnsupportedModelError, match="order"):
        read_layout(path)


def test_threads_apply_only_while_encoding(tiny_model_dir):
    seen = []
    enc = load_encoder(tiny_model_dir, threads=2)
    enc.model.register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))
    with torch_threads(1):
        assert torch.get_num_threads() == 1  # loading did not change the process's setting
        enc.encode(["hello", "world"], batch_size=1)
        assert seen == [2, 2] and torch.get_num_threads() == 1
