"""Ship a trained student in the layout `models/` holds: fp16 weights, and (for a student trained on
the assistant's full tokenizer) the trimmed form with its nearest-row table."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from distill.datasets import ASSISTANT_SPEC
from distill.fileio import atomic_directory, check_output_dir
from distill.student.modeling_xlsearch import XLSearchRecurrentModel
from distill.student.untrim import TABLE, UntrimError, assistant_rows, without_token_rows, write_table


def ship_student(
    src: str | Path,
    dst: str | Path,
    *,
    note: str = "",
    kept: Sequence[int] | None = None,
    assistant: str = ASSISTANT_SPEC,
) -> Path:
    """Copy a saved student to `dst` with half-precision weights (the layout `models/` ships).

    fp16 halves the download; `load_encoder` casts it back to fp32 on CPU (half matmuls are slow
    there). `note` is appended to the model card (how to reproduce it). With `kept` (the run's
    `stage2/vocab.json` kept_ids), a student trained on the assistant's full tokenizer ships trimmed:
    the tokenizer over its own rows only and the nearest-row table beside it (`token_rows.npz`), so
    that `distill untrim` gives back the trained model exactly, in seconds (e5's tokenizer alone is
    17 MB).
    """
    import shutil

    import torch

    src, dst = Path(src), Path(dst)
    check_output_dir(dst, [src])  # before loading: never over a folder that is not a model
    model = XLSearchRecurrentModel.from_pretrained(src)
    tokenizer = table = None
    if kept is not None:
        model, tokenizer, table = _trimmed_form(model, src, np.asarray(kept, dtype=np.int64), assistant)
    with atomic_directory(dst, [src]) as tmp:
        ignore = shutil.ignore_patterns(
            "*.safetensors", "*.bin", "stage.json", "onnx"
        )  # exports: per machine
        shutil.copytree(src, tmp, ignore=ignore, dirs_exist_ok=True)
        model.to(torch.float16).save_pretrained(tmp)
        if tokenizer is not None:
            (tmp / "tokenizer.json").unlink(missing_ok=True)
            tokenizer.save_pretrained(tmp)
            write_table(tmp / TABLE, *table)
        if note:
            card = tmp / "README.md"
            card.write_text((card.read_text() if card.exists() else "") + "\n" + note.rstrip() + "\n")
    return dst


def _trimmed_form(model: XLSearchRecurrentModel, src: Path, kept: np.ndarray, assistant: str):
    """(model without its table, the tokenizer over its rows, write_table's arguments)."""
    from distill.models import load_encoder
    from distill.vocab import trim_tokenizer

    full = load_encoder(src, device="cpu").tokenizer  # our loader: no remote-code prompt
    a = load_encoder(assistant, device="cpu")
    if full.get_vocab() != a.tokenizer.get_vocab():
        raise UntrimError(f"{src} does not read {assistant}'s tokenizer: it was not trained untrimmed")
    rows = model.embeddings.token_rows.cpu().numpy()
    small = without_token_rows(model, kept)
    tokenizer = trim_tokenizer(full, kept.tolist())
    tokenizer.model_max_length = full.model_max_length
    return small, tokenizer, (rows, kept, assistant_rows(a.model, a.tokenizer))
