"""Routing policies: pure decisions over plain data, shared by the device router and the simulator.

A request is answered on the device (``local``), sent whole to the cloud (``cloud``), or split:
the device runs layers 0..k and sends the tensor at the cut, the cloud runs the rest (``split``).
The cascade policy runs locally first and escalates when the device is unsure. Whatever a policy
wants, the device answers locally when the link is down or privacy mode is on (offline fallback).

Units: times in milliseconds (``_ms``), sizes in bytes (``_bytes``), rates in megabits per second
(``_mbps``). Nothing here does I/O or reads a clock, so the same code runs inside SimPy.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

PolicyKind = Literal["device-only", "cloud-only", "cascade", "split", "deadline-aware"]
POLICY_KINDS: tuple[str, ...] = ("device-only", "cloud-only", "cascade", "split", "deadline-aware")
Action = Literal["local", "cloud", "split"]


@dataclass(frozen=True)
class SplitOption:
    """One cut of the device's model (from a device profile's ``split_points``)."""

    index: int
    head_ms: float  # layers 0..k on the device
    tail_ms: float  # layers k..end, as measured on the device
    tensor_bytes: int  # the activation crossing the cut


@dataclass(frozen=True)
class RequestCosts:
    """What a request costs each way; the device's estimates, not ground truth."""

    deadline_ms: float
    request_bytes: int  # sent to the cloud when the whole input goes
    response_bytes: int
    device_ms: float  # whole model on the device
    cloud_ms: float  # whole (bigger) model in the cloud, server side
    splits: tuple[SplitOption, ...] = ()
    cloud_speedup: float = 1.0  # the cloud runs a split tail this many times faster than the device


@dataclass(frozen=True)
class LinkEstimate:
    up_mbps: float
    down_mbps: float
    rtt_ms: float
    online: bool = True  # False: the link is down or the circuit breaker is open


@dataclass(frozen=True)
class PolicyConfig:
    kind: PolicyKind = "cascade"
    threshold: float = 0.5  # cascade: escalate below this confidence
    split_index: int | None = None  # split: a fixed cut; None = the best one for the link now
    compression: float = 1.0  # split: the tensor shrinks by this factor before it is sent
    deadline_margin: float = 0.8  # deadline-aware: remote must fit in this fraction of the budget
    privacy: bool = False  # nothing leaves the device

    def __post_init__(self) -> None:
        if self.kind not in POLICY_KINDS:
            kinds = ", ".join(POLICY_KINDS)
            raise ValueError(f"policy kind {self.kind!r}: expected one of {kinds}")
        if not 0 <= self.threshold <= 1:
            raise ValueError(f"policy threshold {self.threshold}: expected a confidence in 0..1")
        if self.compression < 1:
            raise ValueError(f"policy compression {self.compression}: expected a factor >= 1")
        if not 0 < self.deadline_margin <= 1:
            raise ValueError(f"policy deadline_margin {self.deadline_margin}: expected 0 < m <= 1")


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    estimated_ms: float
    split: SplitOption | None = None
    upload_bytes: int = 0
    degraded: bool = False  # the policy wanted the cloud but the device answers alone


def transfer_ms(up_bytes: float, down_bytes: float, link: LinkEstimate) -> float:
    """One request/response exchange: a round trip plus serialisation each way (ms)."""
    return (
        link.rtt_ms
        + up_bytes * 8 / (link.up_mbps * 1e3)  # Mbit/s = 1e3 bit/ms
        + down_bytes * 8 / (link.down_mbps * 1e3)
    )


def remote_ms(costs: RequestCosts, link: LinkEstimate) -> float:
    return transfer_ms(costs.request_bytes, costs.response_bytes, link) + costs.cloud_ms


def split_ms(
    option: SplitOption, costs: RequestCosts, link: LinkEstimate, compression: float
) -> float:
    """End-to-end estimate of a split: head here, the tensor up, the tail there, the answer back."""
    return (
        option.head_ms
        + transfer_ms(option.tensor_bytes / compression, costs.response_bytes, link)
        + option.tail_ms / costs.cloud_speedup
    )


def best_split(costs: RequestCosts, link: LinkEstimate, compression: float = 1.0) -> SplitOption:
    """The cut with the lowest estimated latency now (Neurosurgeon's choice)."""
    if not costs.splits:
        raise ValueError("no split points: give the workload a device profile with split_points")
    return min(costs.splits, key=lambda o: (split_ms(o, costs, link, compression), -o.index))


def _local(reason: str, costs: RequestCosts, degraded: bool = False) -> Decision:
    return Decision("local", reason, costs.device_ms, degraded=degraded)


def _cloud(reason: str, costs: RequestCosts, link: LinkEstimate) -> Decision:
    return Decision("cloud", reason, remote_ms(costs, link), upload_bytes=costs.request_bytes)


def _split(
    option: SplitOption, cfg: PolicyConfig, costs: RequestCosts, link: LinkEstimate, reason: str
) -> Decision:
    est = split_ms(option, costs, link, cfg.compression)
    up = int(round(option.tensor_bytes / cfg.compression))
    return Decision("split", reason, est, option, up)


def decide(cfg: PolicyConfig, costs: RequestCosts, link: LinkEstimate) -> Decision:
    """The first move for a request. Cascade starts local; see :func:`should_escalate`."""
    if cfg.privacy:
        return _local("privacy mode: nothing leaves the device", costs)
    if cfg.kind == "device-only":
        return _local("device-only policy", costs)
    if cfg.kind == "cascade":
        return _local("cascade: device first", costs)
    if not link.online:
        return _local("offline: the cloud is unreachable", costs, degraded=True)
    if cfg.kind == "cloud-only":
        return _cloud("cloud-only policy", costs, link)
    if cfg.kind == "split":
        if cfg.split_index is None:
            return _split(
                best_split(costs, link, cfg.compression),
                cfg,
                costs,
                link,
                "split at the best cut for the link now",
            )
        option = next((o for o in costs.splits if o.index == cfg.split_index), None)
        if option is None:
            known = ", ".join(str(o.index) for o in costs.splits) or "none"
            raise ValueError(f"split_index {cfg.split_index}: not a split point (known: {known})")
        return _split(option, cfg, costs, link, f"split at layer {option.index}")
    # deadline-aware: the cloud sets the ceiling of intelligence, so use it when it fits in time.
    budget = cfg.deadline_margin * costs.deadline_ms
    remote = remote_ms(costs, link)
    if remote <= budget:
        return _cloud(f"remote {remote:.0f} ms fits {budget:.0f} ms", costs, link)
    if costs.splits:
        option = best_split(costs, link, cfg.compression)
        est = split_ms(option, costs, link, cfg.compression)
        if est <= budget and est < costs.device_ms and option.index > 0:
            return _split(option, cfg, costs, link, f"split {est:.0f} ms fits {budget:.0f} ms")
    return _local(f"remote {remote:.0f} ms > {budget:.0f} ms budget", costs)


def should_escalate(cfg: PolicyConfig, confidence: float, link: LinkEstimate) -> Decision | None:
    """After a local answer: the cascade's second step, or None to keep the local answer."""
    if cfg.kind != "cascade" or cfg.privacy or confidence >= cfg.threshold:
        return None
    if not link.online:
        return Decision("local", "unsure but offline: keep the local answer", 0.0, degraded=True)
    return Decision("cloud", f"confidence {confidence:.2f} < {cfg.threshold:.2f}", 0.0)


PRIOR_SAMPLES = 4  # the link prior weighs as this many observed exchanges


class LinkEstimator:
    """Running estimate of RTT and bandwidth from the last ``window`` completed exchanges.

    Each exchange is modelled as ``transit = rtt + k * serialisation at the nominal rates``; a
    least-squares fit over the window gives ``rtt`` and ``k`` (the rates are the nominal ones
    divided by ``k``). When the window holds exchanges of (nearly) one size the two cannot be
    told apart: ``k`` keeps its last value and the round trip absorbs the difference, which
    still predicts that size right. Starts from a prior (the link technology's figures).
    """

    def __init__(self, up_mbps: float, down_mbps: float, rtt_ms: float, window: int = 32) -> None:
        self.nominal_up_mbps, self.nominal_down_mbps = up_mbps, down_mbps
        self.rtt_ms, self.k = rtt_ms, 1.0
        self.prior_rtt_ms = rtt_ms
        self.window = window
        self._pairs: deque[tuple[float, float]] = deque()
        self._sx = self._sy = self._sxx = self._sxy = 0.0  # running sums over the window
        self.samples = 0

    @property
    def up_mbps(self) -> float:
        return self.nominal_up_mbps / self.k

    @property
    def down_mbps(self) -> float:
        return self.nominal_down_mbps / self.k

    def estimate(self, online: bool = True) -> LinkEstimate:
        return LinkEstimate(self.up_mbps, self.down_mbps, self.rtt_ms, online)

    def observe(self, up_bytes: float, down_bytes: float, transit_ms: float) -> None:
        """One exchange took ``transit_ms`` on the wire (total minus the server's own time)."""
        if transit_ms <= 0:
            return
        x = up_bytes * 8 / (self.nominal_up_mbps * 1e3) + down_bytes * 8 / (
            self.nominal_down_mbps * 1e3
        )
        self._add(x, transit_ms, +1)
        self._pairs.append((x, transit_ms))
        if len(self._pairs) > self.window:
            self._add(*self._pairs.popleft(), -1)
        self.samples += 1
        n = len(self._pairs)
        mean_x, mean_y = self._sx / n, self._sy / n
        var_x = max(self._sxx / n - mean_x * mean_x, 0.0)
        if n >= 4 and var_x > (0.1 * max(mean_x, 1e-9)) ** 2:
            k = (self._sxy / n - mean_x * mean_y) / var_x
            if k > 0:
                self.k = k
        fitted = max(0.0, mean_y - self.k * mean_x)
        # The prior counts as PRIOR_SAMPLES exchanges until the window has that many: one slow
        # first exchange (a radio promotion) must not convince a deadline-aware device that the
        # cloud is out of reach, since it then sends nothing and never learns otherwise.
        w = min(n, PRIOR_SAMPLES) / PRIOR_SAMPLES
        self.rtt_ms = w * fitted + (1 - w) * self.prior_rtt_ms

    def _add(self, x: float, y: float, sign: int) -> None:
        self._sx += sign * x
        self._sy += sign * y
        self._sxx += sign * x * x
        self._sxy += sign * x * y
