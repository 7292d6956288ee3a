"""The DuckDB warehouse: one module per raw table (tables/), the start-up schema check that
creates and upgrades them (schema.py), and landing rows idempotently (landing.py,
event_landing.py)."""
