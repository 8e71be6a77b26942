# gonggam — make targets. `make demo` runs the whole pipeline offline; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# With no RAW the shipped sample is used, with its own validation file; with RAW, pass VALIDATION too
# if you have the AIHub Validation file (otherwise a persona-disjoint split is made).
ifeq ($(origin RAW), undefined)
RAW := data/sample/sample_Training.json
VALIDATION ?= data/sample/sample_Validation.json
endif
DATA := data/processed
CONFIG ?= configs/polyglot-5.8b-qlora.yaml
TINY := models/tiny-polyglot

.PHONY: setup test lint data tiny train merge infer push eval bench demo clean

setup: $(STAMP)

# torch first, by its exact version: any looser spec pulls the CUDA wheels on a CPU-only machine.
$(STAMP): requirements.txt pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==$$(grep -oP '^torch==\K.*' requirements.txt)"
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

test: setup
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

data: setup
	$(PY) -m data_prep --input $(RAW) $(if $(VALIDATION),--validation $(VALIDATION)) --output $(DATA)

tiny: setup
	$(PY) -m gonggam.tiny --corpus $(DATA)/train.jsonl --output $(TINY)

train: setup
	$(PY) train_lora.py --config $(CONFIG)
