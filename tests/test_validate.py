"""``sim validate``: the simulator predicts the real router over the emulated link.

The default test is short (one round, few requests); ``full`` runs the CLI's default: every
policy over LTE and Wi-Fi and the slow cloud, three interleaved rounds, with the 10 % goal.
"""

from __future__ import annotations

import pytest
from edgesplit.device.link import LinkProfile

from edgesplit.validate import Case, default_cases, slow_cloud_case, validate


def test_slow_cloud_and_lte_match_the_real_router(kws_workload):
    cases = [
        Case("lte", LinkProfile.technology("lte"), ["cloud-only", "deadline-aware"]),
        slow_cloud_case(),
    ]
    cases[1].max_requests = 2  # 2 x ~2.1 s: the timeouts, the retry, the fallback
    # Short calibrations (24 device-path samples, 8 cloud calls): the CLI's are 96 and 32.
    report = validate(
        "earbuds", cases, requests=16, rounds=1, seed=3, sim_repeats=10, samples=(24, 8)
    )
    by = {(r["case"], r["policy"]): r for r in report["policies"]}
    slow = by[("slow-cloud", "cloud-only")]
    # Two 1 s timeouts, a backoff and the local answer: ~2.05 s, on both sides.
    assert 2000 <= slow["real_p50_ms"] < 2600 and 2000 <= slow["sim_p50_ms"] < 2200
    assert slow["p50_rel_error"] <= 0.10, slow
    lte = by[("lte", "cloud-only")]
    assert lte["real_p50_ms"] >= 80  # two one-way delays
    # LTE's 40 ms one-way delay dominates the median; 16 requests on a busy machine: 20 %.
    assert lte["p50_rel_error"] <= 0.20, lte
    assert by[("lte", "deadline-aware")]["real_p95_ms"] <= 500 * 1.1  # the deadline holds
    # Paired: each real request made one connection, whose jitter and losses the simulator
    # replayed, so the two agree request by request, not only in distribution.
    lte_round = lte["per_round"][0]
    assert lte_round["connections"] == [1] * 16
    assert len(lte_round["real_ms"]) == len(lte_round["sim_ms"]) == 16
    slow_round = slow["per_round"][0]
    assert slow_round["connections"] == [2] * 2  # the timed-out call and its retry


@pytest.mark.full
def test_every_policy_two_links_and_the_slow_cloud_within_ten_percent(kws_workload):
    report = validate("earbuds", default_cases(["lte", "wifi"]), requests=150, rounds=3, seed=3)
    for r in report["policies"]:
        assert r["p50_rel_error"] <= 0.10 and r["p95_rel_error"] <= 0.10, r
