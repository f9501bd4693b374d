"""The three-tier model: wearables -> phone -> cloud, each tier computing, queueing, on a battery.

Built from the single-chain simulator's parts (``sim/model.py``): FIFO stations by Lindley's
recursion for each tier's cores, ``LinkSim`` for every hop (``device/link.py``'s physics:
serialisation, delay, jitter, loss, radio promotion, outages) and ``RadioMeter`` for radio energy
(Huang et al. 2012), charged at *both* ends of a hop (the phone pays for its side of the BLE link).
Each wearable has its own cores and BLE link; the phone's cores and its uplink are shared by every
wearable and by the phone's own requests. A request runs tier 0's part of the model, sends the
tensor at its boundary up, and so on; the answering tier sends the response back down the chain.
When a hop is cut, the tier below runs the rest of the model and the answer is flagged degraded
(a tier without a model cannot, and the request is lost). The last hop (the phone's to the cloud)
runs the request flow the phone hub runs (``device/flow.py``, the router's code: each attempt's
timeout, retries with backoff, the circuit breaker, fallback): a cloud that is cut, slow or
queued past the timeout is answered by the phone, flagged degraded, after the time it waited.
``auto`` picks per request the placement with the lowest estimate: compute plus
``device/policy.py``'s ``transfer_ms`` for each hop (the router's estimate) plus the queues at
the tiers now; a hop that is down is not a candidate.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import simpy
from edgesplit.device.flow import (
    Call,
    Called,
    ClientConfig,
    Compute,
    Computed,
    Outcome,
    RequestFlow,
    Route,
    Wait,
)
from edgesplit.device.policy import LinkEstimator, PolicyConfig, RequestCosts, transfer_ms
from edgesplit.device.resilience import CircuitBreaker
from edgesplit.sim.links import TECHNOLOGIES, RadioMeter
from edgesplit.sim.model import Draws, FifoStation, LinkSim
from edgesplit.sim.stats import LogHistogram
from edgesplit.sim.tier_scenario import Boundary, Placement, TierScenario, link_profile


class BothEnds(RadioMeter):
    """A hop's radio energy at the sending end, and (``far``) at the receiving end."""

    def __init__(self, tech_name: str) -> None:
        super().__init__(TECHNOLOGIES[tech_name])
        self.far = RadioMeter(TECHNOLOGIES[tech_name])

    def add(self, start: float, end: float, up_bytes: int, down_bytes: int) -> None:
        super().add(start, end, up_bytes, down_bytes)
        self.far.add(start, end, down_bytes, up_bytes)


def _radio_j(meter: RadioMeter) -> float:
    return sum(v for k, v in meter.result().items() if k.endswith("_j"))


@dataclass
class TierRun:
    """Raw totals of one run; :func:`summarise_tiers` turns them into the report."""

    scenario: TierScenario
    placement: str
    duration_s: float = 0.0
    latency_ms: LogHistogram = field(default_factory=LogHistogram)
    own_latency_ms: LogHistogram = field(default_factory=LogHistogram)
    completed: int = 0
    lost: int = 0
    degraded: int = 0
    deadline_missed: int = 0
    answered_by: list[int] = field(default_factory=list)  # per tier
    serving_busy_s: list[float] = field(default_factory=list)  # per tier, wearables' work
    own_busy_s: list[float] = field(default_factory=list)
    wait_s: list[float] = field(default_factory=list)  # per tier, queueing of wearables' work
    hop_s: list[float] = field(default_factory=list)  # per hop, both directions
    bytes_up: list[int] = field(default_factory=list)  # per hop
    bytes_down: list[int] = field(default_factory=list)
    radio_low_j: list[float] = field(default_factory=list)  # per hop, the lower tier's side
    radio_high_j: list[float] = field(default_factory=list)  # per hop, the upper tier's side
    chosen: dict[str, int] = field(default_factory=dict)  # auto: placements picked


def candidates(sc: TierScenario) -> list[list[Boundary]]:
    """Every valid placement: each tier's boundary, in layer order, tiers with a model computing."""
    points: list[Boundary] = ["start", *sorted(sc.cut_index()), "end"]
    out = []
    for combo in itertools.combinations_with_replacement(points, len(sc.tiers) - 1):
        try:
            out.append(sc.boundaries(Placement(name="c", cuts=list(combo))))
        except ValueError:
            continue
    return out


def label(sc: TierScenario, bounds: list[Boundary]) -> str:
    """``earbuds:start-3 > phone:3-end`` for the tiers that compute; ``phone`` when one does all."""
    parts: list[str] = []
    prev: Boundary = "start"
    for t, b in zip(sc.tiers, bounds, strict=True):
        if sc.position(b)[1] > sc.position(prev)[1] or b == "end":
            parts.append(f"{t.name}:{prev}-{b}")
        if b == "end":
            break
        prev = b
    if len(parts) == 1 and parts[0].endswith(":start-end"):
        return parts[0].split(":")[0]
    return " > ".join(parts)


def simulate_tiers(
    sc: TierScenario,
    placement: str | Placement,
    seed: int | None = None,
    requests: int | None = None,
    arrivals_s: list[float] | None = None,
) -> TierRun:
    """Run one placement (a Placement or a name in the scenario); every draw comes from ``seed``.

    ``arrivals_s`` replaces the Poisson arrivals with these times (s), taken in turn by the
    wearables (a real run's request script, for validation)."""
    if not isinstance(placement, Placement):
        found = [p for p in sc.placements if p.name == placement]
        if not found:
            from edgesplit.sim.scenario import ScenarioError

            names = ", ".join(p.name for p in sc.placements)
            raise ScenarioError(f"{sc.name}: no placement {placement!r} (has: {names})")
        placement = found[0]
    fixed = sc.boundaries(placement)
    rng = np.random.default_rng(sc.seed if seed is None else seed)
    draws = Draws(rng)
    env = simpy.Environment()
    tiers, wl = sc.tiers, sc.workload
    n_t = len(tiers)
    n_req = requests or sc.requests
    wear = tiers[0].count
    run = TierRun(sc, placement.name)
    run.answered_by = [0] * n_t
    run.serving_busy_s, run.own_busy_s, run.wait_s = [0.0] * n_t, [0.0] * n_t, [0.0] * n_t
    run.hop_s, run.bytes_up, run.bytes_down = [0.0] * (n_t - 1), [0] * (n_t - 1), [0] * (n_t - 1)

    # Stations: each wearable its own cores; every later tier shared.
    stations: list[list[FifoStation]] = [[FifoStation(tiers[0].cores) for _ in range(wear)]]
    stations += [[FifoStation(t.cores)] for t in tiers[1:]]
    links: list[list[LinkSim]] = []
    meters: list[list[BothEnds]] = []
    for i, t in enumerate(tiers[:-1]):
        assert t.link is not None
        prof = link_profile(t.link)
        k = wear if i == 0 else 1
        ms = [BothEnds(t.link.technology) for _ in range(k)]
        meters.append(ms)
        links.append([LinkSim(prof, t.link.outages_s, draws, rng, m) for m in ms])
    priors = [link_profile(t.link).prior() for t in tiers[:-1] if t.link is not None]
    exponential = wl.service_distribution == "exponential"
    whole_ms = float(sc.model.whole_ms or 0.0)
    points: list[Boundary] = ["start", "end", *sc.cut_index()]
    pos = {b: sc.position(b) for b in points}

    # auto: static estimate per candidate, plus the queue now at each tier it computes on.
    cands = candidates(sc) if placement.auto else [fixed]
    static = np.zeros(len(cands))
    uses = np.zeros((len(cands), n_t))
    hops_used = np.zeros((len(cands), n_t - 1))
    for c, bounds in enumerate(cands):
        prev: Boundary = "start"
        for i, b in enumerate(bounds):
            seg = pos[b][1] - pos[prev][1]
            if seg > 0:
                static[c] += seg * tiers[i].slowdown
                uses[c, i] = 1
            if b == "end":
                break
            static[c] += transfer_ms(pos[b][2], wl.response_bytes, priors[i])
            hops_used[c, i] = 1
            prev = b

    def choose(w: int) -> tuple[list[Boundary], bool]:
        """The placement for this request, and whether an outage pushed it off its first choice."""
        if not placement.auto:
            return fixed, False
        now = env.now
        backlog = np.array(
            [max(0.0, min(stations[i][w if i == 0 else 0].free_at) - now) * 1e3 for i in range(n_t)]
        )
        down = np.array(
            [links[i][w if i == 0 else 0].cut_until(now) is not None for i in range(n_t - 1)]
        )
        est = static + uses @ backlog
        wanted = int(np.argmin(est))
        blocked = hops_used @ down > 0
        if blocked.all():
            return cands[wanted], False  # nothing reachable: the hop's outage handles it
        best = int(np.argmin(np.where(blocked, math.inf, est)))
        name = label(sc, cands[best])
        run.chosen[name] = run.chosen.get(name, 0) + 1
        return cands[best], best != wanted

    def service_s(i: int, ref_ms: float) -> float:
        """Tier i's time for ``ref_ms`` of reference compute: a measured sample when the tier
        has them (scaled to its share of the model), else the slowdown's mean or a draw."""
        samples = tiers[i].service_samples_ms
        if samples:
            pick = samples[int(draws.uniform() * len(samples))]
            return pick * ref_ms / whole_ms / 1e3 if whole_ms > 0 else 0.0
        mean_s = ref_ms * tiers[i].slowdown / 1e3
        return draws.exponential(mean_s) if exponential else mean_s

    def compute(i: int, w: int, ref_ms: float):
        s = service_s(i, ref_ms)
        st = stations[i][w if i == 0 else 0]
        now = env.now
        start = st.admit(now, s)
        yield env.timeout(start - now + s)
        run.wait_s[i] += start - now
        run.serving_busy_s[i] += s

    def hop(i: int, w: int, nbytes: int, up: bool):
        link = links[i][w if i == 0 else 0]
        if link.cut_until(env.now) is not None:
            return False
        t0 = env.now
        arrive = link.send(t0, nbytes, up)
        yield env.timeout(arrive - t0)
        run.hop_s[i] += env.now - t0
        if up:
            run.bytes_up[i] += nbytes
        else:
            run.bytes_down[i] += nbytes
        return True

    # The last hop's sender (the phone) reaches the cloud through the shared request flow.
    last = n_t - 2
    sender = tiers[last]
    cl = sender.client
    flow = RequestFlow(
        PolicyConfig("cloud-only"),
        ClientConfig(cl.timeout_ms, cl.retries, cl.backoff_ms),
        CircuitBreaker(cl.breaker_failures, cl.breaker_reset_s),
        LinkEstimator(priors[last].up_mbps, priors[last].down_mbps, priors[last].rtt_ms),
        lambda: env.now,
        draws.uniform,
    )

    def give_up(deadline: float, until: float):
        """An attempt that cannot finish: it ends at ``until`` (the cut's end) or its timeout."""
        end = min(until, deadline)
        yield env.timeout(max(0.0, end - env.now))
        return Called(False, "timeout" if end >= deadline else "unreachable")

    def cross(link, nbytes: int, up: bool, deadline: float):
        """One direction of the last hop: None once the bytes arrived within the attempt's
        deadline, else the attempt given up (a cut link, or an arrival past the deadline)."""
        if (cut := link.cut_until(env.now)) is not None:
            return (yield from give_up(deadline, cut))
        arrive = link.send(env.now, nbytes, up)
        if arrive > deadline:
            return (yield from give_up(deadline, math.inf))
        yield env.timeout(arrive - env.now)
        return None

    def call_cloud(b: Boundary, eff: Call):
        """One attempt over the last hop: up, the cloud's part of the model, down, against its
        timeout (the cloud still does work the sender stopped waiting for)."""
        link, t0 = links[last][0], env.now
        deadline = t0 + eff.timeout_ms / 1e3
        if (failed := (yield from cross(link, eff.up_bytes, True, deadline))) is not None:
            return failed
        run.hop_s[last] += env.now - t0
        run.bytes_up[last] += eff.up_bytes
        up_s = env.now - t0
        s = service_s(n_t - 1, whole_ms - pos[b][1])
        now = env.now
        start = stations[-1][0].admit(now, s)
        run.serving_busy_s[-1] += s
        if start + s > deadline:
            return (yield from give_up(deadline, math.inf))
        yield env.timeout(start + s - now)
        run.wait_s[-1] += start - now
        t_down = env.now
        if (failed := (yield from cross(link, wl.response_bytes, False, deadline))) is not None:
            return failed
        run.hop_s[last] += env.now - t_down
        run.bytes_down[last] += wl.response_bytes
        transit_ms = (up_s + env.now - t_down) * 1e3
        return Called(True, "", True, transit_ms, eff.up_bytes, wl.response_bytes)

    def via_flow(w: int, b: Boundary):
        """The sender's request flow for the rest of the model: (outcome, or None when the
        sender had to answer and has no model)."""
        rest_ms = whole_ms - pos[b][1]
        costs = RequestCosts(
            wl.deadline_ms,
            pos[b][2],
            wl.response_bytes,
            rest_ms * sender.slowdown,
            rest_ms * tiers[-1].slowdown,
        )
        gen = flow.run(costs)
        reply: Computed | Called | None = None
        try:
            while True:
                eff = gen.send(reply)
                if isinstance(eff, Call):
                    reply = yield from call_cloud(b, eff)
                elif isinstance(eff, Compute):
                    if not sender.has_model:
                        gen.close()
                        return None
                    if rest_ms > 0:
                        yield from compute(last, w, rest_ms)
                    reply = Computed()
                else:
                    assert isinstance(eff, Wait)
                    yield env.timeout(eff.ms / 1e3)
                    reply = None
        except StopIteration as stop:
            out: Outcome = stop.value
        return out

    def request(w: int):
        t0 = env.now
        bounds, degraded = choose(w)
        prev: Boundary = "start"
        answered = n_t - 1
        down_from = n_t - 1  # the response crosses the hops below this tier
        for i, b in enumerate(bounds):
            seg = pos[b][1] - pos[prev][1]
            if seg > 0:
                yield from compute(i, w, seg)
            if b == "end":
                answered = down_from = i
                break
            if i == last:  # the last hop: the flow decides who answers
                out = yield from via_flow(w, b)
                if out is None:
                    run.lost += 1
                    return
                remote = out.route in Route.remote()
                answered, down_from = (n_t - 1 if remote else i), i
                degraded = degraded or out.degraded
                break
            sent = yield from hop(i, w, pos[b][2], True)
            if not sent:  # the hop is cut: this tier answers alone
                degraded, answered = True, i
                if not tiers[i].has_model:
                    run.lost += 1
                    return
                if whole_ms - pos[b][1] > 0:
                    yield from compute(i, w, whole_ms - pos[b][1])
                down_from = i
                break
            prev = b
        for j in reversed(range(down_from)):
            sent = yield from hop(j, w, wl.response_bytes, False)
            if not sent:
                run.lost += 1
                return
        lat_ms = (env.now - t0) * 1e3
        run.latency_ms.add(lat_ms)
        run.completed += 1
        run.degraded += degraded
        run.answered_by[answered] += 1
        run.deadline_missed += lat_ms > wl.deadline_ms

    state = {"arriving": True}

    def arrivals():
        gap = 1.0 / (wl.rate_per_s * wear)  # each wearable Poisson: together Poisson, split evenly
        for _ in range(n_req):
            yield env.timeout(draws.exponential(gap))
            env.process(request(int(draws.uniform() * wear)))
        state["arriving"] = False

    def scripted():
        for k, t in enumerate(sorted(arrivals_s or [])):
            yield env.timeout(max(0.0, t - env.now))
            env.process(request(k % wear))
        state["arriving"] = False

    # The tier's own requests draw from a stream of their own, so that loading the phone leaves
    # the wearables' arrivals and service draws as they were (common random numbers in sweeps).
    own_draws = Draws(np.random.default_rng([sc.seed if seed is None else seed, 1]))

    def own(i: int):
        t = tiers[i]
        st = stations[i][0]

        def one():
            now = env.now
            s = t.own_service_ms / 1e3
            start = st.admit(now, s)
            yield env.timeout(start - now + s)
            run.own_busy_s[i] += s
            run.own_latency_ms.add((env.now - now) * 1e3)

        while state["arriving"]:
            yield env.timeout(own_draws.exponential(1.0 / t.own_rate_per_s))
            env.process(one())

    env.process(scripted() if arrivals_s is not None else arrivals())
    for i, t in enumerate(tiers):
        if i and t.own_rate_per_s > 0 and t.own_service_ms > 0:
            env.process(own(i))
    env.run()
    run.duration_s = env.now
    run.radio_low_j = [sum(_radio_j(m) for m in ms) for ms in meters]
    run.radio_high_j = [sum(_radio_j(m.far) for m in ms) for ms in meters]
    return run


def summarise_tiers(run: TierRun) -> dict:
    """Latency, and per tier energy and battery hours (the phone's cost of its wearables apart)."""
    sc, dur = run.scenario, max(run.duration_s, 1e-12)
    tiers, n = sc.tiers, max(1, run.completed)
    lat = run.latency_ms
    per_tier = []
    for i, t in enumerate(tiers):
        k = t.count
        radio_j = run.radio_low_j[i] if i < len(tiers) - 1 else 0.0
        if i and t.battery_wh is not None:  # its side of the hop below (a cloud has no battery)
            radio_j += run.radio_high_j[i - 1]
        serving_j = t.compute_power_w * run.serving_busy_s[i] + radio_j
        own_j = t.compute_power_w * run.own_busy_s[i]
        idle_w = t.idle_power_w
        serving_w = serving_j / dur / k  # per instance
        own_w = own_j / dur
        power_w = idle_w + own_w + serving_w
        row = {
            "tier": t.name,
            "instances": k,
            "wait_ms_per_request": run.wait_s[i] * 1e3 / n,
            "compute_ms_per_request": run.serving_busy_s[i] * 1e3 / n,
            "utilisation": (run.serving_busy_s[i] + run.own_busy_s[i]) / (dur * t.cores * k),
            "energy_j": {
                "compute": t.compute_power_w * run.serving_busy_s[i],
                "radio": radio_j,
                "own_requests": own_j,
                "idle": idle_w * dur * k,
            },
            "serving_mj_per_request": serving_j * 1e3 / n,
            "serving_power_w": serving_w,
            "average_power_w": power_w,
        }
        if t.battery_wh is not None:
            alone_w = idle_w + own_w
            row["battery_hours"] = t.battery_wh / power_w if power_w > 0 else math.inf
            row["battery_hours_without_wearables"] = (
                t.battery_wh / alone_w if alone_w > 0 else math.inf
            )
            row["battery_pct_per_hour_for_wearables"] = 100 * serving_w / t.battery_wh
        per_tier.append(row)
    hops = [
        {
            "hop": f"{tiers[i].name}->{tiers[i + 1].name}",
            "technology": link.technology if (link := tiers[i].link) else "",
            "bytes_up_per_request": run.bytes_up[i] / n,
            "bytes_down_per_request": run.bytes_down[i] / n,
            "ms_per_request": run.hop_s[i] * 1e3 / n,
        }
        for i in range(len(tiers) - 1)
    ]
    cloud_answers = run.answered_by[-1]
    out = {
        "scenario": sc.name,
        "placement": run.placement,
        "requests": run.completed + run.lost,
        "completed": run.completed,
        "lost": run.lost,
        "degraded": run.degraded,
        "simulated_s": run.duration_s,
        "latency_ms": {q: lat.quantile(p) for q, p in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))}
        | {"mean": lat.mean},
        "deadline_miss_rate": run.deadline_missed / n,
        "answered_by": {t.name: c for t, c in zip(tiers, run.answered_by, strict=True)},
        "tiers": per_tier,
        "hops": hops,
        "cloud_requests": cloud_answers,
        "cloud_cost_usd": cloud_answers * tiers[-1].cost_per_request_usd,
    }
    if run.own_latency_ms.n:
        own = run.own_latency_ms
        out["own_requests_latency_ms"] = {"p50": own.quantile(0.5), "mean": own.mean}
    if run.chosen:
        out["chosen"] = dict(sorted(run.chosen.items(), key=lambda kv: -kv[1]))
    return out
