"""``sim validate``: the simulator against the real device, cloud and emulated link.

1. Measure this machine: the device model's median latency (its device profile), the cloud's
   time for one request through an ideal link (server, HTTP and the emulator's own hops), and
   the cascade's escalation rate on the input stream.
2. Run the real router over the link emulator with each policy, one request at a time (a short
   pause between requests, so each sees an unloaded system).
3. Simulate the same: the emulator's link profile, the measured figures, arrivals slow enough
   that requests do not overlap.
4. Report p50/p95 per policy and the relative error of the simulation.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from edgesplit.device.policy import PolicyConfig
from edgesplit.device.resilience import CircuitBreaker
from edgesplit.rig import Rig
from edgesplit.sim.emulator import LinkEmulator, LinkProfile


def _samples_ms(fn: Callable[[], object], n: int, gap_s: float = 0.0) -> list[float]:
    """Times of ``n`` calls, each after a ``gap_s`` pause (as the real run paces them:
    a call after an idle pause is slower than back-to-back calls with warm caches)."""
    times = []
    for _ in range(n):
        time.sleep(gap_s)
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return times


def validate(
    device: str,
    profile: LinkProfile,
    policies: list[str],
    requests: int,
    seed: int,
    gap_s: float = 0.02,
    sim_requests: int = 4000,
    log: Callable[[str], None] = lambda _m: None,
) -> dict:
    from edgesplit.device.oip_client import OipClient
    from edgesplit.sim.model import simulate
    from edgesplit.sim.report import summarise
    from edgesplit.sim.scenario import parse_scenario

    with Rig(
        [device], requests, seed, policy=policies[0], link_override={device: profile}, log=log
    ) as rig:
        loop = rig.loops[device]
        task, items = loop.task, loop.items
        log("measuring the device profile and the cloud over loopback...")
        device_samples = []
        for it in items[: min(len(items), 10)]:
            device_samples += _samples_ms(lambda it=it: task.local(it.x), 4, gap_s)
        device_ms = float(np.mean(device_samples))
        # The cloud through an ideal link (no delay, no rate limit): server, HTTP on loopback and
        # the emulator's own hops, everything but the link physics the simulator models.
        ideal = LinkProfile("ideal", 1e5, 1e5, 0.0, 0.0, 0.0, 0.0)
        with LinkEmulator((rig.server.host, rig.server.port), ideal) as emu:
            direct = OipClient(emu.url, timeout_s=10)
            x = items[0].x
            call = lambda: direct.infer(task.cloud_model, task.cloud_inputs(x))  # noqa: E731
            cloud_ms = float(np.median(_samples_ms(call, 20, gap_s)))
        threshold = loop.router.policy.threshold
        confidences = [task.local(it.x)[1] for it in items]
        escalation = float(np.mean([c < threshold for c in confidences]))
        real: dict[str, list[float]] = {}
        for pol in policies:
            log(f"real run: {pol} over {profile.name}...")
            router = loop.router
            router.policy = PolicyConfig(pol, threshold=threshold)  # type: ignore[arg-type]
            router.client.breaker = CircuitBreaker()
            router.estimator = profile.estimator()
            lat = []
            for i in range(requests):
                ans = router.handle(task, items[i % len(items)].x, loop.costs.costs())
                loop.costs.update(ans, 0)
                lat.append(ans.total_ms)
                time.sleep(gap_s)
            real[pol] = lat
        # Bytes on the wire per call, HTTP headers included, as the emulator counted them.
        assert loop.emulator is not None  # the rig emulates links unless told "off"
        st = loop.emulator.stats
        up_bytes = st.bytes_up // max(1, st.connections)
        down_bytes = st.bytes_down // max(1, st.connections)
    doc = {
        "name": f"validate-{device}-{profile.name}",
        "seed": seed,
        "requests": sim_requests,
        "device": {"name": device, "cores": 1},
        "links": [profile.scenario_link()],
        "workload": {
            "name": task.name,
            "rate_per_s": 0.5,
            "deadline_ms": 1000,
            "request_bytes": up_bytes,
            "response_bytes": down_bytes,
            "device_model_ms": device_ms,
            "service_distribution": "empirical",
            "device_samples_ms": device_samples,
            "device_accuracy": 0.9,
            "cloud_accuracy": 0.95,
            "escalation_rate": escalation,
        },
        "cloud": {
            "replicas": 1,
            "max_batch": 1,
            "batch_delay_ms": 0,
            "batch_fixed_ms": cloud_ms,
            "per_item_ms": 0,
        },
        "policies": [{"kind": p, "threshold": threshold} for p in policies],
    }
    sc = parse_scenario(doc, "sim validate")
    rows = []
    for pol in policies:
        s = summarise(simulate(sc, pol))
        r = np.array(real[pol])
        row = {
            "policy": pol,
            "real_p50_ms": float(np.percentile(r, 50)),
            "real_p95_ms": float(np.percentile(r, 95)),
            "sim_p50_ms": s["latency_ms"]["p50"],
            "sim_p95_ms": s["latency_ms"]["p95"],
        }
        for q in ("p50", "p95"):
            row[f"{q}_rel_error"] = (
                abs(row[f"sim_{q}_ms"] - row[f"real_{q}_ms"]) / row[f"real_{q}_ms"]
            )
        rows.append(row)
    return {
        "device": device,
        "link": profile.name,
        "requests_per_policy": requests,
        "measured": {
            "device_ms": device_ms,
            "cloud_ms": cloud_ms,
            "escalation_rate": escalation,
            "request_bytes": up_bytes,
            "response_bytes": down_bytes,
        },
        "policies": rows,
    }
