"""The offline demo (`make demo`): local relays holding a generated network of the last 48
hours, the pipeline pointed at them, every mart and the dashboard built, the Dagster UI served.

``content``, ``kinds`` and ``network`` are pure (the events, from a seed); ``relays`` starts and
stops the local nostr-relay servers; ``geoip`` writes the demo's GeoIP databases, which place
the relays in invented cities; ``folder`` holds the demo's own warehouse, instance and
settings; ``backfill`` runs the asset graph (the only module importing Dagster); ``ui`` serves
it; ``run`` puts them in order. ``python -m nostr_assets.demo --help`` lists the options.
"""
