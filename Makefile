# `make demo` and `make test` work on a fresh machine: they create .venv, install finetec into it, then run.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.finetec-installed
DEMO_ARGS ?=

.PHONY: demo test install clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --upgrade pip >/dev/null
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/finetec demo $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -x -p no:cacheprovider tests

clean:
	rm -rf $(VENV) results build *.egg-info src/*.egg-info
