# 速办税: `make run` serves the embedded default (or whatever SUBAN_* says); `make test` tests it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PACKAGES := miniapp_api wecom forms hall auth wechat

.PHONY: run test test-embedded test-postgres lint deploy-check lock clean fonts fonts-note

# Receipts (回执) embed this TrueType CJK font (SUBAN_RECEIPT_FONT names another) and their tests
# render them with poppler's pdftoppm. Neither is needed to run: receipts then name the
# STSong-Light CID font instead (not embedded; logged) and those tests skip, saying why.
RECEIPT_FONT := $(or $(SUBAN_RECEIPT_FONT),/usr/share/fonts/truetype/wqy/wqy-microhei.ttc)
FONT_PACKAGES := fonts-wqy-microhei poppler-utils
FONTS_MISSING := { [ -e "$(RECEIPT_FONT)" ] || echo "$(RECEIPT_FONT)"; command -v pdftoppm >/dev/null || echo pdftoppm; }

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed: make PYTHON=python3.11 ...")'
	@# A venv whose pip does not run (a failed earlier attempt) is made again, not reused.
	$(BIN)/python -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: $(STAMP) fonts-note
	$(BIN)/suban migrate
	$(BIN)/suban demo
	$(BIN)/suban serve

lint: $(STAMP)
	$(BIN)/ruff check $(PACKAGES) tests bench
	$(BIN)/ruff format --check $(PACKAGES) tests bench
	$(BIN)/mypy

test-embedded: $(STAMP) fonts-note
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

# deploy/: Kubernetes manifests against the API schemas and `docker compose config`.
deploy-check: $(STAMP)
	BIN=$(BIN) bash deploy/check.sh

test: lint deploy-check test-embedded test-postgres

# Installs the receipt font and pdftoppm when root with apt-get; otherwise says what to run.
fonts:
	@missing="$$($(FONTS_MISSING))"; \
	if [ -z "$$missing" ]; then \
		echo "receipt font $(RECEIPT_FONT) and pdftoppm are installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing $(FONT_PACKAGES)"; \
		apt-get install -y $(FONT_PACKAGES) || { apt-get update && apt-get install -y $(FONT_PACKAGES); }; \
		still="$$($(FONTS_MISSING))"; \
		[ -z "$$still" ] || { echo "still missing:" $$still "(SUBAN_RECEIPT_FONT?)" >&2; exit 1; }; \
	else \
		echo "missing:" $$missing; \
		echo "run: sudo apt-get install -y $(FONT_PACKAGES)"; \
	fi

# A reminder, never a failure: the service runs without the font.
fonts-note:
	@missing="$$($(FONTS_MISSING))"; \
	[ -z "$$missing" ] || echo "note: missing" $$missing "- receipts fall back to STSong-Light (not embedded); see make fonts"

# Re-resolve the pinned versions after changing a range in pyproject.toml.
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^suban' > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
