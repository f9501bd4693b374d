"""The device's cloud client: one attempt at a time, each with its own timeout.

Retries, backoff, the circuit breaker and the time budget belong to the request flow
(``device/flow.py``), which the simulator runs too; this client holds their settings and the
breaker's state, and makes one bounded call when the flow asks. Client errors (4xx other than
429) are reported as not retryable: the cloud is up, the request is wrong. A 429 or 503 with a
Retry-After is not retried either: the flow holds the breaker open until it has passed, so the
device answers alone rather than adding to the overload.
"""

from __future__ import annotations

import http.client
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from edgesplit.device.flow import Called, ClientConfig
from edgesplit.device.oip_client import Exchange, OipClient, OipClientError
from edgesplit.device.resilience import CircuitBreaker

from edgesplit.errors import CloudError

RETRYABLE_STATUS = {429, 500, 502, 503, 504}


class CloudUnavailable(CloudError):
    """The cloud could not answer (down, timing out, overloaded, or the circuit is open)."""


@dataclass
class Attempt:
    """One call as the client saw it: the flow's view, plus outputs and wire figures."""

    called: Called
    outputs: dict[str, np.ndarray] | None = None
    exchange: Exchange | None = None


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError)


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
        ca_cert: Path | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s {timeout_s}: expected seconds > 0")
        if retries < 0:
            raise ValueError(f"retries {retries}: expected a count >= 0")
        # https:// is verified against the system trust store, or ``ca_cert`` (a PEM CA).
        self.oip = OipClient(base_url, api_key, timeout_s, ca_cert=ca_cert)
        self.timeout_s, self.retries, self.backoff_base_ms = timeout_s, retries, backoff_base_ms
        self.breaker = breaker or CircuitBreaker()
        self.rng = random.Random(seed)
        self.clock = clock

    def config(self) -> ClientConfig:
        return ClientConfig(self.timeout_s * 1e3, self.retries, self.backoff_base_ms)

    def available(self) -> bool:
        """False while the circuit is open: a call now would be refused without trying."""
        return not self.breaker.is_open(self.clock())

    def attempt(
        self, model: str, inputs: dict[str, np.ndarray], timeout_ms: float | None = None
    ) -> Attempt:
        """One call, bounded by ``timeout_ms`` (default: the client's timeout); never raises
        for a network or server failure."""
        self.oip.timeout_s = (timeout_ms if timeout_ms is not None else self.timeout_s * 1e3) / 1e3
        try:
            out, ex = self.oip.infer_exchange(model, inputs)
        except OipClientError as exc:
            if exc.status in (429, 503) and exc.retry_after_s:  # full: come back when it said
                return Attempt(Called(False, "overloaded", False, retry_after_s=exc.retry_after_s))
            retryable = exc.status in RETRYABLE_STATUS
            error = "server-error" if retryable else f"refused: {exc}"
            return Attempt(Called(False, error, retryable))
        except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, refused
            return Attempt(Called(False, "timeout" if _is_timeout(exc) else "unreachable"))
        server = ex.server_ms or 0.0
        transit = max(0.0, ex.total_ms - server)
        called = Called(True, "", True, transit, ex.sent_bytes, ex.received_bytes)
        return Attempt(called, out, ex)
