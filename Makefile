# Two commands on a fresh machine: `make run` (the main job) and `make test` (the test suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Pinned together so pip cannot swap the torch build; override for another CUDA/CPU build.
TORCH ?= torch==2.14.1 torchvision==0.29.1

.PHONY: install run test test-slow test-all reports study-report study-labels study-peers clean-cache

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

# The example reports in reports/: the seed paper's models, small preset, seed 0, on the CPU
# (~1 h on 2 cores). Timings are left out, so the same machine type regenerates the same bytes.
REPORT_MODELS ?= diff-add,diff-concat,unet,res50attunet
REPORT_TASKS ?= lung infection

reports: install
	set -e; for task in $(REPORT_TASKS); do \
	  rm -rf runs/reports-$$task reports/$$task; \
	  $(BIN)/segbench run --task $$task --models $(REPORT_MODELS) --preset small --seed 0 --device cpu \
	    --quiet --out runs/reports-$$task; \
	  for format in md:report.md latex:report.tex html:report.html csv:summary.csv; do \
	    $(BIN)/segbench report runs/reports-$$task --no-timings --standalone --format $${format%%:*} \
	      --out reports/$$task/$${format#*:}; \
	  done; \
	done

# The example studies, each resumable (rerun to continue an interrupted one; a finished study only renders
# its report again), small preset, CPU:
# - study-report: reports/study-infection/ (the README's headline table): diff-add, sde-add and unet on
#   phantom infection over run seeds 0-2 (~35 min on 2 idle cores);
# - study-labels: reports/study-labels/ (the README's learning curve): unet, diff-add, ddpm-features and
#   anomaly-ddpm at 16 and all labelled images over seeds 0-2;
# - study-peers: reports/study-peers/: medsegdiff, berdiff, diff-add and unet over seeds 0-2.
STUDY_DIR ?= runs/study-phantom-infection

define study
	$(BIN)/segbench study run studies/$(1).toml --out $(2)
	set -e; for format in md:report.md latex:report.tex html:report.html csv:summary.csv; do \
	  $(BIN)/segbench report $(2) $$([ $${format%%:*} = latex ] && echo --standalone) --format $${format%%:*} \
	    --out reports/$(3)/$${format#*:}; \
	done
endef

study-report: install
	$(call study,phantom-infection,$(STUDY_DIR),study-infection)

study-labels: install
	$(call study,phantom-labels,runs/study-phantom-labels,study-labels)

study-peers: install
	$(call study,phantom-peers,runs/study-phantom-peers,study-peers)

clean-cache:
	rm -rf "$${SEGBENCH_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/segbench}"
