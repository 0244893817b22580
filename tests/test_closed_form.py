"""Closed-form starts (issue 27): a least-squares bridge over the layers a student skips and a map of
its pooled vectors onto A's, fitted at the end of stage 2 from A's own states, no gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support.distill_fixtures import make_tiny_setup, tiny_overrides

from distill.config import ConfigError, load_config
from distill.train.closed_form import NormalEquations, bridge_gap, fit_items

torch.set_num_threads(1)


def test_normal_equations_recover_a_linear_map_from_batches():
    g = torch.Generator().manual_seed(0)
    w, b = torch.randn(5, 3, generator=g), torch.randn(5, generator=g)
    eq = NormalEquations(3, 5)
    for _ in range(4):  # accumulated in pieces, solved once
        x = torch.randn(50, 3, generator=g)
        eq.add(x, x @ w.T + b)
    weight, bias, r2 = eq.solve(ridge=0.0)
    torch.testing.assert_close(weight, w, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(bias, b, atol=1e-4, rtol=1e-4)
    assert r2 == pytest.approx(1.0, abs=1e-6)
    noise = NormalEquations(3, 2)
    noise.add(torch.randn(200, 3, generator=g), torch.randn(200, 2, generator=g))
    assert noise.solve()[2] < 0.1  # nothing to explain: R^2 near 0, not a flattering number
    with pytest.raises(ValueError, match="no rows"):
        NormalEquations(3, 2).solve()


def test_the_bridge_spans_the_one_gap_and_the_fit_sample_is_seeded():
    assert bridge_gap([0, 1, 2, 3, 10, 11]) == (3, 4, 10)  # after S's layer 3: A's h4 -> A's h10
    assert bridge_gap([0, 5]) == (0, 1, 5)
    for layers in ([0, 1, 2], [0, 2, 4]):
        with pytest.raises(ValueError, match="exactly one gap"):
            bridge_gap(layers)
    items = [("query" if i % 3 else "passage", f"t{i}") for i in range(30)]
    assert fit_items(items, 10, 1) == fit_items(items, 10, 1) != fit_items(items, 10, 2)
    assert {r for r, _ in fit_items(items, 10, 1)} == {"query", "passage"}


def test_closed_form_config_is_checked_before_any_work():
    with pytest.raises(ConfigError, match="one gap"):
        load_config(None, ["--student.bridge=true", "--student.layers=3", "--student.passes=1"])
    with pytest.raises(ConfigError, match="passes = 1"):
        load_config(None, ["--student.bridge=true", "--student.layers=[0,3]", "--student.passes=2"])
    with pytest.raises(ConfigError, match="does not take student.bridge"):
        load_config(
            None,
            [
                "--student.bridge=true",
                "--student.layers=[0,3]",
                "--student.passes=1",
                "--stage3.variant=layerwise",
            ]
            + ["--vocab.untrim=true", "--vocab.trim=true"],
        )
    with pytest.raises(ConfigError, match="closed_form_texts"):
        load_config(None, ["--student.closed_form_texts=0"])
    assert load_config("offline").student.bridge and load_config("offline").student.output_map
    assert not load_config("offline-layerwise").student.bridge  # layerwise refuses the bridge


def test_the_maps_bring_a_cut_student_closer_to_its_assistant_and_it_loads_everywhere(tmp_path):
    from sentence_transformers import SentenceTransformer

    from distill.models import load_encoder
    from distill.train.run import run

    setup = make_tiny_setup(tmp_path)
    out = tmp_path / "students" / "cf"
    extra = {"student.layers": "[0,3]", "student.embedding_size": 32, "student.passes": 1}
    extra |= {"stage1.enabled": "false", "stage2.steps": 0, "student.bridge": "true"}
    extra |= {"student.output_map": "true", "student.closed_form_texts": 40}
    summary = run(load_config(None, tiny_overrides(setup, out, tmp_path / "cache", steps=2, **extra)))
    info = summary["stages"]["stage2"]
    assert info["bridge_after_layer"] == 0 and info["bridge_tokens"] > 40
    assert 0 < info["bridge_r2"] <= 1 and 0 < info["output_map_r2"] <= 1

    stage2 = out.with_name("cf.run") / "stage2"
    a, s = load_encoder(setup["assistant"]), load_encoder(stage2)
    assert s.model.config.num_passes == 0  # stage 2 saves its student before stage 3 sets the passes
    s.model.config.num_passes = 1  # the maps were fitted on the student as stage 3 runs it
    texts = ["The cat sits on the mat.", "Der Hund läuft im Park.", "Le chat dort."]
    target = a.encode(texts, prefix="query")
    fitted = (s.encode(texts, prefix="query") * target).sum(1)
    with torch.no_grad():  # the same student as a plain cut: identity maps
        for m in (s.model.bridge, s.model.output_map):
            torch.nn.init.eye_(m.weight)
            torch.nn.init.zeros_(m.bias)
    plain = (s.encode(texts, prefix="query") * target).sum(1)
    assert fitted.mean() > plain.mean()

    final = load_encoder(out)  # stages 3-4 trained on top; the maps are part of the saved model
    assert final.model.bridge is not None and final.model.output_map is not None
    st = SentenceTransformer(str(out), trust_remote_code=True, device="cpu")
    np.testing.assert_allclose(
        st.encode(["query: " + t for t in texts], normalize_embeddings=True),
        final.encode(texts, prefix="query"),
        atol=1e-5,
    )
    onnx = load_encoder(out, backend="onnx")
    assert float((onnx.encode(texts[:1]) * final.encode(texts[:1])).sum()) > 0.999
