"""What every page shares: the settings, the collection picker, and the cached collection.

Collections (and through them the models: a `Collection` caches its encoders) are opened once per
process with `st.cache_resource` and shared by all sessions; a query never reloads a model. The app
only reads: collections are opened read-only (no write lock, no repair), and `Collection.search`
serialises concurrent queries itself.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from app.display import md_code, md_text
from app.settings import AppSettings

MARKER = "collection.json"  # what makes a directory a collection (see indexer/collection.py)


class CollectionError(Exception):
    """A collection that cannot be shown, with a message meant for the user."""


@dataclass
class OpenCollection:
    name: str
    path: Path
    collection: Any  # indexer.Collection


def settings() -> AppSettings:
    return AppSettings.from_env()


def available_collections(s: AppSettings) -> list[str]:
    """Names of the collections (directories with a collection.json) in the collections directory."""
    if not s.collections_dir.is_dir():
        return []
    names = []
    for p in s.collections_dir.iterdir():
        path = s.collection_path(p.name)
        if path is not None and (path / MARKER).is_file():
            names.append(p.name)
    return sorted(names)


def _stamp(path: Path) -> float:
    """collection.json changes only when a collection is (re)created: then reopen it. Ordinary
    updates by other processes are picked up by the open collection itself."""
    marker = path / MARKER
    return marker.stat().st_mtime if marker.exists() else 0.0


@st.cache_resource(
    show_spinner="Opening the collection and loading its models (once per process)…", max_entries=4
)
def _open(path: str, stamp: float, threads: int) -> Any:
    from indexer import Collection

    collection = Collection.open(path, read_only=True, threads=threads)
    # Load every model now, so that the first query's latency is a query's, not a model load's.
    for spec in collection.models:
        collection.search("warm-up", model=spec, k=1)
    return collection


def open_collection(s: AppSettings, name: str) -> OpenCollection:
    """Open collection `name` of the collections directory. Whatever else `name` is (a path, a
    directory that is no collection, nothing at all), the message is the same: it tells nothing
    about the server's files."""
    path = s.collection_path(name)
    if path is None or not (path / MARKER).is_file():
        example = s.collections_dir / "NAME"
        raise CollectionError(
            f"Collection {md_code(name)} not found: the app shows the collections in {md_code(s.collections_dir)}, "
            f"by name. Build the demo collection with `make demo`, or create one: "
            f"{md_code(f'indexer create {example} --model {s.teacher}')} then "
            f"{md_code(f'indexer add {example} FILE.jsonl')}."
        )
    try:
        collection = _open(str(path.resolve()), _stamp(path), s.threads)
    except Exception as exc:  # noqa: BLE001 - indexer and loader errors are written for users
        raise CollectionError(f"Collection {md_code(name)} could not be opened: {md_text(exc)}") from exc
    return OpenCollection(name=name, path=path, collection=collection)


@st.cache_resource(show_spinner=False, max_entries=4)
def _references(path: str, stamp: float, calibration_stamp: float, _collection: Any) -> dict:
    """spec -> app.calibration.Reference: the collection's calibration.npz, else drawn now from its
    stored vectors (a collection built without `make demo`), so every column gets a match strength."""
    from app.calibration import load, sample_reference

    refs = load(path)
    for spec in _collection.models:
        if spec not in refs:
            _, vectors = _collection.stored_vectors(spec)
            if len(vectors) >= 2:
                refs[spec] = sample_reference(vectors)
    return refs


def references(oc: OpenCollection) -> dict:
    from app.calibration import FILE

    cal = oc.path / FILE
    return _references(
        str(oc.path.resolve()), _stamp(oc.path), cal.stat().st_mtime if cal.exists() else 0.0, oc.collection
    )


@st.cache_resource
def compute_lock() -> threading.Lock:
    """One quality-report computation per process: two at once would only halve each other's speed."""
    return threading.Lock()


def reload_collections() -> None:
    _open.clear()


def pick_collection(s: AppSettings) -> str | None:
    """The sidebar's collection picker. The default comes from `?collection=` or XLSEARCH_COLLECTION."""
    names = available_collections(s)
    wanted = st.session_state.get("collection") or st.query_params.get("collection") or s.collection
    if wanted not in names:
        # A configured collection that does not exist is still listed, so the page can say so.
        names = [wanted, *names]
    name = st.sidebar.selectbox("Collection", names, index=names.index(wanted), key="collection")
    if name and name != s.collection:
        st.query_params["collection"] = name
    elif "collection" in st.query_params:
        del st.query_params["collection"]
    return name


def collection_or_message(s: AppSettings) -> OpenCollection | None:
    """The selected collection, or None after showing why it cannot be used."""
    name = pick_collection(s)
    if not name:
        st.info(
            f"No collection yet in {md_code(s.collections_dir)}. Run `make demo` to build the demo collection."
        )
        return None
    loading = st.empty()
    loading.info(
        f"Loading collection {md_code(name)} and its models (the first visit after a start takes about "
        "15 seconds; later ones are instant)…",
        icon=":material/hourglass_top:",
    )
    try:
        return open_collection(s, name)
    except CollectionError as exc:
        st.error(str(exc))
        return None
    finally:
        loading.empty()
