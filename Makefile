# `make demo` and `make test` work on a fresh machine: they create .venv, install finetec into it, then run.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.finetec-installed
# offline pose estimation (MediaPipe 0.10.21 needs numpy < 2 and brings opencv-contrib): its own environment,
# without torch; `finetec data extract` re-runs itself there when the current one lacks mediapipe
POSE_VENV := .venv-pose
POSE_STAMP := $(POSE_VENV)/.finetec-installed
DEMO_ARGS ?=

.PHONY: demo test install pose-env clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --upgrade pip >/dev/null
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e '.[dev,video,export]'
	touch $(STAMP)

$(POSE_STAMP): pyproject.toml
	$(PY) -m venv $(POSE_VENV)
	$(POSE_VENV)/bin/pip install --upgrade pip >/dev/null
	$(POSE_VENV)/bin/pip install 'numpy<2' 'mediapipe==0.10.21' 'jax==0.7.1' 'jaxlib==0.7.1' 'opencv-contrib-python==4.11.0.86' 'av>=14' 'pyyaml>=6' 'tqdm>=4.60'
	$(POSE_VENV)/bin/pip install --no-deps -e .
	touch $(POSE_STAMP)

pose-env: $(POSE_STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/finetec demo $(DEMO_ARGS)

test: $(STAMP) $(POSE_STAMP)
	$(BIN)/python -m pytest -x -p no:cacheprovider tests

clean:
	rm -rf $(VENV) $(POSE_VENV) results build *.egg-info src/*.egg-info
