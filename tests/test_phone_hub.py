"""The phone hub on loopback: earbuds -> emulated BLE -> hub -> emulated LTE -> real cloud."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from edgesplit.cloud.repository import DEFAULT_REPOSITORY, Repository
from edgesplit.cloud.serve import ServerThread
from edgesplit.device.link import LinkProfile
from edgesplit.device.link_emulator import LinkEmulator
from edgesplit.device.workloads import kws

from edgesplit.errors import InputError, LinkError
from edgesplit.phone_hub import LocalModel, PhoneHub, Wearable, kws_tail_model

# Generous budgets: the machine is shared and busy. The hub waits this long for the cloud (an LTE
# exchange takes ~0.4 s with promotion); a wearable waits far longer for the hub, which itself
# may wait out the cloud and then run the model.
CLOUD_TIMEOUT_S = 3.0
WEARABLE_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def chain():
    phone_model = LocalModel(kws.model_path("fp32"))
    with contextlib.ExitStack() as stack:
        repo = Repository(DEFAULT_REPOSITORY, ["kws-small", "kws-tail"])
        cloud = stack.enter_context(ServerThread(repo))
        lte_profile = LinkProfile.technology("lte")
        lte = stack.enter_context(LinkEmulator((cloud.host, cloud.port), lte_profile, seed=1))
        models = {"kws": phone_model, "kws-tail": kws_tail_model()}
        names = {"kws": "kws-small", "kws-tail": "kws-tail"}
        hub = PhoneHub(models, lte.url, "cloud", names, CLOUD_TIMEOUT_S)
        stack.enter_context(hub)
        ble_profile = LinkProfile.technology("ble")
        ble = stack.enter_context(LinkEmulator((hub.host, hub.port), ble_profile, seed=2))
        yield {"hub": hub, "lte": lte, "ble": ble, "phone_model": phone_model}


@pytest.fixture(scope="module")
def feed(kws_workload):
    return kws_workload.split_feed()  # one held-out-voice MFCC window, (1, 1, 49, 10) float32


def test_cloud_route_through_the_phone(chain, feed):
    bud = Wearable(chain["ble"].url, timeout_s=WEARABLE_TIMEOUT_S)
    ans = bud.infer("kws", feed)
    assert (ans.route, ans.degraded) == ("cloud", False)
    local = chain["phone_model"](feed)["logits"]
    np.testing.assert_allclose(
        ans.outputs["logits"], local, rtol=1e-4, atol=1e-4
    )  # same FP32 model
    assert chain["lte"].stats.bytes_up >= ans.sent_bytes  # the request crossed both hops
    assert chain["ble"].stats.bytes_up >= ans.sent_bytes
    phone = bud.infer("kws", feed, route="phone")
    assert (phone.route, phone.degraded) == ("phone", False)


def test_cut_across_tiers_earbud_head_then_phone_or_cloud_tail(chain, feed):
    """Earbud head > phone tail, and earbud head > (phone relays) > cloud tail: both finish the
    FP32 model, so both give the whole model's logits; only the cut's activation crosses BLE."""
    from edgesplit.device.tasks import kws_head

    head, _index = kws_head()
    bud = Wearable(chain["ble"].url, timeout_s=WEARABLE_TIMEOUT_S)
    whole = chain["phone_model"](feed)["logits"]
    for route in ("phone", "cloud"):
        ans = bud.infer_split(head, "kws-tail", feed, route=route)
        assert (ans.route, ans.degraded) == (f"device+{route}", False)
        np.testing.assert_allclose(ans.outputs["logits"], whole, rtol=1e-4, atol=1e-4)
        assert ans.sent_bytes > 64 * 25 * 5 * 4  # the [1, 64, 25, 5] float32 activation


def test_cellular_outage_is_answered_by_the_phone_degraded(chain, feed):
    bud = Wearable(chain["ble"].url, timeout_s=WEARABLE_TIMEOUT_S)
    before = chain["hub"].stats.degraded
    chain["lte"].cut(True)
    try:
        ans = bud.infer("kws", feed)
    finally:
        chain["lte"].cut(False)
    assert (ans.route, ans.degraded) == ("phone", True)
    assert ans.outputs["logits"].shape == (1, 12)
    assert chain["hub"].stats.degraded == before + 1
    assert bud.infer("kws", feed).route == "cloud"  # back once the link is


def test_ble_outage_earbud_with_a_model_answers_itself(chain, feed):
    own = LocalModel(kws.model_path("int8"))
    with_model = Wearable(chain["ble"].url, own, timeout_s=1.5)
    without = Wearable(chain["ble"].url, None, timeout_s=1.5)
    chain["ble"].cut(True)
    try:
        ans = with_model.infer("kws", feed)
        with pytest.raises(LinkError, match="no model on the wearable"):
            without.infer("kws", feed)
    finally:
        chain["ble"].cut(False)
    assert (ans.route, ans.degraded, ans.sent_bytes) == ("device", True, 0)
    assert int(ans.outputs["logits"].argmax()) in range(12)


def test_bad_requests_get_one_clear_error(chain, feed):
    bud = Wearable(chain["hub"].url, timeout_s=WEARABLE_TIMEOUT_S)
    with pytest.raises(InputError, match="expected phone or cloud"):
        bud.infer("kws", feed, route="moon")
    with pytest.raises(InputError, match="shape"):
        bud.infer("kws", {"mfcc": np.zeros((1, 1, 7, 10), np.float32)}, route="phone")
    with pytest.raises(InputError, match="not on the phone"):
        bud.infer("nope", feed, route="phone")


def test_phone_serve_is_a_separate_process(feed):
    """`edgesplit phone serve` as a user runs it: its own process, emulated BLE and LTE inside."""
    import json
    import subprocess
    import sys

    with ServerThread(Repository(DEFAULT_REPOSITORY, ["kws-small"])) as cloud:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edgesplit.cli",
                "phone",
                "serve",
                "--cloud",
                cloud.url,
                "--cloud-timeout-s",
                str(CLOUD_TIMEOUT_S),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            info = json.loads(proc.stdout.readline())  # blocks until the hub is listening
            assert info["wearable_link"] == "ble" and info["cloud_link"] == "lte"
            bud = Wearable(info["wearables_connect_to"], timeout_s=WEARABLE_TIMEOUT_S)
            assert bud.infer("kws", feed).route == "cloud"
            assert bud.infer("kws", feed, route="phone").route == "phone"
        finally:
            proc.terminate()
            out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1])["stats"] == {
            "phone": 1,
            "cloud": 1,
            "degraded": 0,
            "errors": 0,
        }


def test_phone_serve_bad_option_is_one_line():
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-m", "edgesplit.cli", "phone", "serve", "--cloud-link", "carrier-pigeon"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2 and "--cloud-link 'carrier-pigeon'" in res.stderr
    assert "Traceback" not in res.stderr


def test_validate_tiers_real_hub_against_the_simulator(kws_workload):
    """A short `sim validate-tiers`: both placements run for real and simulated on one script.

    The goal (15 %) is for the command's longer runs; on this shared, loaded machine a dozen
    requests only bound the p50 loosely (the real run is one draw and pays scheduler delays)."""
    from edgesplit.tier_validate import validate_tiers

    phone = LocalModel(kws.model_path("fp32"))
    with ServerThread(Repository(DEFAULT_REPOSITORY, ["kws-small"])) as cloud:
        rep = validate_tiers(cloud.url, "kws-small", phone, kws_workload.split_feed(), 12, 4.0, 1)
    assert [r["placement"] for r in rep["rounds"]] == ["phone", "cloud"]
    for r in rep["rounds"]:
        assert r["bytes_up_per_request"] > 1960  # the MFCC window plus OIP and HTTP headers
        assert r["p50_rel_error"] < 0.5
    # the cloud placement adds an LTE round trip (2 x 40 ms one way), in both worlds
    phone_row, cloud_row = rep["rounds"]
    assert cloud_row["sim_p50_ms"] > phone_row["sim_p50_ms"] + 80
    assert cloud_row["real_p50_ms"] > phone_row["real_p50_ms"] + 80
