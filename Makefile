# Two commands on a fresh machine: `make run` (the main job) and `make test` (the test suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Pinned together so pip cannot swap the torch build; override for another CUDA/CPU build.
TORCH ?= torch==2.14.1 torchvision==0.29.1

.PHONY: install run test test-slow test-all mutate reports study-report study-labels study-strong study-unlabelled study-peers study-anomaly-noise clean-cache

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

# Mutation testing (mutmut; not in CI, ~25 min on 2 cores) of the math whose errors no other test would notice,
# against the unit tests that cover it; docs/mutation.md has the scores and the survivors judged equivalent.
# mutmut imports the mutants from a copy of the packages under one src/ folder, so the working tree's segbench
# and plugins are copied into $(MUTATE_DIR)/src first. Then `cd $(MUTATE_DIR) && mutmut show NAME` shows one.
MUTATE_DIR ?= build/mutation
MUTATE_JOBS ?= 2
MUTATE_MODULES ?= plugins/segbench_backbone/schedules.py plugins/segbench_backbone/samplers.py \
	plugins/segbench_score/schedules.py plugins/segbench_score/samplers.py plugins/segbench_score/losses.py \
	plugins/segbench_berdiff/bernoulli.py segbench/losses.py segbench/metrics/definitions.py \
	segbench/metrics/policy.py segbench/metrics/confusion.py segbench/metrics/boundary.py \
	segbench/data/labels.py segbench/study/statistics.py
MUTATE_TESTS ?= tests/diffusion/test_schedules.py tests/diffusion/test_samplers.py tests/diffusion/test_diffusers_parity.py \
	tests/score/test_schedules.py tests/score/test_samplers.py tests/score/test_losses.py tests/berdiff/test_bernoulli.py \
	tests/core/test_losses.py tests/core/test_metrics.py tests/core/test_boundary_metrics.py tests/core/test_labels.py \
	tests/study/test_statistics.py

$(BIN)/mutmut: $(BIN)/segbench pyproject.toml
	$(BIN)/python -m pip install --quiet $(TORCH) -e '.[mutate]'
	@touch $@

mutate: $(BIN)/mutmut
	rm -rf $(MUTATE_DIR) && mkdir -p $(MUTATE_DIR)/src
	cp -r segbench plugins/segbench_* $(MUTATE_DIR)/src/
	cp -r tests pyproject.toml $(MUTATE_DIR)/
	{ printf '[mutmut]\nsource_paths = src\n# torch is not fork-safe: each mutant runs in a child of a fresh server\n'; \
	  printf 'process_isolation = forkserver\nonly_mutate =\n'; printf '    src/%s\n' $(MUTATE_MODULES:plugins/%=%); \
	  printf 'pytest_add_cli_args_test_selection =\n'; printf '    %s\n' $(MUTATE_TESTS); } > $(MUTATE_DIR)/setup.cfg
	cd $(MUTATE_DIR) && OMP_NUM_THREADS=1 nice $(abspath $(BIN))/mutmut run --max-children $(MUTATE_JOBS) > mutmut.log 2>&1
	@cd $(MUTATE_DIR) && $(abspath $(BIN))/mutmut results --all true | awk -F': ' '{ name = $$1; sub(/^ +/, "", name); \
	  m = name; sub(/\.x[^.]*__mutmut_[0-9]+$$/, "", m); if ($$2 == "skipped") next; total[m]++; \
	  if ($$2 == "killed" || $$2 == "timeout") killed[m]++; if ($$2 != "killed") print "  " $$2 ": " name } \
	  END { for (m in total) printf "%-30s %4d / %4d killed (%.1f %%)\n", m, killed[m], total[m], 100 * killed[m] / total[m] }' \
	  | sort

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
# - study-report: reports/study-infection/ (docs/results.md's table): diff-add, sde-add and unet on
#   phantom infection over run seeds 0-2 (~35 min on 2 idle cores);
# - study-strong: reports/study-strong-16/ (the README's phantom table): unet, diff-add and its direct
#   control at 16 labels under --augment standard --select best, seeds 0-2 (~70 min on 2 cores);
# - study-unlabelled: reports/study-unlabelled-16/: unet, unet-pretrained and ddpm-features, likewise, seed 0;
# - study-labels: reports/study-labels/ (docs/results.md, the old protocol): unet, diff-add, ddpm-features and
#   anomaly-ddpm at 16 and all labelled images over seeds 0-2;
# - study-peers: reports/study-peers/: medsegdiff, berdiff, diff-add and unet over seeds 0-2;
# - study-anomaly-noise: reports/study-anomaly-noise/: anomaly-ddpm with Gaussian and simplex noise, seeds 0-2.
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

study-strong: install
	$(call study,phantom-strong-16,runs/study-phantom-strong-16,study-strong-16)

study-unlabelled: install
	$(call study,phantom-unlabelled-16,runs/study-phantom-unlabelled-16,study-unlabelled-16)

study-peers: install
	$(call study,phantom-peers,runs/study-phantom-peers,study-peers)

study-anomaly-noise: install
	$(call study,phantom-anomaly-noise,runs/study-phantom-anomaly-noise,study-anomaly-noise)

clean-cache:
	rm -rf "$${SEGBENCH_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/segbench}"
