"""The Search page: one query, the teacher's and the student's rankings side by side."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from app.calibration import NO_MATCH_BELOW
from app.common import OpenCollection, collection_or_message, references, settings
from app.display import CSS, hit_html, language_label, md_code, md_text
from app.examples import EXAMPLES
from app.matching import ColumnSearch, query_tokens, search_column
from app.model_facts import describe, model_facts
from app.ranking import agreement
from app.roles import ColumnModel, choose_models
from app.settings import Column

if TYPE_CHECKING:
    from indexer import Hit


DEEP_K = 100  # how far the student's ranking is searched for the teacher's #1
MAX_TOKENS = 512  # what the models read of a query; the rest is cut off


def _use_example() -> None:
    choice = st.session_state.get("example")
    if choice is not None:
        st.session_state["query"] = EXAMPLES[choice][1]
    st.session_state["example"] = None  # a chip is a one-shot action, not a selection


def _card(rank: int, hit: Hit, strength: float | None, mark: tuple[int, int] | None, *, in_both: bool) -> str:
    # `text` is None only for a document deleted during the search; its chunk is all there is then.
    text = hit.text if hit.text is not None else hit.snippet
    whole = hit.text is None
    start, end = mark if mark and not whole else (0, len(text)) if whole else (hit.chunk_start, hit.chunk_end)
    return hit_html(
        rank,
        doc_id=hit.doc_id,
        lang=hit.lang,
        title=hit.title,
        score=hit.score,
        strength=strength,
        text=text,
        start=start,
        end=end,
        in_both=in_both,
        sentence=mark is not None,
        threshold=NO_MATCH_BELOW,
    )


def _header(role: Column, model: ColumnModel, backend: str, teacher_facts) -> None:
    """Role and model facts in words; the path, backend and where the facts come from in a tooltip."""
    facts = model_facts(model.spec, backend)
    name = "Teacher" if role == Column.TEACHER else model.label.split(" · ")[0]
    label = describe(name, facts, teacher_facts if role == Column.STUDENT else None)
    tip = f"model: {model.spec} · backend: {backend}"
    if facts.measured_in:
        tip += f" · speed ({facts.texts_per_s} texts/s on {backend}) from {facts.measured_in}"
    st.subheader(label, help=tip)  # the app's own words and numbers; the spec only in the tooltip


def _column(role: Column, result: ColumnSearch, model: ColumnModel, other_ids: set[str]) -> None:
    if model.note:
        st.caption(model.note)
    if result.error:
        st.error(f"Search with {md_code(model.spec)} failed: {md_text(result.error)}")
        return
    st.caption(
        f"{len(result.hits)} hits · {result.latency_ms:.0f} ms (query encoding, search, sentence highlight)"
    )
    if not result.hits:
        st.info("No documents match (check the language filter).")
        return
    faded = result.no_good_match
    if faded:
        st.warning(
            f"No good match: the best hit's strength {result.strengths[0]:.1f} is below {NO_MATCH_BELOW:g}; "
            "these hits are guesses."
        )
    strengths = result.strengths or [None] * len(result.hits)
    cards = [
        _card(rank, hit, strength, result.marks.get(rank - 1), in_both=hit.doc_id in other_ids)
        for rank, (hit, strength) in enumerate(zip(result.hits, strengths, strict=True), 1)
    ]
    # data-role lets the browser test tell the columns apart; data-match its state.
    state = "none" if faded else "ok"
    st.html(
        f'{CSS}<div class="xl-col{" xl-faded" if faded else ""}" data-role="{role.value}" data-match="{state}">'
        f"{''.join(cards)}</div>"
    )


def _query_box(collection_langs: list[str]) -> str:
    if "query" not in st.session_state and st.query_params.get("q"):
        st.session_state["query"] = st.query_params["q"]  # a shared link: ?q=...
    query = st.text_input("Query", key="query", placeholder="e.g. ¿Quién ganó el Super Bowl 50?")

    def chip(i: int) -> str:
        lang, text = EXAMPLES[i]
        held = "" if lang in collection_langs else " (not a document language here)"
        return f"{language_label(lang).split(' · ')[-1]}{held}: {text}"

    st.pills(
        "Examples (one click each)",
        list(range(len(EXAMPLES))),
        key="example",
        format_func=chip,
        on_change=_use_example,
    )
    return query


def _filters(oc: OpenCollection) -> tuple[list[str], int]:
    filters = st.columns([4, 1])
    langs = filters[0].multiselect(
        "Document languages (none = all)",
        oc.collection.languages(),
        key="langs",
        format_func=language_label,
        placeholder="All languages",
    )
    k = filters[1].number_input("Hits per model (k)", min_value=0, max_value=100, value=10, step=1, key="k")
    return langs, int(k)


def _long_query_notice(oc: OpenCollection, spec: str, query: str) -> None:
    try:
        tokens = query_tokens(oc.collection.encoder(spec), query)
    except Exception:  # noqa: BLE001 - a notice, never an error
        tokens = None
    if tokens is not None and tokens > MAX_TOKENS:
        st.info(
            f"This query is {tokens:,} tokens long; the models read its first {MAX_TOKENS} tokens only "
            f"(about the first {len(query) * MAX_TOKENS // tokens:,} characters)."
        )


def render() -> None:
    s = settings()
    st.title("Cross-lingual search")
    st.caption(
        "Type a query in any language; the documents can be in any other. The multilingual teacher and "
        "the compact distilled student search the same documents, side by side (each column is labelled)."
    )
    oc = collection_or_message(s)
    if oc is None:
        return
    choice = choose_models(
        list(oc.collection.models), teacher=s.teacher, student=s.student, standin=s.standin
    )
    for warning in choice.warnings:
        st.warning(warning)
    if choice.teacher is None:
        return

    query = _query_box(oc.collection.languages())
    langs, k = _filters(oc)
    if not query.strip():
        st.query_params.pop("q", None)
        st.info("Type a query above (any language), or click an example.")
        return
    st.query_params["q"] = query.strip()
    if k < 1:
        st.info("k = 0: no hits asked for. Choose between 1 and 100 hits per model.")
        return
    _long_query_notice(oc, choice.teacher.spec, query)

    roles = [
        (r, m)
        for r, m in ((Column.TEACHER, choice.teacher), (Column.STUDENT, choice.student))
        if m is not None
    ]
    refs = references(oc)
    results = [
        search_column(oc.collection, m.spec, query.strip(), k, langs, refs.get(m.spec)) for _, m in roles
    ]
    if len(results) == 2 and not any(r.error for r in results):
        _agreement(oc, roles, results, query.strip(), k, langs)
    backends = oc.collection.model_backends()
    teacher_facts = model_facts(choice.teacher.spec, backends.get(choice.teacher.spec, "torch"))
    columns = st.columns(len(roles), gap="medium")
    for i, (col, (role, model), result) in enumerate(zip(columns, roles, results, strict=True)):
        other = set(results[1 - i].doc_ids) if len(results) == 2 else set()
        with col:
            _header(role, model, backends.get(model.spec, "torch"), teacher_facts)
            _column(role, result, model, other)


def _agreement(oc: OpenCollection, roles, results: list[ColumnSearch], query: str, k: int, langs) -> None:
    deeper = None
    top1 = results[0].doc_ids[:1]
    if top1 and top1[0] not in results[1].doc_ids:  # where is the teacher's #1 in the student's ranking?
        hits = oc.collection.search(query, model=roles[1][1].spec, k=DEEP_K, langs=langs or None)
        deeper = [str(h.doc_id) for h in hits]
    names = (roles[0][1].report_label, roles[1][1].report_label)
    st.markdown(
        f"**{agreement(results[0].doc_ids, results[1].doc_ids, k, b_deeper=deeper, names=names).sentence()}**"
    )


if __name__ == "__main__":  # run as a page by st.navigation (app/streamlit_app.py)
    render()
