"""Inference backends (distill/models/backends.py): int8 and ONNX Runtime below the one Encoder."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from distill.models import Backend, BackendError, load_encoder
from distill.models import backends as B

TEXTS = [
    "Who won the Super Bowl?",
    "Die Katze sitzt auf der Matte, und der Regen fällt.",
    "猫坐在垫子上。",
    "Кошка сидит на коврике.",
    "ok",
]


def cosine_min(a: np.ndarray, b: np.ndarray) -> float:
    return B.agreement(a, b).min


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path) -> Path:
    """A private copy: the ONNX files are written beside the weights."""
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XLSEARCH_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.mark.parametrize("backend", [Backend.INT8, Backend.ONNX, Backend.ONNX_INT8])
def test_backend_matches_torch_and_reloads_from_cache(model_copy, backend):
    reference = load_encoder(model_copy).encode(TEXTS, prefix="query")
    enc = load_encoder(model_copy, backend=backend)
    assert enc.backend == backend.value and enc.dim == 32
    assert cosine_min(enc.encode(TEXTS, prefix="query", batch_size=2), reference) >= 0.995
    if not backend.is_onnx:
        assert "quantized" in type(enc.model.encoder.layer[0].attention.self.query).__module__
        assert "quantized" not in type(enc.model.encoder.layer[0].output.dense).__module__  # kept fp32
        return
    onnx_file = model_copy / "onnx" / backend.onnx_file
    assert isinstance(enc.model, B.OnnxModel) and enc.model.path == onnx_file
    stamp = json.loads((model_copy / "onnx" / B.STAMP_FILE).read_text())
    assert stamp["files"][backend.onnx_file]["check"]["min"] >= 0.995
    exported_at = onnx_file.stat().st_mtime_ns
    again = load_encoder(model_copy, backend=backend)  # from the cache: no second export
    assert onnx_file.stat().st_mtime_ns == exported_at
    np.testing.assert_allclose(
        again.encode(TEXTS, prefix="query"), enc.encode(TEXTS, prefix="query"), atol=1e-5
    )


def test_changed_weights_are_exported_again(model_copy):
    load_encoder(model_copy, backend="onnx")
    onnx_file = model_copy / "onnx" / "model.onnx"
    first = onnx_file.stat().st_mtime_ns
    weights = model_copy / "model.safetensors"
    os.utime(weights, ns=(first + 10**9, first + 10**9))  # a retrained model written in place
    load_encoder(model_copy, backend="onnx")
    assert onnx_file.stat().st_mtime_ns != first


def test_shipped_onnx_file_is_used_as_is(model_copy, tmp_path):
    """A model that ships onnx/model.onnx (sentence-transformers layout) without our stamp."""
    load_encoder(model_copy, backend="onnx")
    (model_copy / "onnx" / B.STAMP_FILE).unlink()
    os.utime(model_copy / "model.safetensors")
    before = (model_copy / "onnx" / "model.onnx").stat().st_mtime_ns
    enc = load_encoder(model_copy, backend="onnx")
    assert (model_copy / "onnx" / "model.onnx").stat().st_mtime_ns == before
    assert enc.encode(["x"]).shape == (1, 32)


def test_packaged_and_hub_models_cache_in_the_data_dir(tiny_model_dir, data_dir, tmp_path, monkeypatch):
    import huggingface_hub.constants as hub_constants

    snapshot = tmp_path / "hub" / "models--acme--tiny" / "snapshots" / ("a" * 40)
    shutil.copytree(tiny_model_dir, snapshot)
    (tmp_path / "hub" / "models--acme--tiny" / "refs").mkdir()
    (tmp_path / "hub" / "models--acme--tiny" / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    enc = load_encoder("acme/tiny", backend="onnx")
    cache = data_dir / "models" / B.CACHE_DIR
    assert enc.model.path.parent.parent.parent == cache and enc.model.path.name == "model.onnx"
    assert not (snapshot / "onnx").exists()
    assert B.onnx_dir("pkg:all-MiniLM-L6-v2", snapshot).parent.name.startswith("all-MiniLM-L6-v2-")
    # Two directories of the same name do not share a cache entry.
    assert B.onnx_dir("pkg:x", tmp_path / "a") != B.onnx_dir("pkg:x", tmp_path / "b")


def test_export_below_the_cosine_floor_is_refused(model_copy, monkeypatch):
    monkeypatch.setattr(B, "MIN_COSINE", 1.000001)  # no int8 graph is that exact
    with pytest.raises(BackendError, match="disagrees with torch"):
        load_encoder(model_copy, backend="onnx-int8")
    assert not (model_copy / "onnx" / "model_qint8.onnx").exists()
    assert not [p for p in (model_copy / "onnx").iterdir() if p.name.endswith(".tmp")]


def test_bad_backend_and_device():
    with pytest.raises(BackendError, match="torch, int8, onnx, onnx-int8"):
        Backend.parse("tensorrt")
    assert Backend.parse(None) == Backend.TORCH and Backend.parse(" ONNX ") == Backend.ONNX


def test_onnx_backend_refuses_a_gpu(model_copy):
    with pytest.raises(BackendError, match="CPU"):
        load_encoder(model_copy, backend="onnx", device="cuda")


def test_onnx_follows_torch_threads(model_copy):
    import torch

    enc = load_encoder(model_copy, backend="onnx")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        enc.encode(["a"])
        assert enc.model._threads == 1
    finally:
        torch.set_num_threads(before)


def test_evaluators_score_an_onnx_encoder_as_torch(model_copy):
    """The evaluators run on any backend (an ONNX session has no module training flag)."""
    from distill.evaluation.bitext import BitextEvaluator

    src, tgt = TEXTS[:4], ["the cat", "die Katze", "le chat", "кошка"]
    scores = {}
    for backend in ("torch", "onnx"):
        ev = BitextEvaluator(src, tgt, name="pair")
        scores[backend] = ev(load_encoder(model_copy, backend=backend))
    assert scores["onnx"] == scores["torch"]


def test_distill_export_cli(model_copy, capsys):
    from distill.cli import main

    assert main(["export", str(model_copy), "--onnx", "--int8"]) == 0
    out = capsys.readouterr().out
    assert "onnx: " in out and "onnx-int8: " in out and "cosine to torch min" in out
    assert (model_copy / "onnx" / "model.onnx").is_file() and (
        model_copy / "onnx" / "model_qint8.onnx"
    ).is_file()
    assert main(["export", str(model_copy), "--onnx"]) == 0
    assert "up to date, reused" in capsys.readouterr().out
    assert main(["export", str(model_copy)]) == 2
    assert "give --onnx" in capsys.readouterr().err


def test_sentence_transformers_reads_the_exported_graph(model_copy):
    """The file is a plain ONNX graph with the sentence-transformers input/output names."""
    import onnxruntime as ort

    load_encoder(model_copy, backend="onnx")
    session = ort.InferenceSession(
        str(model_copy / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask"]
    assert [o.name for o in session.get_outputs()] == ["last_hidden_state"]


# ---------------------------------------------------------------------------------------------
# Real models


def _real_specs() -> list[str]:
    from distill.paths import data_dir, shipped_student

    specs = ["pkg:multilingual-e5-small", "pkg:all-MiniLM-L6-v2"]
    student = shipped_student() or data_dir() / "students" / "offline"
    specs.append(str(student) if (student / "modules.json").exists() else "student")
    return specs


@pytest.mark.slow
@pytest.mark.parametrize("spec", _real_specs())
@pytest.mark.parametrize("backend", [Backend.INT8, Backend.ONNX, Backend.ONNX_INT8])
def test_real_model_backend_agrees_with_fp32_or_is_refused(spec, backend):
    """The contract on real weights: a backend loads only if its vectors stay within cosine 0.995 of
    fp32 on the check texts (mean); fp32 ONNX Runtime always does (it is the same computation)."""
    if spec == "student":
        pytest.skip("no trained student in data/students/offline (train one with `distill run`)")
    texts = list(B.CHECK_TEXTS)
    reference = load_encoder(spec).encode(texts, prefix="query")
    try:
        enc = load_encoder(spec, backend=backend)
    except BackendError as exc:
        assert backend != Backend.ONNX, exc
        assert "disagrees with torch fp32" in str(exc)
        return
    assert enc.backend == backend.value
    assert B.agreement(enc.encode(texts, prefix="query", batch_size=4), reference).mean >= 0.995
    other = load_encoder(spec).encode(TEXTS, prefix="passage")
    assert B.agreement(enc.encode(TEXTS, prefix="passage"), other).mean >= 0.995


def test_distill_backends_compares_and_picks(model_copy, tmp_path, capsys):
    from distill.cli import main

    queries = tmp_path / "q.txt"
    queries.write_text("\n".join(TEXTS * 4), encoding="utf-8")
    assert main(["backends", str(model_copy), "--queries", str(queries), "--passages-n", "0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)[str(model_copy)]
    trials = {t["backend"]: t for t in result["trials"]}
    assert set(trials) == {"torch", "int8", "onnx", "onnx-int8"}
    assert all(t["sentences_per_s"] > 0 and t["error"] is None for t in trials.values())
    assert trials["onnx"]["cosine_to_fp32"]["min"] >= 0.995
    assert result["best"] in trials
    assert (
        main(
            [
                "backends",
                str(model_copy),
                "--queries",
                str(queries),
                "--passages-n",
                "0",
                "--best",
                "--min-cosine",
                "1.01",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.strip() == "torch"  # nothing else is that faithful


def test_fastest_faithful_skips_refused_and_unfaithful_backends():
    trials = [
        B.BackendTrial("torch", 10.0),
        B.BackendTrial("int8", 30.0, B.Agreement(0.990, 0.95, 8)),
        B.BackendTrial("onnx", 15.0, B.Agreement(0.99999, 0.9999, 8)),
        B.BackendTrial("onnx-int8", error="disagrees with torch fp32"),
    ]
    assert B.fastest_faithful(trials) == "onnx"
    assert B.fastest_faithful(trials, min_cosine=0.98) == "int8"
