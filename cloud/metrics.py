"""Prometheus metrics of one server instance (its own registry, so tests can run several).

Label values are bounded: the model label takes only configured model names (anything else is
counted under ``UNKNOWN_MODEL``) and the status label only HTTP codes the server sends, so
requests with made-up names cannot grow ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.gc_collector import GCCollector

LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
UNKNOWN_MODEL = "_unknown"
CLIENT_CLOSED = 499  # nginx's code for "client closed request"


class Metrics:
    def __init__(self, models: Iterable[str] = ()) -> None:
        self.models = frozenset(models)
        self.registry = CollectorRegistry()
        # python_gc_*: collections and their yield per generation (a collector's pauses hold
        # every request; see cloud/http.py GC_YOUNG_THRESHOLD).
        GCCollector(registry=self.registry)
        self.requests = Counter(
            "edgesplit_requests",
            "Inference requests by model and HTTP status (499 = client closed)",
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
            "Requests waiting in a model's queue",
            ["model"],
            registry=self.registry,
        )
        self.admission_limit = Gauge(
            "edgesplit_admission_limit",
            "Requests a model admits now: queue + instances, or fewer while a standing queue is "
            "shed under overload (cloud/standing_queue.py)",
            ["model"],
            registry=self.registry,
        )
        self.inflight = Gauge(
            "edgesplit_inflight_requests", "Inference requests being served", registry=self.registry
        )
        self.batch_efficiency = Gauge(
            "edgesplit_batch_efficiency",
            "Probe at load: time(batch n) / (n x time(batch 1)); below 1 batching pays",
            ["model"],
            registry=self.registry,
        )
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}
        self._refused: dict[str, int] = {}  # 429s counted cheaply, not yet in ``requests``

    def count_refusal(self, label: str) -> None:
        """A 429 answered from the headers: counted in a dict and added to ``requests`` once a
        second or before a scrape (at thousands a second, a Prometheus update each costs)."""
        self._refused[label] = self._refused.get(label, 0) + 1

    def record_refusals(self) -> None:
        for label, n in self._refused.items():
            self.requests.labels(label, "429").inc(n)
        self._refused.clear()

    def exposition(self) -> bytes:
        """The Prometheus text format, counts up to now included."""
        self.record_refusals()
        return generate_latest(self.registry)

    def label(self, model: str) -> str:
        return model if model in self.models else UNKNOWN_MODEL

    def record(self, model: str, status: int, elapsed_s: float) -> None:
        # The labelled children are kept: ``labels()`` takes a lock and builds its key each
        # call, a cost on every request. Their count is bounded as the labels are.
        key = (self.label(model), status)
        pair = self._children.get(key)
        if pair is None:
            pair = (self.requests.labels(key[0], str(status)), self.latency.labels(key[0]))
            self._children[key] = pair
        pair[0].inc()
        pair[1].observe(elapsed_s)
