"""The one sentence encoder used by distill, indexer and app."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from distill.models.head import Dense, Pooling, mean_pool, pool
from distill.roles import Role

__all__ = ["Encoder", "Role", "mean_pool", "torch_threads"]


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with torch's intra-op thread count at `n` (None: unchanged), then restore it.

    torch's setting is process wide, so an encoder that wants its own count sets it only while it
    encodes: whoever shares the process gets theirs back afterwards.
    """
    previous = torch.get_num_threads()
    if n and n != previous:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


class Encoder:
    """A transformer plus pooling, Dense layers, normalisation and role prompts: texts in, vectors out.

    `threads` (None: torch's current setting) is the intra-op thread count `encode` runs with; it
    is set for the call only and restored afterwards.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        *,
        pooling: Pooling = Pooling.MEAN,
        normalize: bool = True,
        prompts: dict[str, str] | None = None,
        max_seq_length: int = 512,
        name: str = "",
        dense: Sequence[Dense] = (),
        threads: int | None = None,
        backend: str = "torch",
    ) -> None:
        self.model = model.eval()  # a torch transformer, or a stand-in such as backends.OnnxModel
        self.tokenizer = tokenizer
        self.pooling = Pooling(pooling)
        self.dense = torch.nn.ModuleList(dense).eval()
        self.normalize = normalize
        self.prompts = dict(prompts or {})
        self.max_seq_length = max_seq_length
        self.name = name
        self.threads = threads
        self.backend = backend  # see distill.models.backends.Backend

    @property
    def dim(self) -> int:
        if len(self.dense):
            return int(self.dense[-1].out_features)
        model = getattr(self.model, "module", self.model)  # a DDP-wrapped model during training
        return int(model.config.hidden_size)

    @property
    def device(self) -> torch.device:
        own = getattr(self.model, "device", None)  # transformers models and backend stand-ins say it
        return own if isinstance(own, torch.device) else next(self.model.parameters()).device

    def prompt(self, prefix: str | Role | None) -> str:
        """The literal prompt for a role (empty for models without prompts)."""
        if prefix is None:
            return ""
        try:
            role = Role(prefix)
        except ValueError:
            raise ValueError(
                f"prefix must be one of {[r.value for r in Role]} or None, got {prefix!r}"
            ) from None
        return self.prompts.get(role.value, "")

    def tokenize(self, texts: Sequence[str], prefix: str | Role | None = None) -> dict[str, torch.Tensor]:
        prompt = self.prompt(prefix)
        return self.tokenizer(
            [prompt + t for t in texts],
            padding=True,
            truncation=True,
            max_length=self.max_seq_length,
            return_tensors="pt",
        )

    def forward(self, batch: dict[str, torch.Tensor], normalize: bool | None = None) -> torch.Tensor:
        """Sentence embeddings for a tokenized batch, with gradients (used by training)."""
        batch = {
            k: v.to(self.device)
            for k, v in batch.items()
            if k in ("input_ids", "attention_mask", "token_type_ids")
        }
        states = self.model(**batch).last_hidden_state
        pooled = pool(states, batch["attention_mask"], self.pooling)
        if len(self.dense):
            self.dense.to(pooled.device)
            for layer in self.dense:
                pooled = layer(pooled)
        if self.normalize if normalize is None else normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return pooled

    def encode(
        self,
        texts: str | Sequence[str],
        batch_size: int = 32,
        normalize: bool | None = None,
        prefix: str | Role | None = None,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Embed `texts` as a float32 array (n, dim); a single string gives one vector (dim,).

        Texts are sorted by length so each batch pads little, then returned in input order.
        `normalize=None` uses the model's own setting (True for every model we ship).
        """
        if isinstance(texts, str):
            return self.encode([texts], batch_size, normalize, prefix, show_progress)[0]
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        texts = list(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        starts = range(0, len(texts), batch_size)
        with torch.inference_mode(), torch_threads(self.threads):
            for start in tqdm(
                starts, desc=f"encode {self.name}".strip(), disable=not show_progress, unit="batch"
            ):
                idx = order[start : start + batch_size]
                batch = self.tokenize([texts[i] for i in idx], prefix)
                out[idx] = self.forward(batch, normalize).float().cpu().numpy()
        return out

    def __repr__(self) -> str:
        dense = f", dense={[(d.in_features, d.out_features) for d in self.dense]}" if len(self.dense) else ""
        return (
            f"Encoder(name={self.name!r}, backend={self.backend}, dim={self.dim}, "
            f"pooling={self.pooling.value}{dense}, "
            f"normalize={self.normalize}, prompts={self.prompts}, max_seq_length={self.max_seq_length})"
        )
