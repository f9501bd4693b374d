"""Circuit breaker and retry backoff, with the clock passed in so SimPy can drive the same code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BreakerState = Literal["closed", "open", "half-open"]


@dataclass
class CircuitBreaker:
    """Stop calling a cloud that keeps failing; probe it again after ``reset_after_s``.

    closed: calls go through; ``failures_to_open`` consecutive failures open it.
    open: calls are refused (the device answers alone) until ``reset_after_s`` has passed.
    half-open: one probe call goes through; success closes the circuit, failure reopens it.
    :meth:`hold` opens it for as long as the cloud asked (a 429's Retry-After), then the same.
    """

    failures_to_open: int = 3
    reset_after_s: float = 5.0
    state: BreakerState = "closed"
    consecutive_failures: int = 0
    opened_at_s: float = 0.0
    probe_in_flight: bool = False
    opens: int = 0
    held_s: float = 0.0  # this opening's length, set by the cloud (Retry-After); 0: reset_after_s
    holds: int = 0  # openings the cloud asked for

    def _open_for_s(self) -> float:
        return self.held_s or self.reset_after_s

    def allow(self, now_s: float) -> bool:
        if self.state == "closed":
            return True
        if self.state == "open" and now_s - self.opened_at_s >= self._open_for_s():
            self.state, self.held_s = "half-open", 0.0
            self.probe_in_flight = False
        if self.state == "half-open" and not self.probe_in_flight:
            self.probe_in_flight = True
            return True
        return False

    def is_open(self, now_s: float) -> bool:
        """Whether a call now would be refused, without claiming the half-open probe."""
        if self.state == "closed":
            return False
        if self.state == "open":
            return now_s - self.opened_at_s < self._open_for_s()
        return self.probe_in_flight

    def record_success(self) -> None:
        self.state, self.consecutive_failures, self.probe_in_flight = "closed", 0, False
        self.held_s = 0.0

    def record_failure(self, now_s: float) -> None:
        self.consecutive_failures += 1
        if self.state == "half-open" or self.consecutive_failures >= self.failures_to_open:
            if self.state != "open":
                self.opens += 1
            self.state, self.opened_at_s, self.probe_in_flight = "open", now_s, False
            self.held_s = 0.0

    def hold(self, now_s: float, seconds: float) -> None:
        """The cloud is up but full and asked not to be called for ``seconds``: no call until
        then (not a failure: it answered, so earlier failures no longer count), then one probe."""
        self.holds, self.consecutive_failures = self.holds + 1, 0
        self.state, self.opened_at_s, self.held_s = "open", now_s, seconds
        self.probe_in_flight = False


def backoff_ms(attempt: int, base_ms: float, uniform: float) -> float:
    """Wait before retry ``attempt`` (1, 2, ...): exponential with full jitter (AWS style).

    ``uniform`` is a draw from [0, 1) supplied by the caller's seeded generator.
    """
    if attempt < 1:
        raise ValueError(f"attempt {attempt}: retries count from 1")
    return base_ms * (2 ** (attempt - 1)) * (0.5 + 0.5 * uniform)
