# The two commands of the README. Python 3.11 on x86_64 Linux; no Docker needed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
ORG ?= demo-$(shell date +%Y%m%d-%H%M%S)

.PHONY: demo test install down bench

$(BIN)/bulkops: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[stack,test]'
	touch $@

install: $(BIN)/bulkops

# The main job: start the whole system on real servers, import the 10,000-row sample into a new org.
demo: install
	$(BIN)/bulkops dev up
	$(BIN)/bulkops import data/users-10k.csv --org $(ORG)
	@echo "The stack keeps running (bulkops dev status); stop it with: $(BIN)/bulkops dev down"

test: install
	$(BIN)/pytest -q

down:
	$(BIN)/bulkops dev down

bench: install
	$(BIN)/python -m bench
