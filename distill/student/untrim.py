"""Give a trimmed-vocabulary student the assistant's full tokenizer back, at almost no size cost.

A student keeps embedding rows for the pieces its training text used (`vocab.max_pieces` of them).
Its trimmed tokenizer must then cut every other word into the kept pieces, so text unlike the
training data comes out in more, smaller pieces than the assistant saw in training: on XQuAD
paragraphs the shipped student's tokenizer emits 35% more tokens than e5's, and the upper layers
it kept from e5 read those segmentations badly.

Untrimming keeps the student's rows and layers as they are, switches to the assistant's tokenizer
(the teacher's segmentation, token for token) and adds a table `token_rows` that sends each of the
assistant's ids to a row: its own row when the piece was kept, else the row of the kept piece whose
assistant embedding is nearest by cosine. The table is 1 MB (int32); nothing is trained, and the
result is a function of the student and the pip-installed assistant. Finding the nearest rows is the
slow part (186,000 searches over 64,000 rows: 3-4 minutes on 2 cores), so a student can carry the
table beside it (`token_rows.npz`, `distill untrim STUDENT --table`), stamped with a fingerprint of
the kept ids and the assistant's rows: untrimming then takes seconds; a table for others is ignored.
"""

from __future__ import annotations

import copy
import shutil
import zipfile
from pathlib import Path

import numpy as np

from distill.datasets import ASSISTANT_SPEC
from distill.fileio import atomic_directory, check_output_dir
from distill.paths import record_source
from distill.student.modeling_xlsearch import XLSearchRecurrentConfig, XLSearchRecurrentModel

NOTE = """
## Untrimmed tokenizer

This copy uses the assistant's full tokenizer: pieces outside the student's rows share the row of
the kept piece nearest by the assistant's embedding cosine (`distill untrim`, the int32 table
`embeddings.token_rows`). Rows and layers are the student's, unchanged. The scores above are the
trimmed student's; measure this copy with `distill evaluate --model DIR --suite quick` (the README's
student section gives both).
"""


TABLE = "token_rows.npz"  # assistant id -> student row, shipped beside a trimmed student


class UntrimError(ValueError):
    pass


def kept_ids(student_tokenizer, assistant_tokenizer) -> np.ndarray:
    """For each student row, the assistant id of the same piece."""
    full = assistant_tokenizer.get_vocab()
    vocab = student_tokenizer.get_vocab()
    missing = [p for p in vocab if p not in full]
    if missing:
        raise UntrimError(
            f"{len(missing)} of the student's pieces are not in the assistant's tokenizer (e.g. "
            f"{missing[0]!r}): it was not trimmed from this assistant"
        )
    out = np.full(len(vocab), -1, dtype=np.int64)
    for piece, row in vocab.items():
        out[row] = full[piece]
    if (out < 0).any():
        raise UntrimError("the student's tokenizer has gaps in its ids")
    return out


def nearest_rows(assistant_rows: np.ndarray, kept: np.ndarray, *, batch: int = 8192) -> np.ndarray:
    """Assistant id -> student row: its own row when kept, else the kept piece nearest by cosine."""
    import faiss

    unit = assistant_rows / np.maximum(np.linalg.norm(assistant_rows, axis=1, keepdims=True), 1e-12)
    unit = np.ascontiguousarray(unit, dtype=np.float32)
    rows = np.full(len(assistant_rows), -1, dtype=np.int64)
    rows[kept] = np.arange(len(kept))
    dropped = np.flatnonzero(rows < 0)
    index = faiss.IndexFlatIP(unit.shape[1])
    index.add(unit[kept])
    for start in range(0, len(dropped), batch):
        ids = dropped[start : start + batch]
        _, best = index.search(unit[ids], 1)
        rows[ids] = best[:, 0]
    return rows


def table_fingerprint(kept: np.ndarray, assistant_rows: np.ndarray) -> str:
    """All the nearest-row table depends on: the kept ids and the assistant's rows, exactly."""
    import hashlib

    rows = np.ascontiguousarray(assistant_rows, dtype=np.float32)
    ids = np.ascontiguousarray(kept, dtype=np.int64)
    return hashlib.sha256(f"{rows.shape}".encode() + rows.tobytes() + ids.tobytes()).hexdigest()


def write_table(path: Path, rows: np.ndarray, kept: np.ndarray, assistant_rows: np.ndarray) -> Path:
    """Save `rows` (from `nearest_rows`) atomically, stamped with what they were computed from."""
    import io

    from distill.fileio import atomic_write_bytes

    buf = io.BytesIO()
    np.savez(buf, rows=rows.astype(np.int32), source=np.array(table_fingerprint(kept, assistant_rows)))
    atomic_write_bytes(path, buf.getvalue())
    return path


def read_table(path: Path, kept: np.ndarray, assistant_rows: np.ndarray) -> np.ndarray | None:
    """The table at `path` if it was made for these kept ids and these assistant rows, else None."""
    try:
        with np.load(path, allow_pickle=False) as z:
            rows, stamp = z["rows"].astype(np.int64), str(z["source"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # missing, cut short, not ours
        return None
    if rows.shape != (len(assistant_rows),) or stamp != table_fingerprint(kept, assistant_rows):
        return None
    if rows.min() < 0 or rows.max() >= len(kept):  # the stamp matched: only a forged file gets here
        return None
    return rows


def table_rows(
    table: Path | None, kept: np.ndarray, assistant_rows: np.ndarray, *, save: bool = False
) -> np.ndarray:
    """`nearest_rows`, read from `table` when it holds them (and, with `save`, written there when not)."""
    rows = read_table(table, kept, assistant_rows) if table is not None else None
    if rows is None:
        rows = nearest_rows(assistant_rows, kept)
        if save and table is not None:
            write_table(table, rows, kept, assistant_rows)
    return rows


def extra_pieces(tokenizer, kept: np.ndarray, n: int) -> np.ndarray:
    """The `n` pieces not in `kept` that `tokenizer`'s Unigram model scores most probable (its own
    frequency estimate over its training corpus, ties by lower id)."""
    from distill.vocab import tokenizer_json

    model = tokenizer_json(tokenizer)["model"]
    if model["type"] != "Unigram":
        raise UntrimError(f"extra rows need a Unigram (SentencePiece) tokenizer, not {model['type']}")
    scores = np.asarray([score for _, score in model["vocab"]], dtype=np.float64)
    scores[kept] = -np.inf
    order = np.lexsort((np.arange(len(scores)), -scores))
    return np.sort(order[: min(n, len(scores) - len(kept))])


def _add_rows(model: XLSearchRecurrentModel, a_rows: np.ndarray) -> None:
    """Append rows whose projection is `a_rows` (least squares through the student's projection)."""
    import torch

    emb, proj = model.embeddings.word_embeddings, model.embeddings.word_projection.weight.detach().float()
    new = torch.linalg.lstsq(proj, torch.as_tensor(a_rows, dtype=torch.float32).T).solution.T
    weight = torch.cat([emb.weight.detach().float(), new]).to(emb.weight.dtype)
    model.embeddings.word_embeddings = torch.nn.Embedding.from_pretrained(
        weight, freeze=False, padding_idx=emb.padding_idx
    )
    model.config.vocab_size = weight.shape[0]


def assistant_rows(a_model, tokenizer) -> np.ndarray:
    """A's word-embedding rows, one per id of its tokenizer."""
    rows = a_model.get_input_embeddings().weight.detach().float().cpu().numpy()
    if len(tokenizer) > len(rows):
        raise UntrimError(f"{len(tokenizer)} tokenizer ids but {len(rows)} embedding rows")
    return rows[: len(tokenizer)]  # e5 pads its table past the tokenizer (250,037 rows, 250,002 ids)


def with_token_rows(
    model: XLSearchRecurrentModel,
    kept: np.ndarray,
    a_rows: np.ndarray,
    *,
    table: Path | None = None,
    save: bool = False,
) -> XLSearchRecurrentModel:
    """`model` (row i = A's id kept[i]) reading A's ids: a copy with the table `embeddings.token_rows`
    (read from the file `table` when it was made for these rows; see `table_rows`)."""
    import torch

    rows = table_rows(table, kept, a_rows, save=save)
    config = copy.deepcopy(model.config)
    config.token_map_size = len(rows)
    full = XLSearchRecurrentModel(config).to(model.dtype)
    missing = full.load_state_dict(model.state_dict(), strict=False).missing_keys
    if missing != ["embeddings.token_rows"]:  # the student's own weights must all carry over
        raise UntrimError(f"weights missing after untrimming: {missing}")
    full.embeddings.token_rows.copy_(torch.as_tensor(rows, dtype=torch.int32))
    return full


def without_token_rows(model: XLSearchRecurrentModel, kept: np.ndarray) -> XLSearchRecurrentModel:
    """The inverse of `with_token_rows`: a copy of `model` reading its own row ids (row i = A's id
    kept[i]), for shipping with a trimmed tokenizer and the table beside it (`TABLE`)."""
    rows = model.embeddings.token_rows
    if rows is None:
        raise UntrimError("the student reads its own row ids already: there is no table to take out")
    rows = rows.cpu().numpy().astype(np.int64)
    if len(kept) != model.config.vocab_size or not np.array_equal(rows[kept], np.arange(len(kept))):
        raise UntrimError(
            "these kept ids are not the student's: its table does not send them to their own rows"
        )
    config = copy.deepcopy(model.config)
    config.token_map_size = 0
    small = XLSearchRecurrentModel(config).to(model.dtype)
    state = {k: v for k, v in model.state_dict().items() if k != "embeddings.token_rows"}
    small.load_state_dict(state)  # strict: every other weight carries over
    return small


def untrim_student(
    src: str | Path,
    dst: str | Path | None,
    *,
    assistant: str = ASSISTANT_SPEC,
    extra_rows: int = 0,
) -> dict:
    """Write `src` with `assistant`'s full tokenizer and a nearest-row table to `dst`; return a report.

    The table is read from `src`/token_rows.npz when it was made for these rows. `dst=None` writes
    only that file, into `src` (what a shipped student carries). `extra_rows` > 0 first gives that
    many more pieces (the tokenizer's most probable ones) their own row, the assistant's (the
    student's rows are the assistant's when its embeddings were frozen)."""
    from transformers import AutoTokenizer

    from distill.models import load_encoder

    src = Path(src)
    if dst is not None:
        dst = Path(dst)
        check_output_dir(dst, [src])  # before minutes of work, and again when written
    elif extra_rows:
        raise UntrimError("a table for extra rows would not match the student's own rows: use --out")
    model = _load_student(src)
    if getattr(model.config, "token_map_size", 0):
        raise UntrimError(f"{src} already maps a full tokenizer's ids to its rows")
    a = load_encoder(assistant, device="cpu")
    try:
        a_rows = assistant_rows(a.model, a.tokenizer)
    except UntrimError as exc:
        raise UntrimError(f"{assistant}: {exc}") from None
    kept = kept_ids(AutoTokenizer.from_pretrained(src), a.tokenizer)
    if len(kept) != model.config.vocab_size:
        raise UntrimError(f"{src}: {len(kept)} tokenizer pieces but {model.config.vocab_size} rows")
    if extra_rows:
        extra = extra_pieces(a.tokenizer, kept, extra_rows)
        _add_rows(model, a_rows[extra])
        kept = np.concatenate([kept, extra])
    report = {"rows": int(model.config.vocab_size), "ids": len(a_rows), "shared": len(a_rows) - len(kept)}
    if dst is None:
        table_rows(src / TABLE, kept, a_rows, save=True)
        return report | {"table": str(src / TABLE)}
    try:  # the shipped table only holds for the student's own rows (no extra ones)
        full = with_token_rows(model, kept, a_rows, table=None if extra_rows else src / TABLE)
    except UntrimError as exc:
        raise UntrimError(f"{src}: {exc}") from None
    _write(full, a.tokenizer, src, dst)
    return report


def _load_student(src: Path) -> XLSearchRecurrentModel:
    """The xlsearch student in `src`; any other model (or none) is one clear UntrimError."""
    import json

    from distill.documents import JsonError, loads_strict

    try:
        config = loads_strict((src / "config.json").read_bytes())
    except OSError as exc:
        raise UntrimError(f"{src} is not a saved student ({exc.strerror})") from None
    except JsonError as exc:
        raise UntrimError(f"{src / 'config.json'}: {exc}") from None
    kind = config.get("model_type") if isinstance(config, dict) else None
    if kind != XLSearchRecurrentConfig.model_type:
        raise UntrimError(
            f"{src} is not an xlsearch student (its config.json says model_type {json.dumps(kind)}, "
            f"not {XLSearchRecurrentConfig.model_type}); untrim works on students that `distill run` wrote"
        )
    try:
        return XLSearchRecurrentModel.from_pretrained(src)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise UntrimError(f"{src}: the student cannot be loaded ({exc})") from None


def _write(model: XLSearchRecurrentModel, tokenizer, src: Path, dst: Path) -> None:
    """Save with `src`'s prompts, length and card, atomically (a half-written model never loads)."""
    from distill.models import read_layout
    from distill.student.export import save_student

    layout = read_layout(src)
    card = src / "README.md"
    with atomic_directory(dst, [src]) as tmp:
        save_student(
            model,
            tokenizer,
            tmp,
            prompts=layout.prompts or None,
            max_seq_length=layout.max_seq_length or 512,
            model_card=(card.read_text() if card.is_file() else "") + NOTE,
        )
        if (src / "training_summary.json").is_file():
            shutil.copy2(src / "training_summary.json", tmp / "training_summary.json")
        record_source(tmp, src)  # distill.paths.default_student serves the copy while it is current
