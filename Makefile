# Two commands: `make demo` and `make test`. Both build .venv from scratch if needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
BASE   := $(VENV)/.installed-base
STAMP  := $(VENV)/.installed

.PHONY: demo test bench clean

# The package alone: all `make demo` needs.
$(BASE): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(BASE)

# Everything the tests use: torch (the CPU build on the machine's disk first, so the
# extras pull no other torch), training, Dask/Spark, NumPyro, the arena server, embeddings and the dev tools.
$(STAMP): $(BASE)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[torch,train,dist,bayes,serve,embed,dev]'
	touch $(STAMP)

# The arena's browser test drives Debian's headless Chromium. Installed here when missing and we may
# (root with apt-get); otherwise that one test is skipped and says why.
BROWSER := $(VENV)/.browser
$(BROWSER): $(BASE)
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	  || echo "note: could not install chromium; the browser test will be skipped"; \
	else echo "note: chromium/chromedriver missing; the browser test will be skipped"; fi
	touch $(BROWSER)

demo: $(BASE)
	$(BIN)/bradley leaderboard src/bradley/datasets/arena_human_preference_140k.csv.gz --drop-self-comparisons --ci bootstrap --rounds 1000 --seed 0

# Lint and type-check src/ first (settings in pyproject.toml): a style or type slip fails like a test.
test: $(STAMP) $(BROWSER)
	$(BIN)/ruff check src
	$(BIN)/mypy
	$(BIN)/python -m pytest -q --durations=15

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet arena-rank || true
	$(BIN)/python benchmarks/bench_fit.py
	$(BIN)/python benchmarks/bench_bootstrap.py
	$(BIN)/python benchmarks/bench_models.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
