# Quick start:  make demo   (train + report on built-in synthetic data)
#               make test   (the test suite, notebooks included)
# Both create .venv and install the project into it when needed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO_OUT ?= runs/demo

# Two installs, each redone when the dependency list changes (the editable install picks up code
# changes by itself): the demo, the figures and the dossier need the library and its analysis
# extra; the tests add the dev extra (pytest, playwright, ...), which also completes the first.
INSTALLED_DEMO := $(VENV)/.installed-demo
INSTALLED_TEST := $(VENV)/.installed-test

.PHONY: demo test test-slow test-browser figures dossier install clean

install: $(INSTALLED_TEST)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(INSTALLED_DEMO): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[analysis]'
	touch $(INSTALLED_DEMO)

$(INSTALLED_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[analysis,dev]'
	touch $(INSTALLED_DEMO) $(INSTALLED_TEST)

demo: $(INSTALLED_DEMO)
	$(BIN)/tdrag demo --out $(DEMO_OUT)
	$(BIN)/python -m analysis report $(DEMO_OUT)/run

test: $(INSTALLED_TEST)
	$(BIN)/python -m pytest

test-slow: $(INSTALLED_TEST)
	$(BIN)/python -m pytest -m slow

# Needs Debian's chromium (apt-get install -y chromium) or TDRAG_CHROMIUM=/path/to/chrome.
test-browser: $(INSTALLED_TEST)
	$(BIN)/python -m pytest -m browser

# README figures (docs/figures/) from the demo run; run `make demo` first.
figures: $(INSTALLED_DEMO)
	$(BIN)/python docs/make_figures.py $(DEMO_OUT)/run

# Per-class HTML dossier of the demo run (runs/demo/dossier/index.html); makes the demo first if missing.
DOSSIER_OUT ?= $(DEMO_OUT)/dossier
dossier: $(INSTALLED_DEMO)
	test -f $(DEMO_OUT)/run/checkpoints/last.pt || $(BIN)/tdrag demo --out $(DEMO_OUT)
	$(BIN)/python -m analysis dossier $(DEMO_OUT)/run --out $(DOSSIER_OUT)

clean:
	rm -rf $(VENV) runs
