"""What a model costs: parameters (stored and effective), size on disk, memory and encode speed."""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from distill.evaluation.base import Entry, Task
from distill.models.encoder import Role


def stored_parameters(model: torch.nn.Module) -> int:
    """Distinct parameters (a tensor shared by several modules counts once)."""
    return sum(p.numel() for p in model.parameters())  # parameters() already deduplicates shared tensors


def embedding_parameters(model: torch.nn.Module) -> int:
    seen, total = set(), 0
    for m in model.modules():
        if isinstance(m, torch.nn.Embedding) and id(m.weight) not in seen:
            seen.add(id(m.weight))
            total += m.weight.numel()
    return total


def effective_parameters(encoder, text: str = "a short sentence") -> int:
    """Parameters a forward pass applies, counting a module once per call.

    A recurrent student that runs its k layers r times counts them r times: this is the size of
    the equivalent non-shared network, the figure that compute tracks.
    """
    model = encoder.model
    counts: list[int] = []

    def hook(module, _inputs, _output) -> None:
        counts.append(sum(p.numel() for p in module.parameters(recurse=False)))

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if any(True for _ in m.parameters(recurse=False))
    ]
    try:
        encoder.encode([text], batch_size=1)
    finally:
        for h in handles:
            h.remove()
    return sum(counts)


def memory_bytes(model: torch.nn.Module) -> int:
    """Bytes of parameters and buffers in memory (shared tensors once)."""
    seen, total = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        if t.data_ptr() not in seen:
            seen.add(t.data_ptr())
            total += t.numel() * t.element_size()
    return total


def directory_bytes(path: str | Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def model_directory(encoder) -> Path | None:
    """The directory the encoder was loaded from, when there is one."""
    path = getattr(getattr(encoder.model, "config", None), "_name_or_path", "") or getattr(
        encoder.model, "name_or_path", ""
    )
    if path and Path(path).is_dir():
        return Path(path)
    return None


class _PeakRss:
    """Samples the process RSS in a background thread (psutil) while a block runs."""

    def __init__(self, interval: float = 0.005) -> None:
        import psutil

        self.proc = psutil.Process(os.getpid())
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> _PeakRss:
        self.baseline = self.proc.memory_info().rss
        self.peak = self.baseline
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


class CostEvaluator:
    """Size and speed of a model on fixed texts.

    Metrics (prefix `name`, default "cost"): `params_stored`, `params_effective`, `params_embedding`,
    `disk_mb` (the model directory, or the fp32 weights when loaded from memory), `memory_mb`
    (parameters + buffers), `sentences_per_s` (primary; median of `repeats` timed passes after one
    warm-up batch, at `threads` torch threads), `peak_mb` (growth of the process RSS while encoding).
    Compare throughput only between models measured in the same run.
    """

    task = Task.COST

    def __init__(
        self,
        texts: Sequence[str],
        *,
        name: str = "cost",
        batch_size: int = 32,
        threads: int | None = None,
        repeats: int = 1,
        prefix: str | None = Role.QUERY,
    ) -> None:
        if not texts:
            raise ValueError(f"{name}: needs texts to time encoding on")
        if repeats < 1:
            raise ValueError("repeats must be >= 1")
        self.texts = list(texts)
        self.name = name
        self.batch_size = batch_size
        self.threads = threads
        self.repeats = repeats
        self.prefix = prefix
        self.dataset = name
        self.primary_metric = f"{name}_sentences_per_s"

    def __call__(self, encoder) -> dict[str, float]:
        model = encoder.model
        previous_threads = torch.get_num_threads()
        # The encoder sets its own thread count while it encodes; time it at ours.
        encoder_threads = getattr(encoder, "threads", None)
        was_training = model.training
        model.eval()
        try:
            if self.threads:
                torch.set_num_threads(self.threads)
                encoder.threads = self.threads
            self.used_threads = (
                encoder.threads if getattr(encoder, "threads", None) else torch.get_num_threads()
            )
            encoder.encode(
                self.texts[: self.batch_size], batch_size=self.batch_size, prefix=self.prefix
            )  # warm-up
            times = []
            with _PeakRss() as rss:
                for _ in range(self.repeats):
                    start = time.perf_counter()
                    encoder.encode(self.texts, batch_size=self.batch_size, prefix=self.prefix)
                    times.append(time.perf_counter() - start)
            effective = effective_parameters(encoder)
        finally:
            torch.set_num_threads(previous_threads)
            if self.threads:
                encoder.threads = encoder_threads
            model.train(was_training)
        directory = model_directory(encoder)
        disk = directory_bytes(directory) if directory else memory_bytes(model)
        p = self.name
        return {
            f"{p}_params_stored": float(stored_parameters(model)),
            f"{p}_params_effective": float(effective),
            f"{p}_params_embedding": float(embedding_parameters(model)),
            f"{p}_disk_mb": disk / 2**20,
            f"{p}_memory_mb": memory_bytes(model) / 2**20,
            f"{p}_sentences_per_s": len(self.texts) / statistics.median(times),
            f"{p}_peak_mb": max(0, rss.peak - rss.baseline) / 2**20,
        }

    def entries(self, metrics: dict[str, float]) -> list[Entry]:
        prefix = f"{self.name}_"
        return [
            Entry(self.task.value, self.dataset, self.name, "all", k[len(prefix) :], float(v))
            for k, v in metrics.items()
            if k.startswith(prefix)
        ]

    def info(self) -> dict[str, Any]:
        return {
            "task": self.task.value,
            "dataset": self.dataset,
            "texts": len(self.texts),
            "batch_size": self.batch_size,
            "threads": self.threads or torch.get_num_threads(),
            "repeats": self.repeats,
        }

    def __repr__(self) -> str:
        return f"CostEvaluator(name={self.name!r}, texts={len(self.texts)}, threads={self.threads})"
