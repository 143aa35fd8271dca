# jobrelay: `make run` starts the bot (or the sandbox without a token), `make test` runs everything.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install run migrate sandbox test lint typecheck pytest postgres lock catalogs bench bench-categories model clean

help:
	@echo "make run      install, then migrate and run the bot (the sandbox, on its own database, when TELEGRAM_BOT_TOKEN is unset)"
	@echo "make sandbox  the bot against local stand-ins of Telegram and X, in this terminal"
	@echo "make test     install, then lint, type-check and run the whole suite (SQLite and PostgreSQL)"
	@echo "make migrate  upgrade the database schema (DATABASE_URL)"
	@echo "make lock     re-pin requirements.lock from pyproject.toml"
	@echo "make catalogs extract messages into the translation catalogs"
	@echo "make bench    the engine benchmarks (delivery, fan-out, latency, commands, memory, X and feed polling)"
	@echo "make bench-categories  precision and recall of offer detection and categories"
	@echo "make model   train the offer reader (bot/data/reader.json.gz) from tests/data"

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "jobrelay needs Python >= 3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# `bot up` migrates only the database it will use: DATABASE_URL when serving Telegram, the
# sandbox's own sandbox.db without a token.
run: install
	$(BIN)/python -m bot up

sandbox: install
	$(BIN)/python -m bot sandbox

migrate: install
	$(BIN)/python -m bot migrate

# The tests start their own PostgreSQL 15 server (initdb + pg_ctl); install it when missing.
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then \
		echo "PostgreSQL server binaries: present"; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing PostgreSQL server binaries (Debian package postgresql)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else \
		echo "PostgreSQL server binaries not found and cannot be installed here: PostgreSQL tests will be skipped"; \
	fi

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

# The suite runs in parallel (pytest-xdist): its end-to-end tests mostly wait on I/O, so more
# workers than cores pay (measured in README.md, "Tests"). TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 8

pytest: install postgres
	$(BIN)/pytest -n $(TEST_WORKERS) --dist load --maxschedchunk 1 --durations=15

test: lint typecheck pytest

lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet ".[dev]"
	{ echo "# jobrelay lock file: every runtime and development dependency, pinned."; \
	  echo "# Regenerate with \`make lock\` after changing pyproject.toml."; \
	  .lock-venv/bin/pip freeze --exclude-editable | grep -v '^jobrelay'; } > requirements.lock
	rm -rf .lock-venv

catalogs: install
	$(BIN)/python tools/update_catalogs.py

# The engine benchmarks (issues #6 and #7) on SQLite and PostgreSQL (about 10 minutes); their figures
# are written into BENCHMARKS.md.
bench: install postgres
	$(BIN)/python -m bench

# Offer detection and categories on the labelled corpora (figures quoted in BENCHMARKS.md).
bench-categories: install
	$(BIN)/python -m bench.categories
	$(BIN)/python -m bench.categories --rules --corpus tests/data/posts.jsonl

# The learned offer reader, trained on every corpus of tests/data but the frozen test set
# (deterministic: the same data gives the same file).
model: install
	$(BIN)/python -m tools.train_reader

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
