# Two entry points for a newcomer: `make run` and `make test`. Everything else is a step of those.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home
DAGSTER_PORT ?= 3000

.PHONY: setup prepare-dbt geoip run ui crawl test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

# dagster-dbt reads dbt's manifest at import time; only `dagster dev` builds it by itself.
prepare-dbt: setup
	$(BIN)/dagster-dbt project prepare-and-package --file nostr_assets/defs/dbt/project.py

# Real geolocation databases in data/geoip/: DB-IP City Lite (no account needed), plus
# GeoLite2 City and ASN when MAXMIND_LICENSE_KEY is set.
geoip: setup
	$(BIN)/python scripts/fetch_geoip.py

# The main job: fill the relay catalog, then serve the Dagster UI with its daemon, where the
# hourly schedule and the sensors are running from the start.
run: prepare-dbt geoip
	$(BIN)/dagster asset materialize -m nostr_assets.definitions --select raw/relay_catalog
	$(BIN)/dagster dev -w workspace.yaml -p $(DAGSTER_PORT)

# The crawler alone on the bootstrap relays, for the last closed hour.
crawl: setup
	$(BIN)/nostr-analytics crawl --relays-file data/relays.txt --since -2h --until -1h --out data/last_hour.jsonl

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: prepare-dbt
	$(BIN)/ruff check .
	$(BIN)/pytest -q

bench: setup
	$(BIN)/python benchmarks/bench_ingest.py
	$(BIN)/python benchmarks/bench_backfill.py
	$(BIN)/python benchmarks/bench_dbt.py

clean:
	rm -rf $(VENV) dbt_project/target
