# Two commands set up a fresh machine: `make demo` (the main job) and `make test` (every gate); `make quick` runs the
# fast tests while editing.
# Each creates the venvs and node_modules from pinned files first, and skips that when nothing changed.
SHELL := /bin/bash
.DEFAULT_GOAL := demo

VENV := .venv
TOOLS_VENV := .venv-tools
# The step runtime (requirements-steps.txt): the step scripts run locally on the scikit-learn image's Python and
# libraries. Its Python 3.10: python3.10 on PATH (asked for its real path: a pyenv shim may not run), else pyenv's
# (PYENV_ROOT, else ~/.pyenv).
STEPS_VENV := .venv-steps
# training_engine xgboost's runtime (requirements-xgboost.txt): train_xgboost.py on the XGBoost image's Python 3.10 and
# libraries, the same interpreter.
XGBOOST_VENV := .venv-xgboost
STEPS_BASE_PYTHON := $(or $(shell python3.10 -c 'import sys; print(sys.executable)' 2>/dev/null),$(lastword $(wildcard $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions/3.10.*/bin/python3.10)))
PYTHON := $(VENV)/bin/python
ENV ?= dev
BASE ?= main

# Node.js 22 and the CDK CLI come from node_modules (package.json), never from a global install.
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)
export CDK_DISABLE_CLI_TELEMETRY := true
# Bytecode is written, even where the machine sets PYTHONDONTWRITEBYTECODE: pytest keeps its rewritten test modules and
# every process skips recompiling what it imports (seconds per pytest worker and per step process). The __pycache__
# folders are git-ignored, and the Lambda assets exclude them (platform_constructs/training_trigger.py), so no asset
# hash depends on them.
unexport PYTHONDONTWRITEBYTECODE
CDK := cdk --no-notices

.PHONY: deps synth demo test quick lint snapshots review deploy deploy-target bench lock clean

# A venv is tied to its folder (absolute paths in its scripts, the editable install's mapping): when the checkout has
# moved, both venvs are rebuilt from the pins.
ifneq ($(wildcard $(VENV)),)
ifneq ($(shell cat $(VENV)/.location 2>/dev/null),$(CURDIR))
$(info the checkout moved to $(CURDIR): rebuilding $(VENV), $(TOOLS_VENV), $(STEPS_VENV) and $(XGBOOST_VENV))
$(shell rm -rf $(VENV) $(TOOLS_VENV) $(STEPS_VENV) $(XGBOOST_VENV))
endif
endif

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	echo "$(CURDIR)" > $(VENV)/.location
	touch $@

$(TOOLS_VENV)/.installed: requirements-tools.txt constraints-tools.txt
	test -x $(TOOLS_VENV)/bin/python || python3 -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-tools.txt -c constraints-tools.txt
	touch $@

# A runtime of a step container's Python (3.10) and libraries, with steplib linked in (the step scripts import it, as
# from the zip or folder they ship with); nothing else of the checkout is importable there, as in the container.
# $(1): the venv, $(2): the pins (requirements-$(2).txt + constraints-$(2).txt), $(3): what it is, for the error.
define container_runtime
$(1)/.installed: requirements-$(2).txt constraints-$(2).txt
	@test -n "$$(STEPS_BASE_PYTHON)" || { echo "error: the $(3) needs Python 3.10: install it so python3.10 is on PATH (e.g. pyenv install 3.10)" >&2; exit 1; }
	test -x $(1)/bin/python || $$(STEPS_BASE_PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-$(2).txt -c constraints-$(2).txt
	ln -sfn $$(CURDIR)/steplib $$$$($(1)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/steplib
	touch $$@
endef
$(eval $(call container_runtime,$(STEPS_VENV),steps,step runtime (the scikit-learn image's)))
$(eval $(call container_runtime,$(XGBOOST_VENV),xgboost,XGBoost runtime (the XGBoost image's)))

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The checkout itself, editable and without dependencies (the pins above stay the only source of packages): this
# installs the `mlops` entry point and makes the project's packages importable from any folder.
$(VENV)/.project: $(VENV)/.installed pyproject.toml
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

deps: $(VENV)/.installed $(VENV)/.project $(TOOLS_VENV)/.installed $(STEPS_VENV)/.installed $(XGBOOST_VENV)/.installed \
	node_modules/.installed

## synth: synthesize every stack of the $(ENV) unit into cdk.out (offline, no credentials).
synth: deps
	$(CDK) synth --quiet -c env=$(ENV)
	@echo "synthesized $(ENV) unit into cdk.out/"

## demo: the main job. Synthesize, then run both pipelines locally from those definitions on the bundled sample
## data (mlops demo).
demo: synth
	$(VENV)/bin/mlops demo --env $(ENV)

## lint: ruff (style, imports, the complexity cap C901) and mypy (strict where pyproject.toml says).
lint: deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

## test: every quality gate (ruff, assertions, cdk-nag, cfn-lint, checkov, snapshots, handlers).
# --no-loadscope-reorder: xdist would hand out files by test count, leaving the long files with few tests (the README's,
# the end-to-end runs) for last; tests/conftest.py puts the files with heavy tests first instead.
test: lint
	$(PYTHON) -m pytest -n auto --dist loadfile --no-loadscope-reorder

## quick: the tests that take seconds, for the edit-test loop: every test not marked heavy (no pipeline runs, demo,
## gates, whole-unit synths or external tools; tests/conftest.py), no lint. `make test` before a commit.
# The files marked heavy as a whole are not even imported (their imports alone cost seconds in every worker).
HEAVY_TEST_FILES = $(shell grep -rlE --include='test_*.py' '^pytestmark = pytest\.mark\.heavy' tests)
quick: deps
	$(PYTHON) -m pytest -n auto --dist loadfile -m "not heavy" $(addprefix --ignore=,$(HEAVY_TEST_FILES))

## snapshots: rewrite the template snapshots after a reviewed change.
snapshots: deps
	UPDATE_SNAPSHOTS=1 $(PYTHON) -m pytest tests/infra/test_snapshots.py

## review: what `cdk diff --template` shows between BASE (a git revision) and the working tree, per stack.
review: deps
	$(PYTHON) -m tools.review --base $(BASE) --env $(ENV)

## deploy: deploy every stack of the $(ENV) unit (dev, staging or prod) with the AWS credentials of the environment, no
## prompt (the change was reviewed in its pull request). CI runs it after assuming the unit's deploy role through OIDC.
# '**', not --all: --all deploys top-level stacks only, and every stack of this app sits in the unit's Stage.
deploy: deps
	$(CDK) deploy '**' -c env=$(ENV) --require-approval never

## deploy-target: the account and region of the $(ENV) unit as `account=...` and `region=...` lines (CI checks the
## assumed role's account against it).
deploy-target: $(VENV)/.project
	@$(PYTHON) -c "$$DEPLOY_TARGET" "$(ENV)"

define DEPLOY_TARGET
import sys
from config import ConfigError, load_config
try:
    config = load_config(env=sys.argv[1])
except ConfigError as error:
    sys.exit(str(error))
print(f"account={config.account}")
print(f"region={config.region}")
endef
export DEPLOY_TARGET

bench: deps
	$(PYTHON) bench/synth_time.py
	$(PYTHON) bench/definition_time.py
	$(PYTHON) bench/handler_cold_start.py
	$(PYTHON) bench/local_run.py
	$(PYTHON) bench/endpoint.py

## lock: re-pin the full transitive dependency set after editing requirements*.txt (constraints-steps.txt and
## constraints-xgboost.txt keep their header comments).
lock:
	rm -rf /tmp/lock-venv && python3 -m venv /tmp/lock-venv
	/tmp/lock-venv/bin/pip install --quiet -r requirements-dev.txt
	/tmp/lock-venv/bin/pip freeze --all --exclude pip --exclude setuptools > constraints.txt
	rm -rf /tmp/lock-venv && python3 -m venv /tmp/lock-venv
	/tmp/lock-venv/bin/pip install --quiet -r requirements-tools.txt
	/tmp/lock-venv/bin/pip freeze --all --exclude pip --exclude setuptools > constraints-tools.txt
	rm -rf /tmp/lock-venv && $(STEPS_BASE_PYTHON) -m venv /tmp/lock-venv
	/tmp/lock-venv/bin/pip install --quiet -r requirements-steps.txt
	sed -n '/^#/p' constraints-steps.txt > /tmp/lock-steps-header.txt
	/tmp/lock-venv/bin/pip freeze --all --exclude pip --exclude setuptools | cat /tmp/lock-steps-header.txt - > constraints-steps.txt
	rm -rf /tmp/lock-venv && $(STEPS_BASE_PYTHON) -m venv /tmp/lock-venv
	/tmp/lock-venv/bin/pip install --quiet -r requirements-xgboost.txt
	sed -n '/^#/p' constraints-xgboost.txt > /tmp/lock-steps-header.txt
	/tmp/lock-venv/bin/pip freeze --all --exclude pip --exclude setuptools | cat /tmp/lock-steps-header.txt - > constraints-xgboost.txt
	rm -rf /tmp/lock-venv /tmp/lock-steps-header.txt

clean:
	rm -rf cdk.out .review .local .pytest_cache .ruff_cache .mypy_cache .cache
