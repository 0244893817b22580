"""What every evaluator shares: the protocol, the task names, and the per-run embedding cache."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import numpy as np

from distill.vectors import l2_normalize


class Task(StrEnum):
    BITEXT = "bitext"
    STS = "sts"
    RETRIEVAL = "retrieval"
    QUESTION = "question"  # question -> paragraph, the app's job (distill/evaluation/questions.py)
    COLLAPSE = "collapse"  # cosine statistics of unrelated pairs, reported beside quality
    COST = "cost"


@runtime_checkable
class Evaluator(Protocol):
    """Call it with an `Encoder`, get metrics whose keys start with `name`.

    Our evaluators also carry `task` (a `Task`), `dataset` (a group name used by reports),
    `info()` (what data they run on) and `entries(metrics)` (the metrics split by language pair).
    """

    name: str
    primary_metric: str

    def __call__(self, encoder) -> dict[str, float]: ...


@dataclass(frozen=True)
class Entry:
    """One reported number: model x task x language pair x metric (a row of metrics.json)."""

    task: str
    dataset: str
    evaluator: str
    lang_pair: str
    metric: str
    value: float


class DataEvaluator:
    """The fields our data-driven evaluators share; subclasses call `_setup` first, then check their data."""

    task: Task

    def _setup(
        self,
        name: str,
        primary: str,
        *,
        batch_size: int,
        dataset: str,
        source: dict[str, Any] | None,
        cache: EmbeddingCache | None,
        show_progress: bool,
    ) -> None:
        if not name:
            raise ValueError("an evaluator needs a name")
        self.name = name
        self.primary_metric = f"{name}_{primary}"
        self.batch_size = batch_size
        self.dataset = dataset or name
        self.source = dict(source or {})
        self.cache = cache if cache is not None else DEFAULT_CACHE
        self.show_progress = show_progress

    def embed(self, encoder, texts: Sequence[str], prefix: str | None) -> np.ndarray:
        return self.cache.embed(
            encoder, texts, prefix=prefix, batch_size=self.batch_size, show_progress=self.show_progress
        )

    def entries(self, metrics: dict[str, float]) -> list[Entry]:
        """Report rows for an evaluator of one language pair (`self.lang_pair`); per-pair ones override this."""
        prefix = f"{self.name}_"
        return [
            Entry(self.task.value, self.dataset, self.name, self.lang_pair, k[len(prefix) :], float(v))
            for k, v in metrics.items()
            if k.startswith(prefix)
        ]


# --- the embedding cache ---------------------------------------------------------------------


def _encoder_key(encoder) -> tuple:
    """Identity of an encoder *and its current weights*.

    Training updates parameters in place, which bumps each tensor's `_version` counter; including
    their sum means a cache never serves embeddings of weights that have since changed (the
    distillation stages evaluate the same Encoder object after every stage).
    """
    token = getattr(encoder, "_xlsearch_eval_token", None)
    if token is None:
        token = uuid.uuid4().hex
        try:
            encoder._xlsearch_eval_token = token
        except AttributeError:  # an encoder that refuses attributes: fall back to its id
            token = f"id-{id(encoder)}"
    model = getattr(encoder, "model", None)
    params = list(model.parameters()) if model is not None else []
    version = sum(p._version for p in params)
    # the model object and its storage too: swapping in another model must not hit old entries
    storage = (id(model), params[0].data_ptr() if params else 0, len(params))
    return (token, version, storage, getattr(encoder, "max_seq_length", None))


class EmbeddingCache:
    """L2-normalised embeddings per (encoder, weights, prefix, text), kept for the last few encoders.

    Shared by all evaluators of a run: the English side of FLORES is embedded once for twelve
    language pairs, and an STS sentence once for its monolingual and cross-lingual pairs.
    """

    def __init__(self, max_encoders: int = 3) -> None:
        self.max_encoders = max_encoders
        self._store: OrderedDict[tuple, dict[tuple[str | None, str], np.ndarray]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def clear(self) -> None:
        self._store.clear()

    def embed(
        self,
        encoder,
        texts: Sequence[str],
        *,
        prefix: str | None,
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> np.ndarray:
        """(len(texts), dim) float32 unit vectors, encoding only texts not seen before."""
        key = _encoder_key(encoder)
        # Key by the literal prompt: for a model without prompts, "query" and "passage" texts are
        # the same input and are embedded once.
        pkey = encoder.prompt(prefix) if hasattr(encoder, "prompt") else prefix
        store = self._store.get(key)
        if store is None:
            store = self._store[key] = {}
            while len(self._store) > self.max_encoders:
                self._store.popitem(last=False)
        self._store.move_to_end(key)
        missing = list(dict.fromkeys(t for t in texts if (pkey, t) not in store))
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        if missing:
            vectors = encode_eval(
                encoder, missing, prefix=prefix, batch_size=batch_size, show_progress=show_progress
            )
            for text, vec in zip(missing, vectors, strict=True):
                store[(pkey, text)] = vec
        if not texts:
            return np.zeros((0, getattr(encoder, "dim", 0)), dtype=np.float32)
        return np.stack([store[(pkey, t)] for t in texts])


def encode_eval(
    encoder, texts: Sequence[str], *, prefix: str | None, batch_size: int, show_progress: bool
) -> np.ndarray:
    """Encode in eval mode (no dropout), restoring the module's training flag afterwards.

    Texts go to the encoder in length-sorted chunks of a few batches, so the progress bar (one
    transient line, texts/s) moves smoothly while padding stays as low as one big call's.
    """
    from tqdm.auto import tqdm

    model = getattr(encoder, "model", None)
    # an ONNX Runtime session in place of the module has no training mode
    was_training = bool(getattr(model, "training", False))
    if was_training:
        model.eval()
    texts = list(texts)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    chunk = batch_size * 4
    out: np.ndarray | None = None
    try:
        with tqdm(
            total=len(texts),
            desc=f"embed {getattr(encoder, 'name', '')}".strip(),
            unit="text",
            disable=not show_progress,
            leave=False,
        ) as bar:
            for start in range(0, len(texts), chunk):
                idx = order[start : start + chunk]
                vecs = np.asarray(
                    encoder.encode([texts[i] for i in idx], batch_size=batch_size, prefix=prefix),
                    dtype=np.float32,
                )
                if out is None:
                    out = np.empty((len(texts), vecs.shape[1]), dtype=np.float32)
                out[idx] = vecs
                bar.update(len(idx))
    finally:
        if was_training:
            model.train()
    return l2_normalize(out)


DEFAULT_CACHE = EmbeddingCache()


# --- running ------------------------------------------------------------------------------


def run_evaluators(encoder, evaluators: Iterable[Evaluator], *, progress=None) -> dict[str, float]:
    """Run every evaluator on `encoder` and merge their metric dicts (keys must not collide).

    `progress(done: int, total: int, name: str)` is called before each evaluator and at the end.
    """
    evaluators = list(evaluators)
    merged: dict[str, float] = {}
    for i, ev in enumerate(evaluators):
        if progress:
            progress(i, len(evaluators), ev.name)
        metrics = ev(encoder)
        clash = sorted(set(metrics) & set(merged))
        if clash:
            raise ValueError(
                f"evaluator {ev.name!r} repeats metric keys {clash[:3]}; give evaluators distinct names"
            )
        merged.update(metrics)
    if progress:
        progress(len(evaluators), len(evaluators), "done")
    return merged


def evaluator_entries(ev: Evaluator, metrics: dict[str, float]) -> list[Entry]:
    """Split an evaluator's metrics into report rows (falls back to one 'all' row per key)."""
    if hasattr(ev, "entries"):
        return ev.entries(metrics)
    prefix = f"{ev.name}_"
    return [
        Entry("other", ev.name, ev.name, "all", k[len(prefix) :] if k.startswith(prefix) else k, float(v))
        for k, v in metrics.items()
    ]


def evaluator_info(ev: Evaluator) -> dict[str, Any]:
    base = {"name": ev.name, "primary_metric": ev.primary_metric, "task": str(getattr(ev, "task", "other"))}
    if hasattr(ev, "info"):
        base.update(ev.info())
    return base
