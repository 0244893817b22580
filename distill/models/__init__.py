"""Models: resolve a spec (packaged, local, hub) and load it as a sentence `Encoder`.

`load_encoder` is the one public entry point; the indexer and the app use it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from distill.models.backends import MIN_COSINE, Backend, BackendError
from distill.models.encoder import Encoder, Role, torch_threads
from distill.models.head import Dense, Pooling, mean_pool
from distill.models.layout import (
    SentenceLayout,
    UnsupportedModelError,
    read_layout,
    role_prompts,
    write_sentence_transformers_files,
)
from distill.models.remote_code import RemoteCodeError, check_remote_code, register_student
from distill.models.sources import PACKAGED_MODELS, ModelNotFoundError, resolve_model
from distill.modelspec import weights_fingerprint

__all__ = [
    "MIN_COSINE",
    "Backend",
    "BackendError",
    "Dense",
    "Encoder",
    "ModelNotFoundError",
    "PACKAGED_MODELS",
    "Pooling",
    "RemoteCodeError",
    "Role",
    "UnsupportedModelError",
    "load_encoder",
    "mean_pool",
    "read_layout",
    "register_student",
    "resolve_model",
    "role_prompts",
    "torch_threads",
    "write_sentence_transformers_files",
]


def load_encoder(
    spec: str | Path,
    *,
    device: str | None = None,
    threads: int | None = None,
    max_seq_length: int | None = None,
    trust_remote_code: bool = False,
    backend: str | Backend = Backend.TORCH,
) -> Encoder:
    """Load `spec` (`pkg:NAME`, a local directory, or a hub id) as an `Encoder`.

    A sentence-transformers directory gives the vectors sentence-transformers gives (its pooling
    mode, Dense layers, normalisation, prompts, lower-casing); a module we cannot reproduce raises
    `UnsupportedModelError` naming it. `threads` is the torch thread count the encoder's `encode`
    runs with (set for each call and restored after, so the rest of the process keeps its own);
    `max_seq_length` caps the tokens per text (default: the model's own setting, at most its
    position table).
    A model that ships its own Python code (`auto_map`) raises `RemoteCodeError` unless
    `trust_remote_code`; xlsearch students always load, from the installed student code.
    `backend` (see `Backend`): `torch` (fp32), `int8` (PyTorch dynamic int8), `onnx` or `onnx-int8`
    (ONNX Runtime; exported and checked once, then loaded from the cache without the torch
    weights). Raises `BackendError` when a backend cannot run the model or is refused.
    """
    from transformers import AutoModel

    backend = Backend.parse(backend)
    if backend != Backend.TORCH and device not in (None, "cpu"):
        raise BackendError(f"the {backend.value} backend runs on the CPU, not on {device!r}")
    parts = _EncoderParts.load(spec, threads, max_seq_length, trust_remote_code)
    if backend.is_onnx:
        return _onnx_encoder(parts, backend)
    model = AutoModel.from_pretrained(parts.layout.transformer_dir, trust_remote_code=trust_remote_code)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cpu") and next(model.parameters()).dtype in (torch.float16, torch.bfloat16):
        model.float()  # weights shipped in half precision (models/): half matmuls are slow on CPU
    if backend == Backend.INT8:
        from distill.models import backends

        # Quantised on every load (a second or two) and checked like an ONNX export: the fp32
        # vectors of the check texts first, then the model is quantised in place.
        reference = parts.encoder(model, Backend.TORCH).encode(
            backends.CHECK_TEXTS, batch_size=3, prefix=Role.QUERY
        )
        quantised = parts.encoder(backends.quantize_int8(model.eval(), inplace=True), backend)
        backends.require_agreement(quantised, reference, spec)
        return quantised
    model.to(device)
    for layer in parts.dense:
        layer.to(device)
    return parts.encoder(model, backend)


@dataclass
class _EncoderParts:
    """Everything of a model directory but the transformer itself, which each backend provides."""

    spec: str | Path
    layout: SentenceLayout
    tokenizer: Any
    dense: list[Dense]
    threads: int | None
    max_seq_length: int | None
    trust_remote_code: bool

    @classmethod
    def load(cls, spec, threads, max_seq_length, trust_remote_code: bool) -> _EncoderParts:
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # load reports list e.g. the unused BERT pooler: noise here
        hf_logging.disable_progress_bar()
        layout = read_layout(resolve_model(spec))
        check_remote_code(layout.transformer_dir, str(spec), trust_remote_code)
        register_student()  # a student's auto_map then resolves to distill.student, not to the directory's copy
        tokenizer = AutoTokenizer.from_pretrained(layout.transformer_dir, trust_remote_code=trust_remote_code)
        if layout.do_lower_case:
            _lowercase(tokenizer)
        dense = [Dense.load(d) for d in layout.dense_dirs]
        return cls(spec, layout, tokenizer, dense, threads, max_seq_length, trust_remote_code)

    def encoder(self, model, backend: Backend) -> Encoder:
        limit = getattr(model.config, "max_position_embeddings", 512)
        own = self.layout.max_seq_length or (
            self.tokenizer.model_max_length if self.tokenizer.model_max_length < 1_000_000 else None
        )
        return Encoder(
            model,
            self.tokenizer,
            pooling=self.layout.pooling,
            normalize=self.layout.normalize,
            prompts=self.layout.prompts,
            max_seq_length=min(self.max_seq_length or own or limit, limit),
            name=str(self.spec),
            dense=self.dense,
            threads=self.threads,
            backend=backend.value,
        )


def _onnx_encoder(parts: _EncoderParts, backend: Backend) -> Encoder:
    """An ONNX Runtime encoder; on first use exported from the torch model and checked against it."""
    from transformers import AutoConfig

    from distill.models import backends

    transformer_dir = parts.layout.transformer_dir
    directory = backends.onnx_dir(parts.spec, transformer_dir)
    onnx_path = backends.cached_onnx(directory, backend, weights_fingerprint(transformer_dir))
    if onnx_path is None:
        reference = load_encoder(
            parts.spec,
            device="cpu",
            threads=parts.threads,
            max_seq_length=parts.max_seq_length,
            trust_remote_code=parts.trust_remote_code,
        )
        with torch_threads(parts.threads):
            onnx_path, _ = backends.export_onnx(reference, parts.spec, transformer_dir, backend)
        del reference
    config = AutoConfig.from_pretrained(transformer_dir, trust_remote_code=parts.trust_remote_code)
    return parts.encoder(backends.OnnxModel(onnx_path, config), backend)


def _lowercase(tokenizer) -> None:
    """Lower-case input as sentence-transformers' `do_lower_case` does: a normaliser in front."""
    if not getattr(tokenizer, "is_fast", False):
        tokenizer.do_lower_case = True
        return
    from tokenizers.normalizers import Lowercase
    from tokenizers.normalizers import Sequence as NormalizerSequence

    current = tokenizer.backend_tokenizer.normalizer
    if current is not None and "Lowercase" in repr(current):
        return
    steps = [Lowercase()]
    if isinstance(current, NormalizerSequence):
        steps += list(current)
    elif current is not None:
        steps.append(current)
    tokenizer.backend_tokenizer.normalizer = NormalizerSequence(steps)
