# The two commands a newcomer needs: `make run` and `make test`. Everything is installed into .venv.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.12 (Django 6 needs it): the first interpreter found that really is 3.12.
PYTHON312 ?= $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1 && { echo "$$p"; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
# A .venv that is not Python 3.12 (made by another python, or whose interpreter is gone) is rebuilt, not reused:
# a first `make run` before 3.12 was installed must not break every later one.
VENV_WRONG := $(if $(wildcard $(PY)),$(shell "$(PY)" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1 || echo wrong),)
VENV_REBUILD := $(if $(VENV_WRONG),venv-rebuild,)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: help install install-dev run test lint bench fuzz venv-rebuild

help:
	@echo "make run    install, migrate, seed demo clinics and serve on http://$(HOST):$(PORT)/admin/"
	@echo "make test   install and run the whole test suite"
	@echo "make lint   ruff check, ruff format --check and mypy"
	@echo "make bench  run the benchmarks in bench/ and print one table"
	@echo "make fuzz   the long schema fuzz, every check: 100 examples per operation, mode and role"

$(VENV)/bin/python: $(VENV_REBUILD)
	@test -n "$(PYTHON312)" || { echo "Python 3.12 not found: install python3.12 or set PYTHON312=/path/to/python3.12" >&2; exit 1; }
	@if [ -n "$(VENV_WRONG)" ]; then \
		echo "$(VENV) is not Python 3.12 ($$("$(PY)" -V 2>/dev/null || echo 'its python does not run')): rebuilding it" >&2; \
		rm -rf $(VENV); fi
	"$(PYTHON312)" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

venv-rebuild:

# The stamps depend on venv-rebuild too: a rebuilt .venv has none of the packages they stand for.
$(VENV)/.runtime: requirements.txt $(VENV_REBUILD) | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt $(VENV_REBUILD) | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@ $(VENV)/.runtime

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

run: install
	DEBUG=$${DEBUG:-true} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG:-true} $(PY) manage.py seed_demo --origin http://$(HOST):$(PORT)
	DEBUG=$${DEBUG:-true} $(PY) manage.py serve --host $(HOST) --port $(PORT)

test: install-dev
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DEBUG=true $(VENV)/bin/mypy

bench: install-dev
	$(PY) bench/run_all.py

# The default suite fuzzes 20 examples per operation and mode; this is the long run (tier C, minutes).
fuzz: install-dev
	FUZZ_MAX_EXAMPLES=$${FUZZ_MAX_EXAMPLES:-100} \
		$(PY) -m pytest voiceagent/tests/security/test_fuzz_schema.py -q -p no:cacheprovider --timeout=1500

