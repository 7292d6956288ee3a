"""Pure Nostr protocol, no I/O: events (NIP-01 id, BIP-340), messages, relay URLs, NIP-11
documents, NIP-66 reports, relay discovery, and the verify-and-deduplicate state."""
