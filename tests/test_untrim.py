"""`distill untrim`: a trimmed-vocabulary student gets the assistant's full tokenizer back, pieces it
dropped sharing their nearest kept row; on text its own pieces cover it is unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support.distill_fixtures import make_tiny_setup, tiny_overrides

from distill.config import load_config
from distill.student.untrim import UntrimError, nearest_rows

torch.set_num_threads(1)
COVERED = ["The cat sits on the mat.", "Der Hund läuft im Park."]


@pytest.fixture(scope="module")
def trimmed(tmp_path_factory):
    """A tiny student whose vocabulary is capped well below the assistant's, and its setup."""
    from distill.train.run import run

    root = tmp_path_factory.mktemp("untrim")
    setup = make_tiny_setup(root)
    out = root / "students" / "s"
    extra = {"student.layers": "[0,3]", "student.embedding_size": 32, "student.passes": 1}
    extra |= {"stage1.enabled": "false", "stage2.steps": 0, "vocab.max_pieces": 200}
    run(load_config(None, tiny_overrides(setup, out, root / "cache", steps=2, **extra)))
    return setup, out


def test_nearest_rows_keeps_own_rows_and_picks_the_most_similar_kept_one():
    rows = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.2, 0.8], [-1.0, 0.1]], dtype=np.float32)
    kept = np.array([0, 1])
    assert nearest_rows(rows, kept).tolist() == [0, 1, 0, 1, 1]  # [-1, .1] is nearer [0, 1] by cosine


def test_untrimmed_student_tokenizes_as_the_assistant_and_loads_everywhere(trimmed, tmp_path):
    from sentence_transformers import SentenceTransformer

    from distill.cli import main as distill_main
    from distill.models import load_encoder

    setup, student = trimmed
    out = tmp_path / "untrimmed"
    assert distill_main(["untrim", str(student), "--out", str(out), "--assistant", setup["assistant"]]) == 0
    a, s, u = (load_encoder(p) for p in (setup["assistant"], student, out))
    assert len(s.tokenizer) <= 200 < len(u.tokenizer) == len(a.tokenizer)
    assert u.model.config.token_map_size == len(a.tokenizer) and u.model.config.vocab_size == len(s.tokenizer)
    rare = "Zebras quizzically juxtapose xylophones"  # pieces the tiny training text never used
    assert u.tokenizer(rare)["input_ids"] == a.tokenizer(rare)["input_ids"] != s.tokenizer(rare)["input_ids"]
    # Where the student's own pieces cover the text, segmentation and rows are the same: so is the vector.
    same = [t for t in COVERED if len(s.tokenizer(t)["input_ids"]) == len(a.tokenizer(t)["input_ids"])]
    assert same
    np.testing.assert_allclose(u.encode(same, prefix="query"), s.encode(same, prefix="query"), atol=1e-5)
    st = SentenceTransformer(str(out), trust_remote_code=True, device="cpu")
    np.testing.assert_allclose(
        st.encode(["query: " + rare], normalize_embeddings=True), u.encode([rare], prefix="query"), atol=1e-4
    )
    assert "Untrimmed tokenizer" in (out / "README.md").read_text()
    # Its ONNX export gathers through the table as torch does.
    onnx = load_encoder(out, backend="onnx")
    assert float((onnx.encode([rare]) * u.encode([rare])).sum()) > 0.999


def test_extra_rows_give_the_most_probable_dropped_pieces_the_assistants_own_row(trimmed, tmp_path):
    from distill.models import load_encoder
    from distill.student.untrim import extra_pieces, kept_ids, untrim_student

    setup, student = trimmed
    report = untrim_student(student, tmp_path / "x", assistant=setup["assistant"], extra_rows=5)
    a, s, u = (load_encoder(p) for p in (setup["assistant"], student, tmp_path / "x"))
    kept = kept_ids(s.tokenizer, a.tokenizer)
    extra = extra_pieces(a.tokenizer, kept, 5)
    assert report["rows"] == len(kept) + 5 and not set(extra) & set(kept)
    emb = u.model.embeddings
    rows = emb.token_rows[torch.as_tensor(extra)].long()
    assert sorted(rows.tolist()) == list(range(len(kept), len(kept) + 5))  # each its own new row
    projected = emb.word_projection(emb.word_embeddings(rows)).detach()
    a_rows = a.model.get_input_embeddings().weight[torch.as_tensor(extra)].detach()
    torch.testing.assert_close(projected, a_rows, atol=1e-4, rtol=1e-4)
    # the student's own rows are untouched: covered text embeds as before
    same = [t for t in COVERED if len(s.tokenizer(t)["input_ids"]) == len(a.tokenizer(t)["input_ids"])]
    np.testing.assert_allclose(u.encode(same, prefix="query"), s.encode(same, prefix="query"), atol=1e-5)
    # the copy records the weights it was made from (distill.paths.default_student serves it while current)
    from distill.paths import derived_from

    assert derived_from(tmp_path / "x", student) and not derived_from(tmp_path / "x", tmp_path / "x")


def test_untrim_refuses_what_it_cannot_do(trimmed, tmp_path, capsys):
    from distill.cli import main as distill_main
    from distill.student.untrim import untrim_student

    setup, student = trimmed
    done = tmp_path / "u"
    untrim_student(student, done, assistant=setup["assistant"])
    with pytest.raises(UntrimError, match="already maps"):
        untrim_student(done, tmp_path / "again", assistant=setup["assistant"])
    with pytest.raises(UntrimError, match="not trimmed from this assistant"):
        untrim_student(student, tmp_path / "x", assistant=setup["teacher"])  # another tokenizer
    assert distill_main(["untrim", str(student), "--out", str(student)]) == 2
    assert distill_main(["untrim", str(student), "--out", str(tmp_path / "z"), "--extra-rows", "-1"]) == 2
    assert distill_main(["untrim", str(tmp_path / "nope"), "--out", str(tmp_path / "y")]) == 1
    assert "not a saved student" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.partial").exists()


def test_default_student_is_the_untrimmed_copy_only_while_it_is_current(tmp_path, monkeypatch):
    import os

    from distill import paths

    shipped, data = tmp_path / "models" / "student-offline", tmp_path / "data"
    untrimmed = data / "students" / paths.UNTRIMMED_STUDENT
    for d in (shipped, untrimmed):
        d.mkdir(parents=True)
        (d / "model.safetensors").write_bytes(b"w")
    monkeypatch.setattr(paths, "shipped_student", lambda: shipped)
    # a trimmed xlsearch student (no token_map_size): it is served untrimmed (issue 25: else as shipped)
    (shipped / "config.json").write_text('{"model_type": "xlsearch_recurrent", "vocab_size": 64000}')
    assert paths.default_student(data) == shipped  # a copy that records no source is not served
    paths.record_source(untrimmed, shipped)
    assert paths.default_student(data) == untrimmed
    os.utime(untrimmed / "model.safetensors", (10, 10))  # the copy's own age does not matter
    assert paths.default_student(data) == untrimmed
    st = (shipped / "model.safetensors").stat()
    os.utime(shipped / "model.safetensors", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # replaced since
    assert paths.default_student(data) == shipped
    paths.record_source(untrimmed, shipped)
    (untrimmed / "model.safetensors").unlink()
    assert paths.default_student(data) == shipped
    monkeypatch.setattr(paths, "shipped_student", lambda: None)
    assert paths.default_student(data) == data / "students" / "offline"


def test_untrim_in_training_starts_where_distill_untrim_ends_and_ships_the_assistants_tokenizer(
    trimmed, tmp_path
):
    """`vocab.untrim = true`: stages 3-4 already read the assistant's ids; stage 2's student is
    exactly what `distill untrim` makes of the trimmed run's stage-2 student."""
    from distill.models import load_encoder
    from distill.student.untrim import untrim_student
    from distill.train.run import run

    setup, trimmed_out = trimmed
    out = tmp_path / "students" / "u"
    extra = {"student.layers": "[0,3]", "student.embedding_size": 32, "student.passes": 1}
    extra |= {"stage1.enabled": "false", "stage2.steps": 0, "vocab.max_pieces": 200, "vocab.untrim": "true"}
    summary = run(load_config(None, tiny_overrides(setup, out, tmp_path / "cache", steps=2, **extra)))
    assert summary["stages"]["stage2"]["vocab_untrimmed"] is True
    a = load_encoder(setup["assistant"])
    u = load_encoder(out)
    assert len(u.tokenizer) == len(a.tokenizer) == u.model.config.token_map_size
    assert u.model.config.vocab_size <= 200
    assert "the saved tokenizer is A's own" in (out / "README.md").read_text()

    derived = tmp_path / "derived"
    untrim_student(trimmed_out.with_name("s.run") / "stage2", derived, assistant=setup["assistant"])
    texts = COVERED + ["Zebras quizzically juxtapose xylophones"]
    np.testing.assert_allclose(
        load_encoder(out.with_name("u.run") / "stage2").encode(texts, prefix="query"),
        load_encoder(derived).encode(texts, prefix="query"),
        atol=1e-6,
    )

    # shipped trimmed (the tokenizer over S's rows, the table beside it), untrimmed back: the same model
    import json

    from distill.student.ship import ship_student

    kept = json.loads((out.with_name("u.run") / "stage2" / "vocab.json").read_text())["kept_ids"]
    shipped = ship_student(out, tmp_path / "models" / "s", kept=kept, assistant=setup["assistant"])
    assert (shipped / "token_rows.npz").is_file() and not load_encoder(shipped).model.config.token_map_size
    assert len(load_encoder(shipped).tokenizer) == len(kept)
    back = tmp_path / "back"
    untrim_student(shipped, back, assistant=setup["assistant"])
    trained, again = load_encoder(out), load_encoder(back)
    assert torch.equal(trained.model.embeddings.token_rows, again.model.embeddings.token_rows)
    np.testing.assert_allclose(
        trained.encode(texts, prefix="query"), again.encode(texts, prefix="query"), atol=2e-3
    )  # fp16 weights
    with pytest.raises(UntrimError, match="not the student's"):
        ship_student(out, tmp_path / "models" / "wrong", kept=kept[::-1], assistant=setup["assistant"])
    with pytest.raises(UntrimError, match="not trained untrimmed"):  # a trimmed student: nothing to take out
        ship_student(trimmed_out, tmp_path / "models" / "t", kept=kept, assistant=setup["assistant"])


def test_untrim_in_training_needs_a_trimmed_vocabulary_and_the_curve_a_sane_interval():
    from distill.config import ConfigError

    with pytest.raises(ConfigError, match="vocab.untrim = true needs vocab.trim = true"):
        load_config(None, ["--vocab.untrim=true", "--vocab.trim=false"])
    with pytest.raises(ConfigError, match="eval.every"):
        load_config(None, ["--eval.every=-1"])
    with pytest.raises(ConfigError, match="eval.every"):
        load_config(None, ["--eval.every=often"])


def test_a_shipped_table_is_used_only_for_the_rows_it_was_made_for(trimmed, tmp_path, monkeypatch):
    """`--table` ships the nearest rows beside the student: untrimming then skips the search and
    gives the same model; a table for other rows (another student, another assistant, a forged or
    truncated file) is ignored, never trusted."""
    import shutil

    from distill.cli import main as distill_main
    from distill.models import load_encoder
    from distill.student import untrim

    setup, trimmed_out = trimmed
    student = tmp_path / "student"
    shutil.copytree(trimmed_out, student)
    assert (
        distill_main(
            ["untrim", str(student), "--out", str(tmp_path / "plain"), "--assistant", setup["assistant"]]
        )
        == 0
    )
    assert not (student / untrim.TABLE).exists()  # --out never writes into the student
    assert distill_main(["untrim", str(student), "--table", "--assistant", setup["assistant"]]) == 0
    assert (student / untrim.TABLE).is_file()

    searches = []
    real = untrim.nearest_rows
    monkeypatch.setattr(untrim, "nearest_rows", lambda *a, **k: searches.append(1) or real(*a, **k))
    untrim.untrim_student(student, tmp_path / "fast", assistant=setup["assistant"])
    assert searches == []  # read from the table
    texts = COVERED + ["Zebras quizzically juxtapose xylophones"]
    fast, plain = (load_encoder(tmp_path / d).encode(texts, prefix="query") for d in ("fast", "plain"))
    np.testing.assert_array_equal(fast, plain)

    a = load_encoder(setup["assistant"])
    rows = untrim.assistant_rows(a.model, a.tokenizer)
    kept = untrim.kept_ids(load_encoder(student).tokenizer, a.tokenizer)
    table = student / untrim.TABLE
    assert untrim.read_table(table, kept, rows) is not None
    assert untrim.read_table(table, kept[:-1], rows) is None  # another student's kept pieces
    assert untrim.read_table(table, kept, rows * 1.01) is None  # another assistant's rows
    good = np.load(table)["rows"]
    forged = good.copy()
    forged[0] = 10**6  # out of range, stamp copied from the real file
    np.savez(table, rows=forged, source=np.load(table)["source"])
    assert untrim.read_table(table, kept, rows) is None
    table.write_bytes(b"PK\x03\x04 truncated")
    assert untrim.read_table(table, kept, rows) is None
    untrim.untrim_student(student, tmp_path / "again", assistant=setup["assistant"])
    assert searches == [1]  # a bad table costs the search again, not a wrong model
    assert distill_main(["untrim", str(student), "--table", "--extra-rows", "3"]) == 2
