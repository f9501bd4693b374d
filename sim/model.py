"""The SimPy model: requests flow device -> links -> cloud -> links -> device under a policy.

Processes are small generator functions. Contention is modelled at FIFO stations: the device's
cores, each link direction (serialisation: bytes * 8 / rate) and the cloud replicas, fed by a
dynamic batcher (a batch of n takes fixed + per_item * n). Service times are known on arrival,
so each station is Lindley's recursion (exact for FIFO, one event per job). Propagation delay,
jitter and loss retransmissions are added after serialisation and do not hold the link. The
routing decisions are device/policy.py's, the client's retries and breaker device/resilience.py's.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import simpy
from edgesplit.device.policy import LinkEstimator, decide, should_escalate
from edgesplit.device.resilience import CircuitBreaker, backoff_ms
from edgesplit.sim.links import TECHNOLOGIES, jitter_mean_s, packets, radio_energy_j
from edgesplit.sim.scenario import Policy, Scenario


@dataclass(slots=True)
class Record:
    id: int
    policy: str
    arrival_s: float
    decision: str = "local"  # the policy's first move: local | cloud | split
    route: str = "device"  # answered by: device | cloud | device+cloud | split | fallback
    split_index: int = -1
    device_wait_s: float = 0.0
    device_compute_s: float = 0.0
    link_up_s: float = 0.0
    cloud_queue_s: float = 0.0
    cloud_compute_s: float = 0.0
    link_down_s: float = 0.0
    client_wait_s: float = 0.0  # timeouts and backoff while the cloud was unreachable
    latency_s: float = 0.0
    first_token_s: float = 0.0  # generative requests: arrival to the first token
    deadline_missed: bool = False
    bytes_up: int = 0
    bytes_down: int = 0
    cloud_attempts: int = 0
    batch_size: int = 0
    expected_accuracy: float = 0.0
    done: bool = False


class Draws:
    """Scalar random draws served from numpy blocks (a scalar numpy call costs ~1 us each)."""

    def __init__(self, rng: np.random.Generator, block: int = 8192) -> None:
        self.rng, self.block = rng, block
        self._exp: list[float] = []
        self._uni: list[float] = []

    def exponential(self, mean: float) -> float:
        if not self._exp:
            self._exp = self.rng.standard_exponential(self.block).tolist()
        return self._exp.pop() * mean

    def uniform(self) -> float:
        if not self._uni:
            self._uni = self.rng.random(self.block).tolist()
        return self._uni.pop()


class FifoStation:
    """``servers`` identical servers taking jobs first come, first served.

    A job's service time is known when it arrives, so its start is Lindley's recursion: the
    later of its arrival and the earliest time a server frees up. Exact for FIFO, and one
    event per job instead of a resource request and a release.
    """

    def __init__(self, servers: int) -> None:
        self.free_at = [0.0] * servers  # a heap of the times each server frees up

    def admit(self, now: float, service_s: float) -> float:
        """Queue a job arriving at ``now``; returns when its service starts."""
        start = max(now, self.free_at[0])
        heapq.heapreplace(self.free_at, start + service_s)
        return start


class LinkSim:
    def __init__(
        self,
        env: simpy.Environment,
        params: dict,
        draws: Draws,
        rng: np.random.Generator,
        track_radio: bool = False,
    ) -> None:
        self.env, self.p, self.draws, self.rng = env, params, draws, rng
        self.track_radio = track_radio
        self.up, self.down = FifoStation(1), FifoStation(1)  # one radio channel each way
        self.up_bps = params["up_mbps"] * 1e6
        self.down_bps = params["down_mbps"] * 1e6
        self.delay_s = params["one_way_delay_ms"] / 1e3
        self.jitter_mean_s = jitter_mean_s(params["jitter_p90_ms"])
        self.loss = params["loss_rate"]
        self.rto_s = params["retransmit_timeout_ms"] / 1e3
        self.outages = [(start, start + length) for start, length in params["outages_s"]]
        self.busy: list[tuple[float, float, int, int]] = []  # radio timeline (first hop only)

    def in_outage(self, t: float) -> bool:
        return any(start <= t < end for start, end in self.outages)

    def losses(self, nbytes: int) -> int:
        """Lost packets of a transfer: Binomial(packets, loss_rate), drawn cheaply when zero."""
        if not self.loss:
            return 0
        n = packets(nbytes)
        if self.draws.uniform() < (1 - self.loss) ** n:
            return 0
        while True:  # the binomial conditioned on at least one loss, by rejection (rare path)
            k = int(self.rng.binomial(n, self.loss))
            if k:
                return k

    def transfer(self, nbytes: int, up: bool):
        """Serialise on the link (FIFO), then propagate; returns the time spent (s)."""
        now = self.env.now
        station, bps = (self.up, self.up_bps) if up else (self.down, self.down_bps)
        ser = nbytes * 8 / bps
        start = station.admit(now, ser)
        if self.track_radio:
            self.busy.append((start, start + ser, nbytes if up else 0, 0 if up else nbytes))
        delay = self.delay_s + self.draws.exponential(self.jitter_mean_s)
        delay += self.losses(nbytes) * self.rto_s
        total = start - now + ser + delay
        yield self.env.timeout(total)
        return total


class CloudSim:
    """Dynamic batching in front of ``replicas`` servers.

    A batch closes when it holds ``max_batch`` requests or its first request has waited
    ``batch_delay_ms``, and starts when a replica is free (the batch keeps filling meanwhile).
    A batch of n takes (fixed + per_item * n) * its mean work scale. Without batching
    (max_batch 1) requests go straight to the replicas' FIFO queue.
    """

    def __init__(self, env: simpy.Environment, scenario: Scenario) -> None:
        c = scenario.cloud
        self.env, self.cfg = env, c
        self.replicas = FifoStation(c.replicas)
        self.queue: list[tuple[float, simpy.Event, float]] = []
        self.arrived = env.event()
        self.batching = c.max_batch > 1
        if self.batching:
            env.process(self._dispatch())

    def submit(self, scale: float = 1.0) -> simpy.Event:
        """Queue one request; ``scale`` is its work relative to the full model's (split tails).

        The event's value is (queue wait s, service s, batch size).
        """
        now = self.env.now
        if not self.batching:
            service = scale * (self.cfg.batch_fixed_ms + self.cfg.per_item_ms) / 1e3
            start = self.replicas.admit(now, service)
            return self.env.timeout(start - now + service, (start - now, service, 1))
        done = self.env.event()
        self.queue.append((now, done, scale))
        if not self.arrived.triggered:
            self.arrived.succeed()
        return done

    def _dispatch(self):
        delay_s = self.cfg.batch_delay_ms / 1e3
        env, queue = self.env, self.queue
        while True:
            while not queue:
                self.arrived = env.event()
                yield self.arrived
            first = queue[0][0]
            while len(queue) < self.cfg.max_batch:
                remaining = first + delay_s - env.now
                if remaining <= 0:
                    break
                self.arrived = env.event()
                yield self.arrived | env.timeout(remaining)
            free = self.replicas.free_at[0]
            if free > env.now:  # every replica busy: wait for one, the batch keeps filling
                yield env.timeout(free - env.now)
            batch = queue[: self.cfg.max_batch]
            del queue[: len(batch)]
            start = env.now
            scale = sum(item[2] for item in batch) / len(batch)
            service = scale * (self.cfg.batch_fixed_ms + self.cfg.per_item_ms * len(batch)) / 1e3
            self.replicas.admit(start, service)
            env.timeout(service).callbacks.append(partial(self._finish, batch, start, service))

    @staticmethod
    def _finish(batch: list, start: float, service: float, _event: simpy.Event) -> None:
        for enqueued, done, _ in batch:
            done.succeed((start - enqueued, service, len(batch)))


@dataclass
class RunResult:
    scenario: Scenario
    policy: str
    records: list[Record]
    duration_s: float
    device_radio: dict = field(default_factory=dict)
    device_compute_j: float = 0.0
    breaker_opens: int = 0


def simulate(
    scenario: Scenario, policy: str | Policy, seed: int | None = None, requests: int | None = None
) -> RunResult:
    """Run one policy (a Policy or a kind/label in the scenario); every draw comes from ``seed``."""
    pol = _resolve_policy(scenario, policy)
    cfg = pol.config()
    rng = np.random.default_rng(scenario.seed if seed is None else seed)
    env = simpy.Environment()
    wl, dev, cl = scenario.workload, scenario.device, scenario.client
    n = requests or scenario.requests
    costs = scenario.request_costs()
    draws = Draws(rng)
    cpu = FifoStation(dev.cores)
    links = [
        LinkSim(env, scenario.link_params(i), draws, rng, track_radio=i == 0)
        for i in range(len(scenario.links))
    ]
    cloud = CloudSim(env, scenario)
    gen = wl.generation
    streams = None
    if gen:  # generative requests: continuous-batching decode slots instead of the batcher
        streams = FifoStation(gen.streams_per_replica * scenario.cloud.replicas)
    breaker = CircuitBreaker(cl.breaker_failures, cl.breaker_reset_s)
    prior = scenario.link_prior()
    estimator = LinkEstimator(prior.up_mbps, prior.down_mbps, prior.rtt_ms)
    back_s = sum(link.delay_s for link in links)  # downlink propagation, for TTFT
    full_ms = scenario.cloud.batch_fixed_ms + scenario.cloud.per_item_ms
    records: list[Record] = []
    exponential = wl.service_distribution == "exponential"
    samples = wl.device_samples_ms if wl.service_distribution == "empirical" else []
    sample_scale = 1.0 / float(np.mean(samples)) if samples else 1.0

    def on_device(rec: Record, mean_ms: float):
        now = env.now
        if samples:  # a measured sample, scaled to this step's mean
            s = samples[int(draws.uniform() * len(samples))] * sample_scale * mean_ms / 1e3
        elif exponential:
            s = draws.exponential(mean_ms / 1e3)
        else:
            s = mean_ms / 1e3
        start = cpu.admit(now, s)
        yield env.timeout(start - now + s)
        rec.device_wait_s += start - now
        rec.device_compute_s += s

    def exchange(rec: Record, up_bytes: int, work_scale: float):
        """Uplink chain, cloud (batcher or generative streams), downlink chain."""
        up_s = down_s = 0.0
        for link in links:
            up_s += yield from link.transfer(up_bytes, up=True)
        if streams is not None:
            now = env.now
            decode_s = gen.output_tokens / gen.tokens_per_s
            service = gen.ttft_ms / 1e3 + decode_s
            start = streams.admit(now, service)
            yield env.timeout(start - now + service)
            rec.cloud_queue_s += start - now
            rec.cloud_compute_s += service
            # The first token reaches the device one downlink propagation delay after it is made.
            rec.first_token_s = start + gen.ttft_ms / 1e3 + back_s - rec.arrival_s
        else:
            wait, svc, size = yield cloud.submit(work_scale)
            rec.cloud_queue_s += wait
            rec.cloud_compute_s += svc
            rec.batch_size = size
        for link in reversed(links):
            down_s += yield from link.transfer(wl.response_bytes, up=False)
        rec.link_up_s += up_s
        rec.link_down_s += down_s
        rec.bytes_up += up_bytes
        rec.bytes_down += wl.response_bytes
        estimator.observe(up_bytes, wl.response_bytes, (up_s + down_s) * 1e3)

    def call_cloud(rec: Record, up_bytes: int, work_scale: float = 1.0):
        """The device's cloud client: timeout, retries with backoff, circuit breaker."""
        for attempt in range(cl.retries + 1):
            if not breaker.allow(env.now):
                return False
            rec.cloud_attempts += 1
            if any(link.in_outage(env.now) for link in links):  # nothing comes back: time out
                t0 = env.now
                yield env.timeout(cl.timeout_ms / 1e3)
                breaker.record_failure(env.now)
                if attempt < cl.retries:
                    yield env.timeout(backoff_ms(attempt + 1, cl.backoff_ms, draws.uniform()) / 1e3)
                rec.client_wait_s += env.now - t0
                continue
            yield from exchange(rec, up_bytes, work_scale)
            breaker.record_success()
            return True
        return False

    def estimate():
        return estimator.estimate(online=not breaker.is_open(env.now))

    def request(rec: Record):
        d = decide(cfg, costs, estimate())
        rec.decision = d.action
        if d.action == "cloud":
            if (yield from call_cloud(rec, d.upload_bytes)):
                rec.route, rec.expected_accuracy = "cloud", wl.cloud_accuracy
            else:  # the device answers anyway: degraded, never silent
                yield from on_device(rec, costs.device_ms)
                rec.route, rec.expected_accuracy = "fallback", wl.device_accuracy
        elif d.action == "split":
            sp = d.split
            rec.split_index = sp.index
            yield from on_device(rec, sp.head_ms)
            tail_scale = sp.tail_ms / costs.cloud_speedup / full_ms if full_ms > 0 else 0.0
            if (yield from call_cloud(rec, d.upload_bytes, tail_scale)):
                rec.route, rec.expected_accuracy = "split", wl.device_accuracy
            else:
                yield from on_device(rec, sp.tail_ms)
                rec.route, rec.expected_accuracy = "fallback", wl.device_accuracy
        else:
            yield from on_device(rec, costs.device_ms)
            rec.route = "fallback" if d.degraded else "device"
            rec.expected_accuracy = wl.device_accuracy
            unsure = draws.uniform() < wl.escalation_rate
            u = draws.uniform()
            confidence = cfg.threshold * u if unsure else cfg.threshold + (1 - cfg.threshold) * u
            esc = should_escalate(cfg, confidence, estimate())
            if esc is not None:
                if esc.action == "cloud" and (yield from call_cloud(rec, costs.request_bytes)):
                    rec.route, rec.expected_accuracy = "device+cloud", wl.cloud_accuracy
                else:
                    rec.route = "fallback"
        rec.latency_s = env.now - rec.arrival_s
        rec.deadline_missed = rec.latency_s * 1e3 > wl.deadline_ms
        rec.done = True

    def arrivals():
        i = 0
        burst = wl.burst_size if wl.arrival == "bursty" else 1
        mean_gap = burst / wl.rate_per_s
        while i < n:
            yield env.timeout(draws.exponential(mean_gap))
            for _ in range(min(burst, n - i)):
                rec = Record(i, pol.name, env.now)
                records.append(rec)
                env.process(request(rec))
                i += 1

    env.process(arrivals())
    env.run()
    radio = TECHNOLOGIES[scenario.links[0].technology]
    compute_j = dev.compute_power_w * sum(r.device_compute_s for r in records)
    return RunResult(
        scenario,
        pol.name,
        records,
        env.now,
        radio_energy_j(radio, links[0].busy),
        compute_j,
        breaker.opens,
    )


def _resolve_policy(scenario: Scenario, policy: str | Policy) -> Policy:
    if isinstance(policy, Policy):
        return policy
    for p in scenario.policies:
        if policy in (p.label, p.kind):
            return p
    return Policy(kind=policy)  # a kind not listed in the scenario, with default settings
