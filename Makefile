# The run contract: `make dev` runs the embedded stack, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: dev test lint format demo bench bench-dispute bench-history bench-scale bench-soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

dev: $(STAMP)
	$(PY) -m scripts.dev

# playwright-core for the browser test (tests/ui), pinned by package-lock.json.
NODE_STAMP := node_modules/.installed-stamp

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm (Node.js >= 20) is required by tests/ui" >&2; exit 1; }
	npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

# Debian's chromium for the browser test: installed with apt when running as root, otherwise
# one clear line saying what to install.
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "tests/ui needs Debian's chromium at $(CHROMIUM): run 'sudo apt-get install chromium'" >&2; exit 1; \
	fi

test: $(STAMP) $(NODE_STAMP) $(CHROMIUM)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

demo: $(STAMP)
	$(PY) -m scripts.demo

bench: $(STAMP)
	$(PY) -m bench.campaign_lifecycle

bench-dispute: $(STAMP)
	$(PY) -m bench.dispute_path

bench-history: $(STAMP)
	$(PY) -m bench.history_budget

bench-scale: $(STAMP)
	$(PY) -m bench.scale $(BENCH_ARGS)

bench-soak: $(STAMP)
	$(PY) -m bench.soak $(SOAK_ARGS)

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .data .pytest_cache
