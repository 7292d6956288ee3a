"""Everything that talks to the network: the address guard, the websocket connection, the
window reader and pager, the crawl, the hourly fetch, the probe, NIP-11 over HTTP, and where an
IP address is (local .mmdb files)."""
