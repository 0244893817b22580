"""Student v2 machinery on tiny models: any list of A's layers, full-width rows, a frequency-capped
vocabulary, passages with the passage prompt, and the score-distillation loss."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch
from support.distill_fixtures import build_unigram_tokenizer, make_tiny_setup, tiny_overrides

from distill.config import ConfigError, ContrastiveVariant, load_config
from distill.data import TrainingPair
from distill.losses import ContrastiveLoss, score_distillation
from distill.vocab import VocabError, select_vocab

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    return make_tiny_setup(tmp_path_factory.mktemp("v2"))


def _run(tiny_setup, tmp_path, **extra):
    from distill.train.loop import MetricsLog
    from distill.train.state import Run

    cfg = load_config(None, tiny_overrides(tiny_setup, tmp_path / "s", tmp_path / "cache", steps=2, **extra))
    run_dir = tmp_path / "s.run"
    run_dir.mkdir(exist_ok=True)
    return Run(cfg, tmp_path / "s", run_dir, "cpu", MetricsLog(run_dir / "metrics.jsonl"))


def test_layers_accept_k_or_a_list_of_indices():
    assert load_config(None, ["--student.layers=3"]).student.layer_ids() == [0, 1, 2]
    cfg = load_config(None, ["--student.layers=[0,1,2,3,10,11]"])
    assert cfg.student.layers == [0, 1, 2, 3, 10, 11] and cfg.student.layer_ids() == [0, 1, 2, 3, 10, 11]
    for bad, message in (
        ("[]", "non-empty"),
        ("[1,1]", "distinct"),
        ("[-1,2]", ">= 0"),
        ("0", ">= 1"),
        ('"six"', "expected an integer, got 'six' or expected a list"),
    ):
        with pytest.raises(ConfigError, match=message):
            load_config(None, [f"--student.layers={bad}"])


def test_student_starts_from_the_chosen_layers_of_a(tiny_setup, tmp_path):
    from distill.models import load_encoder
    from distill.train.stages import init_student

    run = _run(tiny_setup, tmp_path, **{"student.layers": "[0,3]", "student.embedding_size": 32})
    a = load_encoder(tiny_setup["assistant"]).model
    student = init_student(run, a, None)
    assert len(student.layers) == 2
    for mine, theirs in ((student.layers[0], a.encoder.layer[0]), (student.layers[1], a.encoder.layer[3])):
        for (name, p), q in zip(mine.state_dict().items(), theirs.state_dict().values(), strict=True):
            assert torch.equal(p, q), name
    with pytest.raises(ConfigError, match="only layers 0..3"):
        init_student(_run(tiny_setup, tmp_path, **{"student.layers": "[0,4]"}), a, None)


def test_full_width_student_with_all_layers_reproduces_a(tiny_setup, tmp_path):
    """embedding_size = hidden: the SVD start is exact, so S(all of A's layers) = A."""
    from distill.models import load_encoder
    from distill.train.stages import init_student, student_encoder

    assistant = load_encoder(tiny_setup["assistant"])
    run = _run(
        tiny_setup,
        tmp_path,
        **{"student.layers": "[0,1,2,3]", "student.embedding_size": 32, "student.passes": 1},
    )
    student = init_student(run, assistant.model, None)
    student.config.num_passes = 1
    enc = student_encoder(run, student.eval(), assistant.tokenizer, assistant.prompts)
    texts = ["The cat sits on the mat.", "Der Hund läuft im Park."]
    np.testing.assert_allclose(
        enc.encode(texts, prefix="query"), assistant.encode(texts, prefix="query"), atol=2e-5
    )


def test_vocabulary_cap_keeps_required_pieces_then_the_most_frequent():
    tok = build_unigram_tokenizer()
    singles = select_vocab(tok, Counter(), max_pieces=0)  # specials + single characters
    counts = Counter({i: 1000 - i for i in range(len(tok)) if i not in singles})
    frequent = sorted(counts, key=lambda i: -counts[i])
    kept = select_vocab(tok, counts, max_pieces=len(singles) + 10)
    assert len(kept) == len(singles) + 10 and set(singles) <= set(kept)
    assert set(kept) - set(singles) == set(frequent[:10])
    with pytest.raises(VocabError, match="required pieces"):
        select_vocab(tok, counts, max_pieces=3)


def test_score_distillation_is_zero_for_the_teacher_and_grows_when_scores_disagree():
    t_q, t_p = torch.eye(4), torch.eye(4) + 0.1
    assert score_distillation(t_q, t_p, t_q, t_p, 0.02).item() == pytest.approx(0.0, abs=1e-6)
    shuffled = t_p[[1, 0, 2, 3]]
    assert score_distillation(t_q, shuffled, t_q, t_p, 0.02).item() > 1.0
    loss = ContrastiveLoss(ContrastiveVariant.KL, kl_weight=0.5, kl_temperature=0.05)
    total, parts = loss(t_p, t_q, t_p, t_q)
    assert parts["kl"] == pytest.approx(0.0, abs=1e-6) and total.item() == pytest.approx(
        parts["mse_en"] + parts["mse_xx"]
    )
    with pytest.raises(ValueError, match="t_xx"):
        loss(t_p, t_q, t_p)


def test_passage_pairs_embed_with_the_passage_prompt(tiny_setup, tmp_path):
    from distill.models import load_encoder
    from distill.train.stages import _embed_pairs, _texts_index

    run = _run(tiny_setup, tmp_path)
    enc = load_encoder(tiny_setup["assistant"])
    pairs = [
        TrainingPair("The cat sits.", "Die Katze sitzt.", "de"),
        TrainingPair("The cat sits.", "Die Katze sitzt.", "de", role="passage"),
    ]
    en, xx = _embed_pairs(run, enc, pairs)
    with torch.no_grad():
        np.testing.assert_allclose(
            en.detach().numpy(),
            np.stack(
                [
                    enc.encode(["The cat sits."], prefix="query")[0],
                    enc.encode(["The cat sits."], prefix="passage")[0],
                ]
            ),
            atol=1e-5,
        )
    items, rows = _texts_index(run, pairs, "en")
    assert items == [("query", "The cat sits."), ("passage", "The cat sits.")] and rows.tolist() == [0, 1]
    targets = run.targets(tiny_setup["assistant"], items, "A(en)")
    assert not np.allclose(targets[0], targets[1])  # one text, two roles: two targets


def test_four_stages_with_passages_list_layers_and_kl(tiny_setup, tmp_path):
    from distill.train.run import run

    out = tmp_path / "students" / "v2"
    extra = {
        "student.layers": "[0,3]",
        "student.embedding_size": 32,
        "student.passes": 1,
        "stage2.steps": 0,
        "stage4.variant": "kl",
        "vocab.max_pieces": 300,
        "stage1.enabled": "false",
    }
    cfg = load_config(None, tiny_overrides(tiny_setup, out, tmp_path / "cache", steps=6, **extra))
    summary = run(cfg)
    assert summary["stages"]["stage2"]["steps"] == 0 and summary["stages"]["stage2"]["vocab_size"] <= 300
    assert summary["stages"]["stage4"]["variant"] == "kl"
    card = (out / "README.md").read_text()
    assert "initialised from A's layers [0, 3]" in card and "Full-width" in card
    assert "of A's " in card  # the size against A, with stage 1 off too


def test_shipped_student_is_half_precision_and_loads_as_fp32(tiny_setup, tmp_path):
    from distill.models import load_encoder
    from distill.student.ship import ship_student
    from distill.train.run import run

    out = tmp_path / "students" / "s"
    extra = {"student.layers": "[1,2]", "student.passes": 1, "stage1.enabled": "false"}
    run(load_config(None, tiny_overrides(tiny_setup, out, tmp_path / "cache", steps=2, **extra)))
    (out / "onnx").mkdir()  # an export of this machine's (the onnx backends write one): never shipped
    (out / "onnx" / "model.onnx").write_bytes(b"x")
    shipped = ship_student(out, tmp_path / "models" / "student", note="Reproduce: distill run --config tiny")
    assert not (shipped / "onnx").exists()
    weights = next(shipped.glob("*.safetensors"))
    assert weights.stat().st_size < 0.6 * next(out.glob("*.safetensors")).stat().st_size
    assert "Reproduce: distill run --config tiny" in (shipped / "README.md").read_text()
    enc = load_encoder(shipped)
    assert next(enc.model.parameters()).dtype == torch.float32
    texts = ["The cat sits on the mat.", "Der Hund läuft im Park."]
    a, b = load_encoder(out).encode(texts, prefix="query"), enc.encode(texts, prefix="query")
    assert float((a * b).sum(axis=1).min()) > 0.999


def test_bucketed_batches_keep_one_role_per_batch_and_cover_every_item():
    from distill.train.loop import batch_indices

    roles = np.array(["query"] * 48 + ["passage"] * 16)
    seen = []
    for step in range(8):  # one epoch: 64 items / batch 8
        idx = batch_indices(step, 8, len(roles), seed=3, buckets=roles)
        assert len(set(roles[idx])) == 1  # both buckets are multiples of 8: no mixed batch
        seen.extend(idx.tolist())
    assert sorted(seen) == list(range(64))
    assert not np.array_equal(
        batch_indices(0, 8, 64, seed=3, buckets=roles), batch_indices(0, 8, 64, seed=4, buckets=roles)
    )


def test_learning_curve_scores_the_model_every_n_steps_in_eval_mode(tmp_path):
    """`eval.every`: the loop hands the model to the scorer every N steps (not at the last step, which
    the stage's own evaluation scores), in eval mode, and trains on in train mode afterwards."""
    from distill.config import StageConfig
    from distill.train.loop import MetricsLog, train_loop

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
    data = torch.randn(16, 4)
    seen, modes = [], []

    def compute_loss(idx):
        modes.append(model.training)
        return model(data[idx]).pow(2).mean(), {}

    def score(step: int, seconds: float) -> None:
        seen.append((step, model.training, seconds >= 0))

    cfg = StageConfig(steps=7, batch_size=4, lr=1e-2, checkpoint_every=100, log_every=1)
    log = MetricsLog(tmp_path / "m.jsonl")
    result = train_loop(
        name="s",
        model=model,
        compute_loss=compute_loss,
        n_items=16,
        cfg=cfg,
        seed=0,
        checkpoint=tmp_path / "c.pt",
        log=log,
        evaluate=score,
        eval_every=3,
    )
    assert seen == [(3, False, True), (6, False, True)]
    assert modes == [True] * 7 and result.steps == 7


@pytest.mark.slow
def test_learning_curve_lands_in_the_run_metrics_with_pairs_and_training_seconds(
    tiny_setup, tmp_path, shared_data
):
    from distill.train.run import run

    out = tmp_path / "students" / "curve"
    extra = {"student.layers": "[0,3]", "student.embedding_size": 32, "student.passes": 1}
    extra |= {"stage1.enabled": "false", "stage2.steps": 0, "stage3.steps": 4, "stage4.steps": 4}
    extra |= {"eval.enabled": "true", "eval.baselines": "false", "eval.langs": '["de"]', "eval.every": 2}
    run(load_config(None, tiny_overrides(tiny_setup, out, tmp_path / "cache", steps=2, **extra)))
    lines = (out.with_name("curve.run") / "metrics.jsonl").read_text().splitlines()
    curve = [e for e in map(json.loads, lines) if e.get("event") == "eval" and "step" in e]
    assert [(e["stage"], e["step"], e["pairs_seen"]) for e in curve] == [(3, 2, 16), (4, 2, 16)]
    assert all(e["train_seconds"] >= 0 and e["metrics"] for e in curve)
    # The summary and the card give the curve with the stage ends, pairs counted from stage 3's start.
    summary = json.loads((out / "training_summary.json").read_text())
    points = [(p["stage"], p["step"], p["pairs_seen"]) for p in summary["curve"]]
    assert points == [(3, 2, 16), (3, 4, 32), (4, 2, 48), (4, 4, 64)]
    assert all("question_xling_r@1" in p for p in summary["curve"])
    assert "## Learning curve" in (out / "README.md").read_text()
