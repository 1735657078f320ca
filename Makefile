# Two commands do all set-up on a fresh machine:  `make book`  and  `make test`.
# Both create the project-local virtual environment (.venv, one pip resolve) when it is missing.
# GPU users: `make GPU=1 book` installs tensorflow[and-cuda] instead of tensorflow-cpu.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
EXTRA  := $(if $(GPU),gpu,cpu)
CONFIG ?= configs/default.yaml
# The data root: $ADVXAI_DATA if set, else the shared copies beside a checkout if present, else ./data
# (MedMNIST files are downloaded there, MD5-checked).
ADVXAI_DATA ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),$(abspath data))
export ADVXAI_DATA

.PHONY: book test lint bench clean env
env: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert (3, 11) <= sys.version_info[:2] <= (3, 12), "advxai needs Python 3.11 or 3.12"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --progress-bar off -e ".[$(EXTRA),test]"
	touch $@

book: env
	$(BIN)/advxai book $(CONFIG) --results results --book book

test: env
	$(BIN)/ruff check lib tests bench
	$(BIN)/python -m pytest -q

bench: env
	$(BIN)/python bench/stages.py

clean:
	rm -rf results _build book/runs book/results.ipynb
