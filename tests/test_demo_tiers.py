"""The demo's three tiers: earbuds -> emulated BLE -> phone hub (its own process) -> emulated LTE
-> the real cloud on loopback, one outage of each hop, routes and flags in the telemetry."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from edgesplit.device.flow import Route
from edgesplit.device.router import Answer
from edgesplit.device.telemetry import read_telemetry

from edgesplit.rig import CUT_EARBUD, CostTracker, HubSetup, Rig

# Generous budgets for a busy 2-core machine: the hub waits 1.2 s for the cloud (an LTE exchange
# takes ~0.35 s with the radio's promotion); a wearable waits twice that for the hub, so a cut
# uplink is answered by the phone and never taken for a cut BLE hop. The cut earbud's activation
# takes ~1.3 s over 200 kbit/s BLE, so its deadline (and with it its timeout) is 6 s.
HUB = HubSetup(route="cloud", cloud_timeout_s=1.2, wearable_timeout_s=2.4)


def _step_all(rig: Rig, names: list[str]) -> dict[str, dict]:
    """One request from each wearable at once (each its own thread, as in the demo)."""
    with ThreadPoolExecutor(len(names)) as pool:
        futures = {n: pool.submit(rig.loops[n].step, 0.0) for n in names}
        return {n: f.result() for n, f in futures.items()}


def test_routes_through_the_phone_and_each_hop_cut(tmp_path, kws_workload):
    path = tmp_path / "telemetry.jsonl"
    pair = ["earbuds", CUT_EARBUD]
    with Rig(
        pair,
        4,
        seed=5,
        telemetry=path,
        policies={"earbuds": "cloud-only"},  # the cut earbud keeps its split policy
        deadlines_ms={CUT_EARBUD: 6000},
        hub=HUB,
    ) as rig:
        assert rig.hub_process is not None and rig.hub_process.poll() is None  # its own process
        buds = rig.loops["earbuds"]
        buds.probe_every_s = 0.0  # measure the device again after each cloud answer
        buds.costs.device_ms = 5000.0  # a stale estimate, far from the KWS's milliseconds
        up = _step_all(rig, pair)
        # Both hops cut at once, each felt by one bud: the phone loses the cloud (the cut
        # earbud's tail is finished on the phone), and the other earbud loses the phone (it
        # answers itself).
        rig.cut_uplink(True)
        buds.cut(True)
        cut_both = _step_all(rig, pair)
        rig.cut_uplink(False)
        buds.cut(False)
        back = buds.step(0.0)  # both hops up again: through the phone to the cloud once more
    assert (up["earbuds"]["route"], up["earbuds"]["tier"], up["earbuds"]["degraded"]) == (
        "cloud",
        "cloud",
        False,
    )
    cut = up[CUT_EARBUD]
    assert (cut["route"], cut["degraded"]) == ("device>cloud", False)
    assert cut["bytes_up"] > 64 * 25 * 5 * 4  # the [1, 64, 25, 5] float32 activation crossed BLE
    assert up["earbuds"]["extra"]["cut"] is False
    # The stale device estimate was measured again after the cloud's answer, off the request.
    assert up["earbuds"]["probe_device_ms"] < 1000 and buds.costs.device_ms < 0.75 * 5000
    phone = cut_both[CUT_EARBUD]
    assert (phone["route"], phone["tier"], phone["degraded"]) == ("device>phone", "phone", True)
    assert phone["extra"]["cut"] == "lte"
    alone = cut_both["earbuds"]
    assert (alone["route"], alone["tier"], alone["degraded"]) == ("fallback", "device", True)
    assert alone["extra"]["cut"] == "ble" and alone["bytes_up"] == 0 and alone["label"]
    assert (back["route"], back["degraded"]) == ("cloud", False)
    lines, torn = read_telemetry(path)
    assert torn == 0 and len(lines) == 5
    assert sorted(e["route"] for e in lines) == sorted(
        ["cloud", "device>cloud", "device>phone", "fallback", "cloud"]
    )
    assert all(e["router_route"] in {r.value for r in Route} for e in lines)


def test_the_device_estimate_follows_hedges_and_fallbacks():
    """A device answer of any kind (alone, as a fallback, as the hedge beside a slow cloud, or
    before an escalation) refreshes the estimate the deadline-aware hedge starts from."""
    costs = CostTracker(1000.0)
    costs.observe_device(400.0, now_s=0.0)
    hedged = Answer(1, "glasses-ocr", "x", 0.9, Route.FALLBACK, "cloud", "", True, "hedged")
    hedged.device_ms = 100.0
    costs.update(hedged, 0)
    assert costs.device_ms < 400.0
    split_fallback = Answer(2, "kws", "x", 0.9, Route.FALLBACK, "split", "", True, "timeout")
    split_fallback.device_ms, split_fallback.extra = 5000.0, {"split_index": 3}
    before = costs.device_ms
    costs.update(split_fallback, 0)  # head + whole: not the whole model's time
    assert costs.device_ms == before
    assert costs.device_stale(10.0, now_s=1e9) and not costs.device_stale(1e12)
