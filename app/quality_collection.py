"""The Quality page's first section: the dev questions against the collection being searched.

It reads app/collection_report.py's files: `collection.json` when done, `progress.json` while
`make demo` computes it in the background (the section then shows a progress bar and refreshes
itself). Beside each model's numbers: the same models on the 2,880-paragraph parallel set, from the
`dev_quality.json` shipped with the model (README), when there is one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from app.collection_report import PROGRESS, RESULT, read_json
from app.display import md_code

STALE_S = 180  # a progress file not touched for this long belongs to a report that died

EXPLAIN = (
    "**R@1**: the share of questions whose answering paragraph is the first hit. **nDCG@10**: "
    "1 when it is first, less the lower it ranks in the top 10, 0 beyond. **Same language**: the "
    "answer is in the question's language; **other language**: it is only in another one, so only a "
    "cross-lingual match finds it (11 questions in 12 in the demo collection). **Match strength** "
    "(Search page): how far a hit's cosine stands above the query's level on unrelated paragraphs, in "
    "units of the spread of the same model's cosines of unrelated pairs (app/calibration.py)."
)


def parallel_numbers(spec: str) -> tuple[dict, str] | None:
    """(numbers, setting) of `spec` on the 2,880-paragraph parallel set, shipped with the model."""
    from app.backend_pick import sources
    from distill import paths

    for f in sources(spec, "dev_quality.json", ".dev_quality.json"):
        try:
            entry = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        untrimmed = Path(spec).name == paths.UNTRIMMED_STUDENT and f.parent.name == paths.SHIPPED_STUDENT
        numbers = entry.get("untrimmed" if untrimmed else "model")
        if isinstance(numbers, dict):
            return numbers, str(entry.get("setting", ""))
    return None


def _fmt(x) -> str:
    return "–" if x is None else f"{x:.3f}"


def question_table(result: dict, labels: dict[str, str]) -> tuple[pd.DataFrame, list[str]]:
    """One row per model: this collection's R@1 / nDCG@10 (all, same, other language), 2,880 beside."""
    rows, settings = [], []
    for key, m in result["models"].items():
        par = parallel_numbers(m["spec"])
        if par and par[1] not in settings:
            settings.append(par[1])
        p = par[0] if par else {}
        rows.append(
            {
                "model": labels.get(m["spec"], key),
                "R@1 other lang.": _fmt(m["other"]["r@1"]),
                "R@1 same lang.": _fmt(m["same"]["r@1"]),
                "nDCG@10 other": _fmt(m["other"]["ndcg@10"]),
                "nDCG@10 same": _fmt(m["same"]["ndcg@10"]),
                "2,880 set: R@1 other": _fmt(p.get("r@1 other-language")),
                "2,880 set: R@1 same": _fmt(p.get("r@1 same-language")),
                "2,880 set: nDCG@10": _fmt(p.get("ndcg@10")),
            }
        )
    return pd.DataFrame(rows), settings


def calibration_frame(
    result: dict, labels: dict[str, str], threshold: float, *, all_rows: bool
) -> pd.DataFrame:
    rows = []
    for key, m in result["models"].items():
        for r in m.get("calibration", []):
            if all_rows or r["threshold"] == threshold:
                rows.append(
                    {
                        "model": labels.get(m["spec"], key),
                        "threshold": r["threshold"],
                        "first hits below": r["below"],
                        "correct below": _fmt(r["below_correct"]),
                        "first hits at or above": r["above"],
                        "correct at or above": _fmt(r["above_correct"]),
                    }
                )
    return pd.DataFrame(rows)


def _counts(result: dict) -> str:
    m = next(iter(result["models"].values()))
    return f"{m['other']['questions']:,} with the answer in another language, {m['same']['questions']:,} in their own"


def _progress(out: Path) -> bool:
    """Show the background computation's progress; True while it is running."""
    progress = read_json(out / PROGRESS)
    if progress is None:
        return False
    if progress.get("error"):
        st.error(f"The report could not be computed: {progress['error']}")
        return False
    if time.time() - float(progress.get("time", 0)) > STALE_S:
        st.warning("A report computation stopped without finishing; run `make demo` again to redo it.")
        return False
    st.progress(min(max(float(progress.get("fraction", 0)), 0.0), 1.0), text=progress.get("message", ""))
    st.caption("Being computed in the background (`make demo`); this section fills in when it is done.")
    return True


@st.fragment(run_every=3)
def _waiting(out: Path) -> None:
    if (out / RESULT).is_file():
        st.rerun()  # the whole page, now with the report
    _progress(out)


def render_collection_section(name: str, out: Path, labels: dict[str, str]) -> None:
    st.subheader(f"On this collection ({name})")
    result = read_json(out / RESULT)
    if result is None:
        if (out / PROGRESS).is_file():
            _waiting(out)
        else:
            st.info(
                f"No report on this collection yet (looked in {md_code(out)}). `make demo` computes it; "
                f"or run {md_code(f'python -m app.collection_report COLLECTION_DIR --out {out}')}."
            )
        return
    st.caption(
        f"The {result['questions']:,} XQuAD dev questions ({_counts(result)}) in {len(result['question_languages'])} languages "
        f"({', '.join(result['question_languages'])}), each searched as the Search page does (all languages, "
        f"k = 10) over the {result['documents']:,} documents of this collection, with the vectors it stored; "
        f"only the questions were embedded, on the backends search serves "
        f"({', '.join(sorted(set(result.get('backends', {}).values()))) or 'as recorded'}). "
        f"{result['created']}, {result['wall_seconds']:.0f} s."
    )
    table, settings = question_table(result, labels)
    st.dataframe(table, hide_index=True, width="stretch")
    if settings:
        st.caption("2,880 set: " + "; ".join(settings) + ".")
    st.markdown(EXPLAIN)
    threshold = float(result.get("no_match_below", 0))
    st.markdown(f"**Match strength calibration** (no good match below {threshold:g}): of the first hits")
    st.dataframe(
        calibration_frame(result, labels, threshold, all_rows=False), hide_index=True, width="stretch"
    )
    with st.expander("Other thresholds"):
        st.dataframe(
            calibration_frame(result, labels, threshold, all_rows=True), hide_index=True, width="stretch"
        )
