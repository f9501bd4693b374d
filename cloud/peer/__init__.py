"""Peer servers for side-by-side benchmarks (not imported by the service)."""
