# Raceplane: `make demo` runs the whole stack, `make test` runs the suite.
# Both build .venv from scratch on a machine that has only Python and this repo.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The stack needs only the runtime dependencies; the suite, benchmarks and linters need the
# test extra as well.
RUNTIME := $(VENV)/.installed-runtime
INSTALLED := $(VENV)/.installed

.PHONY: install demo test bench soak lint format readme clean

$(RUNTIME): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $(RUNTIME)

$(INSTALLED): $(RUNTIME)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(INSTALLED)

install: $(INSTALLED)

demo: $(RUNTIME)
	$(VENV)/bin/raceplane up configs/demo.toml

# Most tests wait on processes, sockets and LSL more than they compute: workers overlap them.
# A test file stays on one worker (--dist loadfile): its module fixtures (a running stack) are
# made once per run, not once per worker.
TEST_WORKERS ?= 3

test: $(INSTALLED)
	bash .ci/system-deps
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

bench: $(INSTALLED)
	$(PY) bench/run_all.py

soak: $(INSTALLED)
	RACEPLANE_SOAK=1 $(PY) -m pytest -m soak

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(INSTALLED)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

readme: $(RUNTIME)
	$(VENV)/bin/raceplane streams --write-readme README.md

clean:
	rm -rf $(VENV) .bench .pytest_cache
