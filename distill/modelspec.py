"""What a model spec names, and its one normal form; no model is loaded (standard library only).

A spec is `pkg:NAME` (weights shipped in a pip package), a local directory, or a Hugging Face hub
id (`org/name`). Every tool reads a relative directory against the current working directory, and
stores and compares a directory by its absolute, resolved path, so `data/students/x` typed in the
repository and `/abs/repo/data/students/x` name the same model. `pkg:` specs and hub ids are kept as
given. `distill.models.resolve_model` turns a spec into the directory transformers loads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

PACKAGED_PREFIX = "pkg:"


class SpecKind(StrEnum):
    PACKAGED = "pkg"
    PATH = "path"  # an existing local file or directory
    HUB = "hub"  # anything else: a hub id, or a path that does not exist (yet)


@dataclass(frozen=True)
class ModelSpec:
    """A parsed spec: `text` is its normal form (what collections store and compare)."""

    text: str
    kind: SpecKind

    @property
    def path(self) -> Path | None:
        return Path(self.text) if self.kind == SpecKind.PATH else None

    @property
    def name(self) -> str:
        return display_name(self.text)

    @property
    def package_name(self) -> str | None:
        return self.text.removeprefix(PACKAGED_PREFIX) if self.kind == SpecKind.PACKAGED else None

    def __str__(self) -> str:
        return self.text


def parse_spec(spec: str | Path | ModelSpec) -> ModelSpec:
    if isinstance(spec, ModelSpec):
        return spec
    text = str(spec).strip()
    if text.startswith(PACKAGED_PREFIX):
        return ModelSpec(text, SpecKind.PACKAGED)
    path = Path(text).expanduser()
    if text and path.exists():
        return ModelSpec(os.path.realpath(path), SpecKind.PATH)
    return ModelSpec(text, SpecKind.HUB)


def normalize_spec(spec: str | Path) -> str:
    """Local model directories as absolute resolved paths; `pkg:` specs and hub ids as given."""
    return parse_spec(spec).text


def same_spec(a: str | Path, b: str | Path) -> bool:
    """True when two specs name the same model (`data/x` and `/abs/repo/data/x` are the same)."""
    return normalize_spec(a) == normalize_spec(b)


def display_name(spec: str | Path, parts: int = 1) -> str:
    """A label: `pkg:all-MiniLM-L6-v2` -> `all-MiniLM-L6-v2`, a directory or hub id -> its last
    `parts` names. From the spec as written: a link keeps its own name."""
    text = str(spec).strip()
    if text.startswith(PACKAGED_PREFIX):
        return text.removeprefix(PACKAGED_PREFIX)
    names = Path(text).parts[-parts:]
    return Path(*names).as_posix() if names else text


# What "the weights changed" looks at: weights, code, configs and tokenizer files, at any depth.
# Size and mtime, not bytes (fast): a student retrained into the same directory keeps its spec but
# not its files. The `onnx/` export and its stamp are derived from these files, so they do not count.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".py", ".json", ".model", ".txt")
DERIVED_DIRS = ("onnx",)


def weights_fingerprint(directory: str | Path) -> dict[str, list[int]]:
    """Relative path -> [size, mtime_ns] of the model files under `directory` ({} if it is no
    directory): equal fingerprints mean the same weights, as far as any tool of ours can tell."""
    root = Path(directory)
    if not root.is_dir():
        return {}
    out = {}
    for f in sorted(root.rglob("*")):
        rel = f.relative_to(root)
        if f.suffix in WEIGHT_SUFFIXES and f.is_file() and not set(rel.parts[:-1]) & set(DERIVED_DIRS):
            st = f.stat()
            out[rel.as_posix()] = [st.st_size, st.st_mtime_ns]
    return out
