"""Vocabulary trimming: keep only the tokens a student needs, and a tokenizer that emits the new ids.

A Unigram (SentencePiece) tokenizer picks the most probable segmentation from its pieces. Taking
away pieces that no training text used cannot change the best segmentation of those texts, so the
trimmed tokenizer gives exactly `remap(old ids)` on the training data; other text falls back to
the kept sub-words and, with `keep_single_chars`, to characters rather than `<unk>`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence

import torch
from tqdm.auto import tqdm


class VocabError(ValueError):
    pass


def count_token_ids(tokenizer, texts: Iterable[str], *, prompt: str = "", batch_size: int = 2048) -> Counter:
    """How often each token id occurs when tokenizing `prompt + text` (specials included)."""
    counts: Counter = Counter()
    texts = list(texts)
    for start in tqdm(
        range(0, len(texts), batch_size),
        desc="count tokens",
        unit="batch",
        leave=False,
        disable=len(texts) < 10 * batch_size,
    ):
        batch = [prompt + t for t in texts[start : start + batch_size]]
        for ids in tokenizer(batch, add_special_tokens=True)["input_ids"]:
            counts.update(ids)
    return counts


def tokenizer_json(tokenizer) -> dict:
    return json.loads(tokenizer.backend_tokenizer.to_str())


def select_vocab(
    tokenizer, counts: Counter, *, min_count: int = 1, keep_single_chars: bool = True, max_pieces: int = 0
) -> list[int]:
    """Sorted old ids to keep: special tokens, optionally 1-char pieces, and ids seen >= min_count times.

    `max_pieces` > 0 caps the total: the required pieces first, then the most frequent ones (ties by
    lower id, so the choice is deterministic). Dropped words re-segment into the kept sub-words.
    """
    required = set(tokenizer.all_special_ids)
    spec = tokenizer_json(tokenizer)
    model = spec["model"]
    if model["type"] == "Unigram":
        required.add(model["unk_id"])
        if keep_single_chars:
            required |= {
                i for i, (piece, _) in enumerate(model["vocab"]) if len(piece.replace("\u2581", "")) <= 1
            }
    seen = sorted(
        (i for i, c in counts.items() if c >= min_count and i not in required), key=lambda i: (-counts[i], i)
    )
    if max_pieces:
        if len(required) > max_pieces:
            raise VocabError(
                f"max_pieces = {max_pieces} is below the {len(required)} required pieces "
                "(specials and single characters; set keep_single_chars = false to drop the latter)"
            )
        seen = seen[: max_pieces - len(required)]
    return sorted(required | set(seen))


def trim_tokenizer(tokenizer, kept_ids: Sequence[int]):
    """A fast tokenizer over `kept_ids` only: old id kept_ids[j] becomes new id j."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    spec = tokenizer_json(tokenizer)
    model = spec["model"]
    if model["type"] != "Unigram":
        raise VocabError(
            f"vocabulary trimming supports Unigram (SentencePiece) tokenizers, not {model['type']}"
        )
    new_id = {old: new for new, old in enumerate(kept_ids)}
    vocab = model["vocab"]
    if max(kept_ids) >= len(vocab):
        raise VocabError(f"kept id {max(kept_ids)} is outside the tokenizer's {len(vocab)} pieces")
    model["vocab"] = [vocab[i] for i in kept_ids]
    if model.get("unk_id") is not None:
        model["unk_id"] = new_id[model["unk_id"]]
    for tok in spec.get("added_tokens") or []:
        if tok["id"] not in new_id:
            raise VocabError(f"special token {tok['content']!r} (id {tok['id']}) must be kept")
        tok["id"] = new_id[tok["id"]]
    post = spec.get("post_processor")
    for proc in ([post] if post else []) + (post.get("processors", []) if post else []):
        for special in (proc.get("special_tokens") or {}).values():
            special["ids"] = [new_id[i] for i in special["ids"]]
        for key in ("sep", "cls"):  # RobertaProcessing / BertProcessing store (token, id)
            if key in proc:
                proc[key] = [proc[key][0], new_id[proc[key][1]]]
    spec["padding"] = spec["truncation"] = None
    backend = Tokenizer.from_str(json.dumps(spec))
    specials = {
        name: getattr(tokenizer, name)
        for name in (
            "bos_token",
            "eos_token",
            "unk_token",
            "sep_token",
            "pad_token",
            "cls_token",
            "mask_token",
        )
        if getattr(tokenizer, name, None) is not None
    }
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, model_max_length=tokenizer.model_max_length, **specials
    )


def remap_ids(ids: torch.Tensor, kept_ids: Sequence[int], unk_id: int) -> torch.Tensor:
    """Old ids -> new ids (ids not kept become the new `<unk>`)."""
    table = torch.full((max(max(kept_ids), int(ids.max())) + 1,), unk_id, dtype=torch.long)
    table[torch.as_tensor(list(kept_ids))] = torch.arange(len(kept_ids))
    return table[ids]
