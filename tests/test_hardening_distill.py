"""Issue 14, distill side: bad config files and values, and bad bitext headers, are one clear error."""

from __future__ import annotations

import pytest

from distill.cli import main
from distill.config import ConfigError, load_config


def _run_config(path, capsys) -> tuple[int, str]:
    rc = main(["run", "--config", str(path), "--print-config"])
    return rc, capsys.readouterr().err


def test_config_that_is_a_directory_is_one_line(tmp_path, capsys):
    rc, err = _run_config(tmp_path, capsys)
    assert rc == 2 and err.count("\n") == 1 and "is not a file" in err and str(tmp_path) in err


def test_config_with_invalid_utf8_is_one_line(tmp_path, capsys):
    path = tmp_path / "latin1.toml"
    path.write_bytes('name = "caf\u00e9"\n'.encode("latin-1"))
    rc, err = _run_config(path, capsys)
    assert rc == 2 and err.count("\n") == 1 and "not UTF-8" in err and str(path) in err


@pytest.mark.parametrize(
    "toml, key",
    [
        ("[stage1]\nlr = nan\n", "stage1.lr"),
        ("[stage2]\nlr = inf\n", "stage2.lr"),
        ("[stage4]\nweight_cos = -inf\n", "stage4.weight_cos"),
        ("[stage3]\ngrad_clip = 0.0\n", "stage3.grad_clip"),
        ("[data]\nmax_pairs = -5\n", "data.max_pairs"),
        ("[stage2]\nmax_pairs = -1\n", "stage2.max_pairs"),
        ("threads = -2\n", "threads"),
        ("[data]\nmax_seq_length = 0\n", "data.max_seq_length"),
        ('[data]\nlangs = "de"\n', "data.langs"),
        ('[eval]\nlangs = "de,fr"\n', "eval.langs"),
    ],
)
def test_config_values_are_validated_naming_the_key(tmp_path, toml, key):
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=rf"^{key.replace('.', chr(92) + '.')}\b"):
        load_config(path)


def test_a_single_value_on_the_command_line_still_means_a_list(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[data]\nlangs = ["de", "fr"]\n[stage1]\nsteps = 3\n')
    cfg = load_config(path, ["--data.langs=zh", "--stage1.lr=1e-3"])
    assert cfg.data.langs == ["zh"] and cfg.stage1.lr == 1e-3 and cfg.stage1.steps == 3


@pytest.mark.parametrize(
    "content, expect",
    [
        ("en\ten\nThe cat.\tThe dog.\nA man.\tA woman.\n", "the same language twice"),
        ("The cat sits.\tDie Katze sitzt.\nA man.\tEin Mann.\n", "not language code(s)"),
    ],
)
def test_evaluate_bitext_with_a_wrong_header_is_an_error(tmp_path, capsys, tiny_model_dir, content, expect):
    path = tmp_path / "pairs.tsv"
    path.write_text(content)
    rc = main(
        [
            "evaluate",
            "--model",
            str(tiny_model_dir),
            "--bitext",
            str(path),
            "--no-cost",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err
    assert (
        rc == 1 and f"{path}:1:" in err and "en<TAB>de" in err and expect in err
    )  # bad data: a runtime failure
    assert not (tmp_path / "out").exists()
