"""Distillation framework: losses, student model, config, vocabulary trimming, targets cache,
and all four stages end to end on tiny random models (with export and resume)."""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from support.distill_fixtures import PARALLEL, build_unigram_tokenizer, make_tiny_setup, tiny_overrides

from distill.config import ConfigError, ContrastiveVariant, load_config
from distill.losses import ContrastiveLoss, PairMSELoss, cos_matrix
from distill.student import XLSearchRecurrentConfig, XLSearchRecurrentModel

torch.set_num_threads(1)

# --- losses, pinned against hand-computed values on a 3 x 4 example -------------------------------
# S_en rows e1, e2, e3; S_xx rows (1,1,0,0), e2, e3; T_en rows e1, e2, e2.
S_EN = torch.tensor([[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]])
S_XX = torch.tensor([[1.0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]])
T_EN = torch.tensor([[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0]])
# MSE(S_en, T_en): only row 3 differs, by (0,-1,1,0): 2 / 12.  MSE(S_xx, T_en): 1 (row 1) + 2 (row 3) = 3 / 12.
MSE_EN, MSE_XX = 2 / 12, 3 / 12
# cos(S_en, S_xx) = [[1/r2, 0, 0], [1/r2, 1, 0], [0, 0, 1]]  (r2 = sqrt 2); cos(T_en, T_en) = [[1,0,0],[0,1,1],[0,1,1]].
R2 = math.sqrt(2)
COS_MCL = ((1 / R2 - 1) ** 2 + (1 / R2) ** 2 + 1 + 1) / 9  # = (4 - sqrt 2) / 9
COS_BOOL = ((1 / R2 - 1) ** 2 + (1 / R2) ** 2) / 9  # against the identity: (2 - sqrt 2) / 9


def test_cos_matrix_hand_computed():
    expected = torch.tensor([[1 / R2, 0, 0], [1 / R2, 1, 0], [0, 0, 1]])
    assert torch.allclose(cos_matrix(S_EN, S_XX), expected, atol=1e-6)


def test_pair_mse_hand_computed():
    total, parts = PairMSELoss()(S_EN, S_XX, T_EN, T_EN)
    assert total.item() == pytest.approx(MSE_EN + MSE_XX, abs=1e-6)  # 5/12
    assert parts == pytest.approx({"mse_en": MSE_EN, "mse_xx": MSE_XX}, abs=1e-6)
    weighted, _ = PairMSELoss(weight_en=2.0, weight_xx=0.5)(S_EN, S_XX, T_EN, T_EN)
    assert weighted.item() == pytest.approx(2 * MSE_EN + 0.5 * MSE_XX, abs=1e-6)


def test_contrastive_mcl_hand_computed():
    total, parts = ContrastiveLoss("mcl")(S_EN, S_XX, T_EN)
    assert COS_MCL == pytest.approx((4 - R2) / 9)
    assert parts["cos"] == pytest.approx(COS_MCL, abs=1e-6)
    assert total.item() == pytest.approx(MSE_EN + MSE_XX + COS_MCL, abs=1e-6)
    half, _ = ContrastiveLoss("mcl", weight_cos=0.5)(S_EN, S_XX, T_EN)
    assert half.item() == pytest.approx(MSE_EN + MSE_XX + 0.5 * COS_MCL, abs=1e-6)


def test_contrastive_bool_and_mse_hand_computed():
    total, parts = ContrastiveLoss(ContrastiveVariant.BOOL)(S_EN, S_XX, T_EN)
    assert parts["cos"] == pytest.approx((2 - R2) / 9, abs=1e-6)
    assert total.item() == pytest.approx(MSE_EN + MSE_XX + COS_BOOL, abs=1e-6)
    total, parts = ContrastiveLoss("mse")(S_EN, S_XX, T_EN)
    assert set(parts) == {"mse_en", "mse_xx"}
    assert total.item() == pytest.approx(MSE_EN + MSE_XX, abs=1e-6)


def test_contrastive_infonce_hand_computed():
    # logits = 20 cos(S_en, S_xx); cross-entropy of row i with label i:
    a = 20 / R2
    row1 = math.log(math.exp(a) + 2) - a  # [a, 0, 0], label 0
    row2 = math.log(math.exp(a) + math.exp(20) + 1) - 20  # [a, 20, 0], label 1
    row3 = math.log(2 + math.exp(20)) - 20  # [0, 0, 20], label 2
    nce = (row1 + row2 + row3) / 3
    total, parts = ContrastiveLoss("infonce")(S_EN, S_XX, T_EN)
    assert parts["infonce"] == pytest.approx(0.01 * nce, rel=1e-4)
    assert total.item() == pytest.approx(MSE_EN + MSE_XX + 0.01 * nce, rel=1e-5)


# --- student model ------------------------------------------------------------------------------


def tiny_student(passes: int = 2, layers: int = 3, vocab: int = 50) -> XLSearchRecurrentModel:
    torch.manual_seed(0)
    cfg = XLSearchRecurrentConfig(
        vocab_size=vocab,
        embedding_size=8,
        hidden_size=16,
        num_hidden_layers=layers,
        num_passes=passes,
        num_attention_heads=4,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    return XLSearchRecurrentModel(cfg).eval()


def test_recurrent_forward_equals_unrolled_bert():
    """S (k=3 layers, r=2 passes) == a plain BertModel with layers L1 L2 L3 L1 L2 L3 and the
    bottleneck multiplied out into a full embedding matrix."""
    from transformers import BertConfig, BertModel

    student = tiny_student(passes=2, layers=3)
    c = student.config
    bert = BertModel(
        BertConfig(
            vocab_size=c.vocab_size,
            hidden_size=16,
            num_hidden_layers=6,
            num_attention_heads=4,
            intermediate_size=32,
            max_position_embeddings=32,
            type_vocab_size=2,
            layer_norm_eps=c.layer_norm_eps,
            pad_token_id=1,
        ),
        add_pooling_layer=False,
    ).eval()
    e = student.embeddings
    with torch.no_grad():
        bert.embeddings.word_embeddings.weight.copy_(e.word_projection(e.word_embeddings.weight))
        bert.embeddings.position_embeddings.weight.copy_(e.position_embeddings.weight)
        bert.embeddings.token_type_embeddings.weight.copy_(e.token_type_embeddings.weight)
        bert.embeddings.LayerNorm.load_state_dict(e.LayerNorm.state_dict())
        for i in range(6):
            bert.encoder.layer[i].load_state_dict(student.layers[i % 3].state_dict(), strict=False)
    ids = torch.tensor([[0, 5, 9, 13, 2, 1, 1], [0, 7, 8, 2, 1, 1, 1]])
    mask = (ids != 1).long()
    with torch.no_grad():
        got = student(input_ids=ids, attention_mask=mask).last_hidden_state
        want = bert(input_ids=ids, attention_mask=mask).last_hidden_state
    real = mask.bool()
    assert torch.allclose(got[real], want[real], atol=1e-5)


def test_passes_reuse_the_same_layers():
    student = tiny_student(passes=2, layers=3)
    ids = torch.tensor([[0, 5, 9, 2]])
    with torch.no_grad():
        x = student.embeddings(ids)
        bias = torch.zeros(1, 1, 1, 4)
        for _ in range(2):  # the explicit unrolled loop
            for layer in student.layers:
                x = layer(x, bias)
        out = student(input_ids=ids).last_hidden_state
        once = student(input_ids=ids, num_passes=1).last_hidden_state
    assert torch.allclose(out, x, atol=1e-6)
    assert not torch.allclose(out, once, atol=1e-3)
    assert sum(p.numel() for p in tiny_student(passes=5).parameters()) == sum(
        p.numel() for p in student.parameters()
    )


# --- config -------------------------------------------------------------------------------------


def test_config_file_and_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('name = "x"\n[stage1]\nsteps = 5\n[data]\nlangs = ["de"]\n')
    cfg = load_config(
        path,
        [
            "--stage1.steps=7",
            "--data.langs=de,fr",
            "--stage4.variant=infonce",
            "--student.init=random",
            "--stage2.lr=0.5",
            "--vocab.trim=false",
        ],
    )
    assert cfg.name == "x" and cfg.stage1.steps == 7 and cfg.data.langs == ["de", "fr"]
    assert cfg.stage4.variant == ContrastiveVariant.INFONCE and cfg.student.init == "random"
    assert cfg.stage2.lr == 0.5 and cfg.vocab.trim is False and cfg.stage3.steps == 200  # default kept


@pytest.mark.parametrize(
    "override, message",
    [
        ("--stage1.stepz=3", "unknown config key(s): stage1.stepz"),
        ("--nosuch=1", "unknown config key(s): nosuch"),
        ("--stage1.steps=abc", "stage1.steps: expected an integer"),
        ("--stage4.variant=nope", "stage4.variant: 'nope' is not one of"),
        ("--student.layers=0", "must be >= 1"),
        ("stage1.steps", "must look like --key=value"),
    ],
)
def test_config_rejects_bad_overrides(override, message):
    with pytest.raises(ConfigError, match=".*".join(map(__import__("re").escape, message.split("*")))):
        load_config(None, [override])


def test_config_rejects_unknown_key_in_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[stage3]\nlr = 1e-4\nwarmup = 3\n")
    with pytest.raises(ConfigError, match="stage3.warmup"):
        load_config(path)


def test_presets_load():
    for name in ("offline", "offline-minilm", "offline-full", "paper-minilm", "paper-xlmr"):
        load_config(Path(__file__).resolve().parents[1] / "configs" / f"{name}.toml")


# --- vocabulary trimming ------------------------------------------------------------------------


def test_trimmed_tokenizer_round_trip(tmp_path):
    from transformers import AutoTokenizer

    from distill.vocab import count_token_ids, remap_ids, select_vocab, trim_tokenizer

    tok = build_unigram_tokenizer()
    texts = [t for row in PARALLEL[:6] for t in row[:2]]  # en + de only
    kept = select_vocab(tok, count_token_ids(tok, texts), keep_single_chars=False)
    assert len(kept) < len(tok)
    small = trim_tokenizer(tok, kept)
    small.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    old = tok(texts, padding=True, return_tensors="pt")["input_ids"]
    new = reloaded(texts, padding=True, return_tensors="pt")["input_ids"]
    assert torch.equal(remap_ids(old, kept, small.unk_token_id), new)  # same segmentation, new ids
    assert len(reloaded) == len(kept) and reloaded.pad_token_id == kept.index(tok.pad_token_id)
    assert reloaded.decode(new[0], skip_special_tokens=True) == texts[0]


# --- training data ------------------------------------------------------------------------------


def test_refuses_dev_and_corpus_files():
    from distill.data import DataError
    from distill.train.pairs import check_training_file

    for bad in (
        "dev/flores200_devtest.jsonl",
        "parallel/multi30k/multi30k.val.en-de.tsv",
        "parallel/multi30k/multi30k.test_2016_flickr.en-de.tsv",
        "corpus/xquad_paragraphs.jsonl",
        "sts/stsb_multi_mt/stsb-de-dev.tsv",
    ):
        with pytest.raises(DataError, match="refusing"):
            check_training_file(bad)
    check_training_file("parallel/multi30k/multi30k.train.en-de.tsv")


def test_stsb_pairs_align_by_pair_id(shared_data):
    from distill.train.pairs import stsb_training_pairs

    pairs = stsb_training_pairs(shared_data / "sts" / "stsb_multi_mt", ["de"])
    first = [p for p in pairs[:2]]
    assert first[0].en == "A plane is taking off." and first[0].xx == "Ein Flugzeug hebt gerade ab."
    assert all(p.lang == "de" for p in pairs) and len(pairs) > 10000
    every = {p.lang for p in stsb_training_pairs(shared_data / "sts" / "stsb_multi_mt", ["*"])}
    assert {"de", "es", "fr", "ja", "ru", "zh"} <= every and "en" not in every


# --- end to end ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory) -> dict:
    return make_tiny_setup(tmp_path_factory.mktemp("distill_tiny"))


def test_targets_are_cached_and_reused(tiny_setup, tmp_path):
    from distill.models import load_encoder
    from distill.targets import cached_embeddings

    enc = load_encoder(tiny_setup["teacher"], device="cpu")
    texts = [row[0] for row in PARALLEL]
    first = cached_embeddings(enc, tiny_setup["teacher"], texts, prefix=None, cache_dir=tmp_path)
    files = sorted((tmp_path / "targets").glob("*.npy"))
    assert len(files) == 1 and isinstance(first, np.memmap)
    np.testing.assert_allclose(first, enc.encode(texts), atol=1e-6)
    mtime = files[0].stat().st_mtime_ns
    again = cached_embeddings(enc, tiny_setup["teacher"], texts, prefix=None, cache_dir=tmp_path)
    assert files[0].stat().st_mtime_ns == mtime and np.array_equal(first, again)  # read, not recomputed
    cached_embeddings(enc, tiny_setup["teacher"], texts[:5], prefix=None, cache_dir=tmp_path)
    assert len(list((tmp_path / "targets").glob("*.npy"))) == 2  # other texts, other entry


def test_a_run_loads_each_frozen_model_once(tiny_setup, tmp_path, monkeypatch):
    """T and A only give targets (stage 1 off): each loads once per run, not once per stage and role."""
    import distill.train.state as state
    from distill.train.run import run

    loads: list[str] = []
    real = state.load_encoder
    monkeypatch.setattr(state, "load_encoder", lambda spec, **kw: loads.append(str(spec)) or real(spec, **kw))
    out = tmp_path / "students" / "once"
    extra = {"student.layers": "[0,1]", "student.passes": 1, "stage1.enabled": "false"}
    run(load_config(None, tiny_overrides(tiny_setup, out, tmp_path / "cache", steps=2, **extra)))
    assert loads.count(tiny_setup["assistant"]) == 1 and loads.count(tiny_setup["teacher"]) == 1, loads


def _embed_three_ways(path: Path, texts: list[str]) -> list[np.ndarray]:
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    from distill.models import load_encoder, mean_pool

    ours = load_encoder(path, device="cpu").encode(texts, prefix="query")
    st = SentenceTransformer(str(path), trust_remote_code=True, device="cpu").encode(
        texts, prompt_name="query"
    )
    model = AutoModel.from_pretrained(path, trust_remote_code=True).eval()
    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=True)
    batch = tok(["query: " + t for t in texts], padding=True, return_tensors="pt")
    with torch.no_grad():
        pooled = mean_pool(model(**batch).last_hidden_state, batch["attention_mask"])
    hf = torch.nn.functional.normalize(pooled, dim=-1).numpy()
    assert type(model).__name__ == "XLSearchRecurrentModel"
    return [ours, np.asarray(st), hf]


def test_four_stages_end_to_end(tiny_setup, tmp_path):
    from distill.train.run import run

    out = tmp_path / "students" / "tiny"
    cfg = load_config(None, tiny_overrides(tiny_setup, out, tmp_path / "cache", steps=30))
    summary = run(cfg)
    for n in (1, 2, 3, 4):
        info = summary["stages"][f"stage{n}"]
        assert info["loss_last"] < info["loss_first"], f"stage {n} loss did not go down: {info}"
    stage2 = summary["stages"]["stage2"]
    assert stage2["vocab_trimmed"] and stage2["vocab_size"] < stage2["vocab_full"]
    assert summary["stages"]["stage4"]["stored_params"] < summary["stages"]["stage1"]["stored_params"]
    # the exported student: model card, custom code, and three loaders that agree
    assert (out / "README.md").exists() and (out / "modeling_xlsearch.py").exists()
    card = (out / "README.md").read_text()
    assert "Stored parameters" in card and "[stage4]" in card
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "xlsearch_recurrent" and "AutoModel" in config["auto_map"]
    texts = [row[1] for row in PARALLEL] + ["Ein völlig unbekanntes Wort: Quanten"]
    ours, st, hf = _embed_three_ways(out, texts)
    assert np.abs(ours - st).max() < 1e-5 and np.abs(ours - hf).max() < 1e-5
    # metrics log has every stage's losses
    records = [
        json.loads(line) for line in (out.with_name("tiny.run") / "metrics.jsonl").read_text().splitlines()
    ]
    assert {r.get("stage") for r in records if "loss" in r} == {"stage1", "stage2", "stage3", "stage4"}


def test_stage_evaluation_uses_the_dev_suite(tiny_setup, shared_data):
    """The hook the stages call after training: distill.evaluation's quick dev suite (German only)."""
    from distill.evaluation.headline import headline
    from distill.models import load_encoder
    from distill.student.card import _scores_table
    from distill.train.evaluate import DevEvaluation

    evaluation = DevEvaluation(enabled=True, quick=True, langs=["de"])
    metrics = evaluation(load_encoder(tiny_setup["assistant"], device="cpu"))
    head = headline(metrics)
    assert 0 <= head["flores_acc"] <= 1 and 0 <= head["multi30k_acc"] <= 1 and -1 <= head["sts_spearman"] <= 1
    from distill.config import load_config

    summary = {"baselines": {"teacher": metrics}, "stages": {}}
    table = "\n".join(_scores_table(summary, load_config(None, [])))  # default: T = MiniLM, A = e5
    assert "| T (teacher) |" in table and "flores_acc" in table
    same = load_config(None, ['--models.teacher="pkg:multilingual-e5-small"'])
    assert "| T = A (teacher) |" in "\n".join(_scores_table(summary, same))


def _final_weights(out: Path) -> dict[str, torch.Tensor]:
    return XLSearchRecurrentModel.from_pretrained(out).state_dict()


def test_interrupt_and_resume_continues(tiny_setup, tmp_path):
    """Ctrl-C (a real SIGINT) in stage 3, then a crash in stage 4: each resume continues from the
    checkpoint, and the final weights equal those of an uninterrupted run."""
    from distill.train.run import RunError, run

    def overrides(out):
        return tiny_overrides(tiny_setup, out, tmp_path / "cache", steps=20)

    ref_out = tmp_path / "ref" / "tiny"
    run(load_config(None, overrides(ref_out)))

    out = tmp_path / "int" / "tiny"
    cfg = load_config(None, overrides(out))
    seen: list[tuple[str, int]] = []

    def ctrl_c_in_stage3(stage, step, loss):
        seen.append((stage, step))
        if stage == "stage3" and step == 13:
            signal.raise_signal(signal.SIGINT)  # what Ctrl-C does: the loop saves a checkpoint at step 13

    with pytest.raises(KeyboardInterrupt):
        run(cfg, on_step=ctrl_c_in_stage3)
    run_dir = out.with_name("tiny.run")
    assert (run_dir / "stage3.ckpt.pt").exists() and not (run_dir / "stage3" / "stage.json").exists()
    with pytest.raises(RunError, match="--resume"):
        run(cfg)  # a plain rerun must not silently restart

    def crash_in_stage4(stage, step, loss):
        seen.append((stage, step))
        if stage == "stage4" and step == 15:
            raise RuntimeError("simulated crash")

    seen.clear()
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(cfg, resume=True, on_step=crash_in_stage4)
    assert seen[0] == ("stage3", 14)  # continued after step 13, did not restart stages 1-3
    seen.clear()
    run(cfg, resume=True, on_step=lambda stage, step, loss: seen.append((stage, step)))
    assert seen[0] == ("stage4", 11)  # last periodic checkpoint was step 10
    info = json.loads((run_dir / "stage4" / "stage.json").read_text())
    assert info["resumed_from_step"] == 10
    ref, got = _final_weights(ref_out), _final_weights(out)
    for name in ref:
        assert torch.allclose(ref[name], got[name], atol=1e-6), name


def test_resume_rejects_a_changed_config_but_not_threads(tiny_setup, tmp_path):
    from distill.train.run import RunError, prepare_run_dir

    base = tiny_overrides(tiny_setup, tmp_path / "s" / "tiny", tmp_path / "cache")
    run_dir = tmp_path / "s" / "tiny.run"
    prepare_run_dir(load_config(None, base), run_dir, resume=False, overwrite=False, only_stage=None)
    prepare_run_dir(
        load_config(None, base + ["--threads=2"]), run_dir, resume=True, overwrite=False, only_stage=None
    )
    with pytest.raises(RunError, match="stage3.lr"):
        prepare_run_dir(
            load_config(None, base + ["--stage3.lr=0.5"]),
            run_dir,
            resume=True,
            overwrite=False,
            only_stage=None,
        )


def test_cli_reports_config_errors(capsys):
    from distill.cli import main

    assert main(["run", "--print-config", "--stage2.steps=3"]) == 0
    assert "[stage2]\nsteps = 3" in capsys.readouterr().out
    assert main(["run", "--stage2.stepz=3"]) == 2
    assert "unknown config key(s): stage2.stepz" in capsys.readouterr().err
    # stage 2 builds the student: it has no switch, and an old config's `enabled` is named as unknown
    assert main(["run", "--stage2.enabled=false"]) == 2
    assert "unknown config key(s): stage2.enabled" in capsys.readouterr().err


def test_presets_by_name_and_version(capsys, tmp_path, monkeypatch):
    from distill import __version__
    from distill.cli import main
    from distill.paths import preset_names

    monkeypatch.chdir(tmp_path)  # a name, not a path relative to the working directory
    assert {"offline", "paper-minilm"} <= set(preset_names())
    assert main(["run", "--config", "offline", "--print-config"]) == 0
    by_name = capsys.readouterr().out
    assert main(["run", "--config", "configs/offline.toml", "--print-config"]) == 0
    assert capsys.readouterr().out == by_name and 'name = "offline"' in by_name
    assert main(["run", "--config", "nope", "--print-config"]) == 2
    assert "presets by name: offline" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"distill {__version__}"


def test_passage_pairs_join_sentences_within_documents(tmp_path):
    import json

    from distill.train.pairs import passage_pairs

    rows = [
        ("s1", "d1", "One.", "Eins."),
        ("s2", "d1", "Two.", "Zwei."),
        ("s3", "d1", "Three.", None),
        ("s4", "d2", "Four.", "Vier."),
        ("s5", "d2", "Five.", "Fünf."),
        ("s6", "d3", "Six.", "Sechs."),
    ]
    with open(tmp_path / "p.jsonl", "w", encoding="utf-8") as f:
        for sid, _, en, de in rows:
            f.write(json.dumps({"id": sid, "lang": "eng", "text": en}) + "\n")
            if de:
                f.write(json.dumps({"id": sid, "lang": "deu", "text": de}) + "\n")
    (tmp_path / "docs.tsv").write_text("id\tdoc_id\n" + "".join(f"{s}\t{d}\n" for s, d, _, _ in rows))
    pairs = passage_pairs(tmp_path / "p.jsonl", tmp_path / "docs.tsv", ["*"], sentences=2)
    # d1: [s1 s2] (s3 has no German and no partner), d2: [s4 s5], d3: too short for a window
    assert [(p.en, p.xx, p.lang) for p in pairs] == [
        ("One. Two.", "Eins. Zwei.", "de"),
        ("Four. Five.", "Vier. Fünf.", "de"),
    ]
    assert passage_pairs(tmp_path / "p.jsonl", tmp_path / "docs.tsv", ["fr"], sentences=2) == []


def test_every_stage4_variant_is_one_registry_entry_chosen_by_name():
    from distill.config import load_config
    from distill.losses import CONTRASTIVE_OPTIONS, CONTRASTIVE_TERMS

    assert set(CONTRASTIVE_TERMS) == set(ContrastiveVariant)  # a variant without a term would be a KeyError
    st = load_config("offline").stage4
    loss = ContrastiveLoss.from_config(st)
    assert (
        loss.variant == ContrastiveVariant.KL
        and loss.needs_t_xx
        and loss.term.temperature == st.kl_temperature
    )
    assert set(CONTRASTIVE_OPTIONS) <= set(vars(st))  # every option is a [stage4] field
    assert not ContrastiveLoss("mse").needs_t_xx and ContrastiveLoss("mse").term is None
    with pytest.raises(TypeError, match="kl_temprature"):
        ContrastiveLoss("kl", kl_temprature=0.1)  # a typo is an error, not a silent default
    with pytest.raises(ValueError, match="t_xx"):
        ContrastiveLoss("kl")(S_EN, S_XX, T_EN)
