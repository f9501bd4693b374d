"""``sim validate-tiers``: the three-tier simulator against a real phone hub on two emulated links.

Real: an earbud without a model sends KWS windows over the link emulator's BLE to the phone hub
(``edgesplit/phone_hub.py``), which answers itself or forwards to the real cloud service over the
emulator's LTE. Simulated: ``sim/tiers.py`` with the same link profiles, the same request script
(arrival times), the bytes each hop carried per request in the real run, and the service times
measured in the same command without the emulators (the phone's model behind its HTTP handler;
the hub's relay plus the cloud). The simulator is averaged over draws (its jitter and losses
are random; the real run is one draw), and the command runs rounds so machine load shows.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import statistics
import time
from collections.abc import Callable

import numpy as np

from edgesplit.device.link import LinkProfile
from edgesplit.device.link_emulator import LinkEmulator
from edgesplit.phone_hub import LocalModel, PhoneHub, Wearable

CALIBRATION_CALLS = 15
SIM_DRAWS = 20
WEARABLE_TIMEOUT_S = 30.0  # generous: a busy machine must not turn a slow answer into a miss
CLOUD_TIMEOUT_S = 10.0


def _median_ms(fn: Callable[[], object], n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(statistics.median(times))


def _calibrate(near: Wearable, feed: dict[str, np.ndarray]) -> tuple[float, float]:
    """The phone's model behind its handler, and the hub's relay plus the cloud (ms, medians)."""
    near.infer("kws", feed, route="cloud")  # warm both paths
    phone_ms = _median_ms(lambda: near.infer("kws", feed, route="phone"), CALIBRATION_CALLS)
    cloud_ms = _median_ms(lambda: near.infer("kws", feed, route="cloud"), CALIBRATION_CALLS)
    return phone_ms, cloud_ms


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
    ble: LinkProfile, lte: LinkProfile, phone_ms: float, cloud_ms: float, up: int, down: int
) -> dict:
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
                "slowdown": phone_ms,
                "link": lte.scenario_link(),
                # the hub's client toward the cloud, as the real hub below is set
                "client": {"timeout_ms": CLOUD_TIMEOUT_S * 1e3, "retries": 0},
            },
            {"name": "cloud", "cores": 2, "slowdown": cloud_ms},  # kws-small: 2 instances
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
    """Real vs simulated p50/p95 for the phone and cloud placements; errors per round and mean."""
    from edgesplit.sim.tier_scenario import parse_tier_scenario
    from edgesplit.sim.tiers import simulate_tiers

    host, _, port = cloud_url.removeprefix("http://").rstrip("/").partition(":")
    ble, lte = LinkProfile.technology("ble"), LinkProfile.technology("lte")
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    for r in range(rounds):
        with contextlib.ExitStack() as stack:
            # calibration: the same components without the emulators
            direct = stack.enter_context(
                PhoneHub(
                    {"kws": phone_model}, cloud_url, "cloud", {"kws": cloud_model}, CLOUD_TIMEOUT_S
                )
            )
            near = Wearable(direct.url, timeout_s=WEARABLE_TIMEOUT_S)
            phone_ms, cloud_ms = _calibrate(near, feed)
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
                for d in range(SIM_DRAWS):
                    run = simulate_tiers(sc, route, seed=seed + d, arrivals_s=arrivals)
                    p50s.append(run.latency_ms.quantile(0.5))
                    p95s.append(run.latency_ms.quantile(0.95))
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
                        "phone_ms": phone_ms,
                        "cloud_path_ms": cloud_ms,
                        "bytes_up_per_request": int(up),
                        "bytes_down_per_request": int(down),
                    }
                )
    summary = {}
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
    return {"requests": requests, "rate_per_s": rate_per_s, "rounds": rows, "mean": summary}
