# Two commands do all set-up on a fresh machine:  `make book`  and  `make test`.
# Both create the project-local virtual environment (.venv) when it is missing, from the lock: every package
# pinned with its sha256 (requirements/cpu.lock; GPU users: `make GPU=1 book` uses requirements/gpu.lock, with
# tensorflow[and-cuda] instead of tensorflow-cpu). pyproject.toml names the top-level pins, the lock the full set.
# The book's lock holds only what the book imports; `make test` adds the test tools and the Dask executor
# (requirements/test.lock, the same versions for every package the two share) in a second step.
# `make lock` is the one command that refreshes the locks after a change to pyproject.toml (uv, a pinned version
# in a throwaway venv; pins not affected by the change are kept; `make lock UPGRADE=1` takes the newest versions).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
EXTRA  := $(if $(GPU),gpu,cpu)
LOCK   := requirements/$(EXTRA).lock
CONFIG ?= configs/default.yaml
# The data root: $ADVXAI_DATA if set, else the shared copies beside a checkout if present, else ./data
# (MedMNIST files are downloaded there, MD5-checked).
ADVXAI_DATA ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),$(abspath data))
export ADVXAI_DATA

.PHONY: book study pdf test test-fast lint bench clean env lock
env: $(VENV)/.installed

# Locked pip/setuptools/wheel first; then the whole lock in one resolve (nothing unpinned: builds use the locked
# setuptools); then advxai itself, editable, without resolving again.
$(VENV)/.installed: pyproject.toml $(LOCK) requirements/build.lock
	@$(PYTHON) -c 'import sys; assert (3, 11) <= sys.version_info[:2] <= (3, 12), "advxai needs Python 3.11 or 3.12"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --quiet --require-hashes -r requirements/build.lock
	$(BIN)/python -m pip install --quiet --quiet --progress-bar off --require-hashes --no-build-isolation -r $(LOCK)
	$(BIN)/python -m pip install --quiet --quiet --no-deps --no-build-isolation -e .
	touch $@

# The test tools and the Dask executor, on top of the book's environment (nothing already installed is replaced).
$(VENV)/.tested: $(VENV)/.installed requirements/test.lock
	$(BIN)/python -m pip install --quiet --quiet --progress-bar off --require-hashes --no-build-isolation \
		-r requirements/test.lock
	touch $@

# The locks: one universal resolve per variant (Python 3.11 and 3.12; pip skips the lines whose markers do not
# apply), hashes of every file. Each lock's header records the exact command.
UV_VERSION := 0.13.9
UV_VENV    := $(or $(TMPDIR),/tmp)/advxai-uv-$(UV_VERSION)
COMPILE    := $(UV_VENV)/bin/uv pip compile --universal --python-version 3.11 --generate-hashes --quiet$(if $(UPGRADE), --upgrade)
lock: $(UV_VENV)/bin/uv
	$(COMPILE) pyproject.toml requirements/build.in --extra cpu --extra book -o requirements/cpu.lock
	$(COMPILE) pyproject.toml requirements/build.in --extra gpu --extra book -o requirements/gpu.lock
	$(COMPILE) pyproject.toml --extra test -c requirements/cpu.lock -o requirements/test.lock
	$(COMPILE) requirements/build.in -c requirements/cpu.lock -o requirements/build.lock

$(UV_VENV)/bin/uv:
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/python -m pip install --quiet uv==$(UV_VERSION)

book: env
	$(BIN)/advxai book $(CONFIG) --results results --book book

# The study (configs/study.yaml): what the published book shows; ≤ 120 min on 2 cores, resumable (bench/RESULTS.md).
study: env
	$(BIN)/advxai book configs/study.yaml --results results --book book

# The built book (the study where it was built, else the quick one) as one PDF: _build/pdf/advxai.pdf.
pdf: env
	$(BIN)/advxai pdf

# The whole suite (CI). `make test-fast`: every test but the end-to-end ones (grids, the book build, the browser,
# the Dask cluster: marked `slow`), for a developer changing a formula, a registry, a config check or a key rule.
test: $(VENV)/.tested
	$(BIN)/ruff check lib tests bench
	$(BIN)/python -m pytest -q --durations=15

test-fast: $(VENV)/.tested
	$(BIN)/ruff check lib tests bench
	$(BIN)/python -m pytest -q -m "not slow" --durations=10

bench: env
	$(BIN)/python bench/stages.py

clean:
	rm -rf results _build book/runs book/results.ipynb book/results.csv
