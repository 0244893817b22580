"""The Search page: one query, the teacher's and the student's rankings side by side."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from app.common import OpenCollection, collection_or_message, settings
from app.display import CSS, hit_html, language_label, md_code, md_text
from app.examples import EXAMPLES
from app.ranking import ColumnResult, agreement, timed
from app.roles import ColumnModel, choose_models
from app.settings import Role

if TYPE_CHECKING:
    from indexer import Hit


DEEP_K = 100  # how far the student's ranking is searched for the teacher's #1


def _use_example() -> None:
    text = st.session_state.get("example")
    if text:
        st.session_state["query"] = text
    st.session_state["example"] = None  # a chip is a one-shot action, not a selection


def _search(oc: OpenCollection, model: ColumnModel, query: str, k: int, langs: list[str]) -> ColumnResult:
    return timed(lambda: oc.collection.search(query, model=model.spec, k=k, langs=langs or None))


def _card(rank: int, hit: Hit, *, in_both: bool) -> str:
    # `text` is None only for a document deleted during the search; its chunk is all there is then.
    text = hit.text if hit.text is not None else hit.snippet
    whole = hit.text is None
    return hit_html(
        rank,
        doc_id=hit.doc_id,
        lang=hit.lang,
        title=hit.title,
        score=hit.score,
        text=text,
        start=0 if whole else hit.chunk_start,
        end=len(text) if whole else hit.chunk_end,
        in_both=in_both,
    )


def _column(role: Role, result: ColumnResult, model: ColumnModel, other_ids: set[str], backend: str) -> None:
    # The backend (distill.models.Backend) is the collection's: what every vector of this column used.
    st.subheader(md_text(f"{model.label} · {backend}"))
    if model.note:
        st.caption(model.note)
    if result.error:
        st.error(f"Search with {md_code(model.spec)} failed: {md_text(result.error)}")
        return
    st.caption(f"{len(result.hits)} hits · {result.latency_ms:.0f} ms (query encoding + search)")
    if not result.hits:
        st.info("No documents match (check the language filter).")
        return
    cards = [_card(rank, hit, in_both=hit.doc_id in other_ids) for rank, hit in enumerate(result.hits, 1)]
    # data-role lets the browser test tell the columns apart.
    st.html(f'{CSS}<div class="xl-col" data-role="{role.value}">{"".join(cards)}</div>')


def _query_box() -> str:
    if "query" not in st.session_state and st.query_params.get("q"):
        st.session_state["query"] = st.query_params["q"]  # a shared link: ?q=...
    query = st.text_input("Query", key="query", placeholder="e.g. ¿Quién ganó el Super Bowl 50?")
    st.pills(
        "Examples (one click each)", [text for _, text in EXAMPLES], key="example", on_change=_use_example
    )
    return query


def render() -> None:
    s = settings()
    st.title("Cross-lingual search")
    st.caption(
        "Type a query in any language; the documents can be in any other. "
        "Left: the multilingual teacher. Right: the compact distilled student."
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

    query = _query_box()
    filters = st.columns([4, 1])
    langs = filters[0].multiselect(
        "Document languages (none = all)",
        oc.collection.languages(),
        key="langs",
        format_func=language_label,
        placeholder="All languages",
    )
    k = int(
        filters[1].number_input("Hits per model (k)", min_value=1, max_value=100, value=10, step=1, key="k")
    )

    if not query.strip():
        st.query_params.pop("q", None)
        st.info("Type a query above (any language), or click an example.")
        return
    st.query_params["q"] = query.strip()

    roles = [
        (r, m) for r, m in ((Role.TEACHER, choice.teacher), (Role.STUDENT, choice.student)) if m is not None
    ]
    results = [_search(oc, m, query.strip(), k, langs) for _, m in roles]
    if len(results) == 2 and not any(r.error for r in results):
        deeper = None
        top1 = results[0].doc_ids[:1]
        if top1 and top1[0] not in results[1].doc_ids:  # where is the teacher's #1 in the student's ranking?
            deeper = _search(oc, roles[1][1], query.strip(), DEEP_K, langs).doc_ids
        names = (roles[0][1].report_label, roles[1][1].report_label)
        st.markdown(
            f"**{agreement(results[0].doc_ids, results[1].doc_ids, k, b_deeper=deeper, names=names).sentence()}**"
        )
    backends = oc.collection.model_backends()
    columns = st.columns(len(roles), gap="medium")
    for i, (col, (role, model), result) in enumerate(zip(columns, roles, results, strict=True)):
        other = set(results[1 - i].doc_ids) if len(results) == 2 else set()
        with col:
            _column(role, result, model, other, backends.get(model.spec, "torch"))


if __name__ == "__main__":  # run as a page by st.navigation (app/streamlit_app.py)
    render()
