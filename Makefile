# CAMEO developer commands. The README's two: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON := .venv/bin/python
CAMEO_DATA ?= $(abspath ../shared/data)
export CAMEO_DATA

.PHONY: setup demo test package train export-models clean

setup:  ## QGIS from apt if missing, .venv with pinned packages, plugin linked (idempotent)
	@bash scripts/setup.sh

demo: setup  ## the main job through qgis_process on the real sample data
	@bash scripts/demo.sh

test: setup  ## the whole test suite
	$(PYTHON) -m pytest

package:  ## dist/cameo.zip for the QGIS plugin repository
	@python3 scripts/package.py --output dist/cameo.zip

train: setup  ## retrain the bundled models (long; CPU is fine)
	bash scripts/train_bundled.sh

export-models: setup  ## re-export models/onnx from runs/bundled checkpoints, with parity checks
	$(PYTHON) -m models.train export --config bundled

clean:
	rm -rf dist runs .pytest_cache
