"""The life of one request, written once: decide, run here / there / split, budgets, retries,
breaker, hedging at the deadline, fallback and escalation.

:meth:`RequestFlow.run` is a generator over an abstract clock and transport. It *yields* what it
needs done (:class:`Compute` on the device, one cloud :class:`Call` with a timeout, a
:class:`Wait`) and is *sent* the result. Two drivers run it: the device router
(``device/router.py``: the wall clock, ONNX Runtime and sockets) and the simulator
(``sim/model.py``: SimPy time, FIFO stations and modelled links), as SimPy's ``Environment`` and
``RealtimeEnvironment`` run one model on two clocks. So the simulator can differ from the device
only where the world differs, never where the code does.

Rules it holds for every policy:

- each cloud attempt has a time budget: the client's timeout and, for the deadline-aware policy,
  a hedge: when the device must start its own answer to be ready at the deadline it starts it
  beside the open call, and the first answer wins; a later cloud answer is dropped, never
  waited for;
- failures are retried with jittered exponential backoff while the budget allows; client errors
  (4xx) are not retried; the circuit breaker refuses calls after repeated failures;
- every request gets an answer: when the cloud does not answer, the device's own answer is
  returned, flagged degraded (route ``fallback``); a split that falls back runs the whole model.

Units: ``_ms`` milliseconds, ``_s`` seconds (the clock), ``_bytes`` bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from enum import StrEnum

from edgesplit.device.policy import (
    LinkEstimate,
    LinkEstimator,
    PolicyConfig,
    RequestCosts,
    decide,
    should_escalate,
)
from edgesplit.device.resilience import CircuitBreaker, backoff_ms


class Route(StrEnum):
    """Who answered a request."""

    DEVICE = "device"
    CLOUD = "cloud"
    ESCALATED = "device+cloud"  # the device was unsure; the cloud answered
    SPLIT = "split"
    FALLBACK = "fallback"  # the policy wanted the cloud; the device answered alone

    @classmethod
    def remote(cls) -> tuple[Route, ...]:
        """Routes whose answer came from the cloud."""
        return (cls.CLOUD, cls.ESCALATED, cls.SPLIT)


class Part(StrEnum):
    WHOLE = "whole"  # the device's whole model
    HEAD = "head"  # layers 0..k of a split


class Remote(StrEnum):
    CLOUD = "cloud"  # the whole input to the cloud model
    SPLIT = "split"  # the tensor at the cut to the cloud's tail


@dataclass(frozen=True, slots=True)
class Compute:
    """Run ``part`` on the device; the driver answers with :class:`Computed`."""

    part: Part
    estimate_ms: float
    split_index: int = -1


@dataclass(frozen=True, slots=True)
class Call:
    """One cloud attempt that must answer within ``timeout_ms``; answered with :class:`Called`."""

    remote: Remote
    up_bytes: int
    timeout_ms: float
    attempt: int
    split_index: int = -1
    # Hedging: with no answer after ``hedge_ms`` the device starts its whole model (about
    # ``device_ms``) and the first answer wins; the device's comes back as error "hedged".
    hedge_ms: float | None = None
    device_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class Wait:
    """Backoff before a retry."""

    ms: float


Effect = Compute | Call | Wait


@dataclass(slots=True)
class Computed:
    label: str = ""
    confidence: float = 1.0


@dataclass(slots=True)
class Called:
    ok: bool
    error: str = ""  # timeout | unreachable | refused | hedged (the device answered first)
    retryable: bool = True  # False: the cloud is up and refused this request (4xx)
    transit_ms: float = 0.0  # on the wire: total minus the server's own time
    sent_bytes: int = 0
    received_bytes: int = 0
    label: str = ""
    confidence: float = 0.0
    # A 429's Retry-After (s): the cloud is up but full and said when to come back; the device
    # answers alone until then (0: none given).
    retry_after_s: float = 0.0


@dataclass(frozen=True)
class ClientConfig:
    """The device's cloud client (as ``device/cloud_client.py`` and a scenario's ``client``)."""

    timeout_ms: float = 1000.0
    retries: int = 1
    backoff_ms: float = 50.0  # the first retry waits about this, doubling each time


@dataclass(slots=True)
class Outcome:
    decision: str  # the policy's first move: local | cloud | split
    route: Route
    reason: str
    degraded: bool = False
    error: str | None = None  # why the cloud did not answer
    label: str = ""
    confidence: float = 0.0
    attempts: int = 0  # cloud attempts made
    hedged: bool = False  # the deadline cut the cloud short; the device answered in time
    split_index: int = -1
    trace: list[str] = field(default_factory=list)  # stages, when the flow traces


class RequestFlow:
    """Per device: the policy, the client's settings, its breaker and link estimate."""

    def __init__(
        self,
        policy: PolicyConfig,
        client: ClientConfig,
        breaker: CircuitBreaker,
        estimator: LinkEstimator,
        clock_s: Callable[[], float],
        uniform: Callable[[], float],
        trace: bool = False,
    ) -> None:
        self.policy, self.client, self.breaker = policy, client, breaker
        self.estimator, self.clock_s, self.uniform = estimator, clock_s, uniform
        self.trace = trace
        self.reachable = True  # False: no cloud configured at all

    def estimate(self) -> LinkEstimate:
        online = self.reachable and not self.breaker.is_open(self.clock_s())
        return self.estimator.estimate(online)

    def run(self, costs: RequestCosts) -> Generator[Effect, Computed | Called | None, Outcome]:
        """One request, from the decision to the answer."""
        start_s = self.clock_s()
        cfg = self.policy
        d = decide(cfg, costs, self.estimate())
        out = Outcome(d.action, Route.DEVICE, d.reason, d.degraded)
        if self.trace:
            self._note(out, f"decide:{d.action}")
        hedge_at_s = None
        if cfg.kind == "deadline-aware":  # the device must start by then to answer in time
            hedge_at_s = start_s + max(0.0, costs.deadline_ms - costs.device_ms) / 1e3
        if d.action == "cloud":
            res = yield from self._call(out, Remote.CLOUD, d.upload_bytes, hedge_at_s, costs)
            if res is not None and res.ok:
                out.route, out.label, out.confidence = Route.CLOUD, res.label, res.confidence
            else:
                yield from self._fallback(out, costs, res)
        elif d.action == "split" and d.split is not None:
            out.split_index = d.split.index
            self._note(out, "compute:head")
            yield Compute(Part.HEAD, d.split.head_ms, d.split.index)
            res = yield from self._call(out, Remote.SPLIT, d.upload_bytes, hedge_at_s, costs)
            if res is not None and res.ok:
                out.route, out.label, out.confidence = Route.SPLIT, res.label, res.confidence
            else:  # the head alone cannot answer: the whole model runs here
                yield from self._fallback(out, costs, res)
        else:
            yield from self._local(out, costs)
            out.route = Route.FALLBACK if d.degraded else Route.DEVICE
            esc = should_escalate(cfg, out.confidence, self.estimate())
            if esc is not None:
                out.reason = esc.reason
                if self.trace:
                    self._note(out, f"escalate:{esc.action}")
                res = None
                if esc.action == "cloud":
                    res = yield from self._call(out, Remote.CLOUD, costs.request_bytes, None, costs)
                if res is not None:
                    out.route = Route.ESCALATED
                    out.label, out.confidence = res.label, res.confidence
                else:  # keep the local answer
                    out.route, out.degraded = Route.FALLBACK, True
        if self.trace:
            self._note(out, f"route:{out.route.value}")
        return out

    def _fallback(
        self, out: Outcome, costs: RequestCosts, res: Called | None
    ) -> Generator[Effect, object, None]:
        """The device answers: it already did when the hedge fired, else it runs now."""
        if res is not None and res.error == "hedged":
            out.label, out.confidence = res.label, res.confidence
        else:
            yield from self._local(out, costs)
        out.route, out.degraded = Route.FALLBACK, True

    def _local(self, out: Outcome, costs: RequestCosts) -> Generator[Effect, object, None]:
        self._note(out, "compute:whole")
        got = yield Compute(Part.WHOLE, costs.device_ms)
        assert isinstance(got, Computed)
        out.label, out.confidence = got.label, got.confidence

    def _call(
        self,
        out: Outcome,
        remote: Remote,
        up_bytes: int,
        hedge_at_s: float | None,
        costs: RequestCosts,
    ) -> Generator[Effect, object, Called | None]:
        """Attempts within the budget: the answer, the device's (hedged), or None when the
        device must answer now."""
        c, breaker = self.client, self.breaker
        for attempt in range(1, c.retries + 2):
            if attempt > 1:
                wait_ms = backoff_ms(attempt - 1, c.backoff_ms, self.uniform())
                if hedge_at_s is not None and self.clock_s() + wait_ms / 1e3 >= hedge_at_s:
                    self._hedge(out)
                    return None
                self._note(out, "wait")
                yield Wait(wait_ms)
            now = self.clock_s()
            hedge_ms = None
            if hedge_at_s is not None:
                left_ms = (hedge_at_s - now) * 1e3
                if left_ms <= 0:
                    self._hedge(out)
                    return None
                if left_ms < c.timeout_ms:
                    hedge_ms = left_ms
            if not breaker.allow(now):
                out.error = (
                    "the cloud is full and asked to wait (Retry-After)"
                    if breaker.held_s
                    else "circuit open after repeated failures"
                )
                self._note(out, "breaker:open")
                return None
            out.attempts += 1
            res = yield Call(
                remote,
                up_bytes,
                c.timeout_ms,
                attempt,
                out.split_index,
                hedge_ms,
                costs.device_ms,
            )
            assert isinstance(res, Called)
            if self.trace:
                self._note(out, f"call:{remote.value}#{attempt}:{'ok' if res.ok else res.error}")
            if res.ok:
                breaker.record_success()
                self.estimator.observe(res.sent_bytes, res.received_bytes, res.transit_ms)
                out.error = None
                return res
            out.error = res.error
            if res.retry_after_s:  # full: no retry, and no call at all until it said
                breaker.hold(self.clock_s(), res.retry_after_s)
                return None
            if not res.retryable:  # the cloud is up; this request is wrong
                breaker.record_success()
                return None
            breaker.record_failure(self.clock_s())
            if res.error == "hedged":  # the device answered first; the cloud's is dropped
                self._hedge(out)
                return res
        return None

    def _hedge(self, out: Outcome) -> None:
        out.hedged = True
        if out.error is None:
            out.error = "no time left before the deadline"
        self._note(out, "hedge")

    def _note(self, out: Outcome, stage: str) -> None:
        # Callers with an f-string check ``self.trace`` first: the simulator runs millions of
        # requests untraced and should not build their stage names.
        if self.trace:
            out.trace.append(stage)
