# The two commands of the README.  Both set up .venv on a fresh machine first (CPU torch wheel).
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0

.PHONY: demo test setup

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[train,test,import,dask]"
	touch $@

setup: $(VENV)/.installed

demo: setup  ## train the demo run (groks in ~90 s on 2 CPU cores) and analyze it
	$(VENV)/bin/grokscope train --preset demo --out runs/demo.zarr --overwrite
	$(VENV)/bin/grokscope analyze runs/demo.zarr

test: setup  ## the whole test suite (under 10 minutes on 2 CPU cores)
	$(PY) -m pytest
