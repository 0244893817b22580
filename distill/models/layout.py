"""The sentence-transformers directory layout, written and read without sentence-transformers.

We write the classic layout (`sentence_transformers.models.*` module names), which every
sentence-transformers release from 2.x to 6.x loads, and we read both the classic and the 6.x
pooling configs so any saved model can be opened by `load_encoder`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class Pooling(StrEnum):
    MEAN = "mean"
    CLS = "cls"


@dataclass(frozen=True)
class SentenceLayout:
    """What a sentence-transformers directory says about turning token states into a vector."""

    transformer_dir: Path
    pooling: Pooling = Pooling.MEAN
    normalize: bool = False
    prompts: dict[str, str] = field(default_factory=dict)
    max_seq_length: int | None = None


def write_sentence_transformers_files(
    path: str | Path,
    *,
    dim: int,
    pooling: str = "mean",
    normalize: bool = True,
    prompts: dict[str, str] | None = None,
    max_seq_length: int = 512,
) -> None:
    """Add modules.json, pooling/normalise configs and prompts beside a saved transformers model."""
    path = Path(path)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        (path / "2_Normalize").mkdir(exist_ok=True)
    (path / "1_Pooling").mkdir(exist_ok=True)
    _dump(path / "modules.json", modules)
    _dump(
        path / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": dim,
            "pooling_mode_cls_token": pooling == Pooling.CLS,
            "pooling_mode_mean_tokens": pooling == Pooling.MEAN,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        },
    )
    _dump(path / "sentence_bert_config.json", {"max_seq_length": max_seq_length, "do_lower_case": False})
    _dump(
        path / "config_sentence_transformers.json",
        {"prompts": prompts or {}, "default_prompt_name": None, "similarity_fn_name": "cosine"},
    )


def read_layout(path: str | Path) -> SentenceLayout:
    """Read a sentence-transformers directory; a plain transformers directory means mean pooling."""
    path = Path(path)
    modules_file = path / "modules.json"
    if not modules_file.exists():
        return SentenceLayout(transformer_dir=path)
    modules = json.loads(modules_file.read_text())
    transformer_dir, pooling, normalize = path, Pooling.MEAN, False
    for module in modules:
        kind = module["type"].rsplit(".", 1)[-1]
        sub = path / module.get("path", "")
        if kind == "Transformer":
            transformer_dir = sub
        elif kind == "Pooling":
            pooling = _read_pooling(sub / "config.json")
        elif kind == "Normalize":
            normalize = True
    prompts: dict[str, str] = {}
    st_config = path / "config_sentence_transformers.json"
    if st_config.exists():
        prompts = {k: v for k, v in (json.loads(st_config.read_text()).get("prompts") or {}).items() if v}
    max_len = None
    for name in ("sentence_bert_config.json", "sentence_xlnet_config.json"):
        cfg = transformer_dir / name
        if cfg.exists():
            max_len = json.loads(cfg.read_text()).get("max_seq_length")
    return SentenceLayout(transformer_dir, pooling, normalize, prompts, max_len)


def _read_pooling(config_file: Path) -> Pooling:
    cfg = json.loads(config_file.read_text()) if config_file.exists() else {}
    mode = cfg.get("pooling_mode")  # sentence-transformers >= 6
    if mode is None:
        mode = "cls" if cfg.get("pooling_mode_cls_token") else "mean"
    if mode not in (Pooling.MEAN, Pooling.CLS):
        raise ValueError(f"{config_file}: pooling mode {mode!r} is not supported (use mean or cls)")
    return Pooling(mode)


def _dump(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
