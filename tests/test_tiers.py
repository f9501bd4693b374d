"""Three tiers (wearable -> phone -> cloud): queueing at the shared phone, energy, outages."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from edgesplit.sim.scenario import ScenarioError
from edgesplit.sim.tier_scenario import load_tier_scenario, parse_tier_scenario
from edgesplit.sim.tiers import candidates, label, simulate_tiers, summarise_tiers

SCENARIOS = Path(__file__).resolve().parents[1] / "sim" / "scenarios" / "tiers"

# An ideal hop: no delay, jitter, loss or promotion, and a rate that makes serialisation ~0.
IDEAL = {
    "technology": "ble",
    "up_mbps": 10_000,
    "down_mbps": 10_000,
    "one_way_delay_ms": 0,
    "jitter_p90_ms": 0,
    "loss_rate": 0,
    "promotion_ms": 0,
    "tail_ms": 0,
}


def doc(**workload) -> dict:
    return {
        "name": "queue",
        "seed": 5,
        "requests": 60_000,
        "model": {
            "name": "m",
            "whole_ms": 10.0,
            "cuts": [{"index": 2, "head_ms": 4.0, "tensor_bytes": 800}],
        },
        "workload": {
            "rate_per_s": 50.0,
            "deadline_ms": 100,
            "request_bytes": 100,
            "response_bytes": 10,
        }
        | workload,
        "tiers": [
            {"name": "bud", "has_model": False, "battery_wh": 0.184, "link": dict(IDEAL)},
            {"name": "phone", "cores": 1, "battery_wh": 12.98, "link": {"technology": "lte"}},
            {"name": "cloud", "cores": 4, "compute_power_w": 0, "cost_per_request_usd": 1e-5},
        ],
        "placements": [{"name": "phone", "run_on": "phone"}],
    }


def mean_ms(d: dict, requests: int = 60_000) -> float:
    run = simulate_tiers(parse_tier_scenario(d), d["placements"][0]["name"], requests=requests)
    return summarise_tiers(run)["latency_ms"]["mean"]


@pytest.mark.parametrize(
    ("distribution", "expected_ms"),
    [
        ("exponential", 1 / (100 - 50) * 1e3),  # M/M/1 at the phone: W = 1 / (mu - lambda)
        ("deterministic", 10 + 0.5 / (2 * 100 * (1 - 0.5)) * 1e3),  # M/D/1: 1/mu + rho/(2mu(1-rho))
    ],
)
def test_phone_queue_matches_queueing_theory(distribution, expected_ms):
    assert mean_ms(doc(service_distribution=distribution)) == pytest.approx(expected_ms, rel=0.05)


def test_wearables_and_phone_share_one_queue():
    """Four earbuds at 7.5/s and the phone's own 20/s on one core: M/G/1 (Pollaczek-Khinchine).

    Earbud work is exponential 10 ms, the phone's own deterministic 10 ms: E[S^2] mixes
    (30 * 2e-4 + 20 * 1e-4) / 50 = 1.6e-4 s^2, rho = 0.5, Wq = lambda E[S^2] / (2 (1 - rho)) = 8 ms.
    """
    d = doc(service_distribution="exponential", rate_per_s=7.5)
    d["tiers"][0]["count"] = 4
    d["tiers"][1] |= {"own_rate_per_s": 20.0, "own_service_ms": 10.0}
    run = simulate_tiers(parse_tier_scenario(d), "phone", requests=60_000)
    s = summarise_tiers(run)
    assert s["latency_ms"]["mean"] == pytest.approx(8 + 10, rel=0.05)
    assert s["own_requests_latency_ms"]["mean"] == pytest.approx(8 + 10, rel=0.05)
    phone = s["tiers"][1]
    assert phone["utilisation"] == pytest.approx(0.5, rel=0.05)


def test_phone_battery_cost_of_its_wearables_is_reported():
    """The phone's battery hours fall when it relays to the cloud over LTE (tail ~1 W, Huang)."""
    d = doc(rate_per_s=0.2)
    d["tiers"][1] |= {"idle_power_w": 0.1, "own_rate_per_s": 0.5, "own_service_ms": 4.0}
    d["placements"] = [{"name": "phone", "run_on": "phone"}, {"name": "cloud", "run_on": "cloud"}]
    sc = parse_tier_scenario(d)
    on_phone = summarise_tiers(simulate_tiers(sc, "phone", requests=2000))
    via = summarise_tiers(simulate_tiers(sc, "cloud", requests=2000))
    for s in (on_phone, via):
        phone = s["tiers"][1]
        e = phone["energy_j"]
        # battery hours are the battery over the mean power of every part, recomputed here
        total_w = (e["compute"] + e["radio"] + e["own_requests"] + e["idle"]) / s["simulated_s"]
        assert phone["battery_hours"] == pytest.approx(12.98 / total_w, rel=1e-9)
        assert phone["battery_hours"] < phone["battery_hours_without_wearables"]
    assert via["tiers"][1]["battery_hours"] < 0.5 * on_phone["tiers"][1]["battery_hours"]
    assert via["cloud_requests"] == via["completed"] and on_phone["cloud_requests"] == 0
    assert via["cloud_cost_usd"] == pytest.approx(via["completed"] * 1e-5)
    # bytes per hop: the input over both hops, the response back over both
    hops = via["hops"]
    assert [h["bytes_up_per_request"] for h in hops] == [100, 100]
    assert [h["bytes_down_per_request"] for h in hops] == [10, 10]
    assert on_phone["hops"][1]["bytes_up_per_request"] == 0


def test_three_way_cut_sends_the_tensor_at_each_boundary():
    d = doc(rate_per_s=1.0)
    d["tiers"][0]["has_model"] = True
    d["placements"] = [{"name": "cut", "cuts": ["start", 2]}, {"name": "h", "cuts": [2, "end"]}]
    sc = parse_tier_scenario(d)
    s = summarise_tiers(simulate_tiers(sc, "h", requests=200))
    assert [h["bytes_up_per_request"] for h in s["hops"]] == [800, 0]
    assert s["tiers"][0]["compute_ms_per_request"] == pytest.approx(4.0)
    assert s["tiers"][1]["compute_ms_per_request"] == pytest.approx(6.0)
    s = summarise_tiers(simulate_tiers(sc, "cut", requests=200))
    assert [h["bytes_up_per_request"] for h in s["hops"]] == [100, 800]
    assert s["answered_by"]["cloud"] == 200
    assert label(sc, sc.boundaries(sc.placements[1])) == "bud:start-2 > phone:2-end"


def test_outage_is_answered_by_the_tier_below_flagged_degraded():
    d = doc(rate_per_s=1.0)
    d["tiers"][1]["link"]["outages_s"] = [[50.0, 100.0]]
    d["placements"] = [{"name": "cloud", "run_on": "cloud"}]
    s = summarise_tiers(simulate_tiers(parse_tier_scenario(d), "cloud", requests=300))
    assert s["degraded"] > 50 and s["answered_by"]["phone"] == s["degraded"]
    assert s["lost"] == 0
    # a bud without a model cannot answer when its own link is cut: those requests are lost
    d["tiers"][0]["link"]["outages_s"] = [[0.0, 100.0]]
    s = summarise_tiers(simulate_tiers(parse_tier_scenario(d), "cloud", requests=300))
    assert s["lost"] > 50 and s["completed"] + s["lost"] == 300


def test_a_slow_cloud_is_answered_by_the_phone_through_the_request_flow():
    """The phone's hop runs device/flow.py as the hub does: a cloud slower than the phone's
    timeout is waited for (1 s, no retry), the phone answers, degraded; after 3 failures the
    breaker opens and the phone answers at once, until it probes the cloud again 3 s later."""
    d = doc(rate_per_s=1.0)
    d["tiers"][1]["link"] = dict(IDEAL)
    d["tiers"][2]["slowdown"] = 200.0  # the cloud's part: 2000 ms, twice the timeout
    d["placements"] = [{"name": "cloud", "run_on": "cloud"}]
    run = simulate_tiers(parse_tier_scenario(d), "cloud", requests=200)
    s = summarise_tiers(run)
    assert s["completed"] == 200 and s["degraded"] == 200
    assert s["answered_by"] == {"bud": 0, "phone": 200, "cloud": 0}
    assert run.latency_ms.quantile(0.99) == pytest.approx(1010, rel=0.02)  # timeout + phone
    assert run.latency_ms.quantile(0.05) < 20  # breaker open: no wait
    # A retry doubles the wait (plus ~50 ms of backoff); here with a breaker that never opens.
    d["tiers"][1]["client"] = {"timeout_ms": 1000, "retries": 1, "breaker_failures": 10_000}
    retried = simulate_tiers(parse_tier_scenario(d), "cloud", requests=200)
    assert 2000 < retried.latency_ms.quantile(0.5) < 2200
    # A cloud within the timeout answers every request itself.
    d["tiers"][2]["slowdown"] = 1.0
    ok = summarise_tiers(simulate_tiers(parse_tier_scenario(d), "cloud", requests=200))
    assert ok["answered_by"]["cloud"] == 200 and ok["degraded"] == 0


def test_auto_moves_off_a_loaded_phone():
    """auto picks per request: an idle phone wins; a phone busy with its own work loses."""
    d = doc(rate_per_s=2.0)
    d["tiers"][1]["slowdown"] = 3.0  # the phone 30 ms, the cloud 10 ms + LTE ~90 ms
    d["placements"] = [{"name": "auto", "auto": True}]
    s = summarise_tiers(simulate_tiers(parse_tier_scenario(d), "auto", requests=300))
    assert s["answered_by"]["phone"] > 0.9 * s["completed"]
    d["tiers"][1] |= {"own_rate_per_s": 9.0, "own_service_ms": 100.0}  # rho 0.9 of its own
    s = summarise_tiers(simulate_tiers(parse_tier_scenario(d), "auto", requests=300))
    assert s["answered_by"]["cloud"] > 0.5 * s["completed"]
    assert not any(c.startswith("bud") for c in s["chosen"])  # the bud has no model


def test_candidates_respect_tiers_without_a_model():
    sc = parse_tier_scenario(doc())
    labels = {label(sc, c) for c in candidates(sc)}
    assert labels >= {"phone", "cloud", "phone:start-2 > cloud:2-end"}
    assert not any(lab.startswith("bud") for lab in labels)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["tiers"][0].pop("link"), "tiers.0.link: missing"),
        (lambda d: d["tiers"][1].update(count=3), "tiers.1.count = 3"),
        (lambda d: d["placements"].append({"name": "x", "run_on": "bud"}), "no model to run"),
        (lambda d: d["placements"].append({"name": "x", "cuts": [7, "end"]}), "7 is not a cut"),
        (lambda d: d["placements"].append({"name": "x", "cuts": ["end", 2]}), "must not go back"),
        (lambda d: d["tiers"][1].update(slowdown=float("inf")), "tiers.1.slowdown"),
        (lambda d: d["workload"].update(rate_per_s=-1), "unit: per second"),
    ],
)
def test_bad_input_names_the_field(edit, message):
    d = copy.deepcopy(doc())
    edit(d)
    with pytest.raises(ScenarioError, match=message):
        parse_tier_scenario(d, "x.yaml")


def test_seed_scenarios_load_and_compare():
    """The shipped chains: on-device KWS vs none, tethered vs stand-alone glasses."""
    files = sorted(SCENARIOS.glob("*-?tier.yaml"))
    assert {f.stem for f in files} >= {
        "earbuds-3tier",
        "earbuds-nomodel-3tier",
        "glasses-tethered-3tier",
        "glasses-standalone-2tier",
    }
    for f in files:
        sc = load_tier_scenario(f)
        for p in sc.placements:
            s = summarise_tiers(simulate_tiers(sc, p, requests=200))
            assert s["completed"] + s["lost"] == 200
            assert all(t["energy_j"]["idle"] >= 0 for t in s["tiers"])
    # a phone out of range: a bud with a model answers alone, a bud without one cannot
    kws = load_tier_scenario(SCENARIOS / "earbuds-3tier.yaml")
    none = load_tier_scenario(SCENARIOS / "earbuds-nomodel-3tier.yaml")
    with_model = summarise_tiers(simulate_tiers(kws, "phone", requests=3000))
    without = summarise_tiers(simulate_tiers(none, "phone", requests=3000))
    assert with_model["degraded"] > 0 and with_model["lost"] == 0
    assert without["lost"] > 0 and without["degraded"] == 0


def test_placement_sweep_moves_the_cut_as_the_wearable_link_falls():
    from edgesplit.sim.tier_scenario import load_tier_doc
    from edgesplit.sim.tier_sweep import best_per_point, placement_sweep

    doc = load_tier_doc(SCENARIOS / "earbuds-3tier.yaml")
    rows = placement_sweep(doc, [0.05, 5.0], [0.0], hop=0, requests=300)
    best = best_per_point(rows, "p95", {"auto"})
    # a slow BLE link: send the small tensor after the bud's first layer; a fast one: the input
    assert best[(0.05, 0.0)].placement == "earbud head > phone"
    assert best[(5.0, 0.0)].placement == "phone"


def test_cli_tiers_and_sweep(tmp_path):
    import json
    import subprocess
    import sys

    cli = [sys.executable, "-m", "edgesplit.cli", "sim"]
    f = str(SCENARIOS / "glasses-tethered-3tier.yaml")
    res = subprocess.run(
        [*cli, "tiers", f, "--requests", "200", "--json"], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert [s["placement"] for s in out][:3] == ["glasses", "phone", "cloud via phone"]
    assert (
        out[1]["tiers"][1]["battery_hours"] < out[1]["tiers"][1]["battery_hours_without_wearables"]
    )
    res = subprocess.run(
        [
            *cli,
            "tier-sweep",
            f,
            "--link-mbps",
            "0.2",
            "--link-mbps",
            "20",
            "--phone-util",
            "0",
            "--requests",
            "100",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "glasses-tethered-3tier-placement-sweep.png").stat().st_size > 10_000
    bad = subprocess.run(
        [*cli, "tier-sweep", f, "--phone-util", "1.5"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "--phone-util 1.5" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_sim_validate_names_a_wrong_case_in_one_line():
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-m", "edgesplit.cli", "sim", "validate", "--case", "moon"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "--case 'moon': expected one of links, slow-cloud, tiers" in res.stderr
