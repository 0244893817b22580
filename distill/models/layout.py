"""The sentence-transformers directory layout, written and read without sentence-transformers.

We write the classic layout (`sentence_transformers.models.*` module names), which every
sentence-transformers release from 2.x to 6.x loads, and we read both the classic and the 6.x
configs so a model saved by sentence-transformers opens in `load_encoder` with the same vectors.
Supported modules: Transformer, Pooling (every mode), Dense, Normalize, in that order; any other
module is refused by name rather than silently skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from distill.models.head import Pooling
from distill.roles import Role

# sentence-transformers' encode_document uses the first of these prompts the model has.
DOCUMENT_PROMPT_NAMES = ("document", "passage", "corpus")
SUPPORTED_MODULES = ("Transformer", "Pooling", "Dense", "Normalize")
# sentence-transformers' classic boolean pooling keys, in its concatenation order.
_LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": Pooling.CLS,
    "pooling_mode_max_tokens": Pooling.MAX,
    "pooling_mode_mean_tokens": Pooling.MEAN,
    "pooling_mode_mean_sqrt_len_tokens": Pooling.MEAN_SQRT_LEN_TOKENS,
    "pooling_mode_weightedmean_tokens": Pooling.WEIGHTEDMEAN,
    "pooling_mode_lasttoken": Pooling.LASTTOKEN,
}


class UnsupportedModelError(ValueError):
    """A sentence-transformers directory with a module or setting this encoder cannot reproduce."""


@dataclass(frozen=True)
class SentenceLayout:
    """What a sentence-transformers directory says about turning token states into a vector.

    `prompts` maps roles (`query`, `passage`) to their prompt; a saved `document` or `corpus`
    prompt is the `passage` prompt here, as sentence-transformers' `encode_document` reads it.
    """

    transformer_dir: Path
    pooling: Pooling = Pooling.MEAN
    normalize: bool = False
    prompts: dict[str, str] = field(default_factory=dict)
    max_seq_length: int | None = None
    dense_dirs: tuple[Path, ...] = ()
    do_lower_case: bool = False


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
    pooling = Pooling(pooling)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append(
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
        )
        (path / "2_Normalize").mkdir(exist_ok=True)
    (path / "1_Pooling").mkdir(exist_ok=True)
    _dump(path / "modules.json", modules)
    _dump(
        path / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": dim,
            **{key: pooling == mode for key, mode in _LEGACY_POOLING_KEYS.items()},
        },
    )
    _dump(path / "sentence_bert_config.json", {"max_seq_length": max_seq_length, "do_lower_case": False})
    _dump(
        path / "config_sentence_transformers.json",
        {"prompts": prompts or {}, "default_prompt_name": None, "similarity_fn_name": "cosine"},
    )


# JSON files a load reads (transformers reads them with plain json.loads: a RecursionError on deep
# nesting). Checked strictly first, so a hostile file is one clear error.
_JSON_FILES = (
    "config.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)
_PICKLED = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")


def _read_json(path: Path) -> object:
    from distill.documents import JsonError, loads_strict

    try:
        return loads_strict(path.read_bytes())
    except JsonError as exc:
        raise UnsupportedModelError(f"{path}: {exc}") from None
    except OSError as exc:
        raise UnsupportedModelError(f"{path}: cannot be read ({exc.strerror})") from None


def check_weights(transformer_dir: Path) -> None:
    """Only safetensors weights load: a pickled `pytorch_model.bin` can run code when unpickled."""
    if any(transformer_dir.glob("*.safetensors")):
        return
    pickled = sorted(p.name for pattern in _PICKLED for p in transformer_dir.glob(pattern))
    if pickled:
        raise UnsupportedModelError(
            f"{transformer_dir / pickled[0]} holds pickled weights, which can run code when loaded, so it is "
            "refused; convert it to safetensors (model.safetensors) first"
        )


def read_layout(path: str | Path) -> SentenceLayout:
    """Read a sentence-transformers directory; a plain transformers directory means mean pooling.

    Raises `UnsupportedModelError` for a module other than Transformer, Pooling, Dense and
    Normalize, for modules out of that order, for pooling settings we do not reproduce, for a
    malformed or hostile JSON file (duplicate keys, deep nesting) and for pickled weights.
    """
    path = Path(path)
    for name in _JSON_FILES:
        if (path / name).is_file():
            _read_json(path / name)
    try:
        layout = _read_layout(path)
    except UnsupportedModelError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise UnsupportedModelError(
            f"{path}: its sentence-transformers files are malformed ({exc!r})"
        ) from None
    if layout.transformer_dir != path:
        for name in _JSON_FILES:
            if (layout.transformer_dir / name).is_file():
                _read_json(layout.transformer_dir / name)
    check_weights(layout.transformer_dir)
    return layout


def _read_layout(path: Path) -> SentenceLayout:
    modules_file = path / "modules.json"
    if not modules_file.exists():
        return SentenceLayout(transformer_dir=path)
    modules = sorted(_read_json(modules_file), key=lambda m: int(m.get("idx", 0)))
    transformer_dir, pooling, normalize, dense = path, Pooling.MEAN, False, []
    seen: list[str] = []
    for module in modules:
        kind = module["type"].rsplit(".", 1)[-1]
        if kind not in SUPPORTED_MODULES:
            raise UnsupportedModelError(
                f"{path}: module {module['type']!r} is not supported (supported: {', '.join(SUPPORTED_MODULES)})"
            )
        rank = SUPPORTED_MODULES.index(kind)
        if seen and (rank < SUPPORTED_MODULES.index(seen[-1]) or (kind == seen[-1] and kind != "Dense")):
            raise UnsupportedModelError(
                f"{path}: modules {' -> '.join([*seen, kind])} are not in the supported order "
                "Transformer -> Pooling -> Dense... -> Normalize"
            )
        seen.append(kind)
        sub = path / module.get("path", "")
        if kind == "Transformer":
            transformer_dir = sub
        elif kind == "Pooling":
            pooling = _read_pooling(sub / "config.json")
        elif kind == "Dense":
            dense.append(sub)
        else:
            normalize = True
    if "Transformer" not in seen:
        raise UnsupportedModelError(f"{path}: modules.json has no Transformer module")
    prompts: dict[str, str] = {}
    st_config = path / "config_sentence_transformers.json"
    if st_config.exists():
        prompts = role_prompts(_read_json(st_config).get("prompts") or {})
    max_len, lower = None, False
    for name in ("sentence_bert_config.json", "sentence_xlnet_config.json"):
        cfg = transformer_dir / name
        if cfg.exists():
            data = _read_json(cfg)
            max_len, lower = data.get("max_seq_length"), bool(data.get("do_lower_case", False))
    return SentenceLayout(transformer_dir, pooling, normalize, prompts, max_len, tuple(dense), lower)


def role_prompts(saved: dict[str, str]) -> dict[str, str]:
    """A model's saved prompts with the document prompt under `passage` (the first of
    `document`, `passage`, `corpus`, as sentence-transformers picks it); other names are kept."""
    prompts = {k: v for k, v in saved.items() if v}
    for name in DOCUMENT_PROMPT_NAMES:
        if name in prompts:
            prompts[Role.PASSAGE.value] = prompts[name]
            break
    return prompts


def _read_pooling(config_file: Path) -> Pooling:
    cfg = _read_json(config_file) if config_file.exists() else {}
    mode = cfg.get("pooling_mode")  # sentence-transformers >= 6: a name or a list of names
    if mode is None:
        modes = [m for key, m in _LEGACY_POOLING_KEYS.items() if cfg.get(key)] or [Pooling.MEAN]
        mode = modes[0] if len(modes) == 1 else modes
    if isinstance(mode, list | tuple):
        if len(mode) != 1:
            raise UnsupportedModelError(
                f"{config_file}: combined pooling modes {list(mode)} are not supported"
            )
        mode = mode[0]
    if mode not in set(Pooling):
        raise UnsupportedModelError(
            f"{config_file}: pooling mode {mode!r} is unknown (known: {', '.join(p.value for p in Pooling)})"
        )
    if cfg.get("include_prompt", True) is False:
        raise UnsupportedModelError(
            f"{config_file}: pooling that excludes the prompt (include_prompt: false) is not supported"
        )
    return Pooling(mode)


def _dump(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
