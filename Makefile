# `make test` and `make demo` each build .venv from scratch if needed, install everything, then run.
# torch is installed first with an exact pin: a bare `torch` requirement would pull a multi-GB CUDA build.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -ra

demo: $(STAMP)
	$(VENV)/bin/capture-pipeline demo --out demo_output

# figures are recorded in benchmarks/README.md; run on an otherwise idle machine
bench: $(STAMP)
	$(PY) benchmarks/bench_read_cwa.py
	$(PY) benchmarks/bench_features.py --mode chunked
	$(PY) benchmarks/bench_batch.py --files 2 --workers 1 2
	$(PY) benchmarks/bench_models.py --steps 30 --threads 2

clean:
	rm -rf $(VENV) demo_output
