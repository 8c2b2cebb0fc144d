# Two commands on a fresh machine:  `make demo`  (offline demo evaluation)  and  `make test`.
# Both create .venv and install the package first, torch before anything else:
# - TORCH (default torch==2.13.0) from TORCH_INDEX (default: PyTorch's CPU-only index, as PyTorch
#   documents for machines without a GPU; a bare PyPI torch is the CUDA build, GBs of NVIDIA
#   libraries). Where that index cannot be reached (a machine that reaches only PyPI or a local
#   wheel), torch comes from pip's configured indexes instead, with a note.
# - A GPU box: `make install TORCH=torch TORCH_INDEX=` (PyPI's CUDA build), or a CUDA index,
#   e.g. TORCH_INDEX=https://download.pytorch.org/whl/cu128.
VENV ?= .venv
TORCH ?= torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1

.PHONY: install demo test lint bench

$(VENV)/.installed: pyproject.toml setup.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@if [ -n "$(TORCH_INDEX)" ] && $(PY) -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10)' "$(TORCH_INDEX)/" 2>/dev/null; then \
		echo "$(PY) -m pip install -q \"$(TORCH)\" --index-url $(TORCH_INDEX)"; \
		$(PY) -m pip install -q "$(TORCH)" --index-url "$(TORCH_INDEX)"; \
	else \
		if [ -n "$(TORCH_INDEX)" ]; then echo "note: $(TORCH_INDEX) cannot be reached; $(TORCH) comes from pip's configured indexes (the CPU build only where they hold it)"; fi; \
		echo "$(PY) -m pip install -q \"$(TORCH)\""; \
		$(PY) -m pip install -q "$(TORCH)"; \
	fi
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/qzhou-eval run model=minilm benchmark=demo_eng
	$(VENV)/bin/qzhou-eval run model=minilm benchmark=demo_zho

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: install lint
	$(VENV)/bin/pytest -q
