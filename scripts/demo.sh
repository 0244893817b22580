#!/usr/bin/env bash
# The main job (`make demo`): reuse or build every artefact the demo needs, then start the app.
#
#   1. the packaged models, converted once (data/models/)
#   2. the student: the one shipped in models/student-offline/, untrimmed once into
#      data/students/offline-untrimmed/ (`distill untrim`: e5's full tokenizer, ~1 minute; better on
#      the question task and bitext), or with XLSEARCH_DEMO_STUDENT=train the one distilled into
#      data/students/offline/
#      (`distill run --config configs/offline.toml`; an interrupted run is resumed)
#   3. the demo collection data/collections/xquad (XQuAD paragraphs, 12 languages) indexed with
#      the teacher and the student, each on its fastest backend that keeps mean cosine >= 0.995 to
#      fp32 on dev texts (`distill backends --best`; chosen once, when the collection is created)
#   4. its dev quality report (data/reports/xquad/: metrics.json, report.md, report.html)
#   5. the app, on http://localhost:$PORT
#
# A second run finds 1-4 done and starts the app in seconds.
#
# Environment: PORT (8501), HOST (localhost), DEMO_SERVE=0 (build, do not start the app),
# XLSEARCH_DEMO_STUDENT=train (distil the student here, ~25 min, instead of using the shipped one) or
# =standin (no student: all-MiniLM-L6-v2 stands in for it, labelled as such), XLSEARCH_DEMO_BACKEND=NAME
# (one backend for both models instead of the measured pick, e.g. torch), XLSEARCH_DATA /
# XLSEARCH_SHARED_DATA (move data/ and ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
DATA=${XLSEARCH_DATA:-data}
PORT=${PORT:-8501}
HOST=${HOST:-localhost}
TEACHER=pkg:multilingual-e5-small
STANDIN=pkg:all-MiniLM-L6-v2
STUDENT_DIR="$DATA/students/offline"
SHIPPED=models/student-offline
UNTRIMMED="$DATA/students/offline-untrimmed"
COLLECTION="$DATA/collections/xquad"
STAMP="$DATA/collections/xquad.models.json"  # the model files the collection is built with
CORPUS=${XLSEARCH_SHARED_DATA:-../shared/data}/corpus/xquad_paragraphs.jsonl
START=$(date +%s)
step() { echo "[demo $(( $(date +%s) - START ))s] $*"; }

# e5 ships 4-bit in a pip package and is converted once; MiniLM needs no conversion.
if [ -f "$DATA/models/multilingual-e5-small/modules.json" ]; then
  step "models: reusing the converted teacher in $DATA/models"
else
  step "models: converting the packaged teacher (first run only)"
  $PY -m distill models "$TEACHER" "$STANDIN" > /dev/null
fi

if [ "${XLSEARCH_DEMO_STUDENT:-}" != "train" ] && [ "${XLSEARCH_DEMO_STUDENT:-}" != "standin" ] \
   && [ -f "$SHIPPED/modules.json" ]; then
  # distill.paths.default_student holds the rule: the untrimmed copy counts while it is newer than the shipped weights
  if $PY -c 'import sys; from pathlib import Path; from distill.paths import default_student as d
sys.exit(d(Path(sys.argv[1])) != Path(sys.argv[2]))' "$DATA" "$UNTRIMMED"; then
    step "student: reusing $UNTRIMMED (the shipped $SHIPPED, untrimmed)"
  else
    step "student: untrimming the shipped $SHIPPED into $UNTRIMMED (e5's full tokenizer; XLSEARCH_DEMO_STUDENT=train distils one instead)"
    $PY -m distill untrim "$SHIPPED" --out "$UNTRIMMED" --assistant "$TEACHER"
  fi
  STUDENT=$UNTRIMMED
elif [ -f "$STUDENT_DIR/modules.json" ] && [ "${XLSEARCH_DEMO_STUDENT:-}" != "standin" ]; then
  STUDENT=$STUDENT_DIR
  step "student: reusing $STUDENT_DIR"
elif [ "${XLSEARCH_DEMO_STUDENT:-}" = "standin" ]; then
  STUDENT=$STANDIN
  step "student: not distilled (XLSEARCH_DEMO_STUDENT=standin); $STANDIN stands in for it, labelled as such"
else
  RESUME=()
  [ -d "$STUDENT_DIR.run" ] && RESUME=(--resume)
  step "student: distilling with configs/offline.toml ${RESUME[*]} (about 25 minutes on 2 cores; Ctrl-C and rerun resumes)"
  $PY -m distill run --config configs/offline.toml "${RESUME[@]}"
  STUDENT=$STUDENT_DIR
fi

# Reuse a complete collection; finish an interrupted one (`indexer add` skips what is indexed);
# rebuild one that lacks a model or was built with other weights (the stand-in before the student
# existed, or a student since retrained).
STATE=missing
if [ -f "$COLLECTION/collection.json" ]; then
  set +e; $PY -m app.demo_check "$COLLECTION" --corpus "$CORPUS" --stamp "$STAMP" "$TEACHER" "$STUDENT"; CHECK=$?; set -e
  case $CHECK in
    0) STATE=complete ;;
    3) STATE=partial ;;
    *) step "collection: rebuilding $COLLECTION for $TEACHER and $STUDENT"
       rm -rf "$COLLECTION" "$STAMP" "$DATA/reports/xquad" ;;
  esac
fi
if [ "$STATE" = complete ]; then
  step "collection: reusing $COLLECTION"
else
  if [ "$STATE" = missing ]; then
    if [ -n "${XLSEARCH_DEMO_BACKEND:-}" ]; then
      B_TEACHER=$XLSEARCH_DEMO_BACKEND B_STUDENT=$XLSEARCH_DEMO_BACKEND
    else
      step "backends: timing torch, int8, onnx, onnx-int8 on dev texts (first run exports ONNX, a few minutes)"
      B_TEACHER=$($PY -m distill backends "$TEACHER" --best)
      B_STUDENT=$($PY -m distill backends "$STUDENT" --best)
    fi
    step "collection: creating $COLLECTION with $TEACHER ($B_TEACHER) and $STUDENT ($B_STUDENT)"
    $PY -m indexer create "$COLLECTION" --model "$TEACHER" --model "$STUDENT" \
      --backend "$TEACHER=$B_TEACHER" --backend "$STUDENT=$B_STUDENT"
    $PY -m app.demo_check "$COLLECTION" --stamp "$STAMP" --write-stamp "$TEACHER" "$STUDENT"
  fi
  step "collection: indexing $CORPUS with both models (about 15-20 minutes on 2 cores; Ctrl-C and rerun continues)"
  $PY -m indexer add "$COLLECTION" "$CORPUS"
fi

if $PY -m app.quality --check --teacher "$TEACHER" --student "$STUDENT" --out "$DATA/reports/xquad"; then
  step "quality report: reusing $DATA/reports/xquad"
else
  [ -f "$DATA/reports/xquad/metrics.json" ] && step "quality report: $DATA/reports/xquad is stale (older format or other models)"
  step "quality report: evaluating teacher and student on the dev questions and paragraphs (about 15 minutes)"
  $PY -m app.quality --teacher "$TEACHER" --student "$STUDENT" --out "$DATA/reports/xquad"
fi

step "ready: built or reused everything in $(( $(date +%s) - START )) s"
if [ "${DEMO_SERVE:-1}" = "0" ]; then
  exit 0
fi
echo
echo "  xlsearch is starting on  http://$HOST:$PORT  (Ctrl-C stops it)"
echo
export XLSEARCH_TEACHER=$TEACHER XLSEARCH_STANDIN=$STANDIN
# Only a real student is exported as the student; the stand-in is then shown labelled as such.
if [ "$STUDENT" != "$STANDIN" ]; then export XLSEARCH_STUDENT=$STUDENT; fi
exec $PY -m streamlit run app/streamlit_app.py --server.headless true --server.port "$PORT" \
  --server.address "$HOST" --browser.gatherUsageStats false
