"""Summary statistics of a simulation run, from its online reduction (``sim/stats.py``)."""

from __future__ import annotations

from pathlib import Path

from edgesplit.device.flow import Route
from edgesplit.sim.model import RunResult
from edgesplit.sim.stats import CsvSink, Record

ROUTES = tuple(r.value for r in Route)
CLOUD_ROUTES = tuple(r.value for r in Route.remote())


def summarise(run: RunResult) -> dict:
    st = run.stats
    lat = st.latency_ms
    sc, dev = run.scenario, run.scenario.device
    radio_j = sum(v for k, v in run.device_radio.items() if k.endswith("_j"))
    idle_j = dev.idle_power_w * run.duration_s
    total_j = run.device_compute_j + radio_j + idle_j
    avg_power_w = total_j / run.duration_s if run.duration_s > 0 else 0.0
    n = st.completed
    cloud = st.cloud_answers
    return {
        "scenario": sc.name,
        "policy": run.policy,
        "requests": run.requests,
        "completed": n,
        "dropped": run.requests - n,
        "simulated_s": run.duration_s,
        "latency_ms": {q: lat.quantile(p) for q, p in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))}
        | {"mean": lat.mean},
        "deadline_miss_rate": st.deadline_missed / n if n else 0.0,
        "hedged": st.hedged,
        "routes": {k: st.routes[k] for k in ROUTES},
        "breaker_opens": run.breaker_opens,
        "energy_j": {
            "device_compute": run.device_compute_j,
            "radio": radio_j,
            "idle": idle_j,
            "per_request": total_j / max(1, n),
        },
        "radio": run.device_radio,
        "average_power_w": avg_power_w,
        "battery_hours": dev.battery_wh / avg_power_w if avg_power_w > 0 else float("inf"),
        "bytes_leaving_device": int(st.sums["bytes_up"]),
        "cloud_requests": cloud,
        "cloud_cost_usd": cloud * sc.cloud.cost_per_request_usd,
        "mean_cloud_batch": st.cloud_batch_sum / cloud if cloud else 0.0,
        "expected_accuracy": st.mean("expected_accuracy"),
    } | (
        {
            "first_token_ms": {
                "p50": st.first_token_ms.quantile(0.5),
                "p95": st.first_token_ms.quantile(0.95),
            }
        }
        if st.first_token_ms.n
        else {}
    )


def write_csv(records: list[Record], path: Path) -> None:
    sink = CsvSink(path)
    for r in records:
        sink(r)
    sink.close()
