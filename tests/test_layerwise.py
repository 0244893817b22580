"""Student v3 machinery: cross-lingual pseudo-query windows, token-level and score losses, the
layerwise stage (frozen prefix cached once; what it trains on is what S serves), preset inheritance."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from support.distill_fixtures import make_tiny_setup, tiny_overrides

from distill.config import ConfigError, load_config
from distill.documents import DataError
from distill.losses import ScoreKLLoss, TokenMSELoss

torch.set_num_threads(1)

DOCS = [  # (sentence id, doc id, en, de, fr)
    ("s1", "d1", "One.", "Eins.", "Un."),
    ("s2", "d1", "Two.", "Zwei.", "Deux."),
    ("s3", "d1", "Three.", "Drei.", "Trois."),
    ("s4", "d1", "Four.", "Vier.", "Quatre."),
    ("s5", "d1", "Five.", "Fünf.", None),
    ("s6", "d2", "Six.", "Sechs.", "Six."),
    ("s7", "d2", "Seven.", "Sieben.", "Sept."),
    ("s8", "d3", "Eight.", "Acht.", "Huit."),
]


@pytest.fixture
def doc_files(tmp_path):
    with open(tmp_path / "docs.jsonl", "w", encoding="utf-8") as f:
        for sid, _, *texts in DOCS:
            for lang, text in zip(("eng", "deu", "fra"), texts, strict=True):
                if text:
                    f.write(json.dumps({"id": sid, "lang": lang, "text": text}) + "\n")
    (tmp_path / "ids.tsv").write_text("id\tdoc_id\n" + "".join(f"{s}\t{d}\n" for s, d, *_ in DOCS))
    return tmp_path / "docs.jsonl", tmp_path / "ids.tsv"


def test_windows_stay_inside_documents_and_hold_every_language(doc_files):
    from distill.train.windows import read_windows

    ws = read_windows(*doc_files, ["en", "de", "fr"], sentences=2, group=2, seed=1)
    # d1: [s1 s2], [s3 s4] (s5 has no French and no partner); d2: [s6 s7]; d3 is too short
    assert ws.langs == ("en", "de", "fr")
    assert [w[0] for w in ws.passages] == ["One. Two.", "Three. Four.", "Six. Seven."]
    assert ws.passages[1][2] == "Trois. Quatre."
    assert ws.groups == ((0, 1), (2,))  # consecutive windows of one document, never across two
    for w, row in enumerate(ws.queries):  # a query is one sentence of its own window, in its language
        for lang, query in enumerate(row):
            assert query in ws.passages[w][lang].split(" ")
    again = read_windows(*doc_files, ["en", "de", "fr"], sentences=2, group=2, seed=1)
    assert again == ws  # seeded


def test_windows_refuse_evaluation_data_and_missing_languages(doc_files, tmp_path):
    from distill.train.windows import read_windows

    with pytest.raises(DataError, match="no text in language"):
        read_windows(*doc_files, ["en", "th"], sentences=2)
    with pytest.raises(DataError, match="no 6-sentence window"):
        read_windows(*doc_files, ["en", "fr"], sentences=6)
    dev = tmp_path / "dev"
    dev.mkdir()
    (dev / "x.jsonl").write_text(doc_files[0].read_text())
    with pytest.raises(DataError, match="evaluation/demo data"):
        read_windows(dev / "x.jsonl", doc_files[1], ["en", "de"])
    with pytest.raises(ValueError, match=">= 1"):
        read_windows(*doc_files, ["en"], sentences=0)


def test_token_mse_ignores_padding_and_score_kl_is_zero_at_the_teacher():
    torch.manual_seed(0)
    a, b = torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    loss = TokenMSELoss()(a, b, mask)
    b2 = b.clone()
    b2[0, 3:] += 100.0  # padded positions of text 0
    assert torch.allclose(TokenMSELoss()(a, b2, mask), loss)
    assert float(TokenMSELoss()(a, a, mask)) == 0.0
    q, p = torch.randn(4, 8), torch.randn(6, 8)
    kl = ScoreKLLoss(0.05)
    assert abs(float(kl(q, p, q, p))) < 1e-6
    s_q = q.clone().requires_grad_(True)
    value = kl(s_q, p, torch.randn(4, 8), p)
    assert float(value.detach()) > 0
    value.backward()
    assert s_q.grad is not None and s_q.grad.abs().sum() > 0


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    return make_tiny_setup(tmp_path_factory.mktemp("v3"))


def _layerwise_overrides(tiny_setup, tmp_path, doc_files, **extra):
    return tiny_overrides(
        tiny_setup,
        tmp_path / "students" / "v3",
        tmp_path / "cache",
        steps=4,
        **{
            "stage1.enabled": "false",
            "stage4.enabled": "false",
            "student.layers": "[0,1,3]",
            "student.passes": 1,
            "student.embedding_size": 32,
            "stage3.variant": "layerwise",
            "vocab.untrim": "true",
            "stage3.frozen_layers": 1,
            "stage3.batch_size": 2,
            "stage3.window_langs": '["en","de","fr"]',
            "stage3.window_group": 2,
            "data.passage_file": f'"{doc_files[0]}"',
            "data.passage_doc_ids": f'"{doc_files[1]}"',
            "data.passage_sentences": 2,
            **extra,
        },
    )


def test_cached_states_reproduce_the_students_own_forward(tiny_setup, tmp_path, doc_files):
    """Training on cached prefix states is training the model S serves: the top layers over the
    cache give S's last hidden state, and the targets are A's states at the layers S stands for."""
    from distill.models import load_encoder
    from distill.student import XLSearchRecurrentModel
    from distill.train import layerwise
    from distill.train.run import run

    cfg = load_config(None, _layerwise_overrides(tiny_setup, tmp_path, doc_files, **{"stage3.steps": 0}))
    run(cfg, stage=2)
    stage2 = tmp_path / "students" / "v3.run" / "stage2"
    s_enc = load_encoder(stage2)
    student: XLSearchRecurrentModel = s_enc.model.eval()
    a_enc = load_encoder(tiny_setup["assistant"])
    texts = ["The cat sits on the mat.", "Ein Mann spielt Gitarre.", "Qui ?"]
    states = layerwise.token_states(
        student, s_enc, a_enc, texts, "query", frozen=1, a_layers=[1, 3], batch_size=2, label="t"
    )
    top = layerwise.TopLayers(student.layers[1:])
    batch = s_enc.tokenize(texts, "query")
    with torch.no_grad():
        full = student(**batch).last_hidden_state
        hidden = a_enc.model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True
        ).hidden_states
        x, mask = layerwise.pad(states.inputs, "cpu")
        outs = top(x, mask)
    for i in range(len(texts)):
        n = int(batch["attention_mask"][i].sum())
        # the cache is fp16: token by token, the same vectors up to its rounding
        for got, want in (
            (outs[-1][i, :n], full[i, :n]),
            (states.targets[1][i].float(), hidden[4][i, :n]),
            (states.targets[0][i].float(), hidden[2][i, :n]),
        ):
            assert torch.nn.functional.cosine_similarity(got, want, dim=-1).min() > 0.999
    want = a_enc.encode(texts, prefix="query")
    assert np.allclose(states.pooled.numpy(), want, atol=1e-4)


def test_layerwise_stage_trains_only_the_layers_above_the_frozen_prefix(tiny_setup, tmp_path, doc_files):
    from safetensors.torch import load_file

    from distill.train.run import run

    out = tmp_path / "students" / "v3"
    summary = run(load_config(None, _layerwise_overrides(tiny_setup, tmp_path, doc_files)))
    info = summary["stages"]["stage3"]
    assert info["variant"] == "layerwise" and info["windows"] == 3 and info["frozen_layers"] == 1
    before = load_file(tmp_path / "students" / "v3.run" / "stage2" / "model.safetensors")
    after = load_file(out / "model.safetensors")
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(("layers.1.", "layers.2.")) for k in changed)
    log = [json.loads(line) for line in (tmp_path / "students" / "v3.run" / "metrics.jsonl").open()]
    steps = [r for r in log if r.get("stage") == "stage3" and "tokens" in r]
    assert steps and {"tokens", "layers", "scores", "pooled"} <= set(steps[0])
    assert (tmp_path / "students" / "v3.run" / "stage3.states.pt").exists()


def test_layerwise_batches_are_a_function_of_their_groups(tiny_setup, tmp_path, doc_files):
    from distill.train import layerwise
    from distill.train.windows import read_windows

    ws = read_windows(*doc_files, ["en", "de", "fr"], sentences=2, group=2)
    n = len(ws) * len(ws.langs)
    rows = [torch.full((2 + i % 3, 4), float(i)) for i in range(n)]
    st = layerwise.TokenStates(rows, [rows], torch.randn(n, 4))
    states = {"query": st, "passage": st}
    a = layerwise.batch_parts(states, ws, np.array([0, 1]), "cpu")
    b = layerwise.batch_parts(states, ws, np.array([0, 1]), "cpu")
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x.inputs, y.inputs) and torch.equal(x.pooled, y.pooled)
    q, p = a
    assert q.inputs.shape[0] == 3 and p.inputs.shape[0] == 6  # 3 windows: one query, two passages each
    assert q.mask.sum(1).tolist() == [r.shape[0] for r in (q.inputs[i][q.mask[i] > 0] for i in range(3))]


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"student.passes": 2}, "passes = 1"),
        ({"stage3.frozen_layers": 3}, "leaves none"),
        ({"stage3.window_langs": "[]"}, "window_langs is empty"),
        ({"stage3.weight_scores": -1}, "weight_scores must be >= 0"),
        ({"stage3.kl_temperature": 0}, "kl_temperature must be > 0"),
        ({"stage3.variant": "tokens"}, "not one of"),
        ({"vocab.untrim": "false"}, "must read A's tokens"),
    ],
)
def test_layerwise_config_errors_name_the_key(extra, message):
    base = {
        "--student.layers": "[0,1,3]",
        "--student.passes": "1",
        "--stage3.variant": "layerwise",
        "--vocab.untrim": "true",
        "--stage3.frozen_layers": "1",
    }
    base.update({f"--{k}": str(v) for k, v in extra.items()})
    with pytest.raises(ConfigError, match=message):
        load_config(None, [f"{k}={v}" for k, v in base.items()])


def test_presets_inherit_from_a_base(tmp_path):
    (tmp_path / "a.toml").write_text('name = "a"\nseed = 7\n[stage3]\nsteps = 9\nlr = 0.5\n')
    (tmp_path / "b.toml").write_text('base = "a.toml"\nname = "b"\n[stage3]\nsteps = 3\n')
    cfg = load_config(tmp_path / "b.toml")
    assert (cfg.name, cfg.seed, cfg.stage3.steps, cfg.stage3.lr) == ("b", 7, 3, 0.5)
    long = load_config("offline-long")  # a shipped preset written as differences from `offline`
    assert long.name == "offline-long" and long.student.layers == load_config("offline").student.layers
    (tmp_path / "c.toml").write_text('base = "d.toml"\n')
    (tmp_path / "d.toml").write_text('base = "c.toml"\n')
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "c.toml")
    (tmp_path / "e.toml").write_text('base = "missing"\n')
    with pytest.raises(ConfigError, match="base 'missing' not found"):
        load_config(tmp_path / "e.toml")
    (tmp_path / "f.toml").write_text("base = 3\n")
    with pytest.raises(ConfigError, match="base must be"):
        load_config(tmp_path / "f.toml")


def test_every_preset_loads():
    from distill.paths import preset_names

    for name in preset_names():
        assert load_config(name).name == name
