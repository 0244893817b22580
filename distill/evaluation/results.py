"""The results of one evaluation run (models, metrics, per-language entries, provenance) and their
JSON form, metrics.json: what the runner produces and the reports and the app read."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from distill.evaluation.base import Entry

SCHEMA = "xlsearch.evaluation/1"
ROLES = ("teacher", "assistant", "student")


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
