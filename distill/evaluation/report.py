"""Reports of an `EvaluationRun`: metrics.json, report.md (+ figures/*.png) and a self-contained report.html.

Tables (`report_tables`) and figures (`report_figures`) are rendered here as Markdown and HTML; the
HTML embeds the figures as base64 PNGs so it can be mailed or opened offline.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from distill.evaluation.report_figures import Figure, build_figures
from distill.evaluation.report_tables import Table, build_tables
from distill.evaluation.results import EvaluationRun
from distill.fileio import REPORT_MARKERS, atomic_write_text, check_output_dir


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

    out += [_table_html(t) for key in ("summary", "collapse", "questions", "models") for t in sections[key]]
    if figures:
        out += ["<h2>Figures</h2><div class='figs'>", *map(_figure_html, figures), "</div>"]
    if sections["languages"]:
        out.append("<h2>Per language pair</h2>")
        out += [_table_html(t, 3, collapsed=len(t.rows) > 15) for t in sections["languages"]]
    if sections["retrieval"]:
        out.append("<h2>Retrieval</h2>")
        out += [_table_html(t, 3) for t in sections["retrieval"]]
    out += [_table_html(t) for key in ("cost", "data", "software") for t in sections[key]]
    out.append("</body></html>")
    return "\n".join(out)


def _table_html(t: Table, level: int = 2, collapsed: bool = False) -> str:
    e = html.escape
    body = ["<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in t.header) + "</tr></thead><tbody>"]
    body += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in t.rows]
    body.append("</tbody></table>")
    if t.note:
        body.append(f"<p class='note'>{e(t.note)}</p>")
    if collapsed:
        return f"<details><summary>{e(t.title)}</summary>" + "".join(body) + "</details>"
    return f"<h{level}>{e(t.title)}</h{level}>" + "".join(body)


def _figure_html(f: Figure) -> str:
    data = base64.b64encode(f.png).decode("ascii")
    wide = " class='wide'" if f.wide else ""
    return (
        f"<figure{wide}><img alt='{html.escape(f.title)}' src='data:image/png;base64,{data}'>"
        f"<figcaption class='note'>{html.escape(f.title)}</figcaption></figure>"
    )


def write_report(run: EvaluationRun, out_dir: str | Path) -> dict[str, Path]:
    """Write metrics.json, report.md (figures in `figures/`) and a self-contained report.html; return their paths."""
    out = Path(out_dir)
    check_output_dir(out, ours=REPORT_MARKERS, what="report directory")  # files of ours, or nothing, there
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
