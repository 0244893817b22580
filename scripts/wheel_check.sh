#!/usr/bin/env bash
# The wheel as a user gets it: build it, install it with --no-deps into a temporary target beside
# the existing environment (which provides torch, transformers, faiss, ...), and from a directory
# outside the checkout run the console scripts: indexer --help, distill run --config offline
# --print-config, and a 3-document create/add/search on pkg:all-MiniLM-L6-v2.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$ROOT/.venv/bin/python}
PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")  # absolute: we leave the checkout below
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
say() { echo "[wheel-check] $*"; }

untracked() { git -C "$ROOT" status --porcelain --untracked-files=all 2>/dev/null | grep '^??' || true; }
before=$(untracked)
say "building the wheel"
"$PY" -m pip wheel "$ROOT" --no-deps --no-build-isolation -q -w "$TMP/wheel"
# A build must leave nothing untracked in the checkout (build/ and *.egg-info are ignored).
if [ "$(untracked)" != "$before" ]; then
  say "FAIL: building the wheel left untracked files:"; diff <(echo "$before") <(untracked) || true; exit 1
fi
"$PY" -m pip install --no-deps -q --target "$TMP/site" "$TMP"/wheel/*.whl
unzip -l "$TMP"/wheel/*.whl | grep -q " benchmarks/" && { say "FAIL: benchmarks/ is in the wheel"; exit 1; }
[ -e "$TMP/site/app" ] && { say "FAIL: a top-level app package is installed"; exit 1; }

export PYTHONPATH="$TMP/site" PATH="$TMP/site/bin:$PATH" HF_HUB_OFFLINE=1 XLSEARCH_DATA="$TMP/data"
mkdir -p "$TMP/elsewhere" && cd "$TMP/elsewhere"
where=$("$PY" -c "import distill, indexer; print(distill.__file__, indexer.__file__)")
case "$where" in "$TMP/site/"*) ;; *) say "FAIL: imported $where, not the wheel"; exit 1 ;; esac

say "indexer --help / --version, distill --version, xlsearch-app --help"
indexer --help > help.txt && grep -q "indexer create" help.txt || { say "FAIL: indexer --help"; exit 1; }
indexer --version && distill --version
xlsearch-app --help > help.txt && grep -q "streamlit run" help.txt || { say "FAIL: xlsearch-app --help"; exit 1; }

say "distill run --config offline --print-config (a preset by name)"
distill run --config offline --print-config > config.toml
grep -q '^name = "offline"' config.toml || { say "FAIL: preset by name"; exit 1; }

say "data directory outside a checkout: the user cache (XLSEARCH_DATA unset)"
cache=$(env -u XLSEARCH_DATA XDG_CACHE_HOME="$TMP/cache" "$PY" -c "from distill.paths import data_dir; print(data_dir())")
[ "$cache" = "$TMP/cache/xlsearch" ] || { say "FAIL: data_dir() is $cache"; exit 1; }

say "create/add/search on pkg:all-MiniLM-L6-v2"
cat > docs.jsonl <<'JSONL'
{"id": "cat", "lang": "en", "text": "The cat sleeps on the warm windowsill."}
{"id": "rocket", "lang": "en", "text": "The rocket launch was delayed by strong winds."}
{"id": "bread", "lang": "en", "text": "Fresh bread is baked every morning at the corner bakery."}
JSONL
indexer create col --model pkg:all-MiniLM-L6-v2 --threads 1 -q
indexer add col docs.jsonl --threads 1 -q --json > added.json
grep -q '"added": 3' added.json || { say "FAIL: add"; cat added.json; exit 1; }
top=$(indexer search col "a kitten napping in the sun" --k 3 --json --threads 1 \
      | "$PY" -c "import json, sys; print(json.load(sys.stdin)[0]['id'])")
[ "$top" = "cat" ] || { say "FAIL: search ranked $top first"; exit 1; }
say "the installed app runs (Streamlit's AppTest on the script xlsearch-app starts)"
"$PY" - <<'PYCODE'
import os
import sys
from streamlit.testing.v1 import AppTest
from xlsearch_app.app.launch import APP_SCRIPT
at = AppTest.from_file(str(APP_SCRIPT), default_timeout=120).run()
assert not at.exception, [e.message for e in at.exception]
assert sys.modules["app.common"].__file__.startswith(os.environ["PYTHONPATH"]), "app not from the wheel"
PYCODE
say "OK"
