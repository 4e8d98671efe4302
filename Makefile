# Three commands on a fresh machine:  `make run`,  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run demo test faults bench protos rules compat lint clean

# setup.py and the C source: the extension is built at install time (gateway/helpers/_spanscan.c).
$(STAMP): pyproject.toml setup.py gateway/helpers/_spanscan.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[hyperscan,test,dev]'
	touch $(STAMP)

install: $(STAMP)

## Start the gateway on the default pipeline (OTLP in on 4317/4318, debug exporter to stderr).
run: $(STAMP)
	$(BIN)/otelgw run --config configs/default.yaml

## The gateway with the KPI, alert, redaction and tail-sampling packs, demo traffic whose incidents trip every
## alert pack, and otelgw top in the terminal (q quits both).
## The packs' windows and for: durations run OTELGW_DEMO_SPEED (default 10) times faster; Ctrl-C stops it.
demo: $(STAMP)
	$(BIN)/otelgw demo all --speed $${OTELGW_DEMO_SPEED:-10} --top

## Run the whole test suite (installs Debian's prometheus and alertmanager for the real-server tests when root).
test: $(STAMP)
	bash tests/install-test-servers.sh
	$(BIN)/python -m pytest

## The fault-injection suite, randomized: OTELGW_FAULT_RUNS seeds of each case (make test runs one).
faults: $(STAMP)
	bash tests/install-test-servers.sh
	OTELGW_FAULT_RUNS=$${OTELGW_FAULT_RUNS:-20} $(BIN)/python -m pytest -q -s --timeout 3600 tests/faults
	OTELGW_FAULT_SERIES=1000000 $(BIN)/python -m pytest -q -s --timeout 3600 tests/test_large_registry.py

## Print throughput figures next to the ceiling measured in the same run.
bench: $(STAMP)
	$(BIN)/python -m bench.passthrough
	$(BIN)/python -m bench.pipeline
	$(BIN)/python -m bench.pipeline_inprocess
	$(BIN)/python -m bench.malloc
	$(BIN)/python -m bench.latency
	$(BIN)/python -m bench.tap
	$(BIN)/python -m bench.tail_sampling
	$(BIN)/python -m bench.jaeger_loki
	$(BIN)/python -m bench.kpi
	$(BIN)/python -m bench.span_metrics
	$(BIN)/python -m bench.tls
	$(BIN)/python -m bench.redaction
	$(BIN)/python -m bench.validate
	$(BIN)/python -m bench.durability
	$(BIN)/python -m bench.filelog
	$(BIN)/python -m bench.scrape
	$(BIN)/python -m bench.ottl
	$(BIN)/python -m bench.workers
	$(BIN)/python -m bench.large_registry

## Regenerate gateway/protos from protos/*.proto (a test fails when they disagree).
protos: $(STAMP)
	$(BIN)/python protos/generate.py

## Regenerate configs/prometheus/rules.yml from the alert packs (a test fails when they drift).
RULE_SOURCES := configs/kpi/gateway.yaml configs/kpi/callcenter.yaml configs/kpi/llm_agent.yaml configs/kpi/crm.yaml \
	configs/alerts/api.yaml configs/alerts/callcenter.yaml configs/alerts/llm_agent.yaml configs/alerts/crm.yaml
rules: $(STAMP)
	$(BIN)/otelgw rules export --format prometheus $(addprefix --config ,$(RULE_SOURCES)) \
		--include configs/prometheus/extra.yml --output configs/prometheus/rules.yml

## Regenerate docs/collector-compatibility.md, the option coverage table (a test fails when it drifts).
compat: $(STAMP)
	$(BIN)/python -m bench.compat --write
# The plugin SDK's modules, and the forward connector as an example plugin, type-check under --strict
# (tests/gateway/test_public_api.py runs the same check).
STRICT_TYPED := gateway/__init__.py gateway/component.py gateway/host.py gateway/hookspecs.py gateway/commands.py \
	gateway/errors.py gateway/configtypes.py gateway/netaddr.py gateway/wirebytes.py gateway/helpers/processor.py \
	gateway/helpers/attributes.py gateway/helpers/otlp_grpc.py gateway/helpers/shared.py gateway/helpers/wireschema.py \
	plugins/connectors/forward/__init__.py plugins/connectors/forward/config.py \
	plugins/connectors/forward/connector.py plugins/connectors/forward/factory.py

lint: $(STAMP)
	$(BIN)/ruff check gateway plugins tests bench
	$(BIN)/mypy gateway plugins
	$(BIN)/mypy --strict --follow-imports=silent $(STRICT_TYPED)

clean:
	rm -rf $(VENV) *.egg-info
