# trainlog: `make run` starts the server on SQLite; `make test` runs every test.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
CHROMIUM ?= /usr/bin/chromium
WEB_SOURCES := $(shell find web/src web/index.html web/vite.config.ts web/tsconfig*.json -type f 2>/dev/null)

.PHONY: install web run test test-python test-slow test-web test-e2e lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,example]'
	touch $@

web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $@

web/dist/index.html: web/node_modules/.installed $(WEB_SOURCES)
	cd web && npm run build

web: web/dist/index.html

run: install web
	$(VENV)/bin/trainlog serve

lint: install
	$(VENV)/bin/ruff check src tests bench model
	$(VENV)/bin/ruff format --check src tests bench model
	$(VENV)/bin/mypy

# Tests run on PYTEST_WORKERS processes (pytest-xdist; much of a test waits on servers and
# children; 4 on 2 cores starved the servers they start), an idle worker taking tests queued
# for a busy one (worksteal: a few tests take 15-60 s). Those marked serial (they stop
# PostgreSQL) run alone afterwards; those marked slow only in test-slow. pytest exits 5 when a
# marker selects nothing: that is no failure here.
PYTEST_WORKERS ?= 3
test-python: install
	$(VENV)/bin/pytest -q -n $(PYTEST_WORKERS) --dist worksteal -m "not slow and not serial"
	$(VENV)/bin/pytest -q -m "serial and not slow" || [ $$? -eq 5 ]

test-slow: install
	$(VENV)/bin/pytest -q -m slow

test-web: web/node_modules/.installed
	cd web && npm run typecheck && npm test

test-e2e: install web
	@if [ -x "$(CHROMIUM)" ]; then \
		cd web && CHROMIUM=$(CHROMIUM) npm run e2e; \
	else \
		echo "SKIPPED browser end-to-end tests: $(CHROMIUM) not found (apt-get install chromium)"; \
	fi

test: lint test-python test-web test-e2e

# BENCH_ARGS=--quick for a smoke run; see bench/__main__.py for --only and --db.
$(VENV)/.bench-installed: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install -q -e '.[bench]'
	touch $@

bench: install $(VENV)/.bench-installed
	$(VENV)/bin/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) web/node_modules web/dist .trainlog
