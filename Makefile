# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both create .venv if it is missing and install requirements.txt into it.
#
# TORCH is installed before the requirements so that pip does not pick a torch
# on its own: the pinned 2.13.0 wheel is the small CPU build on machines that
# carry it locally; on a GPU box use e.g. `make demo TORCH='torch>=2.4'`.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench gpu-check clean-demo help

help:
	@echo "make demo   - set up .venv and run the whole pipeline on the default corpus (CPU, minutes)"
	@echo "make test   - set up .venv and run the test suite"
	@echo "make bench  - run the benchmarks in bench/ (prints ratios against peers)"
	@echo "make gpu-check - check the CUDA paths end to end (< 8 min on one GPU; a toy dry run on CPU)"

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -r requirements.txt
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	bash scripts/demo.sh

gpu-check: $(STAMP)
	$(PY) scripts/gpu_check.py

bench: $(STAMP)
	$(PY) bench/train_bpe.py
	$(PY) bench/encode.py
	$(PY) bench/prepare.py
	$(PY) bench/train_gpt.py
