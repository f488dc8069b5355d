# Creative-AI models as a service. Two commands for a newcomer: `make demo`, then `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
SITE = $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
TRITON_VENV := .venv-triton
MODELS ?= models
PROTO_SRC := $(shell find protos -name '*.proto')


.PHONY: system venv protos lint-protos models gateway up down status demo test bench fuzz load clean help clients

help:
	@echo "make demo    build everything on a fresh machine, bring the suite up, show it working"
	@echo "make test    run the test suite (builds what it needs)"
	@echo "make up / make down / make status   local cluster without Docker"
	@echo "make models  build every model from offline sources (cached)"
	@echo "make bench   benchmarks (ratios against their baselines)"
	@echo "make fuzz    the fuzzer with 10,000 requests per RPC (make test runs 300)"
	@echo "make load    200 clients through the gateway for 60 s, checked"

$(BIN)/.installed: requirements/*.txt
	test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements/dev.txt -r requirements/build.txt
	$(BIN)/pip install -q --no-deps -r requirements/sources.txt
	touch $@

$(TRITON_VENV)/.installed: requirements/triton.txt
	test -x $(TRITON_VENV)/bin/python || $(PY) -m venv $(TRITON_VENV)
	$(TRITON_VENV)/bin/pip install -q -r requirements/triton.txt
	touch $@

# Source folders go on the venv's path through a .pth file: imports are absolute, no install step per package.
$(BIN)/.paths: $(BIN)/.installed $(wildcard services/*)
	printf '%s\n' $(CURDIR)/gen/python $(CURDIR)/libs/runtime $(CURDIR)/libs/modelbuild \
	  $(wildcard $(CURDIR)/services/*) $(CURDIR)/gateway $(CURDIR)/clients/python $(CURDIR)/tools > $(SITE)/maas-dev.pth
	printf '#!/bin/sh\nexec "%s" -m maas_client "$$@"\n' $(CURDIR)/$(PYTHON) > $(BIN)/maas && chmod +x $(BIN)/maas
	touch $@

venv: $(BIN)/.paths $(TRITON_VENV)/.installed

# Debian packages (FluidSynth + GM soundfont, PostgreSQL): installs only what is missing.
system:
	bash tools/system-deps.sh

# Generated code is a build step, never committed.
gen/python/.stamp: $(PROTO_SRC) $(BIN)/.installed
	rm -rf gen/python && mkdir -p gen/python
	$(PYTHON) -m grpc_tools.protoc -Iprotos --python_out=gen/python --pyi_out=gen/python \
	  --grpc_python_out=gen/python $(PROTO_SRC)
	touch $@

protos: gen/python/.stamp

lint-protos: $(BIN)/.installed
	cd protos && ../$(BIN)/buf lint

models: venv protos
	$(PYTHON) -m maas_modelbuild --repository $(MODELS)

up: system venv protos models gateway
	$(PYTHON) -m maas_cluster up

down:
	@test -x $(PYTHON) && $(PYTHON) -m maas_cluster down || true

status:
	$(PYTHON) -m maas_cluster status

# The nlp models answering, then the showcase through the gateway: one sentence in, a song out (analysis,
# lyrics, MIDI, WAV, piano roll, similar pieces) in out/studio-demo/.
demo: up
	$(PYTHON) -m maas_cluster demo
	$(BIN)/maas --target $${MAAS_TARGET:-127.0.0.1:50051} studio --seed 7 --out out/studio-demo \
	  "A sad, slow lament for a lost love on a dark and rainy night"

test: system venv protos models lint-protos clients gateway
	$(PYTHON) -m pytest

# The gateway: a Go program built offline with Debian's Go packages (`make system`); `python -m maas_gateway` runs it.
gateway/build/maas-gateway: $(wildcard gateway/cmd/maas-gateway/*.go) gateway/build.sh
	bash gateway/build.sh

gateway: system gateway/build/maas-gateway

# Example clients in other languages (tests/clients/): Node.js packages from package-lock.json, the Go client built
# offline from protos/ with Debian's Go packages (`make system`).
clients/node/node_modules/.installed: clients/node/package.json clients/node/package-lock.json
	cd clients/node && npm ci --no-audit --no-fund
	touch $@

clients/go/build/maas-go: $(PROTO_SRC) $(wildcard clients/go/maas-go/*.go) clients/go/build.sh
	bash clients/go/build.sh

clients: system clients/node/node_modules/.installed clients/go/build/maas-go

bench: venv protos models gateway
	$(PYTHON) -m maas_bench

# 200 clients through the gateway for 60 s on a mixed load, on a suite of its own: per operation calls, codes, p50/p99
# and time to first event, each server's memory before and after; fails on INTERNAL/UNAVAILABLE, slow refusals,
# a first event p99 over 2 s, memory growth over 10 % or a lost interaction.
load: system venv protos models gateway
	$(PYTHON) -m maas_load

# The fuzzer with a large budget (make test runs it with 300 requests per RPC): every RPC of every service, straight
# and through the gateway, on a suite of its own; the counts are printed. MAAS_FUZZ_EXAMPLES to change it.
fuzz: system venv protos models gateway
	MAAS_FUZZ_EXAMPLES=$${MAAS_FUZZ_EXAMPLES:-10000} $(PYTHON) -m pytest tests/fuzz -p no:cacheprovider

clean:
	rm -rf gen .run
