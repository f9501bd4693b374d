"""The device's cloud client: timeouts, retries with backoff, and a circuit breaker.

It never hangs a request: each attempt has a timeout, failures are retried a bounded number of
times with jittered exponential backoff, and after repeated failures the circuit opens so the
device stops waiting on a cloud that is not there (the router then answers locally, flagged
degraded). Client errors (4xx other than 429) are not retried: the cloud is up, the request is
wrong.
"""

from __future__ import annotations

import http.client
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from edgesplit.device.oip_client import Exchange, OipClient, OipClientError
from edgesplit.device.resilience import CircuitBreaker, backoff_ms

from edgesplit.errors import CloudError

RETRYABLE_STATUS = {429, 500, 502, 503, 504}


class CloudUnavailable(CloudError):
    """The cloud could not answer (down, timing out, overloaded, or the circuit is open)."""


@dataclass
class CloudResult:
    outputs: dict[str, np.ndarray]
    exchange: Exchange
    attempts: int


class CloudClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout_s: float = 1.0,
        retries: int = 1,
        backoff_base_ms: float = 50.0,
        breaker: CircuitBreaker | None = None,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s {timeout_s}: expected seconds > 0")
        self.oip = OipClient(base_url, api_key, timeout_s)
        self.retries, self.backoff_base_ms = retries, backoff_base_ms
        self.breaker = breaker or CircuitBreaker()
        self.rng = random.Random(seed)
        self.clock, self.sleep = clock, sleep

    def available(self) -> bool:
        """False while the circuit is open: a call now would be refused without trying."""
        return not self.breaker.is_open(self.clock())

    def infer(
        self, model: str, inputs: dict[str, np.ndarray], outputs: list[str] | None = None
    ) -> CloudResult:
        last = "circuit open after repeated failures"
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(backoff_ms(attempt, self.backoff_base_ms, self.rng.random()) / 1e3)
            if not self.breaker.allow(self.clock()):
                raise CloudUnavailable(f"cloud skipped: {last}")
            try:
                out, exchange = self.oip.infer_exchange(model, inputs, outputs)
            except OipClientError as exc:
                if exc.status not in RETRYABLE_STATUS:
                    self.breaker.record_success()  # the cloud is up; this request is wrong
                    raise CloudUnavailable(f"cloud refused the request: {exc}") from exc
                last = str(exc)
            except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, refused
                last = f"{type(exc).__name__}: {exc}"
            else:
                self.breaker.record_success()
                return CloudResult(out, exchange, attempt + 1)
            self.breaker.record_failure(self.clock())
        raise CloudUnavailable(f"cloud unreachable after {self.retries + 1} attempts: {last}")
