"""Routing policies, link estimator, circuit breaker: the pure code the router and sim share."""

from __future__ import annotations

import pytest
from edgesplit.device.policy import (
    LinkEstimate,
    LinkEstimator,
    PolicyConfig,
    RequestCosts,
    SplitOption,
    best_split,
    decide,
    should_escalate,
    split_ms,
)
from edgesplit.device.resilience import CircuitBreaker, backoff_ms
from hypothesis import given
from hypothesis import strategies as st

SPLITS = (
    SplitOption(0, 0.0, 10.0, 40_000),
    SplitOption(6, 5.0, 5.0, 8_000),
    SplitOption(12, 10.0, 0.0, 48),
)
COSTS = RequestCosts(
    deadline_ms=200,
    request_bytes=40_000,
    response_bytes=64,
    device_ms=10.0,
    cloud_ms=4.0,
    splits=SPLITS,
)
SLOW_DEVICE = RequestCosts(
    deadline_ms=400,
    request_bytes=40_000,
    response_bytes=64,
    device_ms=300.0,
    cloud_ms=4.0,
    splits=(
        SplitOption(0, 0, 300, 40_000),
        SplitOption(6, 150, 150, 8_000),
        SplitOption(12, 300, 0, 48),
    ),
    cloud_speedup=30,
)
FAST = LinkEstimate(up_mbps=100, down_mbps=100, rtt_ms=5)
SLOW = LinkEstimate(up_mbps=0.2, down_mbps=0.2, rtt_ms=60)


def test_privacy_and_device_only_never_leave_the_device():
    for kind in ("cloud-only", "split", "deadline-aware", "cascade"):
        d = decide(PolicyConfig(kind, privacy=True), COSTS, FAST)
        assert d.action == "local" and d.upload_bytes == 0
        assert should_escalate(PolicyConfig(kind, privacy=True), 0.0, FAST) is None
    assert decide(PolicyConfig("device-only"), COSTS, FAST).action == "local"


def test_offline_falls_back_degraded():
    offline = LinkEstimate(100, 100, 5, online=False)
    for kind in ("cloud-only", "split", "deadline-aware"):
        d = decide(PolicyConfig(kind), COSTS, offline)
        assert (d.action, d.degraded) == ("local", True)
    esc = should_escalate(PolicyConfig("cascade"), 0.1, offline)
    assert esc is not None and esc.action == "local" and esc.degraded


def test_cascade_escalates_only_below_threshold():
    cfg = PolicyConfig("cascade", threshold=0.6)
    assert decide(cfg, COSTS, FAST).action == "local"
    assert should_escalate(cfg, 0.59, FAST).action == "cloud"
    assert should_escalate(cfg, 0.6, FAST) is None


def test_deadline_aware_uses_the_cloud_only_when_it_fits():
    cfg = PolicyConfig("deadline-aware")
    assert decide(cfg, COSTS, FAST).action == "cloud"  # 5 + 3.2 + 4 ms << 160 ms
    # 40 kB over 0.2 Mbit/s is 1.6 s: too slow, and no cut beats the device's own 10 ms.
    assert decide(cfg, COSTS, SLOW).action == "local"
    # A slow device (an earbud MCU) and a 30x faster cloud: at 1 Mbit/s the whole input takes
    # 364 ms (> 0.8 x 400 ms), the cut at 6 about 260 ms: faster than the device's 300 ms.
    d = decide(cfg, SLOW_DEVICE, LinkEstimate(up_mbps=1.0, down_mbps=1.0, rtt_ms=40))
    assert (d.action, d.split.index, d.upload_bytes) == ("split", 6, 8_000)


def test_best_split_moves_device_side_as_uplink_falls():
    picks = [
        best_split(SLOW_DEVICE, LinkEstimate(mbps, 100, 20)).index for mbps in (1000, 10, 1, 0.01)
    ]
    assert picks == [0, 0, 6, 12]


@given(up=st.floats(0.01, 1000), rtt=st.floats(0, 500), compression=st.floats(1, 32))
def test_best_split_is_the_minimum(up, rtt, compression):
    link = LinkEstimate(up, 50, rtt)
    best = best_split(COSTS, link, compression)
    assert all(
        split_ms(best, COSTS, link, compression) <= split_ms(o, COSTS, link, compression)
        for o in SPLITS
    )


def test_split_index_must_exist_and_configs_are_checked():
    with pytest.raises(ValueError, match="split_index 5: not a split point"):
        decide(PolicyConfig("split", split_index=5), COSTS, FAST)
    with pytest.raises(ValueError, match="threshold 1.5"):
        PolicyConfig("cascade", threshold=1.5)
    with pytest.raises(ValueError, match="policy kind 'edge'"):
        PolicyConfig("edge")  # type: ignore[arg-type]


def test_link_estimator_learns_rtt_and_bandwidth():
    est = LinkEstimator(up_mbps=10, down_mbps=10, rtt_ms=10)
    truth = LinkEstimator(up_mbps=2, down_mbps=2, rtt_ms=80)  # only used to predict transits
    for i in range(400):  # a mix of small and 50 kB exchanges on a 2 Mbit/s, 80 ms RTT link
        up = 200 if i % 2 else 50_000
        est.observe(up, 100, truth.rtt_ms + (up + 100) * 8 / 2e3)
    assert est.rtt_ms == pytest.approx(80, rel=0.05)
    assert est.up_mbps == pytest.approx(2.0, rel=0.05)


def test_circuit_breaker_opens_probes_and_closes():
    b = CircuitBreaker(failures_to_open=2, reset_after_s=5)
    assert b.allow(0)
    b.record_failure(0)
    assert b.state == "closed"
    b.record_failure(1)
    assert b.state == "open" and not b.allow(2) and b.is_open(2)
    assert b.allow(6.0) and b.state == "half-open"  # the probe
    assert not b.allow(6.1)  # only one probe at a time
    b.record_failure(6.5)
    assert b.state == "open" and b.opens == 2
    assert b.allow(12)
    b.record_success()
    assert b.state == "closed" and b.allow(12.1)


def test_a_hold_lasts_what_the_cloud_asked_and_is_not_a_failure():
    b = CircuitBreaker(failures_to_open=1, reset_after_s=60)
    b.hold(10.0, 2.0)  # a 429 with Retry-After: 2
    assert b.is_open(11.9) and not b.allow(11.9) and b.opens == 0 and b.holds == 1
    assert b.allow(12.0) and b.state == "half-open"  # after 2 s, not reset_after_s's 60
    b.record_failure(12.5)  # the probe failed: an ordinary opening, reset_after_s long
    assert b.is_open(40.0) and b.allow(72.5)
    b.record_success()
    assert b.state == "closed" and b.held_s == 0


def test_retry_after_is_read_in_seconds_and_bounded():
    from edgesplit.device.oip_client import MAX_RETRY_AFTER_S, retry_after_s

    assert retry_after_s("7") == 7.0 and retry_after_s(" 3 ") == 3.0
    assert retry_after_s("86400") == MAX_RETRY_AFTER_S
    # The HTTP-date form, junk, negatives and absence read as none given.
    for value in ("Wed, 21 Oct 2026 07:28:00 GMT", "soon", "-1", "1.5", "²", "", None):
        assert retry_after_s(value) == 0.0


@given(attempt=st.integers(1, 10), base=st.floats(0, 1000), u=st.floats(0, 0.999))
def test_backoff_grows_with_full_jitter(attempt, base, u):
    ms = backoff_ms(attempt, base, u)
    assert base * 2 ** (attempt - 1) * 0.5 <= ms + 1e-9 <= base * 2 ** (attempt - 1) + 1e-9
