"""The encode benchmark's variants: a model on a backend, loaded exactly as the product loads it
(`distill.models.load_encoder(spec, backend=)`), with its parameter count, size on disk and peak
memory (measured in a fresh process)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.common import BenchmarkError, log, peak_rss_bytes, rss_bytes, set_threads
from distill.models.encoder import Role

PREFIX = Role.QUERY  # symmetric use, as in bitext retrieval; e5-style models prepend "query: "

# ---------------------------------------------------------------------------------------------
# Variants: a model on a backend, loaded as the product loads it (`load_encoder(spec, backend=)`)


def state_dict_bytes(model) -> int:
    import torch

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(model.state_dict(), buf)
    return buf.tell()


@dataclass
class Variant:
    name: str
    spec: str
    encoder: object  # distill Encoder (its model a torch module or an OnnxModel)
    params: int
    bytes_on_disk: int
    tokens_per_sentence: float = 0.0
    rss: dict = field(default_factory=dict)

    @property
    def model_name(self) -> str:
        return self.name.split("-")[0]

    @property
    def backend(self) -> str:
        return self.name[len(self.model_name) + 1 :] or "torch"

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        return self.encoder.encode(texts, batch_size=batch_size, prefix=PREFIX)


def weight_bytes(path: Path) -> int:
    """The torch weights of a model directory (not its exported ONNX files)."""
    files = [p for p in path.rglob("*") if p.suffix in (".safetensors", ".bin", ".pt") and p.is_file()]
    return sum(p.stat().st_size for p in files)


def count_params(model) -> int:
    seen, total = set(), 0
    for p in model.parameters():  # tied weights count once
        if p.data_ptr() not in seen:
            seen.add(p.data_ptr())
            total += p.numel()
    return total


def int8_params(model) -> int:
    """Parameters of a dynamically quantised model (packed Linear weights are not nn.Parameters)."""
    total = count_params(model)
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if callable(weight) and type(module).__name__ == "Linear" and "quantized" in type(module).__module__:
            total += module.weight().numel() + (module.bias().numel() if module.bias() is not None else 0)
    return total


def onnx_params(path: Path) -> int:
    """Weights stored in an ONNX graph (its initializers; int8 graphs add their scales)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return int(sum(np.prod(init.dims) for init in graph.initializer))


def build_variant(name: str, specs: dict[str, str]) -> Variant:
    """Load one variant as the product would; BackendError when the backend refuses the model."""
    from distill.models import ModelNotFoundError, load_encoder, resolve_model

    base_name = name.split("-")[0]
    spec = specs[base_name]
    backend = name[len(base_name) + 1 :] or "torch"
    try:
        enc = load_encoder(spec, backend=backend, device="cpu")
    except ModelNotFoundError as exc:
        raise BenchmarkError(f"cannot load {base_name} {spec!r}: {exc}") from None
    if backend == "torch":
        return Variant(name, spec, enc, count_params(enc.model), weight_bytes(resolve_model(spec)))
    if backend == "int8":
        return Variant(name, spec, enc, int8_params(enc.model), state_dict_bytes(enc.model))
    path = enc.model.path
    return Variant(name, spec, enc, onnx_params(path), path.stat().st_size)


# ---------------------------------------------------------------------------------------------
# Peak memory in a fresh process


def probe_rss(args) -> int:
    """Child-process entry: load one variant, encode the probe texts, print RSS figures as JSON."""
    import torch  # noqa: F401  (imported before the baseline so it is part of it)
    import transformers  # noqa: F401

    set_threads(args.probe_threads)
    texts = json.loads(Path(args.probe_texts).read_text(encoding="utf-8"))
    baseline = rss_bytes()
    specs = json.loads(args.probe_specs)
    variant = build_variant(args.probe_rss, specs)  # ONNX files come from the cache the parent filled
    loaded = rss_bytes()
    variant.encode(texts, 64)
    print(
        json.dumps(
            {
                "baseline_mb": baseline / 2**20,
                "after_load_mb": loaded / 2**20,
                "peak_mb": peak_rss_bytes() / 2**20,
            }
        )
    )
    return 0


def measure_rss(name: str, specs: dict[str, str], texts: list[str], threads: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as fh:
        json.dump(texts, fh, ensure_ascii=False)
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.encode",
        "--probe-rss",
        name,
        "--probe-texts",
        fh.name,
        "--probe-specs",
        json.dumps(specs),
        "--probe-threads",
        str(threads),
    ]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    finally:
        Path(fh.name).unlink(missing_ok=True)
    if out.returncode != 0:
        log(f"  rss probe for {name} failed: {out.stderr.strip().splitlines()[-1:]}")
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    data = json.loads(out.stdout.strip().splitlines()[-1])
    data["model_mb"] = data["peak_mb"] - data["baseline_mb"]
    return {k: round(v, 1) for k, v in data.items()}
