"""What a column header says about its model, read from the model's own files, never hard-coded.

Layers: `num_hidden_layers` x `num_passes` of its config.json. Parameters: the float tensors in its
safetensors files (an untrimmed student's int32 row table is no parameter). Speed: texts/s on its
serving backend from the backend measurements `make demo` picked it by (app/backend_pick.py), so
"4.7x faster than the teacher" follows whatever student is shipped, and is absent when unmeasured.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

FLOAT_DTYPES = {"F64", "F32", "F16", "BF16"}


@dataclass(frozen=True)
class ModelFacts:
    directory: Path | None
    layers: int | None = None
    params: int | None = None
    texts_per_s: float | None = None  # on `backend`, from the stored backend measurements
    backend: str = ""
    measured_in: str = ""  # the file the speed comes from


def model_directory(spec: str) -> Path | None:
    """The local directory of a model spec (a packaged model's converted copy), if there is one."""
    from distill.modelspec import SpecKind, parse_spec

    parsed = parse_spec(spec)
    if parsed.kind == SpecKind.PACKAGED:
        from distill.paths import models_dir

        path = models_dir() / parsed.package_name
        return path if path.is_dir() else None
    return parsed.path if parsed.path is not None and parsed.path.is_dir() else None


def count_parameters(directory: Path) -> int | None:
    """Elements of the float tensors of the model's *.safetensors files (read from their headers)."""
    total, found = 0, False
    for f in sorted(directory.glob("*.safetensors")):
        try:
            with open(f, "rb") as fh:
                (n,) = struct.unpack("<Q", fh.read(8))
                header = json.loads(fh.read(n))
        except (OSError, ValueError, struct.error):
            return None
        for name, t in header.items():
            if name != "__metadata__" and t.get("dtype") in FLOAT_DTYPES:
                count = 1
                for dim in t.get("shape", []):
                    count *= dim
                total, found = total + count, True
    return total if found else None


def count_layers(directory: Path) -> int | None:
    try:
        config = json.loads((directory / "config.json").read_text())
    except (OSError, ValueError):
        return None
    layers = config.get("num_hidden_layers")
    return int(layers) * int(config.get("num_passes") or 1) if isinstance(layers, int) else None


def model_facts(spec: str, backend: str) -> ModelFacts:
    from app.backend_pick import stored

    directory = model_directory(spec)
    if directory is None:
        return ModelFacts(None, backend=backend)
    speed, source = None, ""
    found = stored(spec)
    if found is not None:
        entry, source = found
        speed = next(
            (t.get("sentences_per_s") for t in entry.get("trials", []) if t.get("backend") == backend), None
        )
    return ModelFacts(directory, count_layers(directory), count_parameters(directory), speed, backend, source)


def _millions(n: int) -> str:
    if n < 100_000:
        return f"{n / 1e3:.0f}k"
    return f"{n / 1e6:.0f}M" if n >= 10e6 else f"{n / 1e6:.1f}M"


def describe(role: str, facts: ModelFacts, teacher: ModelFacts | None = None) -> str:
    """`Student (6 layers, 36M parameters, 4.7x faster than the teacher)`, with what is known."""
    parts = []
    if facts.layers:
        parts.append(f"{facts.layers} layers")
    if facts.params:
        parts.append(f"{_millions(facts.params)} parameters")
    if teacher is not None and facts.texts_per_s and teacher.texts_per_s:
        parts.append(f"{facts.texts_per_s / teacher.texts_per_s:.1f}x faster than the teacher")
    return f"{role} ({', '.join(parts)})" if parts else role
