"""Models: resolve a spec (packaged, local, hub) and load it as a sentence `Encoder`.

`load_encoder` is the one public entry point; the indexer and the app use it too.
"""

from __future__ import annotations

from pathlib import Path

import torch

from distill.models.encoder import Encoder, Role, mean_pool
from distill.models.layout import Pooling, read_layout, write_sentence_transformers_files
from distill.models.remote_code import RemoteCodeError, check_remote_code, register_student
from distill.models.sources import PACKAGED_MODELS, ModelNotFoundError, resolve_model

__all__ = [
    "Encoder",
    "ModelNotFoundError",
    "PACKAGED_MODELS",
    "Pooling",
    "RemoteCodeError",
    "Role",
    "load_encoder",
    "mean_pool",
    "read_layout",
    "register_student",
    "resolve_model",
    "write_sentence_transformers_files",
]


def load_encoder(
    spec: str | Path,
    *,
    device: str | None = None,
    threads: int | None = None,
    max_seq_length: int | None = None,
    trust_remote_code: bool = False,
) -> Encoder:
    """Load `spec` (`pkg:NAME`, a local directory, or a hub id) as an `Encoder`.

    `threads` sets torch's intra-op thread count (process wide); `max_seq_length` caps the
    tokens per text (default: the model's own setting, at most its position table).
    A model that ships its own Python code (`auto_map`) raises `RemoteCodeError` unless
    `trust_remote_code`; xlsearch students always load, from the installed student code.
    """
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # load reports list e.g. the unused BERT pooler: noise here
    hf_logging.disable_progress_bar()
    if threads:
        torch.set_num_threads(threads)
    path = resolve_model(spec)
    layout = read_layout(path)
    check_remote_code(layout.transformer_dir, str(spec), trust_remote_code)
    register_student()  # a student's auto_map then resolves to distill.student, not to the directory's copy
    model = AutoModel.from_pretrained(layout.transformer_dir, trust_remote_code=trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(layout.transformer_dir, trust_remote_code=trust_remote_code)
    limit = getattr(model.config, "max_position_embeddings", 512)
    max_len = min(max_seq_length or layout.max_seq_length or limit, limit)
    model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return Encoder(
        model,
        tokenizer,
        pooling=layout.pooling,
        normalize=layout.normalize,
        prompts=layout.prompts,
        max_seq_length=max_len,
        name=str(spec),
    )
