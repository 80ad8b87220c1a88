# Two commands on a fresh machine: `make run` (the main job) and `make test` (the test suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Pinned together so pip cannot swap the torch build; override for another CUDA/CPU build.
TORCH ?= torch==2.14.1 torchvision==0.29.1

.PHONY: install run test test-slow test-all clean-cache

$(BIN)/segbench: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH) -e '.[dev]'
	@touch $@

install: $(BIN)/segbench

# The main job: the seed paper's comparison on the embedded phantom (writes runs/infection-<time>/).
run: install
	$(BIN)/segbench run --task infection --models diff-add,unet

test: install
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: install
	$(BIN)/python -m pytest -q -m slow

test-all: install
	$(BIN)/python -m pytest -q

clean-cache:
	rm -rf "$${SEGBENCH_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/segbench}"
