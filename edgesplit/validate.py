"""``sim validate``: the simulator against the real device, cloud and emulated link.

The real device router sends requests through the link emulator to the real cloud service; the
simulator runs the same request flow (``device/flow.py``) over the same link profile, with
figures measured in the same command. On a busy machine one run proves little, so the command
runs *rounds*: in each round, for each case (a link profile) it first calibrates (the device path
as the router runs it, the cloud through the emulator with the link physics taken out) and then
runs every policy; the simulator is given that round's calibration and the real run's own request
script (arrival times, and which inputs the device is unsure about). Each error is
reported as a mean over rounds with a Student-t 95 % interval, so machine load shows up as a
wide interval instead of a lucky or unlucky figure.

Cases: link profiles (e.g. LTE and Wi-Fi) with every policy, and the *slow cloud*: a 3 s remote
round trip (the emulated link holds each direction 1.5 s) against the client's 1 s timeout, where
the real client times out, retries and falls back after ~2.1 s.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from edgesplit.device.link import LinkProfile
from edgesplit.device.link_emulator import ConnDraws, LinkEmulator
from edgesplit.device.policy import POLICY_KINDS, PolicyConfig
from edgesplit.device.resilience import CircuitBreaker
from edgesplit.device.router import Router
from edgesplit.measuring import Settle, realtime_thread
from edgesplit.rig import Rig

PROBE_DELAY_MS = 5.0  # each way, through the calibration emulator
# The link with its physics taken out (no rate limit, jitter or loss; the fixed delay above,
# subtracted): the calibration's and the twins' way to the cloud.
PROBE = LinkProfile("probe", 1e5, 1e5, PROBE_DELAY_MS, 0.0, 0.0, 0.0)
CLOUD_SAMPLES = 32  # cloud calls through the probe, for their median
CALIBRATION_ITEMS = 8  # the first items calibrate; the rest are the measured requests
BREAKER = (3, 3.0)  # the rig's circuit breaker: failures to open, reset s
# Stretches of a policy's run calibrated apart (_compare): 50 requests each at the default 150,
# so a twin median is of 50 calls while following the load's drift over the run.
SEGMENTS = 3


@dataclass
class Case:
    name: str
    profile: LinkProfile
    policies: list[str]
    breaker_failures: int = BREAKER[0]
    max_requests: int | None = None  # per policy per round (slow cases)


def slow_cloud_case() -> Case:
    """3 s to answer against a 1 s client timeout; the breaker never opens, so every request
    shows the timeouts, the retry and the fallback."""
    profile = LinkProfile("slow-cloud", 100.0, 100.0, 1500.0, 0.0, 0.0, 0.0)
    return Case("slow-cloud", profile, ["cloud-only"], breaker_failures=10_000, max_requests=12)


def default_cases(links: list[str], policies: list[str] | None = None) -> list[Case]:
    pols = policies or list(POLICY_KINDS)
    return [Case(t, LinkProfile.technology(t), pols) for t in links] + [slow_cloud_case()]


@dataclass
class _Round:
    cloud_ms: float
    split_cloud_ms: float
    split_head_ms: float
    real: dict[str, list[float]] = field(default_factory=dict)
    starts: dict[str, list[float]] = field(default_factory=dict)
    bytes: dict[str, tuple[int, int]] = field(default_factory=dict)
    routes: dict[str, dict[str, int]] = field(default_factory=dict)
    draws: dict[str, list[list[ConnDraws]]] = field(default_factory=dict)  # per request, per call
    device_by_policy: dict[str, list[float]] = field(default_factory=dict)  # interleaved
    twin_by_policy: dict[str, list[float]] = field(default_factory=dict)  # interleaved twins


def _samples_ms(fn: Callable[[], object], n: int, gap_s: float, settle: Settle) -> list[float]:
    times = []
    for _ in range(n):
        time.sleep(gap_s)
        settle()
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return times


def validate(
    device: str,
    cases: list[Case],
    requests: int,
    rounds: int,
    seed: int,
    gap_s: float = 0.02,
    sim_repeats: int = 20,
    log: Callable[[str], None] = lambda _m: None,
    cloud_samples: int = CLOUD_SAMPLES,
) -> dict:
    """``requests`` real requests per policy and case in each of ``rounds`` interleaved rounds;
    ``cloud_samples``: cloud calls per calibration before the policies (the device path is
    measured between each policy's own requests)."""
    from edgesplit.device.oip_client import OipClient

    per_round = max(1, requests)
    results: dict[tuple[str, str], list[dict]] = {}
    with Rig([device], CALIBRATION_ITEMS + per_round, seed, link_override={}, log=log) as rig:
        loop = rig.loops[device]
        task, items = loop.task, loop.items
        calib, measured = items[:CALIBRATION_ITEMS], items[CALIBRATION_ITEMS:]
        router = loop.router
        assert router.client is not None
        assert loop.emulator is not None  # the rig emulates links unless told "off"
        threshold = router.policy.threshold
        unsure = [bool(task.local(it.x)[1] < threshold) for it in measured]
        escalation = float(np.mean(unsure))
        # The cloud as the emulator delivers it: server, HTTP on loopback, the emulator's hops and
        # its timers' lateness (it sleeps each delay; a loaded machine wakes it late), with the
        # link physics taken out: no rate limit, no jitter, and the fixed delay subtracted.
        with LinkEmulator((rig.server.host, rig.server.port), PROBE) as emu:
            direct = OipClient(emu.url, timeout_s=10)
            twin = _twin_router(router, emu)
            settle = Settle()
            # The device path at real-time priority once the rig's threads exist (measuring.py).
            with realtime_thread() as realtime:
                for r in range(rounds):
                    for case in cases:
                        log(f"round {r + 1}/{rounds}: {case.name}: calibrating...")
                        # the tail model's time: split and deadline-aware (which may split)
                        split = bool({"split", "deadline-aware"} & set(case.policies))
                        cal = _calibrate(
                            loop, router, calib, direct, gap_s, cloud_samples, split, settle
                        )
                        loop.switch_link(case.profile)
                        for pol in case.policies:
                            log(f"round {r + 1}/{rounds}: {case.name}: {pol}...")
                            router.policy = PolicyConfig(pol, threshold=threshold)  # type: ignore[arg-type]
                            run = measured[: case.max_requests or per_round]
                            _run_policy(case, pol, cal, loop, run, calib, twin, gap_s, settle)
                        for pol in case.policies:
                            row = _compare(
                                case, pol, cal, loop, unsure, threshold, seed + r, sim_repeats
                            )
                            results.setdefault((case.name, pol), []).append(row)
    rows = [_aggregate(case, pol, results[(case, pol)]) for case, pol in results]
    return {
        "device": device,
        "rounds": rounds,
        "requests_per_policy_per_round": per_round,
        "escalation_rate": escalation,
        "settle": settle.summary(),
        "realtime": realtime,
        "cases": [c.name for c in cases],
        "policies": rows,
    }


# The twin of each policy's requests: the same router and client over the probe link (no link
# physics), between the policy's own requests: its time less the probe's fixed delays is what the
# policy's requests spend outside the link in the same minutes (the server, loopback HTTP, the
# emulator's hops and timers, the router's work around a call). None: nothing remote to measure.
TWIN_POLICY: dict[str, str | None] = {
    "device-only": None,
    "cloud-only": "cloud-only",
    "cascade": "cloud-only",  # its escalations are cloud calls
    "split": "split",
    "deadline-aware": "cloud-only",  # over these links it calls the cloud (its split: calibrated)
}


def _twin_router(router: Router, emu: LinkEmulator) -> Router:
    """The device's router and client with the TCP connections sent to ``emu`` instead of the
    device's own emulator (whose radio state the real run keeps), a breaker that never opens and
    its own backoff draws (the real client's are not consumed)."""
    assert router.client is not None
    client = copy.copy(router.client)
    client.oip = copy.copy(client.oip)
    client.oip.connect_to = (emu.host, emu.port)
    client.breaker = CircuitBreaker(10_000, BREAKER[1])
    client.rng = random.Random(0)
    return Router(PolicyConfig("cloud-only"), client, PROBE.estimator())


def _request_ms(router: Router, kind: str, loop, item) -> float:
    """One request of policy ``kind`` through ``router`` (its own policy kept), in ms: the
    device path (device-only through the device's router) or a twin (through the twin's)."""
    keep = router.policy
    router.policy = PolicyConfig(kind)  # type: ignore[arg-type]
    try:
        return float(router.handle(loop.task, item.x, loop.costs.costs()).total_ms)
    finally:
        router.policy = keep


def _run_policy(
    case: Case,
    pol: str,
    cal: _Round,
    loop,
    run: list,
    calib: list,
    twin: Router,
    gap_s: float,
    settle: Settle,
) -> None:
    """The real run of one policy (the router already set to it) into ``cal``: each request's
    latency, arrival, route and link draws, and between requests the device path and the twin."""
    router, client, emulator = loop.router, loop.router.client, loop.emulator
    client.breaker = CircuitBreaker(case.breaker_failures, BREAKER[1])
    router.estimator = case.profile.estimator()
    emulator.set_profile(case.profile)  # a fresh radio, as simulated
    st = emulator.stats
    up0, down0, conn0 = st.bytes_up, st.bytes_down, st.connections
    lat, starts, device_ms, twin_ms = [], [], [], []
    routes: dict[str, int] = {}
    log_ = emulator.draw_log = []
    per_req: list[list[ConnDraws]] = []
    twin_kind = TWIN_POLICY[pol] if cal.split_cloud_ms or pol != "split" else None
    t0 = time.monotonic()
    for k, it in enumerate(run):
        settle()
        starts.append(time.monotonic() - t0)
        k0 = len(log_)
        ans = router.handle(loop.task, it.x, loop.costs.costs())
        per_req.append(log_[k0:])  # the connections this request made
        loop.costs.update(ans, 0)
        lat.append(ans.total_ms)
        routes[ans.route] = routes.get(ans.route, 0) + 1
        # The device path and the twin measured between this policy's own requests, so the
        # simulator's figures come from the same minutes (a shared machine's load moves the
        # device path by 10-25 % over one policy's run, the cloud's time by more).
        cal_item = calib[k % len(calib)]
        time.sleep(gap_s)
        settle()
        device_ms.append(_request_ms(router, "device-only", loop, cal_item))
        time.sleep(gap_s)
        if twin_kind is not None:
            settle()
            twin_ms.append(_request_ms(twin, twin_kind, loop, cal_item))
            time.sleep(gap_s)
    emulator.draw_log = None
    conns = st.connections - conn0
    if conns:
        cal.bytes[pol] = ((st.bytes_up - up0) // conns, (st.bytes_down - down0) // conns)
    cal.real[pol], cal.starts[pol], cal.routes[pol] = lat, starts, routes
    cal.draws[pol] = per_req
    cal.device_by_policy[pol] = device_ms
    if twin_ms:
        cal.twin_by_policy[pol] = twin_ms


def _calibrate(
    loop,
    router,
    calib,
    direct,
    gap_s: float,
    cloud_samples: int,
    split: bool,
    settle: Settle,
) -> _Round:
    """The cloud's own time and the split's head and tail, measured before the policies: the
    fallback where a policy has no twin, and the split's head time."""
    task = loop.task
    # The cloud as the router reaches it, through the device's own emulator with the link
    # physics taken out: the server, loopback HTTP, the emulator's hops and timers, and the
    # router's own work around a call (the flow, encoding, decoding), which a bare client call
    # does not pay. Medians: a loaded machine makes a few calls very late (0.5 s and more), and
    # drawing from every sample gave the simulator tails the real run did not have; the real
    # run's own jitter and losses are replayed, so its tail needs no help from here.
    loop.emulator.set_profile(PROBE)
    keep = router.policy
    router.policy, router.estimator = PolicyConfig("cloud-only"), PROBE.estimator()
    routed = []
    for k in range(cloud_samples):
        time.sleep(gap_s)
        settle()
        routed.append(router.handle(task, calib[k % len(calib)].x, loop.costs.costs()).total_ms)
    router.policy = keep
    cloud_ms = max(float(np.median(routed)) - 2 * PROBE_DELAY_MS, 0.0)
    x = calib[0].x
    split_cloud_ms = head_ms = 0.0
    if split and task.split_head is not None and task.split_model is not None:
        # The tail model by a bare client call, plus what the router adds to a bare call.
        def cloud_call() -> object:
            return direct.infer(task.cloud_model, task.cloud_inputs(x))

        bare_ms = float(np.median(_samples_ms(cloud_call, cloud_samples, gap_s, settle)))
        router_ms = max(float(np.median(routed)) - bare_ms, 0.0)
        head = task.split_head
        feed = head(x)
        tail = _samples_ms(
            lambda: direct.infer(task.split_model, feed), cloud_samples, gap_s, settle
        )
        split_cloud_ms = max(float(np.median(tail)) - 2 * PROBE_DELAY_MS + router_ms, 0.01)
        head_ms = float(np.median(_samples_ms(lambda: head(x), 10, gap_s, settle)))
    return _Round(cloud_ms, split_cloud_ms, head_ms)


def _scenario(
    case: Case,
    pol: str,
    cal: _Round,
    loop,
    unsure: list[bool],
    threshold: float,
    seed: int,
    device_samples: list[float],
    twins: list[float],
):
    """The simulator's scenario for one policy given device-path samples and twin times (ms):
    (scenario, cloud ms, split tail ms)."""
    from edgesplit.sim.scenario import parse_scenario

    costs = loop.costs
    device_ms = float(np.mean(device_samples))
    up, down = (
        cal.bytes.get(pol)
        or cal.bytes.get("cloud-only")
        or (
            int(costs.request_bytes),
            int(costs.response_bytes),
        )
    )
    split_points = []
    if costs.split_index is not None and cal.split_cloud_ms > 0:  # the tail was calibrated
        split_up = cal.bytes.get("split", (int(costs.split_bytes), down))[0]
        head = min(cal.split_head_ms, device_ms)
        split_points = [
            {
                "index": costs.split_index,
                "head_ms": head,
                "tail_ms": max(device_ms - head, 1e-6),
                "tensor_bytes": split_up,
            }
        ]
    tail_ms = split_points[0]["tail_ms"] if split_points else 1.0
    cloud_ms, split_cloud_ms = cal.cloud_ms, cal.split_cloud_ms
    if twins and TWIN_POLICY[pol] == "cloud-only":
        cloud_ms = max(float(np.median(twins)) - 2 * PROBE_DELAY_MS, 0.0)
    elif twins and split_points:  # the split's twin: head, link-free cut, tail and router
        head = split_points[0]["head_ms"]
        split_cloud_ms = max(float(np.median(twins)) - 2 * PROBE_DELAY_MS - head, 0.01)
    doc = {
        "name": f"validate-{case.name}",
        "seed": seed,
        "device": {"name": loop.spec.name, "cores": 1},
        "links": [case.profile.scenario_link()],
        "workload": {
            "name": loop.task.name,
            "rate_per_s": 1.0,
            "deadline_ms": loop.spec.deadline_ms,
            "request_bytes": up,
            "response_bytes": down,
            "device_model_ms": device_ms,
            "service_distribution": "empirical",
            "device_samples_ms": device_samples,
            "split_points": split_points,
            # The cloud runs the tail in the time measured for the tail model.
            "cloud_speedup": max(tail_ms / split_cloud_ms, 1e-3) if split_points else 1.0,
            "device_accuracy": 0.9,
            "cloud_accuracy": 0.95,
            "escalation_rate": float(np.mean(unsure)),
        },
        "cloud": {
            "replicas": 1,
            "max_batch": 1,
            "batch_delay_ms": 0,
            "batch_fixed_ms": cloud_ms,
            "per_item_ms": 0,
        },
        "client": {
            "timeout_ms": loop.router.client.timeout_s * 1e3,
            "retries": loop.router.client.retries,
            "backoff_ms": loop.router.client.backoff_base_ms,
            "breaker_failures": case.breaker_failures,
            "breaker_reset_s": BREAKER[1],
        },
        "policies": [{"kind": pol, "threshold": threshold}],
    }
    return parse_scenario(doc, "sim validate"), cloud_ms, split_cloud_ms


def _compare(
    case: Case,
    pol: str,
    cal: _Round,
    loop,
    unsure: list[bool],
    threshold: float,
    seed: int,
    repeats: int,
) -> dict:
    """This round's real p50/p95 against the simulator given this round's calibration.

    The run is cut into ``SEGMENTS`` stretches of consecutive requests; each stretch's requests
    are simulated with the device-path samples and twin times measured between *them* (a
    shared machine's load moves the cloud's time by 20 ms and more within one policy's run).
    Every simulation runs the whole script, so the radio's state carries over as in the real
    run, and keeps its own stretch's requests."""
    from edgesplit.sim.model import simulate

    n = len(cal.real[pol])
    stretches = [s for s in np.array_split(np.arange(n), min(SEGMENTS, n)) if s.size]
    device_all = cal.device_by_policy[pol]
    twin_all = cal.twin_by_policy.get(pol, [])
    per_stretch = []
    for idx in stretches:
        dev = [device_all[i] for i in idx if i < len(device_all)] or device_all
        tw = [twin_all[i] for i in idx if i < len(twin_all)] or twin_all
        per_stretch.append(
            (idx, *_scenario(case, pol, cal, loop, unsure, threshold, seed, dev, tw))
        )
    # Each repeat replays the real run's script: the same arrivals, the same inputs and, on the
    # link, the jitter and losses the emulator drew for each of the real run's connections, so
    # the comparison is request by request; what is left is drawn anew (device times from the
    # calibration samples, backoff, any connection the real run did not make). Its p50/p95 are
    # taken over the same requests as the real run's.
    sim_routes: dict[str, int] = {}
    p50s, p95s = [], []
    per_request: list[list[float]] = []
    for k in range(repeats):
        lat = np.zeros(n)
        for idx, sc, _cloud, _split in per_stretch:
            run = simulate(
                sc,
                pol,
                seed=seed * 1000 + k,
                arrivals_s=cal.starts[pol],
                unsure=unsure,
                keep_records=True,
                replay=cal.draws.get(pol),
            )
            keep = set(idx.tolist())
            for r in run.records:
                if r.id in keep:
                    lat[r.id] = r.latency_s * 1e3
                    sim_routes[r.route] = sim_routes.get(r.route, 0) + 1
        per_request.append(lat.tolist())
        p50s.append(float(np.percentile(lat, 50)))
        p95s.append(float(np.percentile(lat, 95)))
    real = np.array(cal.real[pol])
    row: dict = {
        "real_p50_ms": float(np.percentile(real, 50)),
        "real_p95_ms": float(np.percentile(real, 95)),
        # The simulator's prediction for one run: the median over its repeats, the best single
        # guess under the absolute error we report (the mean lets one repeat that drew a rare
        # slow device sample into a cascade's p50 move it by half).
        "sim_p50_ms": float(np.median(p50s)),
        "sim_p95_ms": float(np.median(p95s)),
    }
    # Paired: the real request minus the simulator's mean for the same request (same arrival,
    # input and link draws): what the real path spends that the model does not.
    sim_each = np.mean(np.array(per_request), axis=0)
    row["paired_diff_p50_ms"] = float(np.median(real - sim_each))
    row["real_ms"], row["sim_ms"] = real.tolist(), sim_each.tolist()
    row["connections"] = [len(c) for c in cal.draws.get(pol, [])]
    row["replayed_jitter_ms"] = [
        sum((c.up_jitter_s or 0.0) + (c.down_jitter_s or 0.0) for c in conns) * 1e3
        for conns in cal.draws.get(pol, [])
    ]
    row["calibrated_cloud_ms"] = float(np.mean([c for _i, _s, c, _t in per_stretch]))
    row["calibrated_cloud_ms_per_stretch"] = [c for _i, _s, c, _t in per_stretch]
    row["calibrated_split_cloud_ms"] = float(np.mean([t for _i, _s, _c, t in per_stretch]))
    row["real_routes"], row["sim_routes"] = cal.routes[pol], sim_routes
    sims = np.array(per_request)
    for q, level in (("p50", 0.50), ("p95", 0.95)):
        row[f"{q}_rel_error"] = abs(row[f"sim_{q}_ms"] - row[f"real_{q}_ms"]) / row[f"real_{q}_ms"]
        # Where the simulator puts the real quantile's value in its own distribution: on a step of
        # the distribution (a cascade whose p50 falls between the slowest local answer and the
        # fastest escalation) the value swings with one request while this stays put.
        row[f"{q}_sim_cdf"] = float(np.mean(sims <= row[f"real_{q}_ms"]))
        row[f"{q}_cdf_error"] = abs(row[f"{q}_sim_cdf"] - level)
    return row


def _aggregate(case: str, pol: str, rounds: list[dict]) -> dict:
    from edgesplit.sim.sweep import confidence_interval

    out: dict = {"case": case, "policy": pol, "rounds": len(rounds)}
    for key in rounds[0]:
        if not isinstance(rounds[0][key], float):  # routes, per-request lists: per round only
            continue
        mean, half = confidence_interval([r[key] for r in rounds])
        out[key], out[f"{key}_ci95"] = mean, half
    out["per_round"] = rounds
    return out
