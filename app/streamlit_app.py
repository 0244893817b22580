"""xlsearch: cross-lingual search with the teacher and the student side by side.

    streamlit run app/streamlit_app.py          # or: make demo (builds the student, collection, report)

Pages: Search (both models, one query), Quality (the evaluation report of the collection's models),
Collection (documents, languages, indexes). Configuration by environment variable: see app/settings.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run app/streamlit_app.py` puts app/ (not the repository) on sys.path; make the
# project's packages importable without requiring an editable install.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

st.set_page_config(page_title="xlsearch", page_icon=":material/travel_explore:", layout="wide")

# Pages are files (each module calls its render() when run as a script), so that AppTest can
# switch between them; their logic lives in the importable app.* modules.
navigation = st.navigation(
    [
        st.Page("search_page.py", title="Search", icon=":material/search:", url_path="search", default=True),
        st.Page("quality_page.py", title="Quality", icon=":material/insights:", url_path="quality"),
        st.Page(
            "collection_page.py", title="Collection", icon=":material/folder_open:", url_path="collection"
        ),
    ]
)
navigation.run()
