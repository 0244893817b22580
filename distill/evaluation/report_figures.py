"""The report's figures (matplotlib, Agg backend): per-language bars or (query, document) language
heat maps with the models side by side, each model's ratio to the reference model per language,
and size against quality."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from distill.evaluation.keys import PARAMS_STORED
from distill.evaluation.report_views import PRIMARY, TASK_TITLES, datasets, overall, per_language, ratio
from distill.evaluation.results import EvaluationRun


@dataclass
class Figure:
    name: str
    title: str
    png: bytes
    wide: bool = True  # full width in the HTML (narrow ones sit two per row)


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
    """Per data set one per-language figure, then the ratios to the reference, then size vs quality."""
    figures = []
    for task, ds in datasets(run):
        table = per_language(run, task, ds)
        if not table:
            continue
        if task in ("retrieval", "question") and all("-" in p for p in table):
            figures.append(_heatmaps(run, task, ds, table))
        else:
            figures.append(_language_bars(run, task, ds, table))
    return [*figures, *_ratio_bars(run), *_size_vs_quality(run)]


def _language_bars(run: EvaluationRun, task: str, ds: str, table: dict[str, dict[str, float]]) -> Figure:
    labels = [m.label for m in run.models]
    groups = list(table)
    width = min(14.0, max(5.5, 0.3 * len(groups) * max(len(labels), 1) + 2))
    fig, ax = _plt().subplots(figsize=(width, 3.4))
    series = {lbl: [table[g].get(lbl, math.nan) for g in groups] for lbl in labels}
    low = min([v for vals in series.values() for v in vals if not math.isnan(v)] + [0.0])
    _grouped_bars(ax, groups, series, ylabel=PRIMARY[task], ylim=(min(low, 0), 1.0))
    ax.set_title(f"{ds}: {TASK_TITLES[task]}", fontsize=10)
    _legend(ax)
    return Figure(f"{ds}-per-language", f"{ds}: per language pair", _png(fig), wide=width > 7)


def _ratio_bars(run: EvaluationRun) -> list[Figure]:
    """Each other model's ratio to the reference per language pair, for bitext and STS (retrieval's
    ratios are its heat maps' last panels)."""
    ref = run.reference().label
    others = [m.label for m in run.models if m.label != ref]
    dsl = [(t, d) for t, d in datasets(run) if t != "retrieval" and per_language(run, t, d)]
    if not others or not dsl:
        return []
    fig, axes = _plt().subplots(len(dsl), 1, figsize=(11, 2.3 * len(dsl) + 0.6), squeeze=False)
    for ax, (task, ds) in zip(axes[:, 0], dsl, strict=True):
        table = per_language(run, task, ds)
        groups = list(table)
        series = {f"{o}/{ref}": [ratio(table[g].get(o), table[g].get(ref)) for g in groups] for o in others}
        _grouped_bars(ax, groups, series, ylabel="ratio")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_title(f"{ds} ({PRIMARY[task]})", fontsize=10)
        _legend(ax)
    fig.suptitle(f"Quality relative to {ref} per language pair (1.0 = equal)")
    fig.tight_layout()
    return [Figure("ratio-per-language", f"Ratio to {ref} per language pair", _png(fig))]


def _size_vs_quality(run: EvaluationRun) -> list[Figure]:
    labels = [m.label for m in run.models]
    sizes = {m.label: (m.info.get(PARAMS_STORED) or 0) / 1e6 for m in run.models}
    points = [(t, d, overall(run, t, d)) for t, d in datasets(run)]
    if not points or not any(sizes.values()):
        return []
    fig, ax = _plt().subplots(figsize=(7.5, 4.2))
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
    return [Figure("size-vs-quality", "Size versus quality", _png(fig))]
