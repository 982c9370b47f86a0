# The two commands of the quick start: `make run` and `make test`.
# Each creates .venv and installs what it needs on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MODEL_DIR := models/seed
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test docs lint format demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[all]"  # everything the README shows, except torch (its own extra)
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	# SageMaker SDK v3's core (sagemaker.core) cannot share site-packages with SDK 2.x (both
	# are the package `sagemaker`); the tests run it from its own folder on PYTHONPATH.
	$(BIN)/pip install --quiet --upgrade --no-deps --target $(VENV)/sagemaker-v3 'sagemaker-core>=2.20,<3'
	touch $@ $(VENV)/.installed-run

## run: train the article's network, save it under models/, serve it and show how to query it
run: $(VENV)/.installed-run
	$(BIN)/neurocloud demo --output $(MODEL_DIR) --plot $(MODEL_DIR)-fit.png
	$(BIN)/neurocloud serve $(MODEL_DIR) --host $(HOST) --port $(PORT)

## test: the whole test suite
test: $(VENV)/.installed-test
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

## docs: build the documentation site into site/ (offline; open site/index.html or serve it)
docs: $(VENV)/.installed-test
	NO_MKDOCS_2_WARNING=1 MPLBACKEND=Agg $(BIN)/mkdocs build --strict

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) models build dist site .pytest_cache .ruff_cache
