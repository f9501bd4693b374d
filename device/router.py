"""The device router: per request, answer locally, escalate to the cloud, or split the model.

The life of a request is ``device/flow.py``'s (the code the simulator runs); the router drives it
with the wall clock, the device's ONNX Runtime sessions and one bounded
:class:`~device.cloud_client.CloudClient` call per attempt. Every request gets an answer: when
the cloud cannot be reached in time the device's own answer is returned, flagged ``degraded``.
Each answer is appended to the telemetry log (JSON lines) with its stage times, decision, bytes
and result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from edgesplit.device.cloud_client import Attempt, CloudClient
from edgesplit.device.flow import (
    Call,
    Called,
    ClientConfig,
    Compute,
    Computed,
    Effect,
    Outcome,
    Part,
    Remote,
    RequestFlow,
    Route,
    Wait,
)
from edgesplit.device.policy import LinkEstimator, PolicyConfig, RequestCosts
from edgesplit.device.resilience import CircuitBreaker
from edgesplit.device.telemetry import TelemetryLog

Prediction = tuple[str, float]  # (label, confidence)


@dataclass
class Task:
    """One workload's hooks: how to answer it here, in the cloud, or split."""

    name: str
    local: Callable[[Any], Prediction]
    cloud_model: str
    cloud_inputs: Callable[[Any], dict[str, np.ndarray]]
    parse_cloud: Callable[[dict[str, np.ndarray]], Prediction]
    split_model: str | None = None  # the cloud model that runs layers k..end
    split_index: int | None = None  # the cut it expects
    split_head: Callable[[Any], dict[str, np.ndarray]] | None = None  # layers 0..k, as its feed
    parse_split: Callable[[dict[str, np.ndarray]], Prediction] | None = None
    # Cascade: the final answer from (device, cloud) predictions; None = the cloud's answer.
    combine: Callable[[Prediction, Prediction], Prediction] | None = None
    # The cloud model for this input, where it depends on the input's form (the earbuds send
    # Opus audio to one model and an MCU's MFCC window to another); None = ``cloud_model``.
    cloud_model_for: Callable[[Any], str] | None = None


@dataclass
class Answer:
    request: int
    workload: str
    label: str
    confidence: float
    route: Route
    decision: str  # the policy's first move: local | cloud | split
    reason: str
    degraded: bool = False  # the policy wanted the cloud; the device answered alone
    error: str | None = None  # why the cloud did not answer
    device_ms: float = 0.0
    network_ms: float = 0.0  # total cloud call time minus the server's own time
    server_ms: float = 0.0
    client_wait_ms: float = 0.0  # failed attempts: timeouts and backoff
    total_ms: float = 0.0
    bytes_up: int = 0
    bytes_down: int = 0
    attempts: int = 0
    hedged: bool = False  # the deadline cut the cloud short
    stages: list[str] = field(default_factory=list)  # the flow's trace, when tracing
    extra: dict[str, Any] = field(default_factory=dict)


class Router:
    def __init__(
        self,
        policy: PolicyConfig,
        client: CloudClient | None,
        estimator: LinkEstimator,
        telemetry: TelemetryLog | None = None,
        trace: bool = False,
    ) -> None:
        self.policy, self.client, self.estimator = policy, client, estimator
        self.telemetry = telemetry
        self.trace = trace
        self.count = 0
        self._breaker = CircuitBreaker()  # used only without a client (never called)
        self._pool: ThreadPoolExecutor | None = None  # hedging: the call and the device at once

    def flow(self) -> RequestFlow:
        """The shared flow over this router's current policy, client, breaker and estimate."""
        c = self.client
        f = RequestFlow(
            self.policy,
            c.config() if c else ClientConfig(),
            c.breaker if c else self._breaker,
            self.estimator,
            c.clock if c else time.monotonic,
            c.rng.random if c else (lambda: 0.5),
            self.trace,
        )
        f.reachable = c is not None
        return f

    def handle(self, task: Task, x: Any, costs: RequestCosts, **extra: Any) -> Answer:
        """Answer one request; never raises for a cloud failure."""
        t0 = time.perf_counter()
        self.count += 1
        ans = Answer(self.count, task.name, "", 0.0, Route.DEVICE, "", "", extra=extra)
        gen = self.flow().run(costs)
        feed: dict[str, Any] = {}
        reply: Computed | Called | None = None
        try:
            while True:
                reply = self._do(gen.send(reply), ans, task, x, feed)
        except StopIteration as stop:
            out: Outcome = stop.value
        ans.label, ans.confidence, ans.route = out.label, out.confidence, out.route
        ans.decision, ans.reason, ans.degraded = out.decision, out.reason, out.degraded
        ans.error, ans.attempts, ans.hedged, ans.stages = (
            out.error,
            out.attempts,
            out.hedged,
            out.trace,
        )
        if out.route == Route.ESCALATED and task.combine is not None and "local" in feed:
            # The task's own rule for an escalated answer (e.g. a confident device out-of-scope is
            # not overridden by a less confident cloud).
            ans.label, ans.confidence = task.combine(feed["local"], (ans.label, ans.confidence))
        ans.total_ms = (time.perf_counter() - t0) * 1e3
        if self.telemetry is not None:
            self.telemetry.write(asdict(ans) | {"policy": self.policy.kind})
        return ans

    def _do(
        self, eff: Effect, ans: Answer, task: Task, x: Any, feed: dict
    ) -> Computed | Called | None:
        """Carry out one step of the flow on this device and this network."""
        if isinstance(eff, Wait):
            time.sleep(eff.ms / 1e3)
            ans.client_wait_ms += eff.ms
            return None
        if isinstance(eff, Compute):
            t = time.perf_counter()
            if eff.part == Part.WHOLE:
                label, conf = task.local(x)
                ans.device_ms += (time.perf_counter() - t) * 1e3
                feed["local"] = (label, conf)
                return Computed(label, conf)
            if task.split_head is None or task.split_model is None or task.parse_split is None:
                raise ValueError(
                    f"{task.name}: the policy chose a split but the task has no split path"
                )
            if eff.split_index != task.split_index:
                raise ValueError(
                    f"{task.name}: the cloud serves the cut at {task.split_index}, "
                    f"not {eff.split_index}"
                )
            feed["split"] = task.split_head(x)
            ans.device_ms += (time.perf_counter() - t) * 1e3
            ans.extra["split_index"] = task.split_index
            return Computed()
        assert isinstance(eff, Call)
        return self._call(eff, ans, task, x, feed)

    def _call(self, eff: Call, ans: Answer, task: Task, x: Any, feed: dict) -> Called:
        if self.client is None:
            return Called(False, "unreachable", retryable=False)
        parse: Callable[[dict[str, np.ndarray]], Prediction]
        if eff.remote == Remote.SPLIT:
            assert task.split_model is not None and task.parse_split is not None
            model, inputs, parse = task.split_model, feed["split"], task.parse_split
        else:
            model = task.cloud_model_for(x) if task.cloud_model_for else task.cloud_model
            inputs, parse = task.cloud_inputs(x), task.parse_cloud
        t = time.perf_counter()
        if eff.hedge_ms is None:
            got = self.client.attempt(model, inputs, eff.timeout_ms)
        else:
            hedged = self._hedged(eff, ans, task, x, model, inputs, t)
            if isinstance(hedged, Called):
                return hedged
            got = hedged
        res, ex = got.called, got.exchange
        if not res.ok or ex is None or got.outputs is None:
            ans.client_wait_ms += (time.perf_counter() - t) * 1e3
            return res
        server = ex.server_ms or 0.0
        ans.client_wait_ms += max(0.0, (time.perf_counter() - t) * 1e3 - ex.total_ms)
        ans.server_ms += server
        ans.network_ms += max(0.0, ex.total_ms - server)
        ans.bytes_up += ex.sent_bytes
        ans.bytes_down += ex.received_bytes
        res.label, res.confidence = parse(got.outputs)
        return res

    def _hedged(
        self,
        eff: Call,
        ans: Answer,
        task: Task,
        x: Any,
        model: str,
        inputs: dict[str, np.ndarray],
        t0: float,
    ) -> Attempt | Called:
        """The call, and from ``eff.hedge_ms`` on the device's own answer too: the first wins.

        A cloud answer that loses is dropped (its thread ends at the client's timeout)."""
        assert self.client is not None
        if self._pool is None:
            self._pool = ThreadPoolExecutor(4, thread_name_prefix="router-hedge")
        call: Future[Attempt] = self._pool.submit(
            self.client.attempt, model, inputs, eff.timeout_ms
        )
        wait([call], timeout=(eff.hedge_ms or 0.0) / 1e3)
        if call.done() and (call.result().called.ok or not call.result().called.retryable):
            return call.result()
        if call.done():  # failed before the hedge: the flow decides whether to retry
            ans.client_wait_ms += (time.perf_counter() - t0) * 1e3
            return call.result().called
        hedge_at = time.perf_counter()
        local: Future[tuple[str, float, float]] = self._pool.submit(_timed, task.local, x)
        racing: list[Future[Any]] = [call, local]
        wait(racing, return_when=FIRST_COMPLETED)
        if call.done() and call.result().called.ok and not local.done():
            return call.result()
        label, confidence, device_ms = local.result()
        ans.device_ms += device_ms
        ans.client_wait_ms += (hedge_at - t0) * 1e3
        return Called(False, "hedged", label=label, confidence=confidence)


def _timed(fn: Callable[[Any], Prediction], x: Any) -> tuple[str, float, float]:
    t = time.perf_counter()
    label, confidence = fn(x)
    return label, confidence, (time.perf_counter() - t) * 1e3
