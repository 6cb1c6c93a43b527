# Two commands set everything up on a fresh machine: `make repro` and `make test`.
# Both create .venv when missing and install the pinned stack (torch's CPU wheel first).

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install repro test test-fast bench bench-learning lint format docs clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

repro: $(STAMP)
	dvc repro

test: $(STAMP)
	$(PY) -m pytest -q

# everything but the end-to-end tests (marked slow): under 3 minutes on 2 cores
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

# the `bench` extra adds stable-baselines3 (pinned), whose torch requirement the installed torch meets
bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) -m benchmarks.bench

bench-learning: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) -m benchmarks.learning

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# the documentation site (docs/, mkdocs.yml) into site/; a broken link or page fails it
docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

clean-venv:
	rm -rf $(VENV)
