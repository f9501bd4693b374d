"""Per-request CSV and summary statistics of a simulation run."""

from __future__ import annotations

import csv
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
from edgesplit.sim.model import Record, RunResult

ROUTES = ("device", "cloud", "device+cloud", "split", "fallback")
CLOUD_ROUTES = ("cloud", "device+cloud", "split")


def summarise(run: RunResult) -> dict:
    recs = [r for r in run.records if r.done]
    lat_ms = np.array([r.latency_s for r in recs]) * 1e3
    sc, dev = run.scenario, run.scenario.device
    radio_j = sum(v for k, v in run.device_radio.items() if k.endswith("_j"))
    idle_j = dev.idle_power_w * run.duration_s
    total_j = run.device_compute_j + radio_j + idle_j
    avg_power_w = total_j / run.duration_s if run.duration_s > 0 else 0.0
    cloud = [r for r in recs if r.route in CLOUD_ROUTES]
    first_token_ms = np.array([r.first_token_s for r in recs if r.first_token_s > 0]) * 1e3
    return {
        "scenario": sc.name,
        "policy": run.policy,
        "requests": len(run.records),
        "completed": len(recs),
        "dropped": len(run.records) - len(recs),
        "simulated_s": run.duration_s,
        "latency_ms": {
            q: float(np.percentile(lat_ms, p)) for q, p in (("p50", 50), ("p95", 95), ("p99", 99))
        }
        | {"mean": float(lat_ms.mean())},
        "deadline_miss_rate": float(np.mean([r.deadline_missed for r in recs])),
        "routes": {k: sum(r.route == k for r in recs) for k in ROUTES},
        "breaker_opens": run.breaker_opens,
        "energy_j": {
            "device_compute": run.device_compute_j,
            "radio": radio_j,
            "idle": idle_j,
            "per_request": total_j / max(1, len(recs)),
        },
        "radio": run.device_radio,
        "average_power_w": avg_power_w,
        "battery_hours": dev.battery_wh / avg_power_w if avg_power_w > 0 else float("inf"),
        "bytes_leaving_device": sum(r.bytes_up for r in recs),
        "cloud_requests": len(cloud),
        "cloud_cost_usd": len(cloud) * sc.cloud.cost_per_request_usd,
        "mean_cloud_batch": float(np.mean([r.batch_size for r in cloud])) if cloud else 0.0,
        "expected_accuracy": float(np.mean([r.expected_accuracy for r in recs])),
    } | (
        {
            "first_token_ms": {
                "p50": float(np.percentile(first_token_ms, 50)),
                "p95": float(np.percentile(first_token_ms, 95)),
            }
        }
        if first_token_ms.size
        else {}
    )


def write_csv(records: list[Record], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[fl.name for fl in fields(Record)])
        w.writeheader()
        for r in records:
            w.writerow(asdict(r))
