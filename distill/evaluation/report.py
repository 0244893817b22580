"""Reports of an `EvaluationRun`: metrics.json, report.md (+ figures/*.png) and a self-contained report.html.

Figures (matplotlib, Agg backend): per-language bars with the models side by side for each data
set, each model's ratio to the reference model (the teacher) per language, and size against
quality. The HTML embeds them as base64 PNGs so it can be mailed or opened offline.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from distill.evaluation.runner import EvaluationRun
from distill.fileio import atomic_write_text

# the metric a per-language table and figure shows, per task; the question task comes first everywhere
PRIMARY = {"question": "r@1", "bitext": "accuracy", "sts": "spearman", "retrieval": "ndcg@10"}
TASK_TITLES = {
    "question": "Question -> paragraph R@1 (the answer first among the document language's paragraphs)",
    "bitext": "Bitext retrieval accuracy@1 (mean of both directions)",
    "sts": "STS Spearman correlation",
    "retrieval": "Paragraph -> translated paragraph nDCG@10 (easy sanity check)",
}
# What each task measures, in one line each (the summary's note and the app's Quality page).
TASK_NOTES = {
    "question": "question: a real question in one language against all paragraphs (the app's job); "
    "R@1 across languages is the headline",
    "bitext": "bitext: find a sentence's translation among all candidates of the other language",
    "sts": "STS: Spearman correlation with human similarity scores, monolingual and en-xx",
    "retrieval": "paragraph -> paragraph: find a paragraph's translations; any model that keeps the words' identity "
    "solves it, so it is only a sanity check",
}
# question task: the headline rows of the summary (metric, label)
QUESTION_ROWS = (
    ("xling_r@1", "R@1 cross-lingual (X != Y)"),
    ("mono_r@1", "R@1 same language"),
    ("ndcg@10", "nDCG@10 pooled"),
    ("map@20", "mAP@20 pooled"),
    ("recall@10", "Recall@10 pooled"),
    ("own_lang@10", "top-10 in the query's language"),
)
QUESTION_LANG_METRICS = ("xling_r@1", "ndcg@10", "map@20", "recall@10", "own_lang@10")
COLLAPSE_ROWS = (
    ("cos_dd_mean", "random document pairs: mean cosine"),
    ("cos_dd_std", "random document pairs: std"),
    ("cos_qd_mean", "random question-document pairs: mean"),
    ("cos_qd_std", "random question-document: std"),
    ("cos_rel_mean", "question and its answer (same language): mean"),
)
RETRIEVAL_METRICS = ("map", "mrr@10", "ndcg@10", "recall@1", "recall@5", "recall@10")
COST_METRICS = (
    ("params_stored", "stored params (M)"),
    ("params_effective", "effective params (M)"),
    ("params_embedding", "embedding params (M)"),
    ("disk_mb", "disk (MB)"),
    ("memory_mb", "weights in memory (MB)"),
    ("sentences_per_s", "sentences/s"),
    ("peak_mb", "RSS growth while encoding (MB)"),
)


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class Figure:
    name: str
    title: str
    png: bytes
    wide: bool = True  # full width in the HTML (narrow ones sit two per row)


# --- data views ---------------------------------------------------------------------------------


def datasets(run: EvaluationRun) -> list[tuple[str, str]]:
    """(task, dataset) of the quality tasks, in PRIMARY's task order, then first-seen order."""
    seen: dict[tuple[str, str], None] = {}
    for m in run.models:
        for e in m.entries:
            if e.task in PRIMARY:
                seen.setdefault((e.task, e.dataset), None)
    order = list(PRIMARY)
    return sorted(seen, key=lambda td: order.index(td[0]))


def all_value(run: EvaluationRun, label: str, dataset: str, metric: str) -> float | None:
    """A metric's overall ('all' pair) value of one model on one data set."""
    for e in run.model(label).entries:
        if e.dataset == dataset and e.metric == metric and e.lang_pair == "all":
            return e.value
    return None


def per_language(
    run: EvaluationRun, task: str, dataset: str, metric: str | None = None
) -> dict[str, dict[str, float]]:
    """lang pair -> {model label: value} for one data set's metric (retrieval: per pair, without 'all')."""
    metric = metric or PRIMARY[task]
    out: dict[str, dict[str, float]] = {}
    for m in run.models:
        for e in m.entries:
            if e.task == task and e.dataset == dataset and e.metric == metric:
                if task == "retrieval" and e.lang_pair == "all":
                    continue
                out.setdefault(e.lang_pair, {})[m.label] = e.value
    return out


def overall(run: EvaluationRun, task: str, dataset: str) -> dict[str, float]:
    """Model label -> the data set's headline: retrieval's overall value, else the mean over language pairs."""
    metric = "xling_r@1" if task == "question" else PRIMARY[task]
    out = {}
    for m in run.models:
        if task in ("retrieval", "question"):
            vals = [
                e.value
                for e in m.entries
                if e.dataset == dataset and e.metric == metric and e.lang_pair == "all"
            ]
        else:
            vals = [
                e.value for e in m.entries if e.task == task and e.dataset == dataset and e.metric == metric
            ]
        vals = [v for v in vals if not math.isnan(v)]
        if vals:
            out[m.label] = sum(vals) / len(vals)
    return out


def ratio(value: float | None, reference: float | None) -> float:
    if value is None or reference is None or math.isnan(value) or math.isnan(reference) or reference <= 0:
        return math.nan
    return value / reference


def fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def fmt_millions(n) -> str:
    """Parameter counts in millions with enough digits for tiny test models too."""
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "–"
    m = n / 1e6
    return f"{m:.1f}" if m >= 10 else f"{m:.2f}" if m >= 1 else f"{m:.3f}"


def cost_value(run: EvaluationRun, label: str, metric: str) -> float | None:
    for e in run.model(label).entries:
        if e.task == "cost" and e.metric == metric:
            return e.value
    return None


# --- tables -----------------------------------------------------------------------------------


def build_tables(run: EvaluationRun) -> dict[str, list[Table]]:
    labels = [m.label for m in run.models]
    ref = run.reference().label
    others = [lbl for lbl in labels if lbl != ref]
    ratio_cols = [f"{o}/{ref}" for o in others]
    sections: dict[str, list[Table]] = {
        "models": [],
        "summary": [],
        "collapse": [],
        "questions": [],
        "languages": [],
        "retrieval": [],
        "cost": [],
        "data": [],
        "software": [],
    }

    rows = []
    for m in run.models:
        i = m.info
        rows.append(
            [
                m.label,
                m.spec,
                fmt_millions(i.get("params_stored")),
                fmt_millions(i.get("params_embedding")),
                fmt(i.get("layers")),
                fmt(i.get("dim")),
                fmt(i.get("vocab_size")),
                fmt(i.get("max_seq_length")),
                fmt(m.seconds, 0),
            ]
        )
    sections["models"].append(
        Table(
            "Models",
            [
                "label",
                "spec",
                "params (M)",
                "embedding params (M)",
                "layers",
                "dim",
                "vocab",
                "max tokens",
                "eval time (s)",
            ],
            rows,
        )
    )

    rows = []
    for task, ds in datasets(run):
        if task == "question":
            for metric, title in QUESTION_ROWS:
                vals = {lbl: all_value(run, lbl, ds, metric) for lbl in labels}
                rows.append(
                    [ds, task, title]
                    + [fmt(vals.get(lbl)) for lbl in labels]
                    + [fmt(ratio(vals.get(o), vals.get(ref)), 2) for o in others]
                )
            continue
        vals = overall(run, task, ds)
        rows.append(
            [ds, task, PRIMARY[task] + (" (overall)" if task == "retrieval" else " (mean over pairs)")]
            + [fmt(vals.get(lbl)) for lbl in labels]
            + [fmt(ratio(vals.get(o), vals.get(ref)), 2) for o in others]
        )
    tasks = list(dict.fromkeys(t for t, _ in datasets(run)))
    sections["summary"].append(
        Table(
            "Summary",
            ["data set", "task", "metric", *labels, *ratio_cols],
            rows,
            note=f"Ratios divide by the reference model, {ref!r}. "
            + "; ".join(TASK_NOTES[t] for t in tasks)
            + ".",
        )
    )

    for ds in [d for t, d in datasets(run) if t == "question"]:
        rows = [
            [title] + [fmt(all_value(run, lbl, ds, metric)) for lbl in labels]
            for metric, title in COLLAPSE_ROWS
        ]
        sections["collapse"].append(
            Table(
                f"Collapse check ({ds})",
                ["cosine", *labels],
                rows,
                note="A collapsed model scores unrelated pairs almost as high as answers: "
                "compare each model's spread and its answer-vs-random gap with the "
                "teacher's, not absolute values (e5 puts unrelated texts near 0.75).",
            )
        )
        q_langs = sorted(
            {
                e.lang_pair
                for m in run.models
                for e in m.entries
                if e.dataset == ds and e.lang_pair != "all" and "-" not in e.lang_pair
            }
        )
        header = ["query language"] + [
            f"{lbl} {metric}" for metric in QUESTION_LANG_METRICS for lbl in labels
        ]
        by_lang = {
            (m.label, e.lang_pair, e.metric): e.value
            for m in run.models
            for e in m.entries
            if e.dataset == ds
        }
        rows = [
            [lang]
            + [fmt(by_lang.get((lbl, lang, metric))) for metric in QUESTION_LANG_METRICS for lbl in labels]
            for lang in q_langs
        ]
        sections["questions"].append(
            Table(
                f"{ds}: per query language",
                header,
                rows,
                note="xling_r@1: mean over the other document languages; pooled metrics "
                "rank all paragraphs of every language together.",
            )
        )

    for task, ds in datasets(run):
        table = per_language(run, task, ds)
        rows = [
            [pair]
            + [fmt(v.get(lbl)) for lbl in labels]
            + [fmt(ratio(v.get(o), v.get(ref)), 2) for o in others]
            for pair, v in table.items()
        ]
        sections["languages"].append(
            Table(f"{ds}: {TASK_TITLES[task]}", ["language pair", *labels, *ratio_cols], rows)
        )

    for task, ds in datasets(run):
        if task != "retrieval":
            continue
        rows = []
        for m in run.models:
            vals = {e.metric: e.value for e in m.entries if e.dataset == ds and e.lang_pair == "all"}
            rows.append([m.label] + [fmt(vals.get(k)) for k in RETRIEVAL_METRICS])
        info = next((d for d in run.evaluators if d.get("dataset") == ds), {})
        sections["retrieval"].append(
            Table(
                f"{ds}: all metrics, overall",
                ["model", *RETRIEVAL_METRICS],
                rows,
                note=f"pool: {info.get('pool', '?')}; {info.get('queries', '?')} queries, "
                f"{info.get('documents', '?')} documents",
            )
        )

    if any(e.task == "cost" for m in run.models for e in m.entries):
        rows = []
        for key, title in COST_METRICS:
            vals = [cost_value(run, lbl, key) for lbl in labels]
            cells = [fmt_millions(v) if key.startswith("params") else fmt(v, 1) for v in vals]
            rows.append(
                [title, *cells]
                + [fmt(ratio(cost_value(run, o, key), cost_value(run, ref, key)), 2) for o in others]
            )
        info = next((d for d in run.evaluators if d.get("task") == "cost"), {})
        sections["cost"].append(
            Table(
                "Cost",
                ["", *labels, *ratio_cols],
                rows,
                note=f"throughput on {info.get('texts', '?')} sentences, batch {info.get('batch_size', '?')}, "
                f"{info.get('threads', '?')} torch threads, same process; compare only within one report",
            )
        )

    rows = []
    for d in run.evaluators:
        if d.get("task") == "cost":
            continue
        size = d.get("pairs") or (
            f"{d.get('queries')} q / {d.get('documents')} docs" if "queries" in d else ""
        )
        total = d.get("total_pairs") or d.get("total_ids") or d.get("total_parallel_ids") or ""
        files = d.get("file") or d.get("files") or ""
        if isinstance(files, dict):
            files = ", ".join(files.values())
        elif isinstance(files, list):
            files = ", ".join(files)
        sha = d.get("sha256", "")
        if isinstance(sha, dict):
            sha = ", ".join(sha.values())
        elif isinstance(sha, list):
            sha = ", ".join(sha)
        rows.append(
            [
                d["name"],
                d.get("task", ""),
                d.get("lang_pair", ", ".join(d.get("doc_langs", []))),
                fmt(size),
                fmt(total),
                _short_path(str(files)),
                str(sha),
            ]
        )
    sections["data"].append(
        Table(
            "Data",
            ["evaluator", "task", "languages", "evaluated", "of", "file", "sha256 (16)"],
            rows,
            note="Subsamples use a fixed seed and the same ids in every language.",
        )
    )

    sections["software"].append(
        Table("Software", ["component", "version"], [[k, v] for k, v in run.software.items()])
    )
    return sections


def _short_path(p: str) -> str:
    return p.replace(str(Path.home()), "~")


# --- figures -------------------------------------------------------------------------------


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def _grouped_bars(
    ax, groups: Sequence[str], series: dict[str, list[float]], *, ylabel: str, ylim=None
) -> None:
    import numpy as np

    n = max(len(series), 1)
    width = 0.8 / n
    x = np.arange(len(groups))
    for i, (label, vals) in enumerate(series.items()):
        ax.bar(x + (i - (n - 1) / 2) * width, [0 if math.isnan(v) else v for v in vals], width, label=label)
    ax.set_xticks(x)
    ax.set_xticklabels(
        groups,
        rotation=60 if len(groups) > 12 else 0,
        ha="right" if len(groups) > 12 else "center",
        fontsize=8 if len(groups) > 12 else 9,
    )
    if len(groups) < 3:  # keep a lone group's bars from spanning the whole axis
        ax.set_xlim(-1.5, len(groups) + 0.5)
    ax.set_ylabel(ylabel)
    if ylim:
        ax.set_ylim(*ylim)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def _legend(ax) -> None:
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)


def _pair_matrix(
    table: dict[str, dict[str, float]], label: str
) -> tuple[list[str], list[str], list[list[float]]]:
    """Rows = query languages, columns = document languages, from 'x-y' keys."""
    pairs = [p.split("-", 1) for p in table]
    rows = list(dict.fromkeys(q for q, _ in pairs))
    cols = sorted({d for _, d in pairs}, key=lambda c: (rows.index(c) if c in rows else len(rows), c))
    grid = [[table.get(f"{q}-{d}", {}).get(label, math.nan) for d in cols] for q in rows]
    return rows, cols, grid


def _heatmaps(run: EvaluationRun, task: str, ds: str, table: dict[str, dict[str, float]]) -> Figure:
    """One panel per model plus one per ratio to the reference: query language x document language."""
    import numpy as np

    plt = _plt()
    labels = [m.label for m in run.models]
    ref = run.reference().label
    panels = [(lbl, lbl, False) for lbl in labels] + [(f"{o}/{ref}", o, True) for o in labels if o != ref]
    rows, cols, _ = _pair_matrix(table, labels[0])
    cell = 0.42
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(len(panels) * (len(cols) * cell + 1.2) + 0.5, len(rows) * cell + 1.6),
        squeeze=False,
    )
    for ax, (title, label, is_ratio) in zip(axes[0], panels, strict=True):
        if is_ratio:
            grid = [
                [
                    ratio(table.get(f"{q}-{d}", {}).get(label), table.get(f"{q}-{d}", {}).get(ref))
                    for d in cols
                ]
                for q in rows
            ]
            cmap, vmax = "RdYlGn", 1.0
        else:
            grid = _pair_matrix(table, label)[2]
            cmap, vmax = "viridis", 1.0
        data = np.array(grid, dtype=float)
        ax.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=0.0, vmax=vmax, aspect="equal")
        for i in range(len(rows)):
            for j in range(len(cols)):
                if not math.isnan(data[i, j]):
                    ax.text(
                        j,
                        i,
                        f"{data[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=6.5,
                        color="white" if (data[i, j] < 0.5 and not is_ratio) else "black",
                    )
        ax.set_xticks(range(len(cols)))
        ax.set_xticklabels(cols, fontsize=8)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(rows, fontsize=8)
        ax.set_xlabel("document language", fontsize=8)
        ax.set_ylabel("query language", fontsize=8)
        ax.set_title(title, fontsize=10)
    fig.suptitle(f"{ds}: {TASK_TITLES[task]} per (query, document) language", fontsize=11)
    fig.tight_layout()
    return Figure(f"{ds}-per-language", f"{ds}: per (query language, document language)", _png(fig))


def build_figures(run: EvaluationRun) -> list[Figure]:
    plt = _plt()
    labels = [m.label for m in run.models]
    ref = run.reference().label
    others = [lbl for lbl in labels if lbl != ref]
    figures = []

    for task, ds in datasets(run):
        table = per_language(run, task, ds)
        if not table:
            continue
        if task in ("retrieval", "question") and all("-" in p for p in table):
            figures.append(_heatmaps(run, task, ds, table))
            continue
        groups = list(table)
        width = min(14.0, max(5.5, 0.3 * len(groups) * max(len(labels), 1) + 2))
        fig, ax = plt.subplots(figsize=(width, 3.4))
        series = {lbl: [table[g].get(lbl, math.nan) for g in groups] for lbl in labels}
        low = min([v for vals in series.values() for v in vals if not math.isnan(v)] + [0.0])
        _grouped_bars(ax, groups, series, ylabel=PRIMARY[task], ylim=(min(low, 0), 1.0))
        ax.set_title(f"{ds}: {TASK_TITLES[task]}", fontsize=10)
        _legend(ax)
        figures.append(Figure(f"{ds}-per-language", f"{ds}: per language pair", _png(fig), wide=width > 7))

    if others:
        # retrieval ratios are the heat maps' last panels; here bitext and STS
        dsl = [(t, d) for t, d in datasets(run) if t != "retrieval" and per_language(run, t, d)]
        if dsl:
            fig, axes = plt.subplots(len(dsl), 1, figsize=(11, 2.3 * len(dsl) + 0.6), squeeze=False)
            for ax, (task, ds) in zip(axes[:, 0], dsl, strict=True):
                table = per_language(run, task, ds)
                groups = list(table)
                series = {
                    f"{o}/{ref}": [ratio(table[g].get(o), table[g].get(ref)) for g in groups] for o in others
                }
                _grouped_bars(ax, groups, series, ylabel="ratio")
                ax.axhline(1.0, color="black", linewidth=0.8)
                ax.set_title(f"{ds} ({PRIMARY[task]})", fontsize=10)
                _legend(ax)
            fig.suptitle(f"Quality relative to {ref} per language pair (1.0 = equal)")
            fig.tight_layout()
            figures.append(Figure("ratio-per-language", f"Ratio to {ref} per language pair", _png(fig)))

    sizes = {m.label: (m.info.get("params_stored") or 0) / 1e6 for m in run.models}
    points = [(t, d, overall(run, t, d)) for t, d in datasets(run)]
    if points and any(sizes.values()):
        fig, ax = plt.subplots(figsize=(7.5, 4.2))
        for task, ds, vals in points:
            xs = [sizes[lbl] for lbl in labels if lbl in vals]
            ys = [vals[lbl] for lbl in labels if lbl in vals]
            ax.plot(xs, ys, marker="o", label=f"{ds} ({PRIMARY[task]})")
        top = max([v for _, _, vals in points for v in vals.values()] + [1.0])
        for lbl in labels:
            ax.axvline(sizes[lbl], color="grey", linewidth=0.6, linestyle=":")
            ax.annotate(
                f"{lbl}\n{sizes[lbl]:.1f}M",
                (sizes[lbl], top),
                textcoords="offset points",
                xytext=(4, -4),
                fontsize=8,
                va="top",
            )
        ax.set_xlabel("stored parameters (millions)")
        ax.set_ylabel("quality (higher is better)")
        ax.set_title("Size versus quality")
        ax.grid(alpha=0.3)
        _legend(ax)
        figures.append(Figure("size-vs-quality", "Size versus quality", _png(fig)))
    return figures


# --- rendering ---------------------------------------------------------------------------------


def _intro(run: EvaluationRun) -> list[tuple[str, str]]:
    items = [
        ("created", run.created),
        ("suite", run.suite or "custom"),
        ("wall time", f"{run.wall_seconds:.0f} s"),
        ("models", ", ".join(f"{m.label} = {m.spec}" for m in run.models)),
    ]
    return items


def render_markdown(
    run: EvaluationRun, sections: dict[str, list[Table]], figures: list[Figure], figure_dir: str
) -> str:
    lines = ["# xlsearch evaluation report", ""]
    lines += [f"- **{k}:** {v}" for k, v in _intro(run)]
    lines += [f"- {n}" for n in run.notes]
    lines.append("")

    def table_md(t: Table, level: str = "##") -> None:
        lines.append(f"{level} {t.title}")
        lines.append("")
        lines.append("| " + " | ".join(t.header) + " |")
        lines.append("|" + "|".join("---" for _ in t.header) + "|")
        for row in t.rows:
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
        if t.note:
            lines.extend(["", f"_{t.note}_"])
        lines.append("")

    for key in ("summary", "collapse", "questions", "models"):
        for t in sections[key]:
            table_md(t)
    if figures:
        lines += ["## Figures", ""]
        lines += [f"![{f.title}]({figure_dir}/{f.name}.png)\n" for f in figures]
    for key, title in (("languages", "Per language pair"), ("retrieval", "Retrieval"), ("cost", None)):
        if title and sections[key]:
            lines += [f"## {title}", ""]
        for t in sections[key]:
            table_md(t, "###" if title else "##")
    for key in ("data", "software"):
        for t in sections[key]:
            table_md(t)
    return "\n".join(lines)


_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; } h3 { font-size: 1.05em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; white-space: nowrap; }
.note { color: #666; font-size: 0.85em; } img { max-width: 100%; }
.figs { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
figure { margin: 0.5em 0; flex: 1 1 540px; } figure.wide { flex-basis: 100%; }
details { margin: 0.5em 0; }
"""


def render_html(run: EvaluationRun, sections: dict[str, list[Table]], figures: list[Figure]) -> str:
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        "<title>xlsearch evaluation report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>xlsearch evaluation report</h1>",
        "<ul>",
    ]
    out += [f"<li><b>{e(k)}:</b> {e(v)}</li>" for k, v in _intro(run)]
    out += [f"<li>{e(n)}</li>" for n in run.notes]
    out.append("</ul>")

    def table_html(t: Table, level: int = 2, collapsed: bool = False) -> None:
        body = ["<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in t.header) + "</tr></thead><tbody>"]
        body += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in t.rows]
        body.append("</tbody></table>")
        if t.note:
            body.append(f"<p class='note'>{e(t.note)}</p>")
        if collapsed:
            out.append(f"<details><summary>{e(t.title)}</summary>" + "".join(body) + "</details>")
        else:
            out.append(f"<h{level}>{e(t.title)}</h{level}>" + "".join(body))

    for key in ("summary", "collapse", "questions", "models"):
        for t in sections[key]:
            table_html(t)
    if figures:
        out.append("<h2>Figures</h2><div class='figs'>")
        for f in figures:
            data = base64.b64encode(f.png).decode("ascii")
            wide = " class='wide'" if f.wide else ""
            out.append(
                f"<figure{wide}><img alt='{e(f.title)}' src='data:image/png;base64,{data}'>"
                f"<figcaption class='note'>{e(f.title)}</figcaption></figure>"
            )
        out.append("</div>")
    if sections["languages"]:
        out.append("<h2>Per language pair</h2>")
        for t in sections["languages"]:
            table_html(t, 3, collapsed=len(t.rows) > 15)
    if sections["retrieval"]:
        out.append("<h2>Retrieval</h2>")
        for t in sections["retrieval"]:
            table_html(t, 3)
    for key in ("cost", "data", "software"):
        for t in sections[key]:
            table_html(t)
    out.append("</body></html>")
    return "\n".join(out)


def write_report(run: EvaluationRun, out_dir: str | Path) -> dict[str, Path]:
    """Write metrics.json, report.md (figures in `figures/`) and a self-contained report.html; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sections = build_tables(run)
    figures = build_figures(run)
    fig_dir = out / "figures"
    fig_dir.mkdir(exist_ok=True)
    for f in figures:
        (fig_dir / f"{f.name}.png").write_bytes(f.png)
    current = {f"{f.name}.png" for f in figures}
    for old in fig_dir.glob("*.png"):  # figures of an earlier report in the same place
        if old.name not in current:
            old.unlink()
    paths = {"json": out / "metrics.json", "markdown": out / "report.md", "html": out / "report.html"}
    # Readers (the app) never see a half-written file.
    atomic_write_text(paths["json"], json.dumps(run.to_json(), indent=1, ensure_ascii=False, allow_nan=False))
    atomic_write_text(paths["markdown"], render_markdown(run, sections, figures, "figures"))
    atomic_write_text(paths["html"], render_html(run, sections, figures))
    return paths
