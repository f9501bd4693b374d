"""The SimPy model: the device's request flow (``device/flow.py``) over modelled tiers and links.

The life of a request (decision, budgets, retries, breaker, hedging, fallback, escalation) is not
written here: the same generator the device router runs is driven by SimPy time. This module only
models the world it runs in. Contention is at FIFO stations: the device's cores, each link
direction (serialisation: bytes * 8 / rate) and the cloud replicas, fed by a dynamic batcher (a
batch of n takes fixed + per_item * n). Service times are known on arrival, so each station is
Lindley's recursion (exact for FIFO, one event per job). Propagation delay, jitter, loss
retransmissions and radio promotion follow ``device/link.py``, the link emulator's model.

A cloud attempt races its timeout: an answer later than the timeout is dropped (the work still
loads the cloud). A transfer that starts while a link is cut is lost, and the connection is reset
when the link comes back, as the emulator does; whichever comes first ends the attempt.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from math import inf
from typing import TYPE_CHECKING, cast

import numpy as np
import simpy
from edgesplit.device.flow import (
    Call,
    Called,
    ClientConfig,
    Compute,
    Computed,
    Outcome,
    Part,
    Remote,
    RequestFlow,
    Route,
    Wait,
)
from edgesplit.device.link import LinkProfile, RadioState, jitter_mean_s, packets
from edgesplit.device.policy import LinkEstimator
from edgesplit.device.resilience import CircuitBreaker
from edgesplit.sim.links import TECHNOLOGIES, RadioMeter
from edgesplit.sim.scenario import Policy, Scenario, ScenarioError
from edgesplit.sim.stats import Record, RunStats

if TYPE_CHECKING:
    from edgesplit.device.link_emulator import ConnDraws

__all__ = ["Record", "RunResult", "simulate"]


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
    """One hop: ``device/link.py``'s physics on SimPy time, plus its outage windows.

    Each direction is one radio channel, a single-server FIFO (Lindley's recursion on a float);
    the radio state (promotion after idling past the tail) is ``RadioState``'s, inlined here
    because it is on every transfer's path."""

    def __init__(
        self,
        profile: LinkProfile,
        outages_s: list[tuple[float, float]],
        draws: Draws,
        rng: np.random.Generator,
        meter: RadioMeter | None = None,
    ) -> None:
        self.p, self.draws, self.rng, self.meter = profile, draws, rng, meter
        self.up_free_s = self.down_free_s = 0.0  # when each direction's channel frees up
        self.up_bps = profile.up_mbps * 1e6
        self.down_bps = profile.down_mbps * 1e6
        self.delay_s = profile.one_way_delay_ms / 1e3
        self.jitter_mean_s = jitter_mean_s(profile.jitter_p90_ms)
        self.loss = profile.loss_rate
        self.rto_s = profile.retransmit_timeout_ms / 1e3
        self.radio = RadioState(profile.promotion_ms, profile.tail_ms)
        self.outages = [(start, start + length) for start, length in outages_s]
        self._keep: dict[int, tuple[int, float]] = {}  # bytes -> (packets, P(no packet lost))

    def cut_until(self, t: float) -> float | None:
        """The end of the outage ``t`` falls in, or None when the link is up at ``t``."""
        for start, end in self.outages:
            if start <= t < end:
                return end
        return None

    def losses(self, nbytes: int) -> int:
        """Lost packets of a transfer: Binomial(packets, loss_rate), drawn cheaply when zero."""
        if not self.loss:
            return 0
        known = self._keep.get(nbytes)
        if known is None:
            n = packets(nbytes)
            known = self._keep[nbytes] = (n, (1 - self.loss) ** n)
        if self.draws.uniform() < known[1]:
            return 0
        while True:  # the binomial conditioned on at least one loss, by rejection (rare path)
            k = int(self.rng.binomial(known[0], self.loss))
            if k:
                return k

    def send(
        self, now: float, nbytes: int, up: bool, replay: tuple[float | None, int] | None = None
    ) -> float:
        """Admit a transfer at ``now``: promotion, FIFO serialisation, propagation; its arrival.

        ``replay`` gives the jitter (s; None: draw it) and lost packets a real transfer met."""
        if up:
            ser = nbytes * 8 / self.up_bps
            free = self.up_free_s
        else:
            ser = nbytes * 8 / self.down_bps
            free = self.down_free_s
        radio = self.radio
        ready = now
        if radio.promotion_s and (now if now > free else free) > radio.active_until_s:
            ready = now + radio.promotion_s  # the radio was idle: promote it first
        start = ready if ready > free else free
        end = start + ser
        if up:
            self.up_free_s = end
        else:
            self.down_free_s = end
        if end + radio.tail_s > radio.active_until_s:
            radio.active_until_s = end + radio.tail_s
        if self.meter is not None:
            self.meter.add(start, end, nbytes if up else 0, 0 if up else nbytes)
        if replay is None:
            delay = self.delay_s + self.draws.exponential(self.jitter_mean_s)
            if self.loss:
                delay += self.losses(nbytes) * self.rto_s
        else:
            jitter_s, lost = replay
            if jitter_s is None:
                jitter_s = self.draws.exponential(self.jitter_mean_s)
            delay = self.delay_s + jitter_s + lost * self.rto_s
        return end + delay


class CloudSim:
    """Dynamic batching in front of ``replicas`` servers.

    A batch closes when it holds ``max_batch`` requests or its first request has waited
    ``batch_delay_ms``, and starts when a replica is free (the batch keeps filling meanwhile).
    A batch of n takes (fixed + per_item * n) * its mean work scale. Without batching
    (max_batch 1) requests go straight to the replicas' FIFO queue.

    The batcher is callbacks on one timer, not a process: a batch costs one timer event and each
    request one event, its answer, scheduled at the batch's end when the batch starts.
    """

    def __init__(self, env: simpy.Environment, scenario: Scenario) -> None:
        c = scenario.cloud
        self.env, self.cfg = env, c
        self.replicas = FifoStation(c.replicas)
        self.queue: list[tuple[float, simpy.Event, float]] = []
        self.batching = c.max_batch > 1
        self.max_scale = 1.0
        self.delay_s = c.batch_delay_ms / 1e3
        self.max_batch = c.max_batch
        self.wake_at = inf  # when the pending timer fires (inf: none pending)
        self.filling = False  # the pending timer waits for the batch delay (an arrival may fill it)
        self._timer_id = 0  # a rescheduled timer makes the earlier one stale

    def admit(self, scale: float) -> tuple[float, float]:
        """Unbatched: queue wait and service (s) of a request arriving now."""
        now = self.env.now
        service = scale * (self.cfg.batch_fixed_ms + self.cfg.per_item_ms) / 1e3
        start = self.replicas.admit(now, service)
        return start - now, service

    def latest_finish(self, scale: float) -> float:
        """An upper bound on when a request submitted now with ``scale`` will be answered.

        FIFO batches: it starts by the time every replica is free and the batches queued
        ahead of it (each at most a full batch of the largest work scale seen) are served.
        """
        c = self.cfg
        if scale > self.max_scale:
            self.max_scale = scale
        batch_s = self.max_scale * (c.batch_fixed_ms + c.per_item_ms * c.max_batch) / 1e3
        ahead = len(self.queue) // c.max_batch + 1
        start = max(self.env.now + self.delay_s, max(self.replicas.free_at))
        return start + ahead * batch_s

    def submit(self, scale: float = 1.0) -> simpy.Event:
        """Batched: queue one request; the event's value is (queue wait s, service s, size)."""
        env = self.env
        done = simpy.Event(env)
        queue = self.queue
        queue.append((env.now, done, scale))
        if self.wake_at == inf:
            self._plan()
        elif self.filling and len(queue) >= self.max_batch:  # full: it need not wait the delay
            at = max(env.now, self.replicas.free_at[0])
            if at < self.wake_at:
                self._schedule(at, False)
        return done

    def _plan(self) -> None:
        """Time the next batch: at its delay's end (or when full) once a replica is free."""
        free = self.replicas.free_at[0]
        if len(self.queue) >= self.max_batch:
            self._schedule(max(self.env.now, free), False)
        else:
            close = self.queue[0][0] + self.delay_s
            self._schedule(max(close, free), close > free and close > self.env.now)

    def _schedule(self, at: float, filling: bool) -> None:
        self._timer_id += 1
        self.wake_at, self.filling = at, filling
        timer = self.env.timeout(max(0.0, at - self.env.now))
        timer.callbacks.append(partial(self._wake, self._timer_id))

    def _wake(self, timer_id: int, _event: simpy.Event) -> None:
        if timer_id != self._timer_id:
            return  # rescheduled earlier
        env, queue, c = self.env, self.queue, self.cfg
        now = env.now
        self.wake_at = inf
        if self.replicas.free_at[0] > now:  # every replica busy: wait, the batch keeps filling
            self._schedule(self.replicas.free_at[0], False)
            return
        batch = queue[: self.max_batch]
        del queue[: len(batch)]
        n = len(batch)
        scale = sum(item[2] for item in batch) / n if n > 1 else batch[0][2]
        service = scale * (c.batch_fixed_ms + c.per_item_ms * n) / 1e3
        self.replicas.admit(now, service)
        schedule = env.schedule
        for enqueued, done, _ in batch:  # each answer lands at the batch's end: one event each
            done._ok = True
            done._value = (now - enqueued, service, n)
            schedule(done, simpy.events.NORMAL, service)
        if queue:
            self._plan()


@dataclass
class RunResult:
    scenario: Scenario
    policy: str
    stats: RunStats
    duration_s: float
    requests: int
    device_radio: dict = field(default_factory=dict)
    device_compute_j: float = 0.0
    breaker_opens: int = 0
    records: list[Record] = field(default_factory=list)  # only with keep_records


def simulate(
    scenario: Scenario,
    policy: str | Policy,
    seed: int | None = None,
    requests: int | None = None,
    keep_records: bool = False,
    sink: Callable[[Record], None] | None = None,
    trace: list[Outcome] | None = None,
    arrivals_s: list[float] | None = None,
    unsure: list[bool] | None = None,
    replay: list[list[ConnDraws]] | None = None,
) -> RunResult:
    """Run one policy (a Policy or a kind/label in the scenario); every draw comes from ``seed``.

    Each completed request is reduced into ``RunResult.stats``; ``sink`` also gets its record
    (e.g. a CSV writer), ``keep_records`` keeps them all (tests, small runs), and ``trace``
    collects the flow's outcome with its stages (the equivalence test with the router).
    ``arrivals_s`` replaces the workload's arrival process with these times, and ``unsure``
    says which of those requests the device is unsure about (request scripts). ``replay`` gives,
    per scripted request and attempt, the jitter and losses the real run's connection met on the
    device's link (``LinkEmulator.draw_log``), so the comparison is request by request.
    """
    pol = _resolve_policy(scenario, policy)
    cfg = pol.config()
    rng = np.random.default_rng(scenario.seed if seed is None else seed)
    env = simpy.Environment()
    wl, dev, cl = scenario.workload, scenario.device, scenario.client
    n = requests or scenario.requests
    costs = scenario.request_costs()
    draws = Draws(rng)
    cpu = FifoStation(dev.cores)
    meter = RadioMeter(TECHNOLOGIES[scenario.links[0].technology])
    links = [
        LinkSim(scenario.link_profile(i), link.outages_s, draws, rng, meter if i == 0 else None)
        for i, link in enumerate(scenario.links)
    ]
    cloud = CloudSim(env, scenario)
    gen = wl.generation
    streams = None
    if gen:  # generative requests: continuous-batching decode slots instead of the batcher
        streams = FifoStation(gen.streams_per_replica * scenario.cloud.replicas)
    breaker = CircuitBreaker(cl.breaker_failures, cl.breaker_reset_s)
    prior = scenario.link_prior()
    flow = RequestFlow(
        cfg,
        ClientConfig(cl.timeout_ms, cl.retries, cl.backoff_ms),
        breaker,
        LinkEstimator(prior.up_mbps, prior.down_mbps, prior.rtt_ms),
        lambda: env.now,
        draws.uniform,
        trace=trace is not None,
    )
    back_s = sum(link.delay_s for link in links)  # downlink propagation, for TTFT
    full_ms = scenario.cloud.batch_fixed_ms + scenario.cloud.per_item_ms
    tail_scale = {
        sp.index: (sp.tail_ms / costs.cloud_speedup / full_ms if full_ms > 0 else 0.0)
        for sp in costs.splits
    }
    stats = RunStats()
    kept: list[Record] = []
    exponential = wl.service_distribution == "exponential"
    samples = wl.device_samples_ms if wl.service_distribution == "empirical" else []
    sample_scale = 1.0 / float(np.mean(samples)) if samples else 1.0
    cascade = cfg.kind == "cascade"
    timeout = env.timeout
    batching = cloud.batching
    reversed_links = links[::-1]

    def device_seconds(mean_ms: float) -> float:
        if samples:  # a measured sample, scaled to this step's mean
            return samples[int(draws.uniform() * len(samples))] * sample_scale * mean_ms / 1e3
        if exponential:
            return draws.exponential(mean_ms / 1e3)
        return mean_ms / 1e3

    def on_device(rec: Record, eff: Compute):
        now = env.now
        s = device_seconds(eff.estimate_ms)
        start = cpu.admit(now, s)
        yield timeout(start - now + s)
        rec.device_wait_s += start - now
        rec.device_compute_s += s
        if cascade and eff.part == Part.WHOLE:  # how sure the device is, as measured
            if unsure is not None:
                doubt = unsure[rec.id % len(unsure)]
            else:
                doubt = draws.uniform() < wl.escalation_rate
            u = draws.uniform()
            t = cfg.threshold
            return Computed("", t * u if doubt else t + (1 - t) * u)
        return Computed()

    class _Try:
        """One attempt's clock: its timeout and, when hedged, the device's answer beside it."""

        __slots__ = ("rec", "t0", "deadline", "hedge_at", "device_done", "device_ms")

        def __init__(self, rec: Record, eff: Call, t0: float) -> None:
            self.rec, self.t0 = rec, t0
            self.deadline = self.t0 + eff.timeout_ms / 1e3
            self.hedge_at = self.t0 + eff.hedge_ms / 1e3 if eff.hedge_ms is not None else inf
            self.device_done: float | None = None
            self.device_ms = eff.device_ms

    def start_device(t: _Try) -> None:
        """The hedge fires: the device's whole model is queued now (its end is known)."""
        s = device_seconds(t.device_ms)
        start = cpu.admit(env.now, s)
        t.rec.device_wait_s += start - env.now
        t.rec.device_compute_s += s
        t.device_done = start + s

    def step(t: _Try, target: float):
        """Advance to ``target``; False when the hedged device answers first (time: its end)."""
        if t.device_done is None and target > t.hedge_at:
            if t.hedge_at > env.now:
                yield timeout(t.hedge_at - env.now)
            start_device(t)
        if t.device_done is not None and t.device_done < target:
            yield timeout(max(0.0, t.device_done - env.now))
            return False
        if target > env.now:
            yield timeout(target - env.now)
        return True

    def hedged(t: _Try) -> Called:
        t.rec.client_wait_s += t.hedge_at - t.t0
        return Called(False, "hedged")

    def fail(t: _Try, until: float):
        """The attempt ends at ``until`` (the reset when the link is back) or its timeout; a
        hedged device still running answers when it is done."""
        end = min(until, t.deadline)
        if not (yield from step(t, end)):
            return hedged(t)
        if t.device_done is not None:  # the call failed while the device works: wait for it
            yield timeout(max(0.0, t.device_done - env.now))
            return hedged(t)
        t.rec.client_wait_s += env.now - t.t0
        return Called(False, "timeout" if end >= t.deadline else "unreachable")

    def conn_draws(rec: Record, eff: Call) -> ConnDraws | None:
        """The draws the real run's connection for this attempt met (paired replay)."""
        if replay is None or rec.id >= len(replay):
            return None
        conns = replay[rec.id]
        return conns[eff.attempt - 1] if eff.attempt <= len(conns) else None

    def attempt(rec: Record, eff: Call):
        """One cloud call racing its timeout (and the hedge): uplink chain, cloud, downlink.

        Until a step would pass the timeout or the hedge, the attempt just waits for each hop's
        arrival; only then does it take a ``_Try`` and the general path (``step``/``fail``)."""
        t0 = env.now
        deadline = t0 + eff.timeout_ms / 1e3
        hedge_at = t0 + eff.hedge_ms / 1e3 if eff.hedge_ms is not None else inf
        limit = deadline if deadline < hedge_at else hedge_at
        t: _Try | None = None  # the general path's state, once it is needed
        scale = tail_scale.get(eff.split_index, 1.0) if eff.remote == Remote.SPLIT else 1.0
        cd = conn_draws(rec, eff) if replay is not None else None
        up_bytes = eff.up_bytes
        for link in links:
            if link.outages:
                cut = link.cut_until(env.now)
                if cut is not None:
                    return (yield from fail(t or _Try(rec, eff, t0), cut))
            rp = (cd.up_jitter_s, cd.up_lost) if cd is not None and link is links[0] else None
            arrive = link.send(env.now, up_bytes, True, rp)
            if t is None and arrive <= limit:
                if arrive > env.now:
                    yield timeout(arrive - env.now)
                continue
            t = t or _Try(rec, eff, t0)
            if arrive > deadline:
                return (yield from fail(t, deadline))
            if not (yield from step(t, arrive)):
                return hedged(t)
        up_s = env.now - t0
        size = 1
        first_token = 0.0
        if streams is not None:
            assert gen is not None
            now = env.now
            service = gen.ttft_ms / 1e3 + gen.output_tokens / gen.tokens_per_s
            start = streams.admit(now, service)
            end = start + service
            if t is None and end <= limit:
                if end > env.now:
                    yield timeout(end - env.now)
            else:
                t = t or _Try(rec, eff, t0)
                if end > deadline:
                    return (yield from fail(t, deadline))
                if not (yield from step(t, end)):
                    return hedged(t)
            wait, svc = start - now, service
            first_token = start + gen.ttft_ms / 1e3 + back_s - rec.arrival_s
        elif batching:
            bound = cloud.latest_finish(scale)
            done = cloud.submit(scale)
            if t is None and bound < limit:  # no race: it cannot time out or hedge here
                yield done
            else:
                t = t or _Try(rec, eff, t0)
                while True:
                    lim = deadline if t.device_done is None else min(deadline, t.device_done)
                    if t.device_done is None:
                        lim = min(lim, t.hedge_at)
                    either = env.event()  # the answer or the limit, whichever first
                    fire = partial(_first, either)
                    done.callbacks.append(fire)
                    timeout(max(0.0, lim - env.now)).callbacks.append(fire)
                    yield either
                    if either.value is done:
                        break
                    if env.now >= deadline:
                        return (yield from fail(t, deadline))
                    if t.device_done is None:
                        start_device(t)
                    else:
                        return hedged(t)
            wait, svc, size = cast(tuple[float, float, int], done.value)
        else:
            wait, svc = cloud.admit(scale)
            end = env.now + wait + svc
            if t is None and end <= limit:
                if end > env.now:
                    yield timeout(end - env.now)
            else:
                t = t or _Try(rec, eff, t0)
                if end > deadline:
                    return (yield from fail(t, deadline))
                if not (yield from step(t, end)):
                    return hedged(t)
        t_down = env.now
        down_bytes = wl.response_bytes
        for link in reversed_links:
            if link.outages:
                cut = link.cut_until(env.now)
                if cut is not None:
                    return (yield from fail(t or _Try(rec, eff, t0), cut))
            rp = (cd.down_jitter_s, cd.down_lost) if cd is not None and link is links[0] else None
            arrive = link.send(env.now, down_bytes, False, rp)
            if t is None and arrive <= limit:
                if arrive > env.now:
                    yield timeout(arrive - env.now)
                continue
            t = t or _Try(rec, eff, t0)
            if arrive > deadline:
                return (yield from fail(t, deadline))
            if not (yield from step(t, arrive)):
                return hedged(t)
        down_s = env.now - t_down
        rec.cloud_queue_s += wait
        rec.cloud_compute_s += svc
        rec.batch_size = size
        if first_token:
            rec.first_token_s = first_token
        rec.link_up_s += up_s
        rec.link_down_s += down_s
        rec.bytes_up += up_bytes
        rec.bytes_down += down_bytes
        return Called(True, "", True, (up_s + down_s) * 1e3, up_bytes, down_bytes)

    def request(rec: Record):
        run = flow.run(costs)
        reply: Computed | Called | None = None
        try:
            while True:
                eff = run.send(reply)
                if type(eff) is Compute:
                    reply = yield from on_device(rec, eff)
                elif type(eff) is Call:
                    reply = yield from attempt(rec, eff)
                else:
                    assert isinstance(eff, Wait)
                    yield timeout(eff.ms / 1e3)
                    rec.client_wait_s += eff.ms / 1e3
                    reply = None
        except StopIteration as stop:
            out: Outcome = stop.value
        rec.decision, rec.route, rec.split_index = out.decision, out.route, out.split_index
        rec.hedged, rec.cloud_attempts = out.hedged, out.attempts
        remote = out.route in (Route.CLOUD, Route.ESCALATED)
        rec.expected_accuracy = wl.cloud_accuracy if remote else wl.device_accuracy
        rec.latency_s = env.now - rec.arrival_s
        rec.deadline_missed = rec.latency_s * 1e3 > wl.deadline_ms
        rec.done = True
        stats.add(rec)
        if sink is not None:
            sink(rec)
        if keep_records:
            kept.append(rec)
        if trace is not None:
            trace.append(out)

    def scripted():
        for i, t in enumerate(sorted(arrivals_s or [])):
            yield timeout(t - env.now)
            env.process(request(Record(i, pol.name, env.now)))

    def arrivals():
        i = 0
        burst = wl.burst_size if wl.arrival == "bursty" else 1
        mean_gap = burst / wl.rate_per_s
        while i < n:
            yield timeout(draws.exponential(mean_gap))
            for _ in range(min(burst, n - i)):
                env.process(request(Record(i, pol.name, env.now)))
                i += 1

    if arrivals_s is not None:
        n = len(arrivals_s)
        env.process(scripted())
    else:
        env.process(arrivals())
    env.run()
    compute_j = dev.compute_power_w * stats.sums["device_compute_s"]
    return RunResult(
        scenario,
        pol.name,
        stats,
        env.now,
        n,
        meter.result(),
        compute_j,
        breaker.opens,
        kept,
    )


def _first(either: simpy.Event, event: simpy.Event) -> None:
    if not either.triggered:
        either.succeed(event)


def _resolve_policy(scenario: Scenario, policy: str | Policy) -> Policy:
    if not isinstance(policy, Policy):
        listed = [p for p in scenario.policies if policy in (p.label, p.kind)]
        policy = listed[0] if listed else Policy.model_validate({"kind": policy})
    if policy.kind == "split" and not scenario.workload.split_points:
        raise ScenarioError(
            f"{scenario.name}: policy {policy.name!r} splits the model but the workload has no "
            "split points (give it split_points or a device_profile with them)"
        )
    return policy
