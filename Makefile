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

.PHONY: setup test lint data tiny train merge gguf llama infer serve push eval bench demo clean safety-model

setup: $(STAMP)

# torch first, by its exact version: any looser spec pulls the CUDA wheels on a CPU-only machine.
$(STAMP): requirements.txt pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==$$(grep -oP '^torch==\K.*' requirements.txt)"
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

# Test-only clients (the openai client, selenium), on top of the runtime set.
TEST_STAMP := $(VENV)/.installed-test
$(TEST_STAMP): requirements-test.txt $(STAMP)
	$(PY) -m pip install -q -r requirements-test.txt
	touch $(TEST_STAMP)

# llama.cpp's bindings and GGUF writer, for export_gguf.py: built from source once (~3 min), so not part of setup.
LLAMA_STAMP := $(VENV)/.installed-llama
llama: $(LLAMA_STAMP)
$(LLAMA_STAMP): requirements-llama.txt $(STAMP)
	$(PY) -m pip install -q -r requirements-llama.txt
	touch $(LLAMA_STAMP)

test: setup $(TEST_STAMP) $(LLAMA_STAMP)
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

data: setup
	$(PY) -m data_prep --input $(RAW) $(if $(VALIDATION),--validation $(VALIDATION)) --output $(DATA)

# The tiny base is pre-trained on PRETRAIN synthetic dialogues (gonggam/pretrain.py, about 1.5 minutes on 2 cores;
# 10,000 against 6,000: replies made of whole sample sentences 0.29 -> 0.66, bench/README.md);
# PRETRAIN=0 leaves its weights random, as the tests do.
PRETRAIN ?= 10000
tiny: setup
	$(PY) -m gonggam.tiny --corpus $(DATA)/train.jsonl --output $(TINY) --pretrain-dialogues $(PRETRAIN)

# torch's OpenMP threads sleep while they wait instead of spinning. Measured on 2 cores: while other work used them,
# spinning threads made a pre-training step 2.6-16x slower (217-1419 ms against 81-130 ms); on the idle machine sleeping
# costs 1.8x (87 ms against 48 ms). The bounded loss is the safer default; OMP_WAIT_POLICY=ACTIVE make demo undoes it.
demo tiny: export OMP_WAIT_POLICY ?= PASSIVE

train: setup
	$(PY) train_lora.py --config $(CONFIG)

ADAPTER ?= $(shell ls -td adapters/*/ 2>/dev/null | head -1 | sed 's:/$$::')
MERGED ?= merged/$(notdir $(ADAPTER))

merge: setup
	@test -n "$(ADAPTER)" || { echo "error: no adapter in adapters/: run make train first." >&2; exit 2; }
	$(PY) merge_adapter.py --adapter $(ADAPTER) --output $(MERGED) --overwrite

# The newest merged model (or GGUF_MODEL=merged/RUN) -> exports/RUN: GGUF files for llama.cpp / Ollama + Modelfiles.
GGUF_MODEL ?= $(shell ls -td merged/*/ 2>/dev/null | head -1 | sed 's:/$$::')
QUANT ?= f16 q8_0 q4_k_m
gguf:
	@test -n "$(GGUF_MODEL)" || { echo "error: no merged model in merged/: run make merge first." >&2; exit 2; }
	@$(MAKE) --no-print-directory llama
	$(PY) export_gguf.py --model $(GGUF_MODEL) --output exports/$(notdir $(GGUF_MODEL)) --quant $(QUANT)

PROMPT ?= 오늘 시험 망쳐서 우울해
infer: setup
	$(PY) infer.py --prompt "$(PROMPT)"

# The API and web chat on http://127.0.0.1:8000/ over the newest merged model (or MODEL=merged/RUN).
serve: setup
	$(PY) serve.py $(if $(MODEL),--model $(MODEL))

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
	@echo "The tiny model is a 0.9-million-parameter GPT-NeoX pre-trained for a minute or two on recombined sample"
	@echo "sentences: it shows the pipeline working, not the quality of a 5.8B fine-tune."
	@echo "Chat with it in the browser: $(PY) serve.py --model merged/tiny-cpu  (then open http://127.0.0.1:8000/)"

clean:
	rm -rf data/processed models/tiny-polyglot adapters/tiny-cpu merged/tiny-cpu reports/demo_replies.jsonl

EVAL_DATA ?= $(DATA)/validation.jsonl
eval: setup
	$(PY) eval.py --model $(MERGED) --data $(EVAL_DATA) --output reports/$(notdir $(MERGED))

# The safety classifiers, from data/safety/ (train + dev); EXTRA="my.tsv" adds your own label<TAB>text lines.
safety-model: setup
	$(PY) -m gonggam.safety.train $(if $(EXTRA),--extra $(EXTRA))

# The CPU benchmarks (tiny model); on a CUDA machine add --shape polyglot-5.8b to the last two by hand.
bench: setup $(LLAMA_STAMP)
	$(PY) bench/data_prep.py
	$(PY) bench/train_throughput.py --warmup 3 --steps 12 --attention sdpa_varlen sdpa --geometry 1x1024 1x2048
	$(PY) bench/generate.py --runs 3
	$(PY) bench/generate.py --gguf --runs 9 --max-new-tokens 128
	$(PY) bench/safety.py
