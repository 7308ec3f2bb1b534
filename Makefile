# The two commands: `make run` and `make test`. Each bootstraps .venv itself.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
HOST ?= 127.0.0.1
# One process on the embedded default: its cache, async jobs and query coalescing are in-process.
WORKERS ?= 1
THREADS ?= 8
# ClickHouse as the event engine (EVENTS_ENGINE=chdb in-process, or CLICKHOUSE_URL for a server):
# the `clickhouse` extra is installed and its tables migrated before the demo data goes in.
CLICKHOUSE := $(if $(or $(filter chdb clickhouse,$(EVENTS_ENGINE)),$(CLICKHOUSE_URL)),1,)
ifeq ($(EVENTS_ENGINE),chdb)
# chDB opens its data directory in one process only: one worker, threads for concurrency.
override WORKERS := 1
endif

.PHONY: run test bench migrate clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

$(VENV)/.installed-clickhouse: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[clickhouse]"
	touch $@

migrate: $(VENV)/.installed $(if $(CLICKHOUSE),$(VENV)/.installed-clickhouse)
	$(PY) manage.py migrate --no-input
	$(PY) manage.py migrate_clickhouse --if-configured

DEMO := --email demo@example.com --password demo-password --organization "Demo"

run: migrate
	$(PY) manage.py collectstatic --no-input --verbosity 0
	$(PY) manage.py bootstrap $(DEMO) > /dev/null
	$(PY) manage.py generate_demo_data --events 20000 --days 60 --seed 1 --if-empty
	$(PY) manage.py create_example_insights
	$(PY) manage.py bootstrap $(DEMO) --new-api-key --scopes '*' --banner "http://$(HOST):$(PORT)"
	exec $(VENV)/bin/gunicorn insights_api.wsgi:application --bind $(HOST):$(PORT) --workers $(WORKERS) --threads $(THREADS) --access-logfile -

test: $(VENV)/.installed-dev
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed-dev
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) var/*.sqlite3* staticfiles
