# tinyc: `make demo` (the main job) and `make test` (the suite) set everything up themselves.
VENV := .venv
PY := $(VENV)/bin/python
TINYC := $(VENV)/bin/tinyc
DEMO_OUT := out/demo

.PHONY: setup demo test lint bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	@PYTHONPATH=examples $(PY) examples/demo.py $(DEMO_OUT)

test: setup
	@$(VENV)/bin/ruff check compiler tests examples bench
	@$(PY) -m pytest -n 2 tests

lint: setup
	@$(VENV)/bin/ruff check compiler tests examples bench

bench: setup
	@$(PY) bench/float_models.py
	@$(PY) bench/mlperf_tiny.py
	@$(PY) bench/binary_micro.py

clean:
	rm -rf out build .pytest_cache
