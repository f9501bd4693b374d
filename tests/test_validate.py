"""``sim validate``, short: the simulator predicts the real router over the emulated link."""

from __future__ import annotations

from edgesplit.sim.emulator import LinkProfile

from edgesplit.validate import validate


def test_simulator_matches_the_real_router_over_lte(kws_workload):
    # LTE's 40 ms one-way delay dominates: the median is robust with 40 requests. The p95 rests
    # on two samples per policy here, so it gets a wider band than the CLI's 15 % goal.
    report = validate(
        "earbuds",
        LinkProfile.technology("lte"),
        ["cloud-only", "cascade"],
        requests=40,
        seed=3,
        sim_requests=2000,
    )
    by = {r["policy"]: r for r in report["policies"]}
    assert set(by) == {"cloud-only", "cascade"}
    cloud = by["cloud-only"]
    assert cloud["real_p50_ms"] >= 80  # two one-way delays
    assert cloud["p50_rel_error"] <= 0.15, report
    assert cloud["p95_rel_error"] <= 0.35, report
    m = report["measured"]
    assert m["request_bytes"] > 1960 and 0 <= m["escalation_rate"] <= 1 and m["cloud_ms"] > 0
