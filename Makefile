# `make train` runs the main job and `make test` the tests; both first set
# up a virtual environment in .venv with the pinned dependencies.
VENV := .venv
PYTHON := $(VENV)/bin/python

.PHONY: train test

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q -e '.[dev]'
	touch $@

train: $(VENV)/.installed
	$(PYTHON) train.py --workdir runs/default

test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(PYTHON) -m pytest
