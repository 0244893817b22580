"""Issue 14, D2: a model directory's own Python runs only when the user opts in; xlsearch students
load from the installed code, never from the copy of `modeling_xlsearch.py` saved beside them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_CORPUS, build_tiny_tokenizer

TEXTS = TINY_CORPUS[:5]

EVIL_PY = """\
from pathlib import Path

from transformers import BertModel

Path({marker!r}).write_text("pwned")


class EvilModel(BertModel):
    pass
"""


def _evil_copy(src: Path, dest: Path) -> tuple[Path, Path]:
    """A copy of `src` whose config.json maps AutoModel to evil.py, which writes a marker when imported."""
    shutil.copytree(src, dest)
    marker = dest.parent / f"{dest.name}.marker"
    config = json.loads((dest / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "evil.EvilModel"}
    (dest / "config.json").write_text(json.dumps(config))
    (dest / "evil.py").write_text(EVIL_PY.format(marker=str(marker)))
    return dest, marker


@pytest.fixture
def evil_model(tiny_model_dir, tmp_path) -> tuple[Path, Path]:
    return _evil_copy(tiny_model_dir, tmp_path / f"evil_{tmp_path.name}")


def test_auto_map_is_refused_without_opt_in(evil_model):
    from distill.models import RemoteCodeError, load_encoder

    path, marker = evil_model
    with pytest.raises(RemoteCodeError, match=r"--trust-remote-code") as err:
        load_encoder(path)
    assert "evil.EvilModel" in str(err.value)
    assert not marker.exists()


def test_auto_map_in_the_tokenizer_config_is_refused_too(tiny_model_dir, tmp_path):
    from distill.models import RemoteCodeError, load_encoder

    path = tmp_path / "evil_tok"
    shutil.copytree(tiny_model_dir, path)
    cfg = json.loads((path / "tokenizer_config.json").read_text())
    cfg["auto_map"] = {"AutoTokenizer": ["evil.EvilTokenizer", None]}
    (path / "tokenizer_config.json").write_text(json.dumps(cfg))
    with pytest.raises(RemoteCodeError, match=r"tokenizer_config\.json: AutoTokenizer"):
        load_encoder(path)


def test_auto_map_runs_with_opt_in(evil_model, tiny_model_dir):
    from distill.models import load_encoder

    path, marker = evil_model
    enc = load_encoder(path, trust_remote_code=True)
    assert marker.read_text() == "pwned"  # the user allowed it: the directory's code did run
    assert type(enc.model).__name__ == "EvilModel"
    np.testing.assert_allclose(enc.encode(TEXTS), load_encoder(tiny_model_dir).encode(TEXTS), atol=1e-6)


def test_indexer_create_refuses_then_records_the_opt_in(evil_model, tmp_path, capsys):
    from indexer import Collection
    from indexer.cli import main

    path, marker = evil_model
    rc = main(["create", str(tmp_path / "c1"), "--model", str(path), "-q"])
    err = capsys.readouterr().err
    assert rc == 1 and not marker.exists()
    assert "indexer create: error:" in err and "--trust-remote-code" in err and "Traceback" not in err
    assert not (tmp_path / "c1" / "collection.json").exists()

    rc = main(["create", str(tmp_path / "c2"), "--model", str(path), "--trust-remote-code", "-q"])
    assert rc == 0 and marker.exists()
    docs = tmp_path / "docs.jsonl"
    docs.write_text(json.dumps({"id": "d1", "lang": "en", "text": "The cat sits on the mat."}) + "\n")
    # A later add loads the model again, without the flag: it reuses the decision recorded at create
    # (without it, the load would be refused as in the first create).
    assert main(["add", str(tmp_path / "c2"), str(docs), "-q"]) == 0
    with Collection.open(tmp_path / "c2", read_only=True) as col:
        assert col.info()["models"][0]["trust_remote_code"] is True
        assert col.search("cat", k=1)[0].doc_id == "d1"


def test_collection_without_opt_in_does_not_trust_a_model_changed_later(tiny_model_dir, tmp_path, capsys):
    """A model directory that gains an auto_map after the collection was created is refused at search."""
    from indexer.cli import main

    path = tmp_path / "model"
    shutil.copytree(tiny_model_dir, path)
    assert main(["create", str(tmp_path / "c"), "--model", str(path), "-q"]) == 0
    capsys.readouterr()
    _, marker = _evil_copy(tiny_model_dir, tmp_path / "unused")
    shutil.copy(tmp_path / "unused" / "config.json", path / "config.json")
    shutil.copy(tmp_path / "unused" / "evil.py", path / "evil.py")
    assert main(["search", str(tmp_path / "c"), "cat"]) == 1
    assert "--trust-remote-code" in capsys.readouterr().err and not marker.exists()


# --- the xlsearch student ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_student(tmp_path_factory) -> Path:
    import torch

    from distill.student import XLSearchRecurrentConfig, XLSearchRecurrentModel
    from distill.student.export import save_student

    torch.manual_seed(0)
    tokenizer = build_tiny_tokenizer()
    cfg = XLSearchRecurrentConfig(
        vocab_size=len(tokenizer),
        embedding_size=8,
        hidden_size=16,
        num_hidden_layers=2,
        num_passes=2,
        num_attention_heads=4,
        intermediate_size=32,
        max_position_embeddings=64,
        position_offset=0,
    )
    path = tmp_path_factory.mktemp("student") / "student"
    save_student(
        XLSearchRecurrentModel(cfg).eval(), tokenizer, path, prompts={"query": "query: "}, max_seq_length=64
    )
    return path


def test_student_loads_from_the_installed_code_not_the_copy(saved_student, tmp_path):
    from distill.models import load_encoder
    from distill.student.modeling_xlsearch import XLSearchRecurrentModel

    path = tmp_path / "student"
    shutil.copytree(saved_student, path)
    config = json.loads((path / "config.json").read_text())
    assert config["model_type"] == "xlsearch_recurrent" and "AutoModel" in config["auto_map"]
    marker = tmp_path / "copy_imported"
    copy = path / "modeling_xlsearch.py"
    copy.write_text(f"from pathlib import Path\nPath({str(marker)!r}).write_text('x')\n" + copy.read_text())
    enc = load_encoder(path)  # no trust_remote_code
    assert type(enc.model) is XLSearchRecurrentModel  # the class of distill.student, not of the copy
    assert not marker.exists()
    np.testing.assert_allclose(enc.encode(TEXTS), load_encoder(saved_student).encode(TEXTS), atol=1e-6)


def test_student_still_loads_with_sentence_transformers_without_xlsearch(saved_student, tmp_path):
    """What the model card promises: SentenceTransformer(path, trust_remote_code=True), in a process that
    never imports xlsearch, gives load_encoder's vectors."""
    from distill.models import load_encoder

    ours = load_encoder(saved_student).encode(TEXTS, prefix="query")
    out = tmp_path / "st.npy"
    script = (
        "import sys, numpy as np\n"
        "from sentence_transformers import SentenceTransformer\n"
        "m = SentenceTransformer(sys.argv[1], trust_remote_code=True, device='cpu')\n"
        "assert not any(k == 'distill' or k.startswith('distill.') for k in sys.modules), 'xlsearch imported'\n"
        "assert type(m[0].auto_model).__module__.startswith('transformers_modules'), type(m[0].auto_model)\n"
        f"np.save(sys.argv[2], m.encode({TEXTS!r}, prompt_name='query'))\n"
    )
    env = {
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PATH": "/usr/bin:/bin",
        "HF_HOME": str(tmp_path / "hf"),
    }
    subprocess.run(
        [sys.executable, "-c", script, str(saved_student), str(out)],
        check=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    np.testing.assert_allclose(np.load(out), ours, atol=1e-5)


def test_distill_evaluate_refuses_then_accepts_the_flag(evil_model, tmp_path, capsys):
    from distill.cli import main

    path, marker = evil_model
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("en\tde\n" + "".join(f"{a}\t{b}\n" for a, b in zip(TEXTS[:3], TEXTS[1:4], strict=True)))
    args = [
        "evaluate",
        "--model",
        str(path),
        "--bitext",
        str(pairs),
        "--no-cost",
        "--out",
        str(tmp_path / "out"),
    ]
    assert main(args) == 1  # a runtime failure, not a usage error
    err = capsys.readouterr().err
    assert "--trust-remote-code" in err and "Traceback" not in err and not marker.exists()
    assert main([*args, "--trust-remote-code"]) == 0 and marker.exists()
    assert (tmp_path / "out" / "metrics.json").is_file()


def test_distill_models_refuses_with_one_line(evil_model, capsys):
    from distill.cli import main

    path, marker = evil_model
    assert main(["models", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "--trust-remote-code" in err
    assert not marker.exists()
