"""The device router end to end: a real server on loopback, behind the link emulator.

No timing is asserted as a speed: the emulator's delays are lower bounds by construction (a
response cannot come back before two one-way delays), which is what these tests check.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest
from edgesplit.cloud.repository import DEFAULT_REPOSITORY, Repository
from edgesplit.cloud.serve import ServerThread
from edgesplit.device.cloud_client import CloudClient
from edgesplit.device.link import LinkProfile
from edgesplit.device.link_emulator import LinkEmulator
from edgesplit.device.policy import LinkEstimator, PolicyConfig, RequestCosts, SplitOption
from edgesplit.device.resilience import CircuitBreaker
from edgesplit.device.router import Router
from edgesplit.device.telemetry import TelemetryLog, read_telemetry

SLOW = LinkProfile(
    "test",
    up_mbps=2.0,
    down_mbps=2.0,
    one_way_delay_ms=30.0,
    jitter_p90_ms=0.0,
    loss_rate=0.0,
    retransmit_timeout_ms=0.0,
)
KWS_MODELS = ["kws-large", "kws-embed", "kws-embed-opus", "kws-tail"]  # what the kws task calls


@pytest.fixture(scope="module")
def server(kws_workload):
    with ServerThread(Repository(DEFAULT_REPOSITORY, KWS_MODELS)) as srv:
        yield srv


@pytest.fixture(scope="module")
def kws(kws_workload):
    from edgesplit.device.tasks import kws_task

    from edgesplit.streams import earbuds_items

    return kws_task(), earbuds_items(4, seed=5)


def _costs(task) -> RequestCosts:
    split = (SplitOption(task.split_index, 0.05, 0.05, 32_400),)
    return RequestCosts(
        deadline_ms=500,
        request_bytes=2400,
        response_bytes=450,
        device_ms=0.2,
        cloud_ms=5.0,
        splits=split,
    )


def _router(emu: LinkEmulator, kind: str, tmp_path, **cfg) -> Router:
    client = CloudClient(
        emu.url, timeout_s=0.5, retries=1, backoff_base_ms=10, breaker=CircuitBreaker(2, 0.5)
    )
    telemetry = TelemetryLog(tmp_path / f"{kind}.jsonl")
    return Router(PolicyConfig(kind, **cfg), client, LinkEstimator(2, 2, 60), telemetry)


def test_every_policy_answers_over_the_emulated_link(server, kws, tmp_path):
    task, items = kws
    x = items[0].x
    local_label, _ = task.local(x)
    with LinkEmulator((server.host, server.port), SLOW) as emu:
        cloud = _router(emu, "cloud-only", tmp_path).handle(task, x, _costs(task))
        assert (cloud.route, cloud.decision, cloud.degraded) == ("cloud", "cloud", False)
        assert cloud.total_ms >= 2 * SLOW.one_way_delay_ms  # two trips across the link
        assert cloud.bytes_up > 1960 and cloud.server_ms > 0 and cloud.network_ms >= 60
        split = _router(emu, "split", tmp_path).handle(task, x, _costs(task))
        assert split.route == "split" and split.extra["split_index"] == task.split_index
        assert split.bytes_up > 32_000  # the activation at the cut: [1, 64, 25, 5] float32
        # FP32 head here + FP32 tail there = the FP32 model: same answer as running it whole.
        from edgesplit.device.workloads import kws as kws_mod

        fp32 = kws_mod.KeywordSpotter(kws_mod.model_path("fp32")).classify_mfcc(x).label
        assert split.label == fp32
        sure = _router(emu, "cascade", tmp_path, threshold=0.0).handle(task, x, _costs(task))
        assert sure.route == "device" and sure.label == local_label and sure.bytes_up == 0
        unsure = _router(emu, "cascade", tmp_path, threshold=1.0).handle(task, x, _costs(task))
        assert unsure.route == "device+cloud" and unsure.label == cloud.label
        before = emu.stats.bytes_up
        private = _router(emu, "cloud-only", tmp_path, privacy=True).handle(task, x, _costs(task))
        assert private.route == "device" and private.bytes_up == 0
        assert emu.stats.bytes_up == before  # nothing left the device
    records, torn = read_telemetry(tmp_path / "cloud-only.jsonl")
    assert torn == 0 and [r["route"] for r in records] == ["cloud", "device"]


def test_outage_falls_back_degraded_then_recovers(server, kws, tmp_path):
    task, items = kws
    with LinkEmulator((server.host, server.port), SLOW) as emu:
        router = _router(emu, "cloud-only", tmp_path)
        assert router.handle(task, items[0].x, _costs(task)).route == "cloud"
        emu.cut(True)
        first = router.handle(task, items[1].x, _costs(task))
        assert (first.route, first.degraded) == ("fallback", True)
        assert first.error == "timeout" and first.attempts == 2 and first.label
        assert first.client_wait_ms >= 2 * 500  # two attempts, each waited out its timeout
        assert router.client.breaker.state == "open"  # 2 failures open it
        second = router.handle(task, items[2].x, _costs(task))
        assert second.route == "fallback" and second.decision == "local"  # no waiting now
        assert second.client_wait_ms == 0 and emu.stats.blackholed_bytes > 0
        emu.cut(False)
        time.sleep(0.6)  # past the breaker's reset: the next call is its probe
        back = router.handle(task, items[3].x, _costs(task))
        assert back.route == "cloud" and router.client.breaker.state == "closed"


def test_client_errors_are_not_retried_and_do_not_open_the_circuit(server, kws, tmp_path):
    client = CloudClient(server.url, timeout_s=2, retries=3, breaker=CircuitBreaker(1, 60))
    missing = client.attempt("no-such-model", {"mfcc": np.zeros((1, 1, 49, 10), np.float32)})
    assert not missing.called.ok and not missing.called.retryable
    assert "refused: HTTP 404" in missing.called.error
    bad = client.attempt("kws-large", {"mfcc": np.zeros((1, 3), np.float32)})
    assert "HTTP 400" in bad.called.error and not bad.called.retryable
    # Through the flow: one attempt, no retry, and the circuit stays closed.
    task, items = kws
    task = replace(task, cloud_model="no-such-model", cloud_model_for=None)
    router = Router(PolicyConfig("cloud-only"), client, LinkEstimator(2, 2, 60), trace=True)
    ans = router.handle(task, items[0].x, _costs(task))
    assert ans.route == "fallback" and ans.attempts == 1 and "HTTP 404" in ans.error
    assert ans.stages[1].startswith("call:cloud#1:refused")
    assert client.breaker.state == "closed" and client.available()


def test_a_full_cloud_is_left_alone_until_its_retry_after(server, kws):
    """A 429 with Retry-After is not retried and not a failure: the device answers at once and
    calls the cloud again only once the wait has passed; that probe, answered, closes the
    circuit. The 429 comes from a cloud whose in-flight body budget is smaller than one
    request (refused from its headers, "Retry-After: 1", on a connection kept open; the
    connection cap's 429 would do too, but a client that sends at once may meet the reset of
    that closed connection first); the probe goes to an ordinary one, through the same
    breaker."""
    from edgesplit.cloud.limits import Limits
    from edgesplit.cloud.server import ServerSettings

    # The flow's clock runs 100x slower than the wall's, so however slow this machine is the
    # second request comes within the 1 s; then the test moves it past.
    t0, skip = time.monotonic(), [0.0]
    clock = lambda: t0 + (time.monotonic() - t0) / 100 + skip[0]  # noqa: E731
    breaker, task, items = CircuitBreaker(1, 60), *kws
    full = ServerSettings(limits=Limits(max_inflight_body_bytes=100))
    with ServerThread(Repository(DEFAULT_REPOSITORY, KWS_MODELS), full) as srv:
        client = CloudClient(srv.url, timeout_s=2, retries=3, breaker=breaker, clock=clock)
        router = Router(PolicyConfig("cloud-only"), client, LinkEstimator(2, 2, 60), trace=True)
        first = router.handle(task, items[0].x, _costs(task))
        assert first.route == "fallback" and first.attempts == 1  # no retry
        assert first.stages[1] == "call:cloud#1:overloaded", first.stages
        assert breaker.holds == 1 and breaker.opens == 0  # not a failure
        second = router.handle(task, items[1].x, _costs(task))
        assert second.attempts == 0 and second.label  # answered alone, no call
        assert second.stages == ["decide:local", "compute:whole", "route:fallback"]
    skip[0] = 1.0  # the Retry-After has passed
    client = CloudClient(server.url, timeout_s=2, retries=3, breaker=breaker, clock=clock)
    assert client.available()
    router = Router(PolicyConfig("cloud-only"), client, LinkEstimator(2, 2, 60), trace=True)
    back = router.handle(task, items[2].x, _costs(task))
    assert back.route == "cloud" and breaker.state == "closed", back.stages


def test_emulator_rate_limit_and_profile_change(server):
    """Serialisation: 200 kB at 1 Mbit/s cannot arrive in under 1.6 s; a faster profile can."""
    import urllib.request

    payload = b"x" * 200_000
    slow = LinkProfile("slow", 1.0, 1.0, 0.0, 0.0, 0.0, 0.0)
    with LinkEmulator((server.host, server.port), slow) as emu:
        req = urllib.request.Request(
            emu.url + "/v2/models/kws-large/infer", data=payload, method="POST"
        )
        t = time.perf_counter()
        with pytest.raises(urllib.error.HTTPError):  # 400 (not JSON), once the body is all in
            urllib.request.urlopen(req, timeout=10)
        assert time.perf_counter() - t >= 200_000 * 8 / 1e6 * 0.95
        emu.set_profile(LinkProfile.technology("wifi", jitter_p90_ms=0.0))
        assert emu.profile.up_mbps == 88.0
        assert emu.stats.bytes_up >= 200_000


def test_link_profiles_are_the_simulators():
    from edgesplit.sim.links import TECHNOLOGIES

    lte = LinkProfile.technology("lte")
    assert (lte.up_mbps, lte.one_way_delay_ms) == (TECHNOLOGIES["lte"].up_mbps, 40.0)
    chain = LinkProfile.chain([LinkProfile.technology("ble"), lte])
    assert chain.up_mbps == 0.2 and chain.one_way_delay_ms == 55.0
    assert chain.loss_rate == pytest.approx(1 - 0.999 * 0.999)
    with pytest.raises(ValueError, match="expected one of ble, wifi, lte, 5g"):
        LinkProfile.technology("6g")


WRITER = """
import sys, time
from edgesplit.device.telemetry import TelemetryLog
log = TelemetryLog(sys.argv[1])
i = 0
while True:
    log.write({"request": i, "route": "device", "pad": "x" * 200})
    i += 1
"""


def test_telemetry_survives_a_crash(tmp_path):
    path = tmp_path / "t.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], env=os.environ | {"PYTHONPATH": os.getcwd()}
    )
    deadline = time.monotonic() + 30
    while (not path.exists() or path.stat().st_size < 20_000) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with path.open("a") as f:  # and a torn last line, as a crash mid-write leaves
        f.write('{"request": 99999, "rou')
    records, torn = read_telemetry(path)
    assert torn == 1 and len(records) > 50
    assert [r["request"] for r in records] == list(range(len(records)))  # nothing lost before
    assert all(json.dumps(r) for r in records)
