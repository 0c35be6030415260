# Quick start:  make demo   (train + report on built-in synthetic data)
#               make test   (the test suite, notebooks included)
# Both create .venv and install the project into it when needed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_OUT ?= runs/demo

.PHONY: demo test test-slow test-browser figures dossier install clean

install: $(STAMP)

# Reinstall when the dependency list changes; the editable install picks up code changes by itself.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[analysis,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tdrag demo --out $(DEMO_OUT)
	$(BIN)/python -m analysis report $(DEMO_OUT)/run

test: $(STAMP)
	$(BIN)/python -m pytest

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

# Needs Debian's chromium (apt-get install -y chromium) or TDRAG_CHROMIUM=/path/to/chrome.
test-browser: $(STAMP)
	$(BIN)/python -m pytest -m browser

# README figures (docs/figures/) from the demo run; run `make demo` first.
figures: $(STAMP)
	$(BIN)/python docs/make_figures.py $(DEMO_OUT)/run

# Per-class HTML dossier of the demo run (runs/demo/dossier/index.html); makes the demo first if missing.
DOSSIER_OUT ?= $(DEMO_OUT)/dossier
dossier: $(STAMP)
	test -f $(DEMO_OUT)/run/checkpoints/last.pt || $(BIN)/tdrag demo --out $(DEMO_OUT)
	$(BIN)/python -m analysis dossier $(DEMO_OUT)/run --out $(DOSSIER_OUT)

clean:
	rm -rf $(VENV) runs
