"""Save a student so it loads three ways: `load_encoder`, sentence-transformers and `AutoModel`.

`save_pretrained` writes the weights and config; registering the classes for the auto API makes
transformers copy `modeling_xlsearch.py` beside them and put an `auto_map` in config.json, so
`trust_remote_code=True` finds the code without xlsearch installed.
"""

from __future__ import annotations

from pathlib import Path

from distill.models import write_sentence_transformers_files
from distill.student.modeling_xlsearch import XLSearchRecurrentConfig, XLSearchRecurrentModel


def save_student(
    model: XLSearchRecurrentModel,
    tokenizer,
    path: str | Path,
    *,
    prompts: dict[str, str] | None = None,
    max_seq_length: int = 512,
    model_card: str | None = None,
) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    XLSearchRecurrentConfig.register_for_auto_class()
    XLSearchRecurrentModel.register_for_auto_class("AutoModel")
    model.save_pretrained(path)
    tokenizer.model_max_length = max_seq_length
    tokenizer.save_pretrained(path)
    if not (path / "modeling_xlsearch.py").exists():  # transformers copies it; make sure
        import shutil

        shutil.copy(Path(__file__).with_name("modeling_xlsearch.py"), path / "modeling_xlsearch.py")
    write_sentence_transformers_files(
        path,
        dim=model.config.hidden_size,
        pooling="mean",
        normalize=True,
        prompts=prompts,
        max_seq_length=max_seq_length,
    )
    if model_card is not None:
        (path / "README.md").write_text(model_card)
    return path
