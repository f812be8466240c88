# Set-up and checks. `make demo` and `make test` work as root on a fresh Debian machine.
PYTHON ?= /usr/bin/python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint typecheck bench schema clean notebook

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

# JupyterLab on notebooks/, with this checkout's environment as the notebooks' kernel. JupyterLab is the notebook
# extra, installed here on first use, not by make install. PROFILER_TRACES=DIR shows your own traces: a path
# relative to where make runs is made absolute, since the kernel runs in notebooks/. NOTEBOOK_ARGS go to jupyter lab.
# As root (as on this project's machines) JupyterLab wants --allow-root, which it is given.
KERNEL := $(VENV)/share/jupyter/kernels/python3/kernel.json

notebook: install $(BIN)/jupyter-lab $(KERNEL)
	@if [ -n "$$PROFILER_TRACES" ]; then PROFILER_TRACES="$$(realpath -e -- "$$PROFILER_TRACES")" || exit 2; fi; \
	export PROFILER_TRACES; \
	if [ "$$(id -u)" = 0 ]; then set -- --allow-root; fi; \
	JUPYTER_PATH='$(CURDIR)/$(VENV)/share/jupyter' exec $(BIN)/jupyter lab --notebook-dir=notebooks "$$@" $(NOTEBOOK_ARGS)

$(BIN)/jupyter-lab: pyproject.toml
	$(BIN)/pip install -q -e '.[dev,notebook]'
	@touch $@

# The kernel named python3 (the notebooks' kernelspec) is this venv's Python, ahead of any other on the
# machine: JUPYTER_PATH above points here first.
$(KERNEL): $(BIN)/jupyter-lab
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name 'Python 3 (profiler)' >/dev/null

bench: install
	$(BIN)/python benchmarks/record_overhead.py
	$(BIN)/python benchmarks/record_paths.py
	$(BIN)/python benchmarks/command_speed.py
	$(BIN)/python benchmarks/record_storm.py
	$(BIN)/python benchmarks/generate_speed.py
	$(BIN)/python benchmarks/explore_load.py
	$(BIN)/python benchmarks/policy_read.py
	$(BIN)/python benchmarks/trace_scale.py
	$(BIN)/python benchmarks/run_startup.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
