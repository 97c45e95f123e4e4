# 速办税: `make run` serves the embedded default (or whatever SUBAN_* says); `make test` tests it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PACKAGES := miniapp_api wecom forms hall auth wechat

.PHONY: run test test-embedded test-postgres lint lock clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed: make PYTHON=python3.11 ...")'
	@# A venv whose pip does not run (a failed earlier attempt) is made again, not reused.
	$(BIN)/python -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/suban migrate
	$(BIN)/suban demo
	$(BIN)/suban serve

lint: $(STAMP)
	$(BIN)/ruff check $(PACKAGES) tests bench
	$(BIN)/ruff format --check $(PACKAGES) tests bench
	$(BIN)/mypy

test-embedded: $(STAMP)
	SUBAN_TEST_BACKEND=embedded $(BIN)/pytest

# PostgreSQL + real Redis on their standard local ports. Skipped (with a line saying so) when they do
# not answer, unless SUBAN_REQUIRE_POSTGRES=1, as CI sets it.
test-postgres: $(STAMP)
	@if $(BIN)/python -c 'import socket; [socket.create_connection(("127.0.0.1", p), 1).close() for p in (5432, 6379)]' 2>/dev/null; then \
		SUBAN_TEST_BACKEND=postgres $(BIN)/pytest; \
	elif [ "$${SUBAN_REQUIRE_POSTGRES:-0}" = "1" ]; then \
		echo "PostgreSQL (127.0.0.1:5432) or Redis (127.0.0.1:6379) does not answer" >&2; exit 1; \
	else \
		echo "skipping the PostgreSQL + Redis suite: nothing answers on 127.0.0.1:5432 and :6379"; \
	fi

test: lint test-embedded test-postgres

# Re-resolve the pinned versions after changing a range in pyproject.toml.
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^suban' > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
