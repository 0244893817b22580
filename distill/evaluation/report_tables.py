"""The report's tables, by section (summary, question task, per language pair, cost, data, ...).
The app's Quality page shows the same tables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from distill.evaluation.keys import PARAMS_STORED
from distill.evaluation.report_views import (
    COLLAPSE_ROWS,
    COST_METRICS,
    PRIMARY,
    QUESTION_LANG_METRICS,
    QUESTION_ROWS,
    RETRIEVAL_METRICS,
    TASK_NOTES,
    TASK_TITLES,
    all_value,
    cost_value,
    datasets,
    fmt,
    fmt_millions,
    overall,
    per_language,
    ratio,
)
from distill.evaluation.results import EvaluationRun


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


SECTIONS = (
    "models",
    "summary",
    "collapse",
    "questions",
    "languages",
    "retrieval",
    "cost",
    "data",
    "software",
)


class _Columns:
    """The model columns of a table, and the ratio columns of the others to the reference model."""

    def __init__(self, run: EvaluationRun) -> None:
        self.labels = [m.label for m in run.models]
        self.ref = run.reference().label
        self.others = [lbl for lbl in self.labels if lbl != self.ref]
        self.ratio_header = [f"{o}/{self.ref}" for o in self.others]

    def cells(self, vals: dict[str, float | None]) -> list[str]:
        """Each model's value, then each other model's ratio to the reference."""
        return [fmt(vals.get(lbl)) for lbl in self.labels] + [
            fmt(ratio(vals.get(o), vals.get(self.ref)), 2) for o in self.others
        ]


def build_tables(run: EvaluationRun) -> dict[str, list[Table]]:
    """Section name (SECTIONS) -> its tables."""
    cols = _Columns(run)
    sections: dict[str, list[Table]] = {name: [] for name in SECTIONS}
    sections["models"].append(_models_table(run))
    sections["summary"].append(_summary_table(run, cols))
    for ds in [d for t, d in datasets(run) if t == "question"]:
        sections["collapse"].append(_collapse_table(run, ds, cols))
        sections["questions"].append(_question_language_table(run, ds, cols))
    for task, ds in datasets(run):
        rows = [[pair, *cols.cells(v)] for pair, v in per_language(run, task, ds).items()]
        sections["languages"].append(
            Table(f"{ds}: {TASK_TITLES[task]}", ["language pair", *cols.labels, *cols.ratio_header], rows)
        )
        if task == "retrieval":
            sections["retrieval"].append(_retrieval_table(run, ds))
    if any(e.task == "cost" for m in run.models for e in m.entries):
        sections["cost"].append(_cost_table(run, cols))
    sections["data"].append(_data_table(run))
    sections["software"].append(
        Table("Software", ["component", "version"], [[k, v] for k, v in run.software.items()])
    )
    return sections


def _models_table(run: EvaluationRun) -> Table:
    rows = [
        [
            m.label,
            m.spec,
            fmt_millions(m.info.get(PARAMS_STORED)),
            fmt_millions(m.info.get("params_embedding")),
            fmt(m.info.get("layers")),
            fmt(m.info.get("dim")),
            fmt(m.info.get("vocab_size")),
            fmt(m.info.get("max_seq_length")),
            fmt(m.seconds, 0),
        ]
        for m in run.models
    ]
    header = ["label", "spec", "params (M)", "embedding params (M)", "layers", "dim", "vocab", "max tokens"]
    return Table("Models", [*header, "eval time (s)"], rows)


def _summary_table(run: EvaluationRun, cols: _Columns) -> Table:
    """One row per data set's headline (the question task: several), models and ratios side by side."""
    rows = []
    for task, ds in datasets(run):
        if task == "question":
            for metric, title in QUESTION_ROWS:
                vals = {lbl: all_value(run, lbl, ds, metric) for lbl in cols.labels}
                rows.append([ds, task, title, *cols.cells(vals)])
            continue
        metric = PRIMARY[task] + (" (overall)" if task == "retrieval" else " (mean over pairs)")
        rows.append([ds, task, metric, *cols.cells(overall(run, task, ds))])
    tasks = list(dict.fromkeys(t for t, _ in datasets(run)))
    note = (
        f"Ratios divide by the reference model, {cols.ref!r}. "
        + "; ".join(TASK_NOTES[t] for t in tasks)
        + "."
    )
    return Table("Summary", ["data set", "task", "metric", *cols.labels, *cols.ratio_header], rows, note=note)


def _collapse_table(run: EvaluationRun, ds: str, cols: _Columns) -> Table:
    rows = [
        [title] + [fmt(all_value(run, lbl, ds, metric)) for lbl in cols.labels]
        for metric, title in COLLAPSE_ROWS
    ]
    return Table(
        f"Collapse check ({ds})",
        ["cosine", *cols.labels],
        rows,
        note="A collapsed model scores unrelated pairs almost as high as answers: "
        "compare each model's spread and its answer-vs-random gap with the "
        "teacher's, not absolute values (e5 puts unrelated texts near 0.75).",
    )


def _question_language_table(run: EvaluationRun, ds: str, cols: _Columns) -> Table:
    by_lang = {
        (m.label, e.lang_pair, e.metric): e.value for m in run.models for e in m.entries if e.dataset == ds
    }
    q_langs = sorted({lang for _, lang, _ in by_lang if lang != "all" and "-" not in lang})
    header = ["query language"] + [
        f"{lbl} {metric}" for metric in QUESTION_LANG_METRICS for lbl in cols.labels
    ]
    rows = [
        [lang]
        + [fmt(by_lang.get((lbl, lang, metric))) for metric in QUESTION_LANG_METRICS for lbl in cols.labels]
        for lang in q_langs
    ]
    return Table(
        f"{ds}: per query language",
        header,
        rows,
        note="xling_r@1: mean over the other document languages; pooled metrics "
        "rank all paragraphs of every language together.",
    )


def _retrieval_table(run: EvaluationRun, ds: str) -> Table:
    rows = []
    for m in run.models:
        vals = {e.metric: e.value for e in m.entries if e.dataset == ds and e.lang_pair == "all"}
        rows.append([m.label] + [fmt(vals.get(k)) for k in RETRIEVAL_METRICS])
    info = next((d for d in run.evaluators if d.get("dataset") == ds), {})
    return Table(
        f"{ds}: all metrics, overall",
        ["model", *RETRIEVAL_METRICS],
        rows,
        note=f"pool: {info.get('pool', '?')}; {info.get('queries', '?')} queries, "
        f"{info.get('documents', '?')} documents",
    )


def _cost_table(run: EvaluationRun, cols: _Columns) -> Table:
    rows = []
    for key, title in COST_METRICS:
        vals = [cost_value(run, lbl, key) for lbl in cols.labels]
        cells = [fmt_millions(v) if key.startswith("params") else fmt(v, 1) for v in vals]
        ratios = [fmt(ratio(cost_value(run, o, key), cost_value(run, cols.ref, key)), 2) for o in cols.others]
        rows.append([title, *cells, *ratios])
    info = next((d for d in run.evaluators if d.get("task") == "cost"), {})
    return Table(
        "Cost",
        ["", *cols.labels, *cols.ratio_header],
        rows,
        note=f"throughput on {info.get('texts', '?')} sentences, batch {info.get('batch_size', '?')}, "
        f"{info.get('threads', '?')} torch threads, same process; compare only within one report",
    )


def _data_table(run: EvaluationRun) -> Table:
    rows = []
    for d in run.evaluators:
        if d.get("task") == "cost":
            continue
        size = d.get("pairs") or (
            f"{d.get('queries')} q / {d.get('documents')} docs" if "queries" in d else ""
        )
        total = d.get("total_pairs") or d.get("total_ids") or d.get("total_parallel_ids") or ""
        files = _joined(d.get("file") or d.get("files") or "")
        languages = d.get("lang_pair", ", ".join(d.get("doc_langs", [])))
        row = [d["name"], d.get("task", ""), languages, fmt(size), fmt(total), _short_path(files)]
        rows.append([*row, _joined(d.get("sha256", ""))])
    return Table(
        "Data",
        ["evaluator", "task", "languages", "evaluated", "of", "file", "sha256 (16)"],
        rows,
        note="Subsamples use a fixed seed and the same ids in every language.",
    )


def _joined(value) -> str:
    """A data description's file or hash: one, a list, or a dict of them."""
    if isinstance(value, dict):
        return ", ".join(value.values())
    if isinstance(value, list):
        return ", ".join(value)
    return str(value)


def _short_path(p: str) -> str:
    return p.replace(str(Path.home()), "~")
