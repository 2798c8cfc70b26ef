# pingjing — make run | make test | make bench | make bench-province | make lint
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: run test bench bench-province lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(STAMP_DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(STAMP_RUN)

run: $(STAMP_RUN)
	$(BIN)/pingjing serve

test: $(STAMP_DEV)
	$(BIN)/python -m pytest

bench: $(STAMP_DEV)
	$(BIN)/python -m bench

bench-province: $(STAMP_DEV)
	$(BIN)/python -m bench.province

lint: $(STAMP_DEV)
	$(BIN)/ruff check domain projections scheduler adapters tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
