"""The simulator against queueing theory, its invariants, energy model, scenarios and CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from edgesplit.device.policy import POLICY_KINDS
from edgesplit.sim.bench import bench, skeleton
from edgesplit.sim.links import TECHNOLOGIES, radio_energy_j
from edgesplit.sim.model import simulate
from edgesplit.sim.report import summarise
from edgesplit.sim.scenario import ScenarioError, load_scenario, parse_scenario
from edgesplit.sim.splits import DEVICE_ONLY, best_split_index, split_sweep, with_uplink
from edgesplit.sim.sweep import confidence_interval, parse_param, sweep
from hypothesis import given, settings
from hypothesis import strategies as st

# A Neurosurgeon-shaped cut table: activations shrink with depth while the head grows.
SPLITS = [
    {"index": i, "head_ms": h, "tail_ms": 10.0 - h, "tensor_bytes": b}
    for i, h, b in (
        (0, 0.0, 40_000),
        (3, 2.0, 64_000),
        (6, 5.0, 8_000),
        (9, 8.0, 1_000),
        (12, 10.0, 48),
    )
]
SCENARIOS = Path(__file__).resolve().parents[1] / "sim" / "scenarios"


def scenario(**workload) -> dict:
    wl = {
        "name": "w",
        "rate_per_s": 50.0,
        "deadline_ms": 100,
        "request_bytes": 1000,
        "device_model_ms": 10.0,
        "device_accuracy": 0.9,
        "cloud_accuracy": 0.95,
    } | workload
    return {
        "name": "t",
        "seed": 7,
        "requests": 1000,
        "device": {"name": "d", "cores": 1},
        "links": [{"technology": "wifi"}],
        "workload": wl,
        "policies": [{"kind": "device-only"}],
    }


@pytest.mark.parametrize(
    "distribution,expected_ms",
    [
        ("exponential", 1 / (100 - 50) * 1e3),  # M/M/1: W = 1 / (mu - lambda)
        ("deterministic", 10 + 0.5 / (2 * 100 * (1 - 0.5)) * 1e3),
    ],  # M/D/1: 1/mu + rho/(2mu(1-rho))
)
def test_device_queue_matches_queueing_theory(distribution, expected_ms):
    sc = parse_scenario(scenario(service_distribution=distribution))
    run = simulate(sc, "device-only", requests=60_000)
    mean_ms = summarise(run)["latency_ms"]["mean"]
    assert mean_ms == pytest.approx(expected_ms, rel=0.05)


@settings(max_examples=15, deadline=None)
@given(
    rate=st.floats(0.5, 80),
    cores=st.integers(1, 3),
    esc=st.floats(0, 1),
    policy=st.sampled_from(POLICY_KINDS),
    tech=st.sampled_from(sorted(TECHNOLOGIES)),
    batch=st.integers(1, 16),
    dist=st.sampled_from(["deterministic", "exponential"]),
    seed=st.integers(0, 10_000),
)
def test_invariants(rate, cores, esc, policy, tech, batch, dist, seed):
    doc = scenario(
        rate_per_s=rate, escalation_rate=esc, service_distribution=dist, split_points=SPLITS
    )
    doc["device"]["cores"] = cores
    doc["links"] = [{"technology": tech, "outages_s": [[1.0, 2.0]]}]
    doc["cloud"] = {"max_batch": batch}
    run = simulate(parse_scenario(doc), policy, seed=seed, requests=300, keep_records=True)
    s = summarise(run)
    assert s["requests"] == s["completed"] + s["dropped"] == 300
    for r in run.records:
        parts = [
            r.device_wait_s,
            r.device_compute_s,
            r.link_up_s,
            r.cloud_queue_s,
            r.cloud_compute_s,
            r.link_down_s,
            r.client_wait_s,
        ]
        assert all(p >= 0 for p in parts) and r.latency_s >= 0
        if policy == "deadline-aware":  # a hedge runs the device while the call is in flight
            assert r.latency_s <= sum(parts) + 1e-9
        else:
            assert r.latency_s == pytest.approx(sum(parts), abs=1e-9)
        assert r.latency_s >= r.device_compute_s + r.cloud_compute_s - 1e-12
    energy = s["energy_j"]
    assert all(v >= 0 for v in energy.values())


def test_outage_falls_back_to_the_device():
    doc = scenario(rate_per_s=10)
    doc["links"] = [{"technology": "lte", "outages_s": [[0.0, 1e9]]}]
    run = simulate(parse_scenario(doc), "cloud-only", requests=200, keep_records=True)
    assert {r.route for r in run.records} == {"fallback"}
    assert all(r.done and r.bytes_up == 0 for r in run.records)


def test_radio_tail_and_promotion_energy():
    lte = TECHNOLOGIES["lte"]
    far = radio_energy_j(lte, [(0, 0.1, 1000, 0), (100, 100.1, 1000, 0)])
    near = radio_energy_j(lte, [(0, 0.1, 1000, 0), (1, 1.1, 1000, 0)])
    assert far["promotions"] == 2 and near["promotions"] == 1
    assert near["tail_j"] == pytest.approx(1.060 * (0.9 + lte.radio.tail_s))
    assert far["tail_j"] == pytest.approx(2 * 1.060 * lte.radio.tail_s)
    ble = radio_energy_j(TECHNOLOGIES["ble"], [(0, 0.1, 2500, 0)])
    assert ble["tail_j"] == 0 and ble["active_j"] == pytest.approx(0.0213 * 0.1)


def test_cloud_batching_merges_under_load():
    doc = scenario(rate_per_s=2000, request_bytes=10)
    doc["cloud"] = {"replicas": 1, "max_batch": 16, "batch_delay_ms": 5}
    doc["links"] = [{"technology": "wifi", "up_mbps": 10000, "down_mbps": 10000}]
    s = summarise(simulate(parse_scenario(doc), "cloud-only", requests=3000))
    assert s["mean_cloud_batch"] > 4


def test_reproducible_from_seed():
    sc = load_scenario(SCENARIOS / "phone.yaml")
    a = summarise(simulate(sc, "cascade", requests=500))
    b = summarise(simulate(sc, "cascade", requests=500))
    c = summarise(simulate(sc, "cascade", seed=99, requests=500))
    assert a == b and a != c


def test_scenario_errors_name_field_value_and_unit(tmp_path):
    doc = scenario(rate_per_s=-3)
    with pytest.raises(ScenarioError, match=r"workload.rate_per_s' = -3.*\(unit: per second\)"):
        parse_scenario(doc, "x.yaml")
    doc = scenario()
    doc["links"] = [{"technology": "lora"}]
    with pytest.raises(ScenarioError, match="links.0.technology' = 'lora'"):
        parse_scenario(doc)
    doc = scenario(deadline_ms="soon")
    with pytest.raises(ScenarioError, match="deadline_ms' = 'soon'.*milliseconds"):
        parse_scenario(doc)
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [oops\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(bad)


def test_shipped_scenarios_run_from_the_cli(tmp_path):
    for path in sorted(SCENARIOS.glob("*.yaml")):
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "edgesplit.cli",
                "sim",
                "run",
                str(path),
                "--requests",
                "300",
                "--out",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.returncode == 0, res.stderr
        name = load_scenario(path).name
        summary = json.loads((tmp_path / f"{name}-summary.json").read_text())
        assert [s["policy"] for s in summary] == [p.name for p in load_scenario(path).policies]
        assert (tmp_path / f"{name}-cascade.csv").read_text().count("\n") == 301
        for png in ("latency-cdf", "pareto"):
            assert (tmp_path / f"{name}-{png}.png").read_bytes()[:4] == b"\x89PNG"
        by = {s["policy"]: s for s in summary}
        assert by["device-only"]["bytes_leaving_device"] == 0
        assert by["cloud-only"]["expected_accuracy"] >= by["device-only"]["expected_accuracy"]
    bad = subprocess.run(
        [sys.executable, "-m", "edgesplit.cli", "sim", "run", "nope.yaml"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "scenario file not found" in bad.stderr


def test_best_split_moves_device_side_as_uplink_falls():
    """Neurosurgeon's result: with a fast uplink send the input, with a slow one keep it all."""
    doc = scenario(
        rate_per_s=2.0,
        device_model_ms=300.0,
        request_bytes=40_000,
        deadline_ms=2000,
        split_points=[
            {"index": 0, "head_ms": 0, "tail_ms": 300, "tensor_bytes": 40_000},
            {"index": 6, "head_ms": 150, "tail_ms": 150, "tensor_bytes": 8000},
            {"index": 12, "head_ms": 300, "tail_ms": 0, "tensor_bytes": 48},
        ],
        cloud_speedup=30,
    )
    doc["client"] = {"timeout_ms": 60_000}  # the split physics alone, no client timeouts
    sc = parse_scenario(doc)
    best = [
        best_split_index(split_sweep(with_uplink(sc, mbps), requests=200)) for mbps in (50, 1, 0.05)
    ]
    # At 0.05 Mbit/s running locally wins: the last cut still round-trips, so it is not local.
    assert best == [0, 6, DEVICE_ONLY]
    rows = split_sweep(with_uplink(sc, 1), requests=200)
    by = {r.index: r for r in rows}
    assert by[DEVICE_ONLY].label == "device-only" and by[12].label == "cut 12"
    assert by[DEVICE_ONLY].tensor_bytes == 0 and by[12].tensor_bytes == 48
    assert by[0].uplink_ms > by[6].uplink_ms > by[12].uplink_ms  # smaller tensors go faster
    assert by[0].device_ms < by[6].device_ms < by[12].device_ms


def test_split_and_deadline_aware_policies_in_the_simulator():
    doc = scenario(
        rate_per_s=2.0,
        device_model_ms=300.0,
        request_bytes=40_000,
        deadline_ms=400,
        split_points=SPLITS,
        cloud_speedup=30,
    )
    doc["links"] = [{"technology": "wifi", "up_mbps": 1.0}]
    doc["policies"] = [
        {"kind": "split", "split_index": 6, "compression": 4},
        {"kind": "deadline-aware", "label": "adaptive"},
    ]
    sc = parse_scenario(doc)
    split = simulate(sc, sc.policies[0], requests=100, keep_records=True)
    assert {r.route for r in split.records} == {"split"}
    assert all(r.bytes_up == 8_000 // 4 and r.split_index == 6 for r in split.records)
    adaptive = simulate(sc, "adaptive", requests=100, keep_records=True)
    assert adaptive.policy == "adaptive" and {r.decision for r in adaptive.records} <= {
        "local",
        "cloud",
        "split",
    }


def test_generative_requests_report_time_to_first_token():
    doc = scenario(
        rate_per_s=1.0, generation={"ttft_ms": 200, "output_tokens": 50, "tokens_per_s": 50}
    )
    doc["policies"] = [{"kind": "cloud-only"}]
    doc["client"] = {"timeout_ms": 5000}  # 1.2 s of generation outlasts the default 1 s timeout
    run = simulate(parse_scenario(doc), "cloud-only", requests=200)
    s = summarise(run)
    assert 200 <= s["first_token_ms"]["p50"] < s["latency_ms"]["p50"]
    assert s["latency_ms"]["p50"] >= 200 + 1000  # TTFT + 50 tokens at 50 tokens/s


def test_policy_and_profile_errors_name_the_field(tmp_path):
    doc = scenario()
    doc["policies"] = [{"kind": "split"}]
    with pytest.raises(ScenarioError, match="split policy needs workload.split_points"):
        parse_scenario(doc)
    doc = scenario(split_points=SPLITS)
    doc["policies"] = [{"kind": "split", "split_index": 4}]
    with pytest.raises(ScenarioError, match=r"policies.0.split_index = 4: not one of"):
        parse_scenario(doc)
    f = tmp_path / "s.yaml"
    doc = scenario(device_profile="missing.json")
    f.write_text(yaml.safe_dump(doc))
    with pytest.raises(ScenarioError, match="workload.device_profile"):
        load_scenario(f)


def test_shipped_earbuds_profile_supplies_split_points():
    sc = load_scenario(SCENARIOS / "earbuds.yaml")
    assert len(sc.workload.split_points) >= 3
    assert sc.workload.device_model_ms == pytest.approx(180, rel=0.5)  # ~1500 x a desktop core


def test_sweep_on_a_local_dask_cluster():
    doc = scenario(rate_per_s=20.0)
    doc["policies"] = [{"kind": "device-only"}, {"kind": "cloud-only"}]
    rows = sweep(
        doc,
        [parse_param("links.0.up_mbps=1,50")],
        ["device-only", "cloud-only"],
        replications=3,
        requests=200,
        workers=2,
    )
    assert [(r["links.0.up_mbps"], r["policy"]) for r in rows] == [
        (1, "device-only"),
        (1, "cloud-only"),
        (50, "device-only"),
        (50, "cloud-only"),
    ]
    assert all(r["replications"] == 3 and r["p50_ms_ci95"] >= 0 for r in rows)
    by = {(r["links.0.up_mbps"], r["policy"]): r for r in rows}
    assert by[(1, "cloud-only")]["mean_ms"] > by[(50, "cloud-only")]["mean_ms"]  # 8 ms vs 0.2 ms
    with pytest.raises(ScenarioError, match="links.0.up_mbps"):
        sweep(doc, [parse_param("links.0.up_mbps=-1")], ["device-only"], 1, 10)
    with pytest.raises(ScenarioError, match="expected FIELD=V1"):
        parse_param("rate")


def test_confidence_interval_matches_student_t():
    mean, half = confidence_interval([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and half == pytest.approx(2.0540, rel=1e-3)  # t(0.975, 3) * s / sqrt(4)


def test_bench_times_model_and_skeleton_side_by_side():
    sc = parse_scenario(scenario(escalation_rate=0.3))
    r = bench(sc, "cascade", requests=2000, rounds=1)
    assert r["edgesplit_requests_per_s"] > 0 and r["skeleton_requests_per_s"] > 0
    # one round: the median of one round's ratio is that round's ratio of rates
    assert r["ratio_edgesplit_over_skeleton"] == pytest.approx(
        r["edgesplit_requests_per_s"] / r["skeleton_requests_per_s"]
    )
    assert r["round_ratios"] == [r["ratio_edgesplit_over_skeleton"]]
    assert r["cpu_seconds_per_million_requests"] > 0 and r["cpu_ratio_edgesplit_over_skeleton"] > 0
    assert skeleton(sc, 500, seed=1, policy="cloud-only") > 0
    # split: the skeleton runs the head on the device before the chain, so it ends later than
    # a cloud-only one on the same arrivals (a 2 s head at 1 request/s queues up)
    slow = parse_scenario(scenario(split_points=SPLITS[:1] + [SPLITS[2] | {"head_ms": 2000}]))
    assert skeleton(slow, 50, 1, "split") > skeleton(slow, 50, 1, "cloud-only")


def test_replay_gives_the_real_connections_draws_to_the_link():
    """``sim validate``'s pairing: a scripted request meets the jitter and losses its real
    connection met (the emulator's draw log), not new draws; an attempt the real run did not
    make draws anew."""
    from edgesplit.device.link_emulator import ConnDraws

    doc = scenario(response_bytes=100)
    doc["links"] = [{"technology": "lte"}]
    doc["policies"] = [{"kind": "cloud-only"}]
    sc = parse_scenario(doc)
    lte = sc.link_profile(0)
    real = ConnDraws(up_jitter_s=0.05, up_lost=0, down_jitter_s=0.02, down_lost=1)
    run = simulate(sc, "cloud-only", arrivals_s=[0.0], replay=[[real]], keep_records=True)
    rec = run.records[0]
    ser_up, ser_down = 1000 * 8 / (lte.up_mbps * 1e6), 100 * 8 / (lte.down_mbps * 1e6)
    delay_s, promotion_s = lte.one_way_delay_ms / 1e3, lte.promotion_ms / 1e3
    assert rec.link_up_s == pytest.approx(promotion_s + ser_up + delay_s + 0.05)
    rto_s = lte.retransmit_timeout_ms / 1e3
    assert rec.link_down_s == pytest.approx(ser_down + delay_s + 0.02 + rto_s)


@pytest.mark.parametrize(
    "path,value,unit",
    [
        ("workload.device_model_ms", float("inf"), "milliseconds"),
        ("workload.device_model_ms", 1e300, "milliseconds"),
        ("cloud.batch_fixed_ms", 1e308, "milliseconds"),
        ("cloud.per_item_ms", float("nan"), "milliseconds"),
        ("links.0.outages_s", [[5.0, -1.0]], "seconds"),
        ("client.timeout_ms", 1e12, "milliseconds"),
        ("workload.request_bytes", 10**15, "bytes"),
    ],
)
def test_bad_numbers_name_the_field_path_and_unit(path, value, unit):
    doc = scenario()
    section, *rest = path.split(".")
    target = doc.setdefault(section, {})
    if section == "links":
        target = target[int(rest.pop(0))]
    target[rest[0]] = value
    with pytest.raises(ScenarioError) as err:
        parse_scenario(doc)
    msg = str(err.value)
    assert f"field '{path}" in msg and f"(unit: {unit})" in msg, msg
    assert "'name'" not in msg and len(msg) < 300  # the field, never the whole document


def test_memory_stays_flat_with_the_request_count():
    """Requests are reduced online: ten times the requests, about the same peak memory.

    (A 10 M-request run is a documented command in the README: peak RSS ~50 MB.)"""
    import tracemalloc

    sc = load_scenario(SCENARIOS / "phone.yaml")

    def peak_bytes(n: int) -> int:
        tracemalloc.start()
        simulate(sc, "cascade", requests=n)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    small, large = peak_bytes(2_000), peak_bytes(20_000)
    assert large < 1.3 * small + 256_000, (small, large)  # ~0.86 kB/request would be +15 MB
