# Two entry points that work on a fresh machine with Python >= 3.11, git and make:
#   make serve   run agentgql with no configuration (embedded PostgreSQL)
#   make test    lint, type-check and run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: serve test lint typecheck pytest schema clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "agentgql needs Python >= 3.11 (set PYTHON=...)"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

serve: $(STAMP)
	@command -v bwrap >/dev/null 2>&1 || \
		echo "agentgql: install bubblewrap (apt-get install bubblewrap) for the shell tool, or set AGENTGQL_SANDBOX=none (unsafe)" >&2
	$(BIN)/agentgql serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy .

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

schema: $(STAMP)
	$(BIN)/agentgql export-schema > schema.graphql

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
