#!/usr/bin/env bash
# The main job: reuse or build every artefact the demo needs, then start the app.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
echo "[demo] models: converting/caching the packaged models (first run only)"
$PY -m distill models pkg:multilingual-e5-small pkg:all-MiniLM-L6-v2
