"""Dagster definitions of nostr-analytics, one module per job, loaded by `definitions.py`."""
