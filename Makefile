# s2i: `make demo` runs the whole pipeline on synthetic data, `make test` runs the tests.
# Both create .venv and install the pinned stack on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export S2I_PROFILE ?= demo

.PHONY: setup demo dev test test-postgres bench lint lock clean-data tensorboard

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "s2i needs Python 3.11 (set PYTHON=...)"'
	@started=$$(date +%s); \
	$(PYTHON) -m venv $(VENV) && \
	$(BIN)/pip install --quiet --upgrade pip && \
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev]' && \
	echo "Installed the pinned stack into $(VENV) in $$(( $$(date +%s) - started )) s."
	@touch $@

# The `gpu` pool (pipelines/gpu.py) gets one slot per GPU (those CUDA_VISIBLE_DEVICES leaves visible, if set),
# times S2I_STEPS_PER_GPU (default 1), and each GPU step leases a GPU of its own (pipelines/devices.py): on a
# machine with 4 GPUs, four GANs train at once, one per card. S2I_REQUIRE_GPU=1 there makes a GPU step that
# finds no usable GPU (driver too old for torch's CUDA, CPU-only torch) fail at once instead of training on
# the CPU. Without a GPU, training steps run on the CPU, one per core with one torch thread each: at the demo's
# small widths that trains 1.5x more per second than one step on all cores.
GPUS := $(shell n=$$(nvidia-smi -L 2>/dev/null | grep -c '^GPU'); \
	if [ "$$n" -gt 0 ] && [ -n "$${CUDA_VISIBLE_DEVICES+set}" ]; then \
	v=$$(printf '%s' "$$CUDA_VISIBLE_DEVICES" | tr ',' '\n' | grep -c .); [ "$$v" -lt "$$n" ] && n=$$v; fi; echo $$n)
ifeq ($(GPUS),0)
GPU_SLOTS := $(shell nproc)
export S2I_CPU_THREADS ?= 1
else
export S2I_STEPS_PER_GPU ?= 1
export S2I_REQUIRE_GPU ?= 1
GPU_SLOTS := $(shell expr $(GPUS) \* $(S2I_STEPS_PER_GPU))
endif

$(DAGSTER_HOME)/dagster.yaml:
	@mkdir -p $(DAGSTER_HOME)
	@printf 'telemetry:\n  enabled: false\n' > $@
	@printf 'concurrency:\n  pools:\n    default_limit: $(GPU_SLOTS)\n' >> $@

# The run's own time (after install) is printed at the end: the demo's budget is 10 minutes on 2 CPU cores.
demo: setup $(DAGSTER_HOME)/dagster.yaml
	@started=$$(date +%s); \
	$(BIN)/dagster asset materialize -m pipelines --select '*' || exit $$?; \
	elapsed=$$(( $$(date +%s) - started )); \
	echo ""; \
	$(BIN)/s2i report; \
	echo ""; \
	echo "Done in $$((elapsed / 60)) min $$((elapsed % 60)) s (install not counted) on $$(nproc) CPU cores."; \
	echo "Artifacts are under $${S2I_DATA_DIR:-$(CURDIR)/data}; 'make dev' opens them in the Dagster UI."

dev: setup $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -m pipelines -h 127.0.0.1 -p 3000

tensorboard: setup
	$(BIN)/s2i tensorboard

test: setup
	$(BIN)/python -m pytest -m "not gpu"

# The data chain against a real PostgreSQL through docker/dagster.yaml (installs Debian's postgresql if missing).
test-postgres: setup
	bash scripts/test_postgres.sh

# Every CPU benchmark runs, even after one misses a target or fails; each appends its checks (measured,
# target, PASS/FAIL) to the file S2I_BENCH_RESULTS names, and summary.py prints them all in one table and
# fails if any check failed or any benchmark left none. gpu_*.py are run by hand on a GPU machine.
CPU_BENCHMARKS := bench_extract bench_loading bench_training bench_evaluation bench_demo bench_download

bench: setup
	@export S2I_BENCH_RESULTS=$$(mktemp); \
	for name in $(CPU_BENCHMARKS); do \
		echo "== benchmarks/$$name.py"; $(BIN)/python benchmarks/$$name.py || echo "== $$name: exit status $$?"; \
	done; \
	$(BIN)/python benchmarks/summary.py $$S2I_BENCH_RESULTS $(CPU_BENCHMARKS); status=$$?; \
	rm -f $$S2I_BENCH_RESULTS; exit $$status

lint: setup
	$(BIN)/ruff check pipelines s2i_models tests benchmarks
	$(BIN)/ruff format --check pipelines s2i_models tests benchmarks

lock: setup
	$(BIN)/pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

clean-data:
	rm -rf data .dagster_home
