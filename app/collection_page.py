"""The Collection page: documents per language, chunks, index type and size per model, last update."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.common import collection_or_message, reload_collections, settings
from app.display import language_label, md_code, md_text
from app.roles import choose_models


def _mb(n: int | None) -> float:
    return round((n or 0) / 2**20, 2)


def _when(iso: str | None) -> str:
    return iso.replace("T", " ")[:19] + " UTC" if iso else "never"


def render() -> None:
    s = settings()
    st.title("Collection")
    oc = collection_or_message(s)
    if oc is None:
        return
    info = oc.collection.info()
    choice = choose_models(
        list(oc.collection.models), teacher=s.teacher, student=s.student, standin=s.standin
    )
    roles = {c.spec: c.label.split(" · ")[0] for c in (choice.teacher, choice.student) if c is not None}

    _overview(info)
    _languages(info)
    _models(info, roles)
    _actions(oc)


def _overview(info: dict) -> None:
    st.caption(f"Created {_when(info.get('created_at'))} · last update {_when(info.get('last_update'))}")
    cols = st.columns(4)
    cols[0].metric("Documents", f"{info['documents']:,}")
    cols[1].metric("Chunks", f"{info['chunks']:,}")
    cols[2].metric("Languages", len(info["languages"]))
    last = info.get("last_update")
    cols[3].metric("Last update", last[:10] if last else "never", help=_when(last))
    if info.get("pending_chunks"):
        repair = md_code(f"indexer verify {info['path']} --repair")
        st.warning(
            f"{info['pending_chunks']} chunk(s) are pending (a writer is at work, or was interrupted: {repair})."
        )


def _languages(info: dict) -> None:
    st.subheader("Documents per language")
    langs = pd.DataFrame(
        [{"language": language_label(code), "documents": n} for code, n in sorted(info["languages"].items())]
    )
    if langs.empty:
        st.info("The collection has no documents yet: `indexer add DIR FILE.jsonl`.")
    else:
        st.bar_chart(langs, x="language", y="documents", horizontal=True, height=40 + 28 * len(langs))


def _models(info: dict, roles: dict[str, str]) -> None:
    st.subheader("Models and indexes")
    rows = [
        {
            "role": roles.get(m["spec"], ""),
            "model": m["name"],
            "backend": m.get("backend", ""),
            "dim": m["dim"],
            "index": m["index_type"],
            "vectors": m["vectors"],
            "MB": _mb(m["index_bytes"]),
            "state": m["broken"] or "ok",
        }
        for m in info["models"]
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    with st.expander("Details: model specs, FAISS factories, stored vectors, files"):
        details = [
            {
                "model": m["name"],
                "spec": m["spec"],
                "FAISS": m["factory"],
                "stored vectors MB": _mb(m["stored_vector_bytes"]),
                "updated": _when(m.get("updated_at")),
            }
            for m in info["models"]
        ]
        st.dataframe(pd.DataFrame(details), hide_index=True, width="stretch")
        st.caption(f"Directory {md_code(info['path'])} · database {md_code(info['database'])}")
    chunking = info.get("settings", {})
    st.caption(
        f"Chunking: {chunking.get('chunk_tokens', '?')} tokens per chunk, {chunking.get('chunk_overlap', '?')} "
        "tokens of overlap; documents are indexed once per model, over the same chunks."
    )


def _actions(oc) -> None:
    left, right = st.columns(2)
    if left.button(
        "Verify consistency", help="database, index files and stored vectors agree (changes nothing)"
    ):
        report = oc.collection.verify()
        if report.ok:
            st.success("Consistent: every chunk is in every index, and nothing else is.")
        for problem in report.problems:
            st.error(md_text(problem))
        for note in report.notes:
            st.caption(md_text(note))
    if right.button("Reload collections", help="reopen collections rebuilt by another process"):
        reload_collections()
        st.rerun()


if __name__ == "__main__":  # run as a page by st.navigation (app/streamlit_app.py)
    render()
