"""Reports drawn from the marts: the network dashboard."""
