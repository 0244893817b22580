"""distill.modelspec: one reading of `pkg:NAME`, directories and hub ids for every tool."""

from __future__ import annotations

from distill.modelspec import (
    SpecKind,
    display_name,
    normalize_spec,
    parse_spec,
    same_spec,
    weights_fingerprint,
)


def test_kinds_and_normal_forms(tmp_path, monkeypatch):
    (tmp_path / "students" / "s").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    pkg, local, hub = parse_spec(" pkg:all-MiniLM-L6-v2 "), parse_spec("students/s/"), parse_spec("acme/tiny")
    assert (pkg.kind, pkg.text, pkg.package_name, pkg.path) == (
        SpecKind.PACKAGED,
        "pkg:all-MiniLM-L6-v2",
        "all-MiniLM-L6-v2",
        None,
    )
    assert (local.kind, local.path) == (SpecKind.PATH, (tmp_path / "students" / "s").resolve())
    assert local.text == str(local.path) and local.name == "s"
    assert (hub.kind, hub.text, hub.package_name) == (SpecKind.HUB, "acme/tiny", None)
    assert parse_spec(local) is local


def test_relative_directories_are_read_against_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "a" / "m").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    assert normalize_spec("m") == str((tmp_path / "a" / "m").resolve())
    assert same_spec("m", tmp_path / "b" / ".." / "a" / "m") and not same_spec("m", tmp_path / "b")
    monkeypatch.chdir(tmp_path / "b")
    assert normalize_spec("m") == "m"  # no such directory here: kept as given (a hub id, say)


def test_links_keep_their_name_for_display_but_compare_by_target(tmp_path):
    (tmp_path / "weights-v2").mkdir()
    (tmp_path / "student").symlink_to(tmp_path / "weights-v2")
    assert same_spec(tmp_path / "student", tmp_path / "weights-v2")
    assert display_name(tmp_path / "student") == "student"


def test_display_names():
    assert display_name("pkg:multilingual-e5-small") == "multilingual-e5-small"
    assert display_name("/a/b/students/offline") == "offline"
    assert display_name("/a/b/students/offline", parts=2) == "students/offline"
    assert display_name("acme/tiny", parts=2) == "acme/tiny" and display_name("tiny", parts=2) == "tiny"
    assert display_name(".") == "."


def test_one_weights_fingerprint_sees_every_file_a_model_loads_and_no_derived_one(tmp_path):
    """The one rule behind the target cache, the ONNX export stamps, the demo check and the search
    benchmark's vector cache: weights, code, configs and tokenizer files at any depth count; the
    `onnx/` export (derived from them) and the card do not."""
    import os

    model = tmp_path / "m"
    for name in (
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "1_Pooling/config.json",
        "modeling_x.py",
        "sentencepiece.bpe.model",
        "vocab.txt",
        "README.md",
    ):
        (model / name).parent.mkdir(parents=True, exist_ok=True)
        (model / name).write_text(name)
    before = weights_fingerprint(model)
    assert set(before) == {
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "1_Pooling/config.json",
        "modeling_x.py",
        "sentencepiece.bpe.model",
        "vocab.txt",
    }
    (model / "onnx").mkdir()
    (model / "onnx" / "model.onnx").write_bytes(b"graph")
    (model / "onnx" / "xlsearch-export.json").write_text("{}")
    (model / "README.md").write_text("a new card")
    assert weights_fingerprint(model) == before
    for name in ("model.safetensors", "1_Pooling/config.json", "modeling_x.py"):
        st = (model / name).stat()
        os.utime(model / name, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # retrained in place
        assert weights_fingerprint(model) != before
        before = weights_fingerprint(model)
    assert weights_fingerprint(tmp_path / "missing") == {} and weights_fingerprint(model / "vocab.txt") == {}
