"""Which placement wins as one hop's quality and the phone's own load vary (a grid of runs).

Link quality is the hop's rate (both directions, Mbit/s); phone load is the utilisation of the
phone's cores by its own requests (``own_rate_per_s`` set to util * cores / own service time).
Every fixed placement is simulated at each grid point with the same seed; the best is the one
with the lowest metric (latency) or the highest (battery hours). ``auto`` is reported beside it.
Outage windows are removed: the sweep compares placements in steady state.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

from edgesplit.sim.scenario import ScenarioError
from edgesplit.sim.tier_scenario import parse_tier_scenario
from edgesplit.sim.tiers import simulate_tiers, summarise_tiers

METRICS = ("p50", "p95", "wearable-hours", "phone-hours")


@dataclass(frozen=True)
class SweepRow:
    link_mbps: float
    phone_util: float
    placement: str
    p50_ms: float
    p95_ms: float
    wearable_hours: float
    phone_hours: float
    lost: int
    degraded: int

    def value(self, metric: str) -> float:
        """The metric as a cost: lower is better (battery hours negated)."""
        if self.lost:  # a placement that loses requests never wins
            return math.inf
        return {
            "p50": self.p50_ms,
            "p95": self.p95_ms,
            "wearable-hours": -self.wearable_hours,
            "phone-hours": -self.phone_hours,
        }[metric]


def with_grid_point(doc: dict, hop: int, link_mbps: float, phone_util: float) -> dict:
    """A copy of the scenario with hop ``hop`` at ``link_mbps`` and the phone at ``phone_util``."""
    d = copy.deepcopy(doc)
    tiers = d.get("tiers") or []
    if not 0 <= hop < len(tiers) - 1:
        raise ScenarioError(f"--hop {hop}: expected 0..{len(tiers) - 2} (a link between tiers)")
    if not 0 <= phone_util < 1:
        raise ScenarioError(f"--phone-util {phone_util}: expected 0 <= u < 1 (fraction of cores)")
    for t in tiers:  # steady state: outages would only hide the placements behind the cut hop
        if isinstance(t.get("link"), dict):
            t["link"].pop("outages_s", None)
    link = tiers[hop]["link"]
    link["up_mbps"] = link["down_mbps"] = link_mbps
    if phone_util > 0:
        if len(tiers) < 3:
            raise ScenarioError("--phone-util: the chain has no phone tier (needs 3 tiers)")
        phone = tiers[1]
        service_ms = float(phone.get("own_service_ms") or 0.0)
        if service_ms <= 0:
            raise ScenarioError(
                f"tiers.1.own_service_ms = {service_ms}: the phone's own requests need a "
                "service time (ms) to load it"
            )
        phone["own_rate_per_s"] = phone_util * phone.get("cores", 1) / (service_ms / 1e3)
    return d


def placement_sweep(
    doc: dict,
    link_mbps: list[float],
    phone_utils: list[float],
    hop: int = 0,
    requests: int = 1000,
    seed: int | None = None,
    origin: str = "<scenario>",
) -> list[SweepRow]:
    rows = []
    for mbps in link_mbps:
        for util in phone_utils:
            sc = parse_tier_scenario(with_grid_point(doc, hop, mbps, util), origin)
            for p in sc.placements:
                s = summarise_tiers(simulate_tiers(sc, p, seed, requests))
                tiers = s["tiers"]
                rows.append(
                    SweepRow(
                        mbps,
                        util,
                        p.name,
                        s["latency_ms"]["p50"],
                        s["latency_ms"]["p95"],
                        tiers[0].get("battery_hours", math.inf),
                        tiers[1].get("battery_hours", math.inf) if len(tiers) > 2 else math.inf,
                        s["lost"],
                        s["degraded"],
                    )
                )
    return rows


def best_per_point(
    rows: list[SweepRow], metric: str, auto_names: set[str]
) -> dict[tuple[float, float], SweepRow]:
    """The best fixed placement at each grid point (``auto`` is not a placement of its own)."""
    best: dict[tuple[float, float], SweepRow] = {}
    for r in rows:
        if r.placement in auto_names:
            continue
        key = (r.link_mbps, r.phone_util)
        if key not in best or r.value(metric) < best[key].value(metric):
            best[key] = r
    return best
