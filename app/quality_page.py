"""The Quality page: the evaluation engine's report for the collection's models.

It leads with the app's job (real questions -> paragraphs across languages: summary, collapse
check, per-language-pair heat maps of R@1), then the paragraph -> paragraph sanity check, size and
speed. Without a report it offers to compute one (see app/quality.py), with a progress bar.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import streamlit as st

from app.common import OpenCollection, collection_or_message, compute_lock, settings
from app.display import md_code, md_text
from app.quality import DEFAULT_LIMIT, REPORT_SUITE, compute_report, report_langs, role_models
from app.quality_collection import render_collection_section
from app.roles import RoleChoice, choose_models
from distill.evaluation.keys import QUESTIONS
from distill.modelspec import same_spec


def _frame(table) -> pd.DataFrame:
    """An engine `Table` (formatted strings) as a DataFrame with numeric columns where possible."""
    df = pd.DataFrame(table.rows, columns=table.header)
    for col in df.columns[1:]:
        values = df[col].replace("–", math.nan)
        try:
            df[col] = pd.to_numeric(values)
        except (ValueError, TypeError):
            pass
    return df


def _figure_order(path: Path) -> tuple[int, str]:
    """The question task's heat maps first, then per-language figures, ratios, size versus quality."""
    name = path.stem
    rank = (
        0
        if name.startswith(QUESTIONS)
        else 2
        if name.startswith("ratio")
        else 3
        if name.startswith("size")
        else 1
    )
    return (rank, name)


def _styled(table):
    return _frame(table).style.format(precision=3, na_rep="–")


def _show_table(table, *, expanded: bool = True) -> None:
    with st.expander(table.title, expanded=expanded):
        st.dataframe(_styled(table), hide_index=True, width="stretch")
        if table.note:
            st.caption(table.note)


def _mismatch(run, choice: RoleChoice) -> list[str]:
    """Models of the collection that the report does not cover."""
    specs = [m.spec for m in run.models]
    wanted = [c for c in (choice.teacher, choice.student) if c is not None]
    return [c.spec for c in wanted if not any(same_spec(c.spec, s) for s in specs)]


def _compute(oc: OpenCollection, choice: RoleChoice, out: Path) -> None:
    models = {"teacher": choice.teacher.spec}
    if choice.student is not None:
        models = role_models(
            choice.teacher.spec, choice.student.spec, student_label=choice.student.report_label
        )
    lock = compute_lock()
    if not lock.acquire(blocking=False):
        st.warning("A report is being computed in another session; reload this page in a minute.")
        return
    try:
        bar = st.progress(0.0, text="starting…")
        with st.status("Computing the quality report…", expanded=True) as status:

            def progress(fraction: float, message: str) -> None:
                bar.progress(min(max(fraction, 0.0), 1.0), text=message)

            try:
                run = compute_report(
                    models, out, langs=oc.collection.languages(), progress=progress, threads=None
                )
            except (ValueError, FileNotFoundError, OSError) as exc:
                status.update(label="The report could not be computed", state="error")
                st.error(md_text(exc))
                return
            status.update(label=f"Report written to {out} in {run.wall_seconds:.0f} s", state="complete")
    finally:
        lock.release()
    st.rerun()


def _compute_button(oc: OpenCollection, choice: RoleChoice, out: Path, label: str) -> None:
    langs = report_langs(oc.collection.languages())
    st.caption(
        f"Evaluates {' and '.join(md_code(m.spec) for m in (choice.teacher, choice.student) if m)} on the app's job: the real "
        f"XQuAD dev questions against all 240 paragraphs in each of {len(langs)} languages ({', '.join(langs)}: "
        f"the 2,880-paragraph parallel set, embedded again by both models); then {DEFAULT_LIMIT} paragraphs per "
        "language searched for their translations (a sanity check), size and speed. About 20 minutes on 2 CPU cores."
    )
    if st.button(label, type="primary", key="compute-report"):
        _compute(oc, choice, out)


def render() -> None:
    s = settings()
    st.title("Quality")
    oc = collection_or_message(s)
    if oc is None:
        return
    choice = choose_models(
        list(oc.collection.models), teacher=s.teacher, student=s.student, standin=s.standin
    )
    if choice.teacher is None:
        st.warning("This collection has no model index, so there is nothing to evaluate.")
        return
    out = s.report_dir(oc.name)
    labels = {c.spec: c.label.split(" · ")[0] for c in (choice.teacher, choice.student) if c is not None}
    render_collection_section(oc.name, out, labels)
    st.divider()
    st.subheader("Full evaluation on the 2,880-paragraph parallel set (optional)")
    if not (out / "metrics.json").is_file():
        st.caption("Not computed: `make demo` does not run it (it embeds every paragraph again).")
        _compute_button(oc, choice, out, "Compute the full evaluation")
        return

    from distill.evaluation.results import load_results

    try:
        run = load_results(out)
    except (ValueError, KeyError, OSError) as exc:
        st.error(f"The report in {md_code(out)} cannot be read ({md_text(exc)}). Compute it again:")
        _compute_button(oc, choice, out, "Recompute the report")
        return
    _report_header(oc, choice, out, run)
    _report_body(run, out)
    html = out / "report.html"
    if html.is_file():
        st.download_button(
            "Download report.html (self-contained)",
            html.read_bytes(),
            file_name=f"{oc.name}-report.html",
            mime="text/html",
        )


def _report_header(oc: OpenCollection, choice: RoleChoice, out: Path, run) -> None:
    """Which models the report covers and when it was made; a button where it is out of date."""
    backends = oc.collection.model_backends()
    st.caption(
        f"Report of {run.created} ({run.wall_seconds:.0f} s; measured on the torch backend, while search "
        f"serves {', '.join(sorted(set(backends.values())))}) · models: "
        + ", ".join(f"**{md_text(m.label)}** = {md_code(m.spec)}" for m in run.models)
    )
    missing = _mismatch(run, choice)
    if missing:
        st.warning(
            f"This report does not cover {', '.join(md_code(m) for m in missing)}, which the collection shows."
        )
        _compute_button(oc, choice, out, "Recompute the report")
    for note in run.notes:
        st.caption(md_text(note))
    if run.suite != REPORT_SUITE:
        st.warning("This report predates the question task (the app's job); recompute it to see it.")
        _compute_button(oc, choice, out, "Recompute the report")


def _report_body(run, out: Path) -> None:
    """The question task first, then the figures, size and speed, and every table."""
    from distill.evaluation.report_tables import build_tables

    sections = build_tables(run)
    for table in sections["summary"]:
        st.subheader("Summary")
        st.dataframe(_styled(table), hide_index=True, width="stretch")
        st.caption(table.note)
    for table in sections["collapse"] + sections["questions"]:
        _show_table(table)
    # The per-language ratio bars (~130 overlapping labels) are left out; the tables hold the ratios.
    figures = sorted(
        (f for f in (out / "figures").glob("*.png") if not f.stem.startswith("ratio")), key=_figure_order
    )
    if figures:
        st.subheader("Per language pair, ratios, size")
        for fig in figures:
            st.image(str(fig), caption=fig.stem.replace("-", " "))
    st.subheader("Size and speed")
    for table in sections["cost"] + sections["models"]:
        _show_table(table)
    st.subheader("Tables")
    for table in sections["languages"]:
        _show_table(table, expanded=len(table.rows) <= 15)
    st.caption(
        "The paragraph -> translated paragraph rows (xquad, xquad-pooled) are a sanity check, not the app's job: "
        "a model that keeps the words' identity solves it, so a student can score above the teacher there "
        "(e.g. 0.994 against 0.929) and still lose on real questions, the table above."
    )
    for table in sections["retrieval"]:
        _show_table(table)
    for table in sections["data"] + sections["software"]:
        _show_table(table, expanded=False)


if __name__ == "__main__":  # run as a page by st.navigation (app/streamlit_app.py)
    render()
