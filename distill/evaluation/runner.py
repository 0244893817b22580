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

import json
import math
import os
import platform
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
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
from distill.modelspec import display_name
from distill.paths import REPO_ROOT

SCHEMA = "xlsearch.evaluation/1"
ROLES = ("teacher", "assistant", "student")

# progress(fraction in [0, 1], message)
Progress = Callable[[float, str], None]


@dataclass
class ModelResult:
    label: str  # "teacher", "student", or a name
    spec: str
    metrics: dict[str, float]
    entries: list[Entry]
    info: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def role(self) -> str | None:
        return self.label if self.label in ROLES else None


@dataclass
class EvaluationRun:
    """All results of one evaluation run: what `write_report` renders and metrics.json stores."""

    models: list[ModelResult]
    evaluators: list[dict[str, Any]]
    software: dict[str, str]
    created: str
    wall_seconds: float
    suite: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        return {m.label: m.metrics for m in self.models}

    def model(self, label: str) -> ModelResult:
        for m in self.models:
            if m.label == label:
                return m
        raise KeyError(f"no model labelled {label!r}; have {[m.label for m in self.models]}")

    def reference(self) -> ModelResult:
        """The model others are compared with: the teacher when labelled, else the first."""
        for m in self.models:
            if m.label == "teacher":
                return m
        return self.models[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "created": self.created,
            "wall_seconds": self.wall_seconds,
            "suite": self.suite,
            "notes": self.notes,
            "software": self.software,
            "data": self.evaluators,
            "models": [
                {"label": m.label, "role": m.role, "spec": m.spec, "info": m.info, "seconds": m.seconds}
                for m in self.models
            ],
            "metrics": {m.label: {k: _json_number(v) for k, v in m.metrics.items()} for m in self.models},
            "entries": [
                {"model": m.label, **{k: _json_number(v) for k, v in asdict(e).items()}}
                for m in self.models
                for e in m.entries
            ],
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> EvaluationRun:
        if obj.get("schema") != SCHEMA:
            raise ValueError(
                f"not an xlsearch evaluation file (schema {obj.get('schema')!r}, expected {SCHEMA!r})"
            )
        entries: dict[str, list[Entry]] = {}
        for e in obj["entries"]:
            value = math.nan if e["value"] is None else float(e["value"])
            entries.setdefault(e["model"], []).append(
                Entry(e["task"], e["dataset"], e["evaluator"], e["lang_pair"], e["metric"], value)
            )
        models = [
            ModelResult(
                label=m["label"],
                spec=m["spec"],
                info=m.get("info", {}),
                seconds=m.get("seconds", 0.0),
                metrics={
                    k: math.nan if v is None else float(v) for k, v in obj["metrics"][m["label"]].items()
                },
                entries=entries.get(m["label"], []),
            )
            for m in obj["models"]
        ]
        return cls(
            models=models,
            evaluators=obj["data"],
            software=obj["software"],
            created=obj["created"],
            wall_seconds=obj["wall_seconds"],
            suite=obj.get("suite"),
            notes=obj.get("notes", []),
        )


def percent_progress(desc: str):
    """A tqdm bar in percent and the `progress(fraction, message)` callback that `evaluate_models` takes."""
    from tqdm.auto import tqdm

    bar = tqdm(total=100, desc=desc, unit="%", bar_format="{l_bar}{bar}| {n:.0f}% {postfix}")

    def progress(fraction: float, message: str) -> None:
        bar.n = round(100 * fraction)
        bar.set_postfix_str(message)
        bar.refresh()

    return bar, progress


def _json_number(v):
    """NaN/inf are not JSON: store them as null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def load_results(path: str | Path) -> EvaluationRun:
    """Read a run back from `metrics.json` (or the directory holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"no evaluation results at {path}")
    return EvaluationRun.from_json(json.loads(path.read_text(encoding="utf-8")))


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
        "params_stored": stored_parameters(model),
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
    from distill.models import load_encoder

    if not models:
        raise ValueError("no models to evaluate")
    if not evaluators:
        raise ValueError("no evaluators")
    started = time.perf_counter()
    created = datetime.now(UTC).isoformat(timespec="seconds")
    evaluators = list(evaluators)
    steps = len(models) * (len(evaluators) + 1)
    done = 0

    def report(message: str) -> None:
        if progress:
            progress(min(done / steps, 1.0), message)

    results = []
    for label, spec in models.items():
        report(f"{label}: loading {spec if isinstance(spec, str | Path) else getattr(spec, 'name', '')}")
        t0 = time.perf_counter()
        if isinstance(spec, str | Path):
            encoder = load_encoder(
                spec, threads=threads, max_seq_length=max_seq_length, trust_remote_code=trust_remote_code
            )
            spec_text = str(spec)
        else:
            encoder, spec_text = spec, getattr(spec, "name", "") or label
        info = model_info(encoder)
        info["load_seconds"] = round(time.perf_counter() - t0, 2)
        done += 1
        metrics: dict[str, float] = {}
        entries: list[Entry] = []
        timings: dict[str, float] = {}
        for ev in evaluators:
            report(f"{label}: {ev.name}")
            t_ev = time.perf_counter()
            m = ev(encoder)
            timings[ev.name] = round(time.perf_counter() - t_ev, 2)
            clash = sorted(set(m) & set(metrics))
            if clash:
                raise ValueError(f"evaluator {ev.name!r} repeats metric keys {clash[:3]}")
            metrics.update(m)
            entries.extend(evaluator_entries(ev, m))
            done += 1
        info["seconds_per_evaluator"] = timings
        results.append(
            ModelResult(
                label=label,
                spec=spec_text,
                metrics=metrics,
                entries=entries,
                info=info,
                seconds=round(time.perf_counter() - t0, 2),
            )
        )
        del encoder
        (cache or DEFAULT_CACHE).clear()  # each model's embeddings are needed only during its own pass
    report("writing report")
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
        from distill.evaluation.report import write_report

        write_report(run, out_dir)
    if progress:
        progress(1.0, "done")
    return run
