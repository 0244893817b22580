#!/usr/bin/env bash
# The main job (`make demo`): reuse or build every artefact the demo needs, then start the app.
#
#   1. the packaged models, converted once (data/models/)
#   2. the student: the one shipped in models/student-offline/, untrimmed once into
#      data/students/offline-untrimmed/ when it still has a trimmed vocabulary (`distill untrim`:
#      seconds, since the shipped token_rows.npz holds the nearest rows; distill.paths.default_student
#      decides), or with XLSEARCH_DEMO_STUDENT=train the one distilled into data/students/offline/
#      (`distill run --config configs/offline.toml`)
#   3. the demo collection data/collections/xquad: each of the 240 XQuAD paragraphs once, in one
#      language (20 per language, app/demo_corpus.py), indexed with the teacher and the student on
#      the backend measured for each (app/backend_pick.py: shipped measurements, else this machine's
#      cache, else timed once); its match-strength calibration (app/calibration.py).
#      XLSEARCH_DEMO_CORPUS=parallel: data/collections/xquad-parallel, all 2,880 paragraphs instead.
#   4. the app, on http://localhost:$PORT, as soon as the collection is searchable; the Quality page's
#      report (app/collection_report.py: only the dev questions are embedded) is computed in the
#      background meanwhile (data/logs/quality-report.log) and shown when done.
#
# A second run finds 1-3 done and starts the app in seconds.
#
# Environment: PORT (8501), HOST (localhost), DEMO_SERVE=0 (build, report in the foreground, do not
# start the app), XLSEARCH_DEMO_STUDENT=train (distil the student here, ~22 min) or =standin (no
# student: all-MiniLM-L6-v2 stands in for it, labelled as such), XLSEARCH_DEMO_BACKEND=NAME (one
# backend for both models instead of the measured pick, e.g. torch), XLSEARCH_DEMO_CORPUS=parallel,
# XLSEARCH_DATA / XLSEARCH_SHARED_DATA (move data/ and ../shared/data).
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
PARALLEL=${XLSEARCH_SHARED_DATA:-../shared/data}/corpus/xquad_paragraphs.jsonl
if [ "${XLSEARCH_DEMO_CORPUS:-}" = "parallel" ]; then
  NAME=xquad-parallel CORPUS=$PARALLEL
else
  NAME=xquad CORPUS="$DATA/corpus/xquad_demo.jsonl"
fi
COLLECTION="$DATA/collections/$NAME"
STAMP="$DATA/collections/$NAME.models.json"  # the model files and corpus the collection is built with
REPORT="$DATA/reports/$NAME"
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
  # distill.paths.default_student holds the rule: untrim a trimmed shipped student once; the copy
  # counts while it records the shipped weights as they are now (distill.paths.derived_from).
  WANT=$($PY -c 'import sys; from pathlib import Path; from distill.paths import default_student, needs_untrim
d = default_student(Path(sys.argv[1]))
print("shipped" if not needs_untrim(Path(sys.argv[2])) else "reuse" if d == Path(sys.argv[3]) else "untrim")' \
    "$DATA" "$SHIPPED" "$UNTRIMMED")
  if [ "$WANT" = shipped ]; then
    step "student: serving the shipped $SHIPPED (it needs no untrimming)"
    STUDENT=$SHIPPED
  elif [ "$WANT" = reuse ]; then
    step "student: reusing $UNTRIMMED (the shipped $SHIPPED, untrimmed)"
    STUDENT=$UNTRIMMED
  else
    step "student: untrimming the shipped $SHIPPED into $UNTRIMMED (e5's full tokenizer; XLSEARCH_DEMO_STUDENT=train distils one instead)"
    $PY -m distill untrim "$SHIPPED" --out "$UNTRIMMED" --assistant "$TEACHER"
    STUDENT=$UNTRIMMED
  fi
elif [ -f "$STUDENT_DIR/modules.json" ] && [ "${XLSEARCH_DEMO_STUDENT:-}" != "standin" ]; then
  STUDENT=$STUDENT_DIR
  step "student: reusing $STUDENT_DIR"
elif [ "${XLSEARCH_DEMO_STUDENT:-}" = "standin" ]; then
  STUDENT=$STANDIN
  step "student: not distilled (XLSEARCH_DEMO_STUDENT=standin); $STANDIN stands in for it, labelled as such"
else
  RESUME=()
  [ -d "$STUDENT_DIR.run" ] && RESUME=(--resume)
  step "student: distilling with configs/offline.toml ${RESUME[*]} (about 22 minutes on 2 cores; Ctrl-C and rerun resumes)"
  $PY -m distill run --config configs/offline.toml "${RESUME[@]}"
  STUDENT=$STUDENT_DIR
fi

# Reuse a complete collection; finish an interrupted one (`indexer add` skips what is indexed);
# rebuild one that lacks a model or was built with other weights (the stand-in before the student
# existed, or a student since retrained).
if [ "$CORPUS" != "$PARALLEL" ] && [ ! -s "$CORPUS" ]; then
  step "corpus: each XQuAD paragraph once, in one language (20 per language) -> $CORPUS"
  $PY -m app.demo_corpus "$PARALLEL" "$CORPUS"
fi

STATE=missing
if [ -f "$COLLECTION/collection.json" ]; then
  set +e; $PY -m app.demo_check "$COLLECTION" --corpus "$CORPUS" --stamp "$STAMP" "$TEACHER" "$STUDENT"; CHECK=$?; set -e
  case $CHECK in
    0) STATE=complete ;;
    3) STATE=partial ;;
    *) step "collection: rebuilding $COLLECTION for $TEACHER and $STUDENT"
       rm -rf "$COLLECTION" "$STAMP" "$REPORT" ;;
  esac
fi
if [ "$STATE" = complete ]; then
  step "collection: reusing $COLLECTION"
else
  if [ "$STATE" = missing ]; then
    if [ -n "${XLSEARCH_DEMO_BACKEND:-}" ]; then
      B_TEACHER=$XLSEARCH_DEMO_BACKEND B_STUDENT=$XLSEARCH_DEMO_BACKEND
    else
      step "backends: the measured pick of each model (shipped, else cached on this machine, else timed once)"
      B_TEACHER=$($PY -m app.backend_pick "$TEACHER")
      B_STUDENT=$($PY -m app.backend_pick "$STUDENT")
    fi
    step "collection: creating $COLLECTION with $TEACHER ($B_TEACHER) and $STUDENT ($B_STUDENT)"
    $PY -m indexer create "$COLLECTION" --model "$TEACHER" --model "$STUDENT" \
      --backend "$TEACHER=$B_TEACHER" --backend "$STUDENT=$B_STUDENT"
    $PY -m app.demo_check "$COLLECTION" --corpus "$CORPUS" --stamp "$STAMP" --write-stamp "$TEACHER" "$STUDENT"
  fi
  step "collection: indexing $CORPUS with both models (Ctrl-C and rerun continues)"
  $PY -m indexer add "$COLLECTION" "$CORPUS"
fi
if [ ! "$COLLECTION/calibration.npz" -nt "$STAMP" ]; then
  step "calibration: each model's unrelated-pair reference from the stored vectors"
  $PY -m app.calibration "$COLLECTION"
fi

REPORT_CMD=($PY -m app.collection_report "$COLLECTION" --out "$REPORT" --model "teacher=$TEACHER" --model "student=$STUDENT")
if [ -f "$REPORT/collection.json" ] && [ "$REPORT/collection.json" -nt "$COLLECTION/calibration.npz" ]; then
  step "quality report: reusing $REPORT"
  REPORT_CMD=()
fi
step "ready: the collection is searchable after $(( $(date +%s) - START )) s"
if [ "${DEMO_SERVE:-1}" = "0" ]; then
  [ ${#REPORT_CMD[@]} -gt 0 ] && "${REPORT_CMD[@]}"
  exit 0
fi
if [ ${#REPORT_CMD[@]} -gt 0 ]; then
  mkdir -p "$DATA/logs"
  step "quality report: computing in the background ($DATA/logs/quality-report.log); the Quality page shows its progress"
  rm -f "$REPORT/collection.json"
  # One thread: the app answers queries on the other core meanwhile.
  OMP_NUM_THREADS=1 nohup "${REPORT_CMD[@]}" > "$DATA/logs/quality-report.log" 2>&1 &
fi
echo
echo "  xlsearch is starting on  http://$HOST:$PORT  (Ctrl-C stops it)"
echo
export XLSEARCH_TEACHER=$TEACHER XLSEARCH_STANDIN=$STANDIN XLSEARCH_COLLECTION=$NAME
# Only a real student is exported as the student; the stand-in is then shown labelled as such.
if [ "$STUDENT" != "$STANDIN" ]; then export XLSEARCH_STUDENT=$STUDENT; fi
exec $PY -m streamlit run app/streamlit_app.py --server.headless true --server.port "$PORT" \
  --server.address "$HOST" --browser.gatherUsageStats false
