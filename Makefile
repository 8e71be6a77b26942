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

.PHONY: setup test lint data tiny train merge infer push eval bench demo clean safety-model

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

ADAPTER ?= $(shell ls -td adapters/*/ 2>/dev/null | head -1 | sed 's:/$$::')
MERGED ?= merged/$(notdir $(ADAPTER))

merge: setup
	@test -n "$(ADAPTER)" || { echo "error: no adapter in adapters/: run make train first." >&2; exit 2; }
	$(PY) merge_adapter.py --adapter $(ADAPTER) --output $(MERGED) --overwrite

PROMPT ?= 오늘 시험 망쳐서 우울해
infer: setup
	$(PY) infer.py --prompt "$(PROMPT)"

push: setup
	@test -n "$(REPO)" || { echo "error: set REPO=USER/NAME (the Hub repo to push to)." >&2; exit 2; }
	$(PY) push_adapter.py --adapter $(ADAPTER) --repo-id $(REPO)

# The whole pipeline offline on the shipped sample, on the CPU: data -> tiny model -> 4-bit QLoRA -> merge -> answers.
demo: setup
	$(MAKE) --no-print-directory data
	$(MAKE) --no-print-directory tiny
	$(PY) train_lora.py --config configs/tiny-cpu.yaml
	$(PY) merge_adapter.py --adapter adapters/tiny-cpu --output merged/tiny-cpu --dtype float32 --overwrite
	$(PY) infer.py --model merged/tiny-cpu --input data/demo_prompts.txt --seed 0 --output reports/demo_replies.jsonl
	$(PY) -c "import json; [print(f\"[{r['safety']['level']:>7}] {r['prompt']}\n          -> {r['response']}\") for r in map(json.loads, open('reports/demo_replies.jsonl', encoding='utf-8'))]"
	@echo "The tiny model shows the pipeline working, not the quality of a 5.8B fine-tune."

clean:
	rm -rf data/processed models/tiny-polyglot adapters/tiny-cpu merged/tiny-cpu reports/demo_replies.jsonl

EVAL_DATA ?= $(DATA)/validation.jsonl
eval: setup
	$(PY) eval.py --model $(MERGED) --data $(EVAL_DATA) --output reports/$(notdir $(MERGED))

# The safety classifiers, from data/safety/ (train + dev); EXTRA="my.tsv" adds your own label<TAB>text lines.
safety-model: setup
	$(PY) -m gonggam.safety.train $(if $(EXTRA),--extra $(EXTRA))

# The CPU benchmarks (tiny model); on a CUDA machine add --shape polyglot-5.8b to the last two by hand.
bench: setup
	$(PY) bench/data_prep.py
	$(PY) bench/train_throughput.py --warmup 3 --steps 12 --attention sdpa_varlen sdpa --geometry 1x1024 1x2048
	$(PY) bench/generate.py --runs 3
	$(PY) bench/safety.py
