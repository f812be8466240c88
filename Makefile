# Set-up and checks. `make demo` and `make test` work as root on a fresh Debian machine.
PYTHON ?= /usr/bin/python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint typecheck bench schema clean

install: $(BIN)/profiler

# The venv sees Debian's bcc and seccomp modules (--system-site-packages); everything else comes from PyPI.
$(BIN)/profiler: pyproject.toml scripts/install-system-deps
	./scripts/install-system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv --system-site-packages $(VENV)
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

demo: install
	@sh demo/run.sh

test: install
	$(BIN)/ruff check profiler generators tests benchmarks
	$(BIN)/ruff format --check profiler generators tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -q

bench: install
	$(BIN)/python benchmarks/record_overhead.py
	$(BIN)/python benchmarks/record_storm.py
	$(BIN)/python benchmarks/generate_speed.py
	$(BIN)/python benchmarks/explore_load.py
	$(BIN)/python benchmarks/policy_read.py
	$(BIN)/python benchmarks/trace_scale.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
