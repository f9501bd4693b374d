"""``sim validate --case tiers``: the three-tier simulator against a real phone hub on two
emulated links.

Real: an earbud without a model sends KWS windows over the link emulator's BLE to the phone hub
(``edgesplit/phone_hub.py``), which answers itself or relays to the real cloud service over the
emulator's LTE (through ``device/flow.py``). Simulated: ``sim/tiers.py`` with the same link
profiles, the hub's client settings, the same request script (arrival times), the bytes each hop
carried per request in the real run, and the service times measured in the same command through
the same proxies with ideal links (the phone's model behind its HTTP handler; the hub's relay
plus the cloud), each request drawing one of the measured times, so the host's load at the time
shows in the spread. The simulator is averaged over draws (its jitter and losses are random;
the real run is one draw), and the command runs rounds so machine load shows; the goal is
judged on all rounds' requests together.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import statistics
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from edgesplit.device.link import LinkProfile
from edgesplit.device.link_emulator import LinkEmulator
from edgesplit.phone_hub import LocalModel, PhoneHub, Wearable

CALIBRATION_CALLS = 30  # per path; their spread (the host's load) goes into the simulator
SIM_DRAWS = 20
WEARABLE_TIMEOUT_S = 30.0  # generous: a busy machine must not turn a slow answer into a miss
CLOUD_TIMEOUT_S = 10.0


def _ideal(profile: LinkProfile) -> LinkProfile:
    """A link that adds nothing: no delay, jitter, loss, radio states, nor a rate limit."""
    return replace(
        profile,
        up_mbps=1e5,
        down_mbps=1e5,
        one_way_delay_ms=0.0,
        jitter_p90_ms=0.0,
        loss_rate=0.0,
        promotion_ms=0.0,
        tail_ms=0.0,
    )


def _times_ms(fn: Callable[[], object], n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def _calibrate(near: Wearable, feed: dict[str, np.ndarray]) -> tuple[list[float], list[float]]:
    """The phone's model behind its handler, and the hub's relay plus the cloud: each measured
    ``CALIBRATION_CALLS`` times (ms), calls interleaved so both see the same machine load."""
    near.infer("kws", feed, route="cloud")  # warm both paths
    phone: list[float] = []
    cloud: list[float] = []
    for _ in range(CALIBRATION_CALLS):
        phone += _times_ms(lambda: near.infer("kws", feed, route="phone"), 1)
        cloud += _times_ms(lambda: near.infer("kws", feed, route="cloud"), 1)
    return phone, cloud


def _real_run(
    bud: Wearable, feed: dict[str, np.ndarray], route: str, arrivals_s: list[float]
) -> list[float]:
    """Requests sent at the script's times (s from start), each on its own thread; latencies."""
    lat: list[float] = [0.0] * len(arrivals_s)

    def one(k: int) -> None:
        ans = bud.infer("kws", feed, route=route)
        if ans.route != route:
            raise RuntimeError(f"request {k}: answered by {ans.route}, expected {route}")
        lat[k] = ans.total_ms

    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
        t0 = time.perf_counter()
        futures = []
        for k, t in enumerate(arrivals_s):
            delay = t - (time.perf_counter() - t0)
            if delay > 0:
                time.sleep(delay)  # the driver's schedule, not a wait on the system under test
            futures.append(pool.submit(one, k))
        for f in futures:
            f.result()
    return lat


def _sim_doc(
    ble: LinkProfile,
    lte: LinkProfile,
    phone_ms: list[float],
    cloud_ms: list[float],
    up: int,
    down: int,
) -> dict:
    """The chain as a tier scenario; each tier's service time drawn from what was measured."""
    return {
        "name": "validate-tiers",
        "model": {"name": "kws", "whole_ms": 1.0},
        "workload": {
            "rate_per_s": 1.0,  # unused: the real script's arrivals replace it
            "deadline_ms": 1000,
            "request_bytes": up,
            "response_bytes": down,
        },
        "tiers": [
            {"name": "earbud", "has_model": False, "link": ble.scenario_link()},
            # one core: the hub runs its ONNX session under the GIL, one request at a time
            {
                "name": "phone",
                "cores": 1,
                "slowdown": statistics.median(phone_ms),
                "service_samples_ms": phone_ms,
                "link": lte.scenario_link(),
                # the hub's client toward the cloud, as the real hub below is set
                "client": {"timeout_ms": CLOUD_TIMEOUT_S * 1e3, "retries": 0},
            },
            # kws-small: 2 instances
            {
                "name": "cloud",
                "cores": 2,
                "slowdown": statistics.median(cloud_ms),
                "service_samples_ms": cloud_ms,
            },
        ],
        "placements": [
            {"name": "phone", "run_on": "phone"},
            {"name": "cloud", "run_on": "cloud"},
        ],
    }


def validate_tiers(
    cloud_url: str,
    cloud_model: str,
    phone_model: LocalModel,
    feed: dict[str, np.ndarray],
    requests: int = 40,
    rate_per_s: float = 3.0,
    rounds: int = 2,
    seed: int = 3,
    log: Callable[[str], object] = lambda _m: None,
) -> dict:
    """Real vs simulated p50/p95 for the phone and cloud placements: per round, the mean of the
    rounds, and all rounds' requests pooled."""
    from edgesplit.sim.stats import LogHistogram
    from edgesplit.sim.tier_scenario import parse_tier_scenario
    from edgesplit.sim.tiers import simulate_tiers

    host, _, port = cloud_url.removeprefix("http://").rstrip("/").partition(":")
    ble, lte = LinkProfile.technology("ble"), LinkProfile.technology("lte")
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    real_all: dict[str, list[float]] = {"phone": [], "cloud": []}
    sim_all = {route: [LogHistogram() for _ in range(SIM_DRAWS)] for route in ("phone", "cloud")}
    for r in range(rounds):
        with contextlib.ExitStack() as stack:
            lte_emu = stack.enter_context(LinkEmulator((host, int(port)), lte, seed + r))
            hub = stack.enter_context(
                PhoneHub(
                    {"kws": phone_model},
                    lte_emu.url,
                    "cloud",
                    {"kws": cloud_model},
                    CLOUD_TIMEOUT_S,
                )
            )
            ble_emu = stack.enter_context(LinkEmulator((hub.host, hub.port), ble, seed + 100 + r))
            bud = Wearable(ble_emu.url, timeout_s=WEARABLE_TIMEOUT_S)
            # Calibration: the same components and proxies with the links made ideal (no delay,
            # no rate limit), so the host's own time on the path is measured, then the links.
            for emu in (ble_emu, lte_emu):
                emu.set_profile(_ideal(emu.profile))
            phone_ms, cloud_ms = _calibrate(bud, feed)
            ble_emu.set_profile(ble)
            lte_emu.set_profile(lte)
            for route in ("phone", "cloud"):
                log(f"round {r + 1}/{rounds}: {route} placement, {requests} real requests")
                gaps = rng.exponential(1.0 / rate_per_s, requests)
                arrivals = np.cumsum(gaps).tolist()
                b0 = ble_emu.stats.bytes_up, ble_emu.stats.bytes_down
                real = _real_run(bud, feed, route, arrivals)
                up = (ble_emu.stats.bytes_up - b0[0]) // requests
                down = (ble_emu.stats.bytes_down - b0[1]) // requests
                doc = _sim_doc(ble, lte, phone_ms, cloud_ms, int(up), int(down))
                sc = parse_tier_scenario(doc, "validate-tiers")
                p50s, p95s = [], []
                real_all[route] += real
                for d in range(SIM_DRAWS):
                    run = simulate_tiers(sc, route, seed=seed + d, arrivals_s=arrivals)
                    p50s.append(run.latency_ms.quantile(0.5))
                    p95s.append(run.latency_ms.quantile(0.95))
                    sim_all[route][d].merge(run.latency_ms)
                real_p50, real_p95 = (float(np.percentile(real, q)) for q in (50, 95))
                sim_p50, sim_p95 = float(np.mean(p50s)), float(np.mean(p95s))
                rows.append(
                    {
                        "round": r + 1,
                        "placement": route,
                        "real_p50_ms": real_p50,
                        "sim_p50_ms": sim_p50,
                        "p50_rel_error": abs(sim_p50 - real_p50) / real_p50,
                        "real_p95_ms": real_p95,
                        "sim_p95_ms": sim_p95,
                        "p95_rel_error": abs(sim_p95 - real_p95) / real_p95,
                        "phone_ms": statistics.median(phone_ms),
                        "cloud_path_ms": statistics.median(cloud_ms),
                        "phone_p95_ms": float(np.percentile(phone_ms, 95)),
                        "cloud_path_p95_ms": float(np.percentile(cloud_ms, 95)),
                        "bytes_up_per_request": int(up),
                        "bytes_down_per_request": int(down),
                    }
                )
    summary, pooled = {}, {}
    for route in ("phone", "cloud"):
        mine = [x for x in rows if x["placement"] == route]
        summary[route] = {
            k: float(np.mean([x[k] for x in mine]))
            for k in (
                "real_p50_ms",
                "sim_p50_ms",
                "p50_rel_error",
                "real_p95_ms",
                "sim_p95_ms",
                "p95_rel_error",
            )
        }
        # Every round's requests together: a p95 of 40 requests is their 2nd largest, one draw
        # of a noisy statistic; over all rounds it rests on several times as many.
        row: dict[str, float] = {}
        for name, q in (("p50", 0.5), ("p95", 0.95)):
            real_q = float(np.percentile(real_all[route], 100 * q))
            sim_q = float(np.mean([h.quantile(q) for h in sim_all[route]]))
            row |= {
                f"real_{name}_ms": real_q,
                f"sim_{name}_ms": sim_q,
                f"{name}_rel_error": abs(sim_q - real_q) / real_q,
            }
        pooled[route] = row
    return {
        "requests": requests,
        "rate_per_s": rate_per_s,
        "rounds": rows,
        "mean": summary,
        "pooled": pooled,
    }
