"""Latency statistics: warm-up excluded, medians and tail percentiles, in milliseconds."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    n: int
    median_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float

    @classmethod
    def from_seconds(cls, samples_s: list[float]) -> LatencyStats:
        if not samples_s:
            raise ValueError("no latency samples")
        ms = np.asarray(samples_s, dtype=np.float64) * 1e3
        return cls(
            n=len(ms),
            median_ms=float(np.median(ms)),
            p90_ms=float(np.percentile(ms, 90)),
            p99_ms=float(np.percentile(ms, 99)),
            mean_ms=float(ms.mean()),
        )


def time_calls(fn: Callable[[], object], repeats: int, warmup: int = 3) -> LatencyStats:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed with perf_counter."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1 (got {repeats})")
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return LatencyStats.from_seconds(samples)
