# Two commands on a fresh machine:  `make demo`  (offline demo evaluation)  and  `make test`.
# Both create .venv and install the package first. On a CPU machine torch comes from the CPU wheel
# (TORCH=torch==2.13.0); on a GPU box use e.g. `make install TORCH=torch` for a CUDA build.
VENV ?= .venv
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test lint bench

$(VENV)/.installed: pyproject.toml setup.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
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
