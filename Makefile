# The README's two commands: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-fast lint bench screenshots clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/registry serve --host $(HOST) --port $(PORT)

test: $(BIN)/.installed
	$(BIN)/pytest

# The inner loop: unit and integration tests on SQLite only, on two processes.
test-fast: $(BIN)/.installed
	$(BIN)/pytest tests/unit tests/integration -k "not postgres" -p no:cacheprovider -n 2 -q

lint: $(BIN)/.installed
	$(BIN)/ruff check events registry api commandline tests bench
	$(BIN)/mypy

bench: $(BIN)/.installed
	$(BIN)/python bench/asof.py
	$(BIN)/python bench/http_rates.py
	$(BIN)/python bench/replay.py --events 100000
	$(BIN)/python bench/feed_latency.py
	$(BIN)/python bench/pages.py
	$(BIN)/python bench/proofs.py

screenshots: $(BIN)/.installed
	cd tests/e2e && ../../$(BIN)/python screenshots.py ../../docs/screenshots

clean:
	rm -rf $(VENV) var build *.egg-info
