"""Split-point sweep (Neurosurgeon's study): every cut of the model, and running it all locally.

A cut at the last layer still sends its (small) output to the cloud and waits for the answer, so
it is not "device-only": running the whole model on the device, with no round trip, is its own
candidate in every sweep.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgesplit.sim.model import RunResult, simulate
from edgesplit.sim.scenario import Policy, Scenario

DEVICE_ONLY = -1  # the row index of the local candidate


@dataclass
class SplitRow:
    index: int  # the cut; DEVICE_ONLY for the whole model on the device
    label: str  # "device-only" or "cut k"
    tensor_bytes: int  # sent per request
    device_ms: float  # mean per request: head (or whole model) on the device, with queueing
    uplink_ms: float
    cloud_ms: float  # cloud queue + tail
    downlink_ms: float
    latency_ms: float  # mean end to end
    p95_ms: float
    device_energy_mj: float  # compute + radio, per request


def _row(index: int, label: str, run: RunResult) -> SplitRow:
    from edgesplit.sim.report import summarise

    st, s = run.stats, summarise(run)
    return SplitRow(
        index=index,
        label=label,
        tensor_bytes=round(st.mean("bytes_up")),
        device_ms=1e3 * (st.mean("device_wait_s") + st.mean("device_compute_s")),
        uplink_ms=1e3 * st.mean("link_up_s"),
        cloud_ms=1e3 * (st.mean("cloud_queue_s") + st.mean("cloud_compute_s")),
        downlink_ms=1e3 * st.mean("link_down_s"),
        latency_ms=st.latency_ms.mean,
        p95_ms=s["latency_ms"]["p95"],
        device_energy_mj=1e3
        * (s["energy_j"]["device_compute"] + s["energy_j"]["radio"])
        / max(1, st.completed),
    )


def split_sweep(scenario: Scenario, requests: int = 500, seed: int | None = None) -> list[SplitRow]:
    """The whole model on the device, then the split fixed at each split point in turn."""
    local = simulate(scenario, Policy.model_validate({"kind": "device-only"}), seed, requests)
    rows = [_row(DEVICE_ONLY, "device-only", local)]
    for sp in scenario.workload.split_points:
        pol = Policy.model_validate({"kind": "split", "split_index": sp.index})
        run = simulate(scenario, pol, seed, requests)
        rows.append(_row(sp.index, f"cut {sp.index}", run))
    return rows


def best_row(rows: list[SplitRow]) -> SplitRow:
    """The candidate with the lowest mean latency (ties: device-only, then the deeper cut)."""
    return min(rows, key=lambda r: (r.latency_ms, r.index != DEVICE_ONLY, -r.index))


def best_split_index(rows: list[SplitRow]) -> int:
    return best_row(rows).index


def with_uplink(scenario: Scenario, up_mbps: float) -> Scenario:
    """The scenario with every link's uplink capped at ``up_mbps`` (Mbit/s)."""
    links = [
        link.model_copy(update={"up_mbps": min(up_mbps, scenario.link_profile(i).up_mbps)})
        for i, link in enumerate(scenario.links)
    ]
    return scenario.model_copy(update={"links": links})
