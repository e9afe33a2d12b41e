# Two commands matter: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench browser clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash sample-data/demo.sh

test: $(STAMP) browser
	$(BIN)/python -m pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	@command -v hashdeep >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hashdeep >/dev/null 2>&1) \
	  || echo "hashdeep not available: its row will say so"; }
	@# Byte-compiled first, as an installed package is: with PYTHONDONTWRITEBYTECODE set, every
	@# timed run would otherwise compile the toolkit's modules again.
	$(BIN)/python -m compileall -q chain_of_custody evidence exports >/dev/null
	$(BIN)/python -m tests.benchmarks.run $(BENCH_ARGS)

# Headless Chromium checks the HTML index; the tests skip with a message when it cannot be had.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1) \
	  || echo "chromium not available: the browser test of the HTML index will be skipped"; }

clean:
	rm -rf $(VENV) demo-case build dist .pytest_cache .mypy_cache .ruff_cache
