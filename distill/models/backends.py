"""Inference backends below the `Encoder`: PyTorch fp32, dynamic int8, and ONNX Runtime (fp32, int8).

Every backend is a stand-in for the transformer (`input_ids`, `attention_mask` -> `last_hidden_state`),
so pooling, prompts and normalisation stay in `Encoder`. The ONNX files use the sentence-transformers
layout (`onnx/model.onnx`, `onnx/model_qint8.onnx` beside the transformer's weights); models whose
directory we must not write (`pkg:` models, hub snapshots, read-only directories) keep them in the
data dir, `models_dir()/onnx-cache/<model>/onnx/`. A file is exported once and reused while the
weights it came from are unchanged (size and mtime, in `onnx/xlsearch-export.json`). At export (and
for `int8` at every load) the vectors are compared with fp32 torch on a few texts and the backend
is refused below a mean cosine of `MIN_COSINE`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from distill.fileio import atomic_path, atomic_write_text, check_output_dir
from distill.models.encoder import Role
from distill.modelspec import PACKAGED_PREFIX, parse_spec, weights_fingerprint

log = logging.getLogger("distill.models")

# A backend whose mean cosine to fp32 over the check texts is below this is refused (the statistic
# the benchmarks report); `make demo` applies the same floor on dev texts.
MIN_COSINE = 0.995
ONNX_OPSET = 17
STAMP_FILE = "xlsearch-export.json"
CACHE_DIR = "onnx-cache"
# Mixed scripts and lengths, so the check exercises dynamic batch and sequence axes and padding.
CHECK_TEXTS = (
    "Who won the Super Bowl in 2016?",
    "Die Katze sitzt auf der Matte, während draußen der Regen gegen das Fenster schlägt.",
    "¿Cuántos habitantes tiene Varsovia?",
    "猫坐在垫子上。",
    "القطة تجلس على السجادة.",
    "Кошка сидит на коврике и смотрит в окно на птиц, которые летают над садом весь день.",
    "ok",
    "The Panthers finished the regular season with a 15–1 record, and quarterback Cam Newton was named "
    "the NFL Most Valuable Player.",
)


class Backend(StrEnum):
    """How the transformer runs. `torch` is the reference every other backend is checked against."""

    TORCH = "torch"  # PyTorch, fp32
    INT8 = "int8"  # PyTorch dynamic int8 (Linear weights int8, activations quantised per batch)
    ONNX = "onnx"  # ONNX Runtime, fp32
    ONNX_INT8 = "onnx-int8"  # ONNX Runtime, dynamic int8

    @classmethod
    def parse(cls, value: str | Backend | None) -> Backend:
        if value is None:
            return cls.TORCH
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise BackendError(
                f"unknown backend {value!r}; choose from {', '.join(b.value for b in cls)}"
            ) from None

    @property
    def is_onnx(self) -> bool:
        return self in (Backend.ONNX, Backend.ONNX_INT8)

    @property
    def onnx_file(self) -> str:
        return "model_qint8.onnx" if self == Backend.ONNX_INT8 else "model.onnx"


class BackendError(ValueError):
    """A backend that cannot run a model: onnxruntime missing, an export that fails or is refused."""


# ---------------------------------------------------------------------------------------------
# PyTorch dynamic int8


def is_ffn_output(name: str) -> bool:
    """BERT's FFN output projection (`...layer.N.output.dense`, not `attention.output.dense`)."""
    return name.endswith("output.dense") and "attention" not in name


def quantize_int8(model: torch.nn.Module, *, inplace: bool = False) -> torch.nn.Module:
    """Dynamic int8 quantisation of every nn.Linear but the FFN output projections. Those stay fp32:
    their GELU inputs have outliers that one per-tensor activation scale cannot hold (all-Linear int8
    gave a student cosine 0.90 to fp32, worst 0.64; without them 0.998, worst 0.996)."""
    from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

    spec = {
        name: default_dynamic_qconfig
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and not is_ffn_output(name)
    }
    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao (not a dependency); the eager
        # API still works in the pinned torch 2.13.
        warnings.simplefilter("ignore")
        return quantize_dynamic(
            model if inplace else copy.deepcopy(model), spec, dtype=torch.qint8, inplace=inplace
        )


# ---------------------------------------------------------------------------------------------
# ONNX Runtime


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendError(
            "the onnx backends need onnxruntime and onnx: `pip install onnxruntime onnx` (or reinstall xlsearch)"
        ) from exc
    return onnxruntime


class OnnxModel:
    """An exported transformer on ONNX Runtime with the forward contract `Encoder` uses.

    The session follows torch's thread count (`torch.set_num_threads`), so `threads` means the same
    for every backend; it is rebuilt when that count changes.
    """

    device = torch.device("cpu")

    def __init__(self, path: Path, config: Any) -> None:
        self.path = Path(path)
        self.config = config
        self.name_or_path = str(self.path)
        self._ort = _onnxruntime()
        self._threads = 0
        self._session = None
        self._session_for(torch.get_num_threads())

    def _session_for(self, threads: int):
        if self._session is None or threads != self._threads:
            opts = self._ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            self._session = self._ort.InferenceSession(
                str(self.path), opts, providers=["CPUExecutionProvider"]
            )
            self._inputs = [i.name for i in self._session.get_inputs()]
            outputs = [o.name for o in self._session.get_outputs()]
            self._output = "last_hidden_state" if "last_hidden_state" in outputs else outputs[0]
            self._threads = threads
        return self._session

    def eval(self) -> OnnxModel:
        return self

    def parameters(self):  # no torch parameters: nothing to train or move
        return iter(())

    def __call__(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ):
        session = self._session_for(torch.get_num_threads())
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        feeds = {}
        for name in self._inputs:  # sentence-transformers exports may take token_type_ids too
            value = given.get(name)
            if value is None:
                value = torch.zeros_like(input_ids)
            feeds[name] = value.cpu().numpy().astype(np.int64, copy=False)
        (states,) = session.run([self._output], feeds)
        return SimpleNamespace(last_hidden_state=torch.from_numpy(states))

    def __repr__(self) -> str:
        return f"OnnxModel({self.name_or_path!r})"


@dataclass(frozen=True)
class Agreement:
    """Cosine between a backend's and fp32 torch's sentence vectors over some texts."""

    mean: float
    min: float
    n: int

    def ok(self, threshold: float | None = None) -> bool:
        return self.mean >= (MIN_COSINE if threshold is None else threshold)

    def to_dict(self) -> dict[str, float]:
        return {"mean": round(self.mean, 5), "min": round(self.min, 5), "n": self.n}


def agreement(a: np.ndarray, b: np.ndarray) -> Agreement:
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return Agreement(float(cos.mean()), float(cos.min()), len(cos))


def require_agreement(
    candidate, reference: np.ndarray, spec: str | Path, texts: Sequence[str] = CHECK_TEXTS
) -> Agreement:
    """`candidate`'s vectors of `texts` against the fp32 `reference`; BackendError when their mean
    cosine is below MIN_COSINE. Batch 3 puts several padded lengths in one batch, which a graph
    traced with fixed shapes would get wrong."""
    agree = agreement(candidate.encode(texts, batch_size=3, prefix=Role.QUERY), reference)
    if not agree.ok():
        raise BackendError(
            f"the {candidate.backend} backend of {spec} disagrees with torch fp32: mean cosine {agree.mean:.4f} "
            f"(worst {agree.min:.4f}) on {agree.n} check texts, below {MIN_COSINE}; use another backend"
        )
    return agree


def onnx_dir(spec: str | Path, transformer_dir: Path) -> Path:
    """Where the ONNX files of a model live: `<transformer dir>/onnx/` for a writable local
    directory, else `models_dir()/onnx-cache/<name>-<hash of the directory>/onnx/`."""
    from distill.paths import models_dir

    text, path = str(spec), parse_spec(spec).path
    local = path is not None and path.is_dir()
    own = transformer_dir / "onnx"
    if local and (os.access(own, os.W_OK) if own.exists() else os.access(transformer_dir, os.W_OK)):
        return own
    resolved = transformer_dir.resolve()
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text.removeprefix(PACKAGED_PREFIX)).strip("-.")[-60:] or "model"
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:10]
    return models_dir() / CACHE_DIR / f"{name}-{digest}" / "onnx"


def _read_stamp(directory: Path) -> dict:
    try:
        return json.loads((directory / STAMP_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _write_stamp(directory: Path, stamp: dict) -> None:
    atomic_write_text(directory / STAMP_FILE, json.dumps(stamp, indent=2) + "\n")


def cached_onnx(directory: Path, backend: Backend, fingerprint: dict) -> Path | None:
    """The reusable ONNX file for `backend`, or None when it must be (re-)exported.

    A file we exported is reused while its source is unchanged; a file we did not export (a model
    shipped in the sentence-transformers ONNX layout) is used as it is.
    """
    path = directory / backend.onnx_file
    if not path.is_file():
        return None
    stamp = _read_stamp(directory)
    if not stamp:
        return path  # shipped with the model
    entry = stamp.get("files", {}).get(backend.onnx_file)
    return path if entry and stamp.get("source") == fingerprint else None


def _export_fp32(model: torch.nn.Module, batch: dict[str, torch.Tensor], out: Path) -> None:
    class Body(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter(
            "ignore"
        )  # the TorchScript exporter's tracer warnings are about control flow we do not use
        torch.onnx.export(
            Body(model).eval(),
            (batch["input_ids"], batch["attention_mask"]),
            str(out),
            input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )


def ffn_output_nodes(path: Path) -> list[str]:
    """The ONNX MatMul nodes of the FFN output projections (kept fp32, as in `quantize_int8`)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return [
        n.name
        for n in graph.node
        if n.op_type == "MatMul" and is_ffn_output(n.name.replace("/", ".").rsplit(".", 1)[0])
    ]


def _quantize_onnx(fp32: Path, out: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(
            str(fp32), str(out), weight_type=QuantType.QInt8, nodes_to_exclude=ffn_output_nodes(fp32)
        )


def export_onnx(
    encoder,
    spec: str | Path,
    transformer_dir: Path,
    backend: Backend,
    *,
    force: bool = False,
    texts: Sequence[str] = CHECK_TEXTS,
) -> tuple[Path, Agreement | None]:
    """The ONNX file of `backend` for the torch `encoder`, exported (and checked) unless cached.

    Returns the path and the agreement measured at export (None when the cached file was reused).
    Raises BackendError when the exported graph's vectors fall below MIN_COSINE on `texts`.
    """
    _onnxruntime()
    directory = onnx_dir(spec, transformer_dir)
    fingerprint = weights_fingerprint(transformer_dir)
    if not force and (path := cached_onnx(directory, backend, fingerprint)) is not None:
        return path, None
    ours = (STAMP_FILE, Backend.ONNX.onnx_file, Backend.ONNX_INT8.onnx_file)
    check_output_dir(directory, ours=ours, what="ONNX directory")  # a folder of ours, or new
    directory.mkdir(parents=True, exist_ok=True)
    stamp = _read_stamp(directory)
    if stamp.get("source") != fingerprint:
        stamp = {"source": fingerprint, "files": {}}
    stamp.update(torch=torch.__version__, opset=ONNX_OPSET, min_cosine=MIN_COSINE)
    fp32 = directory / Backend.ONNX.onnx_file
    if backend == Backend.ONNX_INT8 and (force or cached_onnx(directory, Backend.ONNX, fingerprint) is None):
        export_onnx(encoder, spec, transformer_dir, Backend.ONNX, force=force, texts=texts)
        stamp = _read_stamp(directory)
    target = directory / backend.onnx_file
    try:
        with atomic_path(target) as tmp:  # a graph that fails the check never replaces a good one
            agree = _export_checked(encoder, spec, backend, fp32, tmp, texts)
    except BackendError:
        raise
    except Exception as exc:  # the exporter or quantiser failing on an unusual architecture
        raise BackendError(f"cannot export {spec} for {backend.value}: {type(exc).__name__}: {exc}") from exc
    stamp.setdefault("files", {})[backend.onnx_file] = {"check": agree.to_dict()}
    _write_stamp(directory, stamp)
    log.info("exported %s for %s to %s (cosine to torch min %.4f)", spec, backend.value, target, agree.min)
    return target, agree


def _export_checked(
    encoder, spec, backend: Backend, fp32: Path, out: Path, texts: Sequence[str]
) -> Agreement:
    """Write `encoder`'s `backend` graph to `out` (int8: quantised from `fp32`) and check its vectors
    against the torch encoder's."""
    from distill.models.encoder import Encoder

    if backend == Backend.ONNX:
        _export_fp32(encoder.model, encoder.tokenize(list(texts[:2]), Role.QUERY), out)
    else:
        _quantize_onnx(fp32, out)
    candidate = Encoder(
        OnnxModel(out, encoder.model.config),
        encoder.tokenizer,
        pooling=encoder.pooling,
        normalize=encoder.normalize,
        prompts=encoder.prompts,
        max_seq_length=encoder.max_seq_length,
        name=str(spec),
        dense=list(encoder.dense),
        threads=encoder.threads,
        backend=backend.value,
    )
    return require_agreement(candidate, encoder.encode(texts, batch_size=3, prefix=Role.QUERY), spec, texts)


# ---------------------------------------------------------------------------------------------
# Choosing a backend


@dataclass(frozen=True)
class BackendTrial:
    """One backend of one model on some texts: agreement with fp32 torch, and speed."""

    backend: str
    sentences_per_s: float | None = None
    agreement: Agreement | None = None
    error: str | None = None  # refused or failed: why

    def faithful(self, min_cosine: float | None = None) -> bool:
        """Usable at `min_cosine` mean cosine to fp32 on the compared texts (loading checked the check texts)."""
        floor = MIN_COSINE if min_cosine is None else min_cosine
        return self.error is None and (self.agreement is None or self.agreement.mean >= floor)

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "sentences_per_s": self.sentences_per_s,
            "error": self.error,
            "cosine_to_fp32": self.agreement.to_dict() if self.agreement else None,
        }


def fastest_faithful(trials: Sequence[BackendTrial], min_cosine: float | None = None) -> str:
    """The fastest backend whose mean cosine to fp32 stays at or above `min_cosine` (torch at worst)."""
    usable = [t for t in trials if t.faithful(min_cosine) and t.sentences_per_s]
    return max(usable, key=lambda t: t.sentences_per_s).backend if usable else Backend.TORCH.value
