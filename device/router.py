"""The device router: per request, answer locally, escalate to the cloud, or split the model.

Decisions come from device/policy.py (the code the simulator runs); calls go through the
resilient :class:`~device.cloud_client.CloudClient`. Every request gets an answer: when the cloud
cannot be reached the device's own answer is returned, flagged ``degraded``. Each answer is
appended to the telemetry log (JSON lines) with its stage times, decision, bytes and result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from edgesplit.device.cloud_client import CloudClient, CloudResult, CloudUnavailable
from edgesplit.device.policy import (
    Decision,
    LinkEstimator,
    PolicyConfig,
    RequestCosts,
    decide,
    should_escalate,
)
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


@dataclass
class Answer:
    request: int
    workload: str
    label: str
    confidence: float
    route: str  # device | cloud | device+cloud | split | fallback
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
    extra: dict[str, Any] = field(default_factory=dict)


class Router:
    def __init__(
        self,
        policy: PolicyConfig,
        client: CloudClient | None,
        estimator: LinkEstimator,
        telemetry: TelemetryLog | None = None,
    ) -> None:
        self.policy, self.client, self.estimator = policy, client, estimator
        self.telemetry = telemetry
        self.count = 0

    def _online(self) -> bool:
        return self.client is not None and self.client.available()

    def handle(self, task: Task, x: Any, costs: RequestCosts, **extra: Any) -> Answer:
        """Answer one request; never raises for a cloud failure."""
        t0 = time.perf_counter()
        self.count += 1
        d = decide(self.policy, costs, self.estimator.estimate(self._online()))
        ans = Answer(
            self.count, task.name, "", 0.0, "device", d.action, d.reason, d.degraded, extra=extra
        )
        if d.action == "cloud":
            if self._cloud(ans, task.cloud_model, task.cloud_inputs(x), task.parse_cloud):
                ans.route = "cloud"
            else:
                self._local(ans, task, x)
                ans.route, ans.degraded = "fallback", True
        elif d.action == "split":
            self._split(ans, task, x, d)
        else:
            self._local(ans, task, x)
            ans.route = "fallback" if d.degraded else "device"
            esc = should_escalate(
                self.policy, ans.confidence, self.estimator.estimate(self._online())
            )
            if esc is not None:
                ans.reason = esc.reason
                local = (ans.label, ans.confidence)
                if esc.action == "cloud" and self._cloud(
                    ans, task.cloud_model, task.cloud_inputs(x), task.parse_cloud
                ):
                    ans.route = "device+cloud"
                    if task.combine is not None:
                        ans.label, ans.confidence = task.combine(local, (ans.label, ans.confidence))
                else:
                    ans.label, ans.confidence = local
                    ans.route, ans.degraded = "fallback", True
        ans.total_ms = (time.perf_counter() - t0) * 1e3
        if self.telemetry is not None:
            self.telemetry.write(asdict(ans) | {"policy": self.policy.kind})
        return ans

    def _local(self, ans: Answer, task: Task, x: Any) -> None:
        t = time.perf_counter()
        ans.label, ans.confidence = task.local(x)
        ans.device_ms += (time.perf_counter() - t) * 1e3

    def _split(self, ans: Answer, task: Task, x: Any, d: Decision) -> None:
        if task.split_head is None or task.split_model is None or task.parse_split is None:
            raise ValueError(
                f"{task.name}: the policy chose a split but the task has no split path"
            )
        if d.split is not None and d.split.index != task.split_index:
            raise ValueError(
                f"{task.name}: the cloud serves the cut at {task.split_index}, not {d.split.index}"
            )
        t = time.perf_counter()
        feed = task.split_head(x)
        ans.device_ms += (time.perf_counter() - t) * 1e3
        ans.extra["split_index"] = task.split_index
        if self._cloud(ans, task.split_model, feed, task.parse_split):
            ans.route = "split"
        else:  # finish on the device: the whole local model (the head alone cannot answer)
            self._local(ans, task, x)
            ans.route, ans.degraded = "fallback", True

    def _cloud(
        self,
        ans: Answer,
        model: str,
        inputs: dict[str, np.ndarray],
        parse: Callable[[dict[str, np.ndarray]], Prediction],
    ) -> bool:
        if self.client is None:
            ans.error = "no cloud configured"
            return False
        t = time.perf_counter()
        try:
            res: CloudResult = self.client.infer(model, inputs)
        except CloudUnavailable as exc:
            ans.error = str(exc)
            ans.client_wait_ms += (time.perf_counter() - t) * 1e3
            return False
        ex = res.exchange
        server = ex.server_ms or 0.0
        ans.client_wait_ms += max(0.0, (time.perf_counter() - t) * 1e3 - ex.total_ms)
        ans.server_ms += server
        ans.network_ms += max(0.0, ex.total_ms - server)
        ans.bytes_up += ex.sent_bytes
        ans.bytes_down += ex.received_bytes
        ans.attempts += res.attempts
        self.estimator.observe(ex.sent_bytes, ex.received_bytes, ex.total_ms - server)
        ans.label, ans.confidence = parse(res.outputs)
        return True
