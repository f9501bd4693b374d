"""Split-point sweep (Neurosurgeon's study): every cut of the model, simulated on the link."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from edgesplit.sim.model import simulate
from edgesplit.sim.scenario import Policy, Scenario


@dataclass
class SplitRow:
    index: int
    tensor_bytes: int
    device_ms: float  # mean per request: head on the device (and queueing for it)
    uplink_ms: float
    cloud_ms: float  # cloud queue + tail
    downlink_ms: float
    latency_ms: float  # mean end to end
    p95_ms: float
    device_energy_mj: float  # compute + radio, per request


def split_sweep(scenario: Scenario, requests: int = 500, seed: int | None = None) -> list[SplitRow]:
    """Simulate the workload with the split fixed at each split point in turn."""
    from edgesplit.sim.report import summarise

    rows = []
    for sp in scenario.workload.split_points:
        run = simulate(scenario, Policy(kind="split", split_index=sp.index), seed, requests)
        recs = [r for r in run.records if r.done]
        s = summarise(run)
        lat = np.array([r.latency_s for r in recs]) * 1e3
        rows.append(
            SplitRow(
                index=sp.index,
                tensor_bytes=sp.tensor_bytes,
                device_ms=1e3
                * float(np.mean([r.device_wait_s + r.device_compute_s for r in recs])),
                uplink_ms=1e3 * float(np.mean([r.link_up_s for r in recs])),
                cloud_ms=1e3 * float(np.mean([r.cloud_queue_s + r.cloud_compute_s for r in recs])),
                downlink_ms=1e3 * float(np.mean([r.link_down_s for r in recs])),
                latency_ms=float(lat.mean()),
                p95_ms=float(np.percentile(lat, 95)),
                device_energy_mj=1e3
                * (s["energy_j"]["device_compute"] + s["energy_j"]["radio"])
                / max(1, len(recs)),
            )
        )
    return rows


def best_split_index(rows: list[SplitRow]) -> int:
    """The cut with the lowest mean latency (ties: the deeper cut, which sends less)."""
    return min(rows, key=lambda r: (r.latency_ms, -r.index)).index


def with_uplink(scenario: Scenario, up_mbps: float) -> Scenario:
    """The scenario with every link's uplink capped at ``up_mbps`` (Mbit/s)."""
    links = [
        link.model_copy(update={"up_mbps": min(up_mbps, scenario.link_params(i)["up_mbps"])})
        for i, link in enumerate(scenario.links)
    ]
    return scenario.model_copy(update={"links": links})
