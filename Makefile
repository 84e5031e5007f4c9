# Agora — the two commands: `make run` (demo pipeline) and `make test` (whole suite).
# Everything installs itself: uv into .tools/, the locked venv into .venv/.

SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
VENV := .venv
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)
# Imports of pandas/airflow/GX are ~10x slower without bytecode: compile once, keep it.
unexport PYTHONDONTWRITEBYTECODE
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False

.PHONY: run test setup manifest lint kpis dashboards dashboards-stop bench clean report notice docs-images

run: setup ## Run the whole pipeline through Airflow on the offline demo community
	$(VENV)/bin/agora demo

test: setup ## Run the whole test suite
	$(VENV)/bin/pytest

setup: $(VENV)/.synced manifest

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --quiet --compile-bytecode
	touch $@

manifest: $(VENV)/.synced ## dbt manifest, which the transform DAG (Cosmos) reads at parse time
	$(VENV)/bin/python -m agora.warehouse parse

dashboards: $(UV) ## Superset on 127.0.0.1:8088 with the Community health dashboard (own venv, state in .superset/)
	dashboards/run.sh up

DEMO_CONFIG := data/demo/agora.yml
report: setup ## The latest complete month's report (HTML + PDF) into data/reports/<YYYY-MM>/ (after `make run`)
	$(VENV)/bin/agora report --config $${AGORA_CONFIG:-$(DEMO_CONFIG)}

notice: setup ## The public notice of what is measured (notice.md + notice.html) into data/notice/
	$(VENV)/bin/agora notice --config $${AGORA_CONFIG:-$(DEMO_CONFIG)}

docs-images: setup ## README images from what `make run` published: docs/report.png and docs/dashboard.png
	$(VENV)/bin/agora report --config $(DEMO_CONFIG) --out data/reports/example
	$(VENV)/bin/python -m agora.report screenshot data/reports/example/report.html docs/report.png
	dashboards/run.sh up
	SUPERSET_ADMIN_PASSWORD=$${SUPERSET_ADMIN_PASSWORD:-$$(cat .superset/admin_password)} PYTHONPATH=$(CURDIR) \
		.superset/venv/bin/python -m dashboards.browser --url http://127.0.0.1:$${SUPERSET_PORT:-8088} --out docs/dashboard.png >/dev/null

dashboards-stop: ## Stop Superset (gunicorn master and workers, by PID)
	dashboards/run.sh stop

EVENTS ?= 1000000
bench: setup ## Benchmark the full and incremental paths on EVENTS synthetic events (docs/benchmarks.md)
	$(VENV)/bin/python -m bench --events $(EVENTS)

lint: setup ## ruff, ruff format and sqlfluff, as `make test` runs them (tests/test_lint.py)
	$(VENV)/bin/pytest -q tests/test_lint.py

kpis: setup ## Rewrite what is derived from the KPI registry (dbt_project/seeds/kpi_definitions.csv): docs/kpis.md's catalog, the headline cards' list
	$(VENV)/bin/python -m agora.kpis

clean: ## Remove generated data (keeps the venvs)
	rm -rf data .local/airflow dbt_project/target
