# Two entry points for a newcomer: `make run` and `make test`. Everything else is a step of those.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run crawl test lint geoip prepare-dbt bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check nostr_assets tests benchmarks

test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest -q

# The crawler on the bootstrap relay list, for the last closed hour.
crawl: setup
	$(BIN)/nostr-analytics crawl --relays-file data/relays.txt --since -2h --until -1h --out data/last_hour.jsonl

run: crawl

# Real geolocation databases in data/geoip/: DB-IP City Lite (no account needed), plus
# GeoLite2 City and ASN when MAXMIND_LICENSE_KEY is set.
geoip: setup
	$(BIN)/python scripts/fetch_geoip.py

clean:
	rm -rf $(VENV) dbt_project/target
