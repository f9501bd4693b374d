"""One request flow, two drivers: the real router (wall clock, ONNX Runtime, sockets through the
link emulator to a real server on loopback) and the simulator (SimPy time, modelled link) run the
same request scripts; every decision and stage must agree, and the latencies too.

Timing tolerance: the real run also pays loopback HTTP, thread wake-ups and, on a busy machine,
scheduling delays the model does not have; so latencies agree within 20 % + 150 ms, generous on
purpose (a busy 2-core machine), while the stages must match exactly.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import pytest
from edgesplit.cloud.repository import DEFAULT_REPOSITORY, Repository
from edgesplit.cloud.serve import ServerThread
from edgesplit.device.cloud_client import CloudClient
from edgesplit.device.flow import Route
from edgesplit.device.link import LinkProfile
from edgesplit.device.link_emulator import LinkEmulator
from edgesplit.device.policy import POLICY_KINDS, PolicyConfig, RequestCosts, SplitOption
from edgesplit.device.resilience import CircuitBreaker
from edgesplit.device.router import Router
from edgesplit.sim.model import simulate
from edgesplit.sim.scenario import parse_scenario

ARRIVAL_S = 1.0  # the simulated request arrives here (outage windows are relative to it)


@dataclass
class Script:
    """One request and the world it meets."""

    name: str
    policy: str
    one_way_delay_ms: float = 5.0
    cut_s: tuple[float, float] | None = None  # outage window, s after the request starts
    timeout_s: float = 1.0
    retries: int = 1
    deadline_ms: float = 1000.0
    threshold: float = 0.5
    expect: list[str] = field(default_factory=list)  # the stages both must show


def _world(delay_ms: float) -> LinkProfile:
    return LinkProfile("flat", 100.0, 100.0, delay_ms, 0.0, 0.0, 0.0)


SCRIPTS = [
    *(Script(f"healthy {k}", k) for k in POLICY_KINDS),
    Script(
        "slow cloud: 3 s round trip, 1 s client timeout",
        "cloud-only",
        one_way_delay_ms=1500.0,
        expect=[
            "decide:cloud",
            "call:cloud#1:timeout",
            "wait",
            "call:cloud#2:timeout",
            "compute:whole",
            "route:fallback",
        ],
    ),
    Script(
        "outage mid-flight: the answer is lost, the reset comes when the link is back",
        "cloud-only",
        one_way_delay_ms=400.0,
        cut_s=(0.15, 1.2),
        timeout_s=2.0,
        expect=[
            "decide:cloud",
            "call:cloud#1:unreachable",
            "wait",
            "call:cloud#2:ok",
            "route:cloud",
        ],
    ),
    Script(
        "split fallback: the link is down for the whole request",
        "split",
        cut_s=(0.0, 30.0),
        timeout_s=0.3,
        expect=[
            "decide:split",
            "compute:head",
            "call:split#1:timeout",
            "wait",
            "call:split#2:timeout",
            "compute:whole",
            "route:fallback",
        ],
    ),
    Script(
        "deadline-aware hedges: the cloud is dropped at the deadline, the device answers",
        "deadline-aware",
        cut_s=(0.0, 30.0),
        timeout_s=2.0,
        deadline_ms=600.0,
        expect=["decide:cloud", "call:cloud#1:hedged", "hedge", "route:fallback"],
    ),
    Script(
        "cascade escalates and its cloud call times out",
        "cascade",
        one_way_delay_ms=1500.0,
        threshold=1.0,
        retries=0,
        expect=[
            "decide:local",
            "compute:whole",
            "escalate:cloud",
            "call:cloud#1:timeout",
            "route:fallback",
        ],
    ),
]


@pytest.fixture(scope="module")
def server(kws_workload):
    with ServerThread(
        Repository(DEFAULT_REPOSITORY, ["kws-embed", "kws-embed-opus", "kws-tail"])
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def kws(kws_workload):
    from edgesplit.device.tasks import kws_task

    from edgesplit.streams import earbuds_items

    task, items = kws_task(), earbuds_items(2, seed=5)
    x = items[0].x
    for _ in range(3):
        _, confidence = task.local(x)  # warm-up
    t = time.perf_counter()
    task.local(x)
    device_ms = (time.perf_counter() - t) * 1e3
    return task, x, confidence, device_ms


def _costs(task, deadline_ms: float, device_ms: float) -> RequestCosts:
    return RequestCosts(
        deadline_ms=deadline_ms,
        request_bytes=2400,
        response_bytes=450,
        device_ms=device_ms,
        cloud_ms=1.0,
        splits=(SplitOption(task.split_index, device_ms / 2, device_ms / 2, 32_400),),
    )


def _real(script: Script, server, task, x, costs) -> tuple[list[str], float]:
    profile = _world(script.one_way_delay_ms)
    with LinkEmulator((server.host, server.port), profile) as emu:
        client = CloudClient(
            emu.url,
            timeout_s=script.timeout_s,
            retries=script.retries,
            breaker=CircuitBreaker(3, 60.0),
        )
        cfg = PolicyConfig(script.policy, threshold=script.threshold)  # type: ignore[arg-type]
        router = Router(cfg, client, profile.estimator(), trace=True)
        timers = []
        if script.cut_s is not None:
            start, end = script.cut_s
            if start == 0:
                emu.cut(True)
            else:
                timers.append(threading.Timer(start, emu.cut, [True]))
            timers.append(threading.Timer(end, emu.cut, [False]))
            for t in timers:
                t.start()
        try:
            ans = router.handle(task, x, costs)
        finally:
            for t in timers:
                t.cancel()
    return ans.stages, ans.total_ms


def _simulated(script: Script, costs: RequestCosts, confidence: float, task):
    link = _world(script.one_way_delay_ms).scenario_link()
    if script.cut_s is not None:
        start, end = script.cut_s
        link["outages_s"] = [[ARRIVAL_S + start, end - start]]
    doc = {
        "name": "script",
        "device": {"name": "earbuds"},
        "links": [link],
        "workload": {
            "name": "earbuds-kws",
            "rate_per_s": 1.0,
            "deadline_ms": script.deadline_ms,
            "request_bytes": costs.request_bytes,
            "response_bytes": costs.response_bytes,
            "device_model_ms": costs.device_ms,
            "split_points": [
                {
                    "index": s.index,
                    "head_ms": s.head_ms,
                    "tail_ms": s.tail_ms,
                    "tensor_bytes": s.tensor_bytes,
                }
                for s in costs.splits
            ],
            "device_accuracy": 0.9,
            "cloud_accuracy": 0.95,
            # The device's measured confidence on this input decides the cascade, as it does there.
            "escalation_rate": 1.0 if confidence < script.threshold else 0.0,
        },
        "cloud": {"replicas": 1, "max_batch": 1, "batch_fixed_ms": 1.0, "per_item_ms": 0.0},
        "client": {
            "timeout_ms": script.timeout_s * 1e3,
            "retries": script.retries,
            "breaker_failures": 3,
            "breaker_reset_s": 60.0,
        },
        "policies": [{"kind": script.policy, "threshold": script.threshold}],
    }
    trace: list = []
    run = simulate(
        parse_scenario(doc), script.policy, keep_records=True, trace=trace, arrivals_s=[ARRIVAL_S]
    )
    return trace[0].trace, run.records[0].latency_s * 1e3


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.name)
def test_router_and_simulator_take_the_same_steps(script, server, kws):
    task, x, confidence, device_ms = kws
    costs = _costs(task, script.deadline_ms, device_ms)
    real_stages, real_ms = _real(script, server, task, x, costs)
    sim_stages, sim_ms = _simulated(script, costs, confidence, task)
    assert real_stages == sim_stages, (real_stages, sim_stages)
    if script.expect:
        assert real_stages == script.expect
    assert abs(real_ms - sim_ms) <= 0.2 * sim_ms + 150, (real_ms, sim_ms)
    if script.policy == "deadline-aware":  # the deadline holds, whatever the network does
        assert real_ms <= script.deadline_ms * 1.1 and sim_ms <= script.deadline_ms + 1e-6
    if "route:fallback" in real_stages:
        assert Route.FALLBACK.value == real_stages[-1].split(":")[1]
