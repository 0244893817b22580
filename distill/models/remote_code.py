"""Which Python files of its own a model directory would make transformers import, and the opt-in.

transformers imports a directory's `.py` files when its config.json or tokenizer_config.json names
them in `auto_map` and the caller passes `trust_remote_code=True`. xlsearch passes it only when the
user opts in. The exception is the xlsearch student (model_type `xlsearch_recurrent`): its
directory carries a copy of `modeling_xlsearch.py` for users without xlsearch, but here its classes
come from the installed `distill.student` (registered with transformers' Auto classes), never from
that copy.
"""

from __future__ import annotations

import json
from pathlib import Path

STUDENT_MODEL_TYPE = "xlsearch_recurrent"
_STUDENT_CLASSES = ("AutoConfig", "AutoModel")  # what the installed code provides for the student
OPT_IN = "--trust-remote-code (distill run: models.trust_remote_code = true; Python: trust_remote_code=True)"


class RemoteCodeError(ValueError):
    """A model that needs its own Python code, which the user has not allowed to run."""


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path} is unreadable ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object, not {type(data).__name__}")
    return data


def remote_code_refs(model_dir: str | Path) -> list[str]:
    """`file: AutoClass -> module.Class` for each class the directory would load from its own code."""
    model_dir = Path(model_dir)
    refs = []
    for name in ("config.json", "tokenizer_config.json"):
        config = _read_json(model_dir / name)
        auto_map = config.get("auto_map") or {}
        if isinstance(auto_map, list):  # old tokenizer configs: [slow, fast]
            auto_map = {"AutoTokenizer": auto_map}
        if not isinstance(auto_map, dict):
            refs.append(f"{name}: auto_map {auto_map!r}")
            continue
        ours = name == "config.json" and config.get("model_type") == STUDENT_MODEL_TYPE
        refs += [
            f"{name}: {key} -> {ref}"
            for key, ref in auto_map.items()
            if ref and not (ours and key in _STUDENT_CLASSES)
        ]
    return refs


def check_remote_code(model_dir: str | Path, spec: str, trust_remote_code: bool) -> None:
    """Raise `RemoteCodeError` when `model_dir` needs its own code and the user did not opt in."""
    refs = remote_code_refs(model_dir)
    if refs and not trust_remote_code:
        raise RemoteCodeError(
            f"model {spec} ships its own Python code ({'; '.join(refs)}), which is not run without your "
            f"consent; if you trust its author, pass {OPT_IN}"
        )


def register_student() -> None:
    """Make AutoConfig/AutoModel build the student from the installed code (idempotent)."""
    from transformers import AutoConfig, AutoModel

    from distill.student.modeling_xlsearch import XLSearchRecurrentConfig, XLSearchRecurrentModel

    AutoConfig.register(STUDENT_MODEL_TYPE, XLSearchRecurrentConfig, exist_ok=True)
    AutoModel.register(XLSearchRecurrentConfig, XLSearchRecurrentModel, exist_ok=True)
