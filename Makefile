# Two commands do all set-up on a fresh machine: `make run` and `make test`.
# Both create .venv when missing and install the project into it.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install run test lint format bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || \
		{ $(PYTHON) -m pip install --user --quiet virtualenv && $(PYTHON) -m virtualenv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/flowcred serve

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

# The suite runs on every core (pytest-xdist): each worker has its own PostgreSQL database and
# temporary homes, so tests do not share state; PYTEST_ARGS="-n 0" runs it in one process.
# The browser tests (tests/web/browser) drive Debian's chromium: installed with apt when missing.
test: lint
	@bash scripts/ensure-chromium.sh
	$(BIN)/pytest -n auto $(PYTEST_ARGS)

format: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: install
	$(BIN)/python bench/resolve.py
	$(BIN)/python bench/audit.py
	$(BIN)/python bench/api_load.py
	PYTHONPATH=.:src $(BIN)/python bench/refresh_storm.py
	PYTHONPATH=.:src $(BIN)/python bench/validate.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
