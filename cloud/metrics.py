"""Prometheus metrics of one server instance (its own registry, so tests can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "edgesplit_requests",
            "Inference requests by model and HTTP status",
            ["model", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "edgesplit_request_latency_seconds",
            "Inference request latency (s), server side",
            ["model"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "edgesplit_batch_size",
            "Samples per executed batch",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "edgesplit_queue_depth",
            "Requests waiting in a model's batch queue",
            ["model"],
            registry=self.registry,
        )
        self.inflight = Gauge(
            "edgesplit_inflight_requests", "Inference requests being served", registry=self.registry
        )
