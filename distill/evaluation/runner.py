"""Evaluate several models on the same evaluators and keep everything a report needs.

```python
from distill.evaluation import dev_suite
from distill.evaluation.runner import evaluate_models
run = evaluate_models({"teacher": "pkg:multilingual-e5-small", "student": "data/students/offline"},
                      dev_suite(), out_dir="data/reports/dev", progress=lambda f, msg: print(f, msg))
run.metrics["student"]["flores-deu_Latn_accuracy"]
```
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from distill.evaluation.base import (
    DEFAULT_CACHE,
    EmbeddingCache,
    Entry,
    Evaluator,
    evaluator_entries,
    evaluator_info,
)
from distill.evaluation.keys import PARAMS_STORED
from distill.evaluation.report import write_report
from distill.evaluation.results import EvaluationRun, ModelResult
from distill.fileio import REPORT_MARKERS, check_output_dir
from distill.modelspec import display_name
from distill.paths import REPO_ROOT

# progress(fraction in [0, 1], message)
Progress = Callable[[float, str], None]


def percent_progress(desc: str):
    """A tqdm bar in percent and the `progress(fraction, message)` callback that `evaluate_models` takes."""
    from tqdm.auto import tqdm

    bar = tqdm(total=100, desc=desc, unit="%", bar_format="{l_bar}{bar}| {n:.0f}% {postfix}")

    def progress(fraction: float, message: str) -> None:
        bar.n = round(100 * fraction)
        bar.set_postfix_str(message)
        bar.refresh()

    return bar, progress


# --- provenance -----------------------------------------------------------------------------


def software_versions() -> dict[str, str]:
    """Versions that decide the numbers, so two reports can be compared."""
    import importlib.metadata as md

    import torch

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in (
        "xlsearch",
        "torch",
        "transformers",
        "sentence-transformers",
        "tokenizers",
        "numpy",
        "scipy",
        "matplotlib",
    ):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    out["torch_threads"] = str(torch.get_num_threads())
    out["cpu_count"] = str(os.cpu_count())
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
        if commit:
            out["git_commit"] = commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def model_info(encoder) -> dict[str, Any]:
    """Architecture facts of a loaded encoder (cheap: no timing)."""
    from distill.evaluation.cost import embedding_parameters, model_directory, stored_parameters

    model = encoder.model
    config = getattr(model, "config", None)
    directory = model_directory(encoder)
    return {
        PARAMS_STORED: stored_parameters(model),
        "params_embedding": embedding_parameters(model),
        "dim": int(getattr(encoder, "dim", 0)),
        "layers": getattr(config, "num_hidden_layers", None),
        "vocab_size": getattr(config, "vocab_size", None),
        "model_type": getattr(config, "model_type", None),
        "max_seq_length": getattr(encoder, "max_seq_length", None),
        "pooling": str(getattr(getattr(encoder, "pooling", None), "value", getattr(encoder, "pooling", ""))),
        "prompts": dict(getattr(encoder, "prompts", {}) or {}),
        "path": str(directory) if directory else None,
    }


# --- the runner -------------------------------------------------------------------------------


def parse_model_args(values: Sequence[str]) -> dict[str, str]:
    """`["teacher=pkg:x", "data/students/s"]` -> {"teacher": "pkg:x", "s": "data/students/s"}; labels must be unique."""
    out: dict[str, str] = {}
    for value in values:
        label, sep, spec = value.partition("=")
        if not sep or not label.replace("-", "").replace("_", "").isalnum():
            label, spec = "", value
        spec = spec.strip()
        if not spec:
            raise ValueError(f"empty model spec in {value!r}")
        label = label or display_name(spec)
        if label in out:
            raise ValueError(f"model label {label!r} given twice; name them label=SPEC")
        out[label] = spec
    if not out:
        raise ValueError("no models given")
    return out


def evaluate_models(
    models: Mapping[str, Any],
    evaluators: Sequence[Evaluator],
    out_dir: str | Path | None = None,
    *,
    progress: Progress | None = None,
    threads: int | None = None,
    max_seq_length: int | None = None,
    suite: str | None = None,
    notes: Sequence[str] = (),
    cache: EmbeddingCache | None = None,
    trust_remote_code: bool = False,
) -> EvaluationRun:
    """Evaluate each model (label -> spec string, or an already loaded Encoder) on `evaluators`.

    Models are loaded one at a time and released after their evaluation. When `out_dir` is given,
    `write_report` writes metrics.json, report.md and report.html there. `progress(fraction,
    message)` is called as work advances (the app drives a progress bar with it).
    """
    if not models:
        raise ValueError("no models to evaluate")
    if not evaluators:
        raise ValueError("no evaluators")
    if out_dir is not None:  # before the models run: a report never replaces what is not a report
        local = [Path(s) for s in models.values() if isinstance(s, str | Path) and Path(s).is_dir()]
        check_output_dir(out_dir, local, ours=REPORT_MARKERS, what="report directory")
    started = time.perf_counter()
    created = datetime.now(UTC).isoformat(timespec="seconds")
    evaluators = list(evaluators)
    steps = _Steps(len(models) * (len(evaluators) + 1), progress)
    results = []
    for label, spec in models.items():
        steps.report(
            f"{label}: loading {spec if isinstance(spec, str | Path) else getattr(spec, 'name', '')}"
        )
        t0 = time.perf_counter()
        encoder, spec_text = _encoder(label, spec, threads, max_seq_length, trust_remote_code)
        info = model_info(encoder)
        info["load_seconds"] = round(time.perf_counter() - t0, 2)
        steps.done += 1
        metrics, entries, info["seconds_per_evaluator"] = _run_evaluators(label, encoder, evaluators, steps)
        seconds = round(time.perf_counter() - t0, 2)
        results.append(ModelResult(label, spec_text, metrics, entries, info=info, seconds=seconds))
        del encoder
        (cache or DEFAULT_CACHE).clear()  # each model's embeddings are needed only during its own pass
    steps.report("writing report")
    run = EvaluationRun(
        models=results,
        evaluators=[evaluator_info(ev) for ev in evaluators],
        software=software_versions(),
        created=created,
        wall_seconds=round(time.perf_counter() - started, 1),
        suite=suite,
        notes=list(notes),
    )
    if out_dir is not None:
        write_report(run, out_dir)
    if progress:
        progress(1.0, "done")
    return run


def _encoder(label: str, spec, threads, max_seq_length, trust_remote_code: bool):
    """(encoder, spec text) of a spec, loaded; or of an already loaded encoder."""
    if not isinstance(spec, str | Path):
        return spec, getattr(spec, "name", "") or label
    from distill.models import load_encoder

    encoder = load_encoder(
        spec, threads=threads, max_seq_length=max_seq_length, trust_remote_code=trust_remote_code
    )
    return encoder, str(spec)


class _Steps:
    """Counts finished steps (a model's loading, one evaluator on one model) for `progress`."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.done, self.progress = total, 0, progress

    def report(self, message: str) -> None:
        if self.progress:
            self.progress(min(self.done / self.total, 1.0), message)


def _run_evaluators(
    label: str, encoder, evaluators: Sequence[Evaluator], steps: _Steps
) -> tuple[dict[str, float], list[Entry], dict[str, float]]:
    """One model's metrics, report entries and seconds per evaluator; metric keys must not repeat."""
    metrics: dict[str, float] = {}
    entries: list[Entry] = []
    timings: dict[str, float] = {}
    for ev in evaluators:
        steps.report(f"{label}: {ev.name}")
        t_ev = time.perf_counter()
        m = ev(encoder)
        timings[ev.name] = round(time.perf_counter() - t_ev, 2)
        clash = sorted(set(m) & set(metrics))
        if clash:
            raise ValueError(f"evaluator {ev.name!r} repeats metric keys {clash[:3]}")
        metrics.update(m)
        entries.extend(evaluator_entries(ev, m))
        steps.done += 1
    return metrics, entries, timings
