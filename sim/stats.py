"""Per-request results reduced online, so a run's memory stays flat with its request count.

Latencies go into a log-bucketed histogram (relative bucket width 0.1 %: quantiles within 0.1 %
of the exact order statistic, as HdrHistogram does); everything else is a running sum or count.
Per-request records, when wanted, are streamed to a CSV file instead of kept.
"""

from __future__ import annotations

import csv
import math
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import IO

import numpy as np
from edgesplit.device.flow import Route


class LogHistogram:
    """Counts of positive values in buckets ``[g**k, g**(k+1))``; zero and below in one bucket."""

    def __init__(self, relative_width: float = 1e-3) -> None:
        self.log_g = math.log1p(relative_width)
        self.counts: dict[int, int] = {}
        self.zeros = 0
        self.n = 0
        self.total = 0.0

    def add(self, x: float) -> None:
        self.n += 1
        self.total += x
        if x <= 0:
            self.zeros += 1
            return
        k = math.floor(math.log(x) / self.log_g)
        self.counts[k] = self.counts.get(k, 0) + 1

    def merge(self, other: LogHistogram) -> None:
        self.n += other.n
        self.total += other.total
        self.zeros += other.zeros
        for k, c in other.counts.items():
            self.counts[k] = self.counts.get(k, 0) + c

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else math.nan

    def cdf(self) -> tuple[np.ndarray, np.ndarray]:
        """Bucket midpoints (sorted) and the fraction of values at or below each."""
        keys = sorted(self.counts)
        mids = np.exp((np.array(keys, dtype=float) + 0.5) * self.log_g)
        cum = (np.cumsum([self.counts[k] for k in keys]) + self.zeros) / max(1, self.n)
        if self.zeros:
            mids, cum = np.concatenate([[0.0], mids]), np.concatenate([[self.zeros / self.n], cum])
        return mids, cum

    def quantile(self, q: float) -> float:
        """The value at quantile ``q`` in 0..1 (a bucket's midpoint; nan when empty)."""
        if not self.n:
            return math.nan
        rank = q * (self.n - 1)  # numpy's default (linear) ranks, to the bucket
        seen = self.zeros
        if rank < seen:
            return 0.0
        for k in sorted(self.counts):
            seen += self.counts[k]
            if rank < seen:
                return math.exp((k + 0.5) * self.log_g)
        return math.exp((max(self.counts) + 0.5) * self.log_g)


@dataclass(slots=True)
class Record:
    """One request's life in the simulator (seconds, bytes)."""

    id: int
    policy: str
    arrival_s: float
    decision: str = "local"  # the policy's first move: local | cloud | split
    route: str = Route.DEVICE
    split_index: int = -1
    device_wait_s: float = 0.0
    device_compute_s: float = 0.0
    link_up_s: float = 0.0
    cloud_queue_s: float = 0.0
    cloud_compute_s: float = 0.0
    link_down_s: float = 0.0
    client_wait_s: float = 0.0  # failed attempts (timeouts, resets) and backoff
    latency_s: float = 0.0
    first_token_s: float = 0.0  # generative requests: arrival to the first token
    deadline_missed: bool = False
    hedged: bool = False  # the deadline cut the cloud short
    bytes_up: int = 0
    bytes_down: int = 0
    cloud_attempts: int = 0
    batch_size: int = 0
    expected_accuracy: float = 0.0
    done: bool = False


RECORD_FIELDS = tuple(f.name for f in fields(Record))
_SUMMED = (
    "device_wait_s",
    "device_compute_s",
    "link_up_s",
    "cloud_queue_s",
    "cloud_compute_s",
    "link_down_s",
    "client_wait_s",
    "bytes_up",
    "bytes_down",
    "cloud_attempts",
    "expected_accuracy",
)


class RunStats:
    """A run's results, reduced as each request completes."""

    def __init__(self) -> None:
        self.latency_ms = LogHistogram()
        self.first_token_ms = LogHistogram()
        self.completed = 0
        self.deadline_missed = 0
        self.hedged = 0
        self.routes = {r.value: 0 for r in Route}
        self.sums = dict.fromkeys(_SUMMED, 0.0)
        self.cloud_batch_sum = 0
        self.cloud_answers = 0

    def add(self, r: Record) -> None:
        self.completed += 1
        self.latency_ms.add(r.latency_s * 1e3)
        if r.first_token_s > 0:
            self.first_token_ms.add(r.first_token_s * 1e3)
        self.deadline_missed += r.deadline_missed
        self.hedged += r.hedged
        self.routes[r.route] += 1
        s = self.sums  # spelt out: cheaper than a loop of getattr, once per request
        s["device_wait_s"] += r.device_wait_s
        s["device_compute_s"] += r.device_compute_s
        s["link_up_s"] += r.link_up_s
        s["cloud_queue_s"] += r.cloud_queue_s
        s["cloud_compute_s"] += r.cloud_compute_s
        s["link_down_s"] += r.link_down_s
        s["client_wait_s"] += r.client_wait_s
        s["bytes_up"] += r.bytes_up
        s["bytes_down"] += r.bytes_down
        s["cloud_attempts"] += r.cloud_attempts
        s["expected_accuracy"] += r.expected_accuracy
        if r.route in _REMOTE:
            self.cloud_answers += 1
            self.cloud_batch_sum += r.batch_size

    def mean(self, name: str) -> float:
        return self.sums[name] / self.completed if self.completed else 0.0


_REMOTE = {r.value for r in Route.remote()}


class CsvSink:
    """Per-request records streamed to a CSV file as they complete."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._f: IO[str] = path.open("w", newline="")
        self._w = csv.writer(self._f)
        self._w.writerow(RECORD_FIELDS)

    def __call__(self, r: Record) -> None:
        self._w.writerow(astuple(r))

    def close(self) -> None:
        self._f.close()
