# Two commands on a fresh machine:  `make run`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test faults bench protos lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[hyperscan,test,dev]'
	touch $(STAMP)

install: $(STAMP)

## Start the gateway on the default pipeline (OTLP in on 4317/4318, debug exporter to stderr).
run: $(STAMP)
	$(BIN)/otelgw run --config configs/default.yaml

## Run the whole test suite (installs Debian's prometheus and alertmanager for the real-server tests when root).
test: $(STAMP)
	bash tests/install-test-servers.sh
	$(BIN)/python -m pytest

## The fault-injection suite, randomized: OTELGW_FAULT_RUNS seeds of each case (make test runs one).
faults: $(STAMP)
	bash tests/install-test-servers.sh
	OTELGW_FAULT_RUNS=$${OTELGW_FAULT_RUNS:-20} $(BIN)/python -m pytest -q -s tests/faults

## Print throughput figures next to the ceiling measured in the same run.
bench: $(STAMP)
	$(BIN)/python -m bench.passthrough
	$(BIN)/python -m bench.tail_sampling
	$(BIN)/python -m bench.jaeger_loki
	$(BIN)/python -m bench.kpi
	$(BIN)/python -m bench.redaction
	$(BIN)/python -m bench.filelog
	$(BIN)/python -m bench.scrape

## Regenerate gateway/protos from protos/*.proto (a test fails when they disagree).
protos: $(STAMP)
	$(BIN)/python protos/generate.py

lint: $(STAMP)
	$(BIN)/ruff check gateway plugins tests bench
	$(BIN)/mypy gateway plugins

clean:
	rm -rf $(VENV) *.egg-info
