"""The xlsearch Streamlit app: cross-lingual search with the teacher and the student side by side.

Run it with `streamlit run app/streamlit_app.py` (or `make demo`, which builds what it needs first).
The pure logic (settings, ranking agreement, escaping/highlighting) lives in small modules that the
tests import directly; the `*_page.py` modules only draw.
"""
