"""The SimPy model: requests flow device -> links -> cloud -> links -> device under a policy.

Processes are small generator functions; resources model contention: the device's cores, each
link direction (FIFO serialisation: bytes * 8 / rate), and cloud replicas fed by a dynamic
batcher (a batch of n takes fixed + per_item * n). Propagation delay, jitter and loss
retransmissions are added after serialisation and do not hold the link.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import simpy

from sim.links import TECHNOLOGIES, radio_energy_j
from sim.scenario import Scenario

LN10 = math.log(10.0)
MTU_BYTES = 1400


@dataclass
class Record:
    id: int
    policy: str
    arrival_s: float
    route: str = "device"  # device | cloud | device+cloud | fallback
    device_wait_s: float = 0.0
    device_compute_s: float = 0.0
    link_up_s: float = 0.0
    cloud_queue_s: float = 0.0
    cloud_compute_s: float = 0.0
    link_down_s: float = 0.0
    latency_s: float = 0.0
    deadline_missed: bool = False
    bytes_up: int = 0
    bytes_down: int = 0
    batch_size: int = 0
    expected_accuracy: float = 0.0
    done: bool = False


class LinkSim:
    def __init__(self, env: simpy.Environment, params: dict, rng: np.random.Generator) -> None:
        self.env, self.p, self.rng = env, params, rng
        self.up = simpy.Resource(env, capacity=1)
        self.down = simpy.Resource(env, capacity=1)
        self.up_bps = params["up_mbps"] * 1e6
        self.down_bps = params["down_mbps"] * 1e6
        self.jitter_mean_s = params["jitter_p90_ms"] / 1e3 / LN10  # exponential with that p90
        self.busy: list[tuple[float, float, int, int]] = []  # radio timeline (first hop only)

    def in_outage(self, t: float) -> bool:
        return any(start <= t < start + length for start, length in self.p["outages_s"])

    def transfer(self, nbytes: int, up: bool):
        """Serialise on the link (FIFO), then propagate; returns the time spent (s)."""
        t0 = self.env.now
        res, bps = (self.up, self.up_bps) if up else (self.down, self.down_bps)
        with res.request() as req:
            yield req
            start = self.env.now
            yield self.env.timeout(nbytes * 8 / bps)
            self.busy.append((start, self.env.now, nbytes if up else 0, 0 if up else nbytes))
        packets = max(1, math.ceil(nbytes / MTU_BYTES))
        losses = self.rng.binomial(packets, self.p["loss_rate"]) if self.p["loss_rate"] else 0
        delay = self.p["one_way_delay_ms"] / 1e3 + self.rng.exponential(self.jitter_mean_s)
        delay += losses * self.p["retransmit_timeout_ms"] / 1e3
        yield self.env.timeout(delay)
        return self.env.now - t0


class CloudSim:
    """Dynamic batching in front of ``replicas`` servers."""

    def __init__(self, env: simpy.Environment, scenario: Scenario) -> None:
        c = scenario.cloud
        self.env, self.cfg = env, c
        self.replicas = simpy.Resource(env, capacity=c.replicas)
        self.queue: list[tuple[float, simpy.Event]] = []
        self.arrived = env.event()
        env.process(self._dispatch())

    def submit(self) -> simpy.Event:
        done = self.env.event()
        self.queue.append((self.env.now, done))
        if not self.arrived.triggered:
            self.arrived.succeed()
        return done

    def _dispatch(self):
        delay_s = self.cfg.batch_delay_ms / 1e3
        while True:
            while not self.queue:
                self.arrived = self.env.event()
                yield self.arrived
            first = self.queue[0][0]
            while len(self.queue) < self.cfg.max_batch:
                remaining = first + delay_s - self.env.now
                if remaining <= 0:
                    break
                self.arrived = self.env.event()
                yield self.arrived | self.env.timeout(remaining)
            req = self.replicas.request()
            yield req
            batch = self.queue[: self.cfg.max_batch]
            del self.queue[: len(batch)]
            self.env.process(self._serve(batch, req))

    def _serve(self, batch, req):
        start = self.env.now
        service = (self.cfg.batch_fixed_ms + self.cfg.per_item_ms * len(batch)) / 1e3
        yield self.env.timeout(service)
        self.replicas.release(req)
        for enqueued, ev in batch:
            ev.succeed((start - enqueued, service, len(batch)))


@dataclass
class RunResult:
    scenario: Scenario
    policy: str
    records: list[Record]
    duration_s: float
    device_radio: dict = field(default_factory=dict)
    device_compute_j: float = 0.0


def simulate(scenario: Scenario, policy: str, seed: int | None = None,
             requests: int | None = None) -> RunResult:  # fmt: skip
    """Run one policy; every random draw comes from ``seed`` (default: the scenario's)."""
    rng = np.random.default_rng(scenario.seed if seed is None else seed)
    env = simpy.Environment()
    wl, dev = scenario.workload, scenario.device
    n = requests or scenario.requests
    cpu = simpy.Resource(env, capacity=dev.cores)
    links = [LinkSim(env, scenario.link_params(i), rng) for i in range(len(scenario.links))]
    cloud = CloudSim(env, scenario)
    records: list[Record] = []

    def service(mean_ms: float) -> float:
        if wl.service_distribution == "exponential":
            return rng.exponential(mean_ms / 1e3)
        return mean_ms / 1e3

    def on_device(rec: Record):
        t0 = env.now
        with cpu.request() as req:
            yield req
            rec.device_wait_s += env.now - t0
            s = service(wl.device_model_ms)
            yield env.timeout(s)
            rec.device_compute_s += s

    def via_cloud(rec: Record):
        for link in links:
            rec.link_up_s += yield env.process(link.transfer(wl.request_bytes, up=True))
        wait, svc, size = yield cloud.submit()
        rec.cloud_queue_s, rec.cloud_compute_s, rec.batch_size = wait, svc, size
        for link in reversed(links):
            rec.link_down_s += yield env.process(link.transfer(wl.response_bytes, up=False))
        rec.bytes_up += wl.request_bytes
        rec.bytes_down += wl.response_bytes

    def request(rec: Record):
        offline = any(link.in_outage(env.now) for link in links)
        if policy == "device-only":
            yield from on_device(rec)
            rec.route, rec.expected_accuracy = "device", wl.device_accuracy
        elif policy == "cloud-only":
            if offline:  # the device answers anyway: degraded, never silent
                yield from on_device(rec)
                rec.route, rec.expected_accuracy = "fallback", wl.device_accuracy
            else:
                yield from via_cloud(rec)
                rec.route, rec.expected_accuracy = "cloud", wl.cloud_accuracy
        else:  # cascade: answer on the device, escalate the unsure fraction
            yield from on_device(rec)
            if rng.random() < wl.escalation_rate:
                if any(link.in_outage(env.now) for link in links):
                    rec.route, rec.expected_accuracy = "fallback", wl.device_accuracy
                else:
                    yield from via_cloud(rec)
                    rec.route, rec.expected_accuracy = "device+cloud", wl.cloud_accuracy
            else:
                rec.route, rec.expected_accuracy = "device", wl.device_accuracy
        rec.latency_s = env.now - rec.arrival_s
        rec.deadline_missed = rec.latency_s * 1e3 > wl.deadline_ms
        rec.done = True

    def arrivals():
        i = 0
        while i < n:
            burst = wl.burst_size if wl.arrival == "bursty" else 1
            yield env.timeout(rng.exponential(burst / wl.rate_per_s))
            for _ in range(min(burst, n - i)):
                rec = Record(i, policy, env.now)
                records.append(rec)
                env.process(request(rec))
                i += 1

    env.process(arrivals())
    env.run()
    first = links[0]
    radio = TECHNOLOGIES[scenario.links[0].technology]
    compute_j = dev.compute_power_w * sum(r.device_compute_s for r in records)
    return RunResult(
        scenario, policy, records, env.now, radio_energy_j(radio, first.busy), compute_j
    )
