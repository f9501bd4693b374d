"""Two hosts for real: the cloud in one network namespace, the devices in another, joined by a veth
pair shaped with the kernel's ``tbf`` to the Wi-Fi profile's rate; the demo's link emulator adds
delay, jitter, loss and the outage (``--link-emulation delay``: the rate is the kernel's).

Needs root and ``ip netns`` (iproute2); skipped with the reason where either is missing. Uses only
addresses inside the namespaces it creates (10.203.N.0/30), with unique names, always removed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from edgesplit.sim.links import TECHNOLOGIES

from tests.test_demo_remote import KEY, MODELS, make_ca

CLI = [sys.executable, "-m", "edgesplit.cli"]
WIFI = TECHNOLOGIES["wifi"]
PORT = 8443
FRAME_BYTES = 640 * 480 * 3


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _tbf(ns: str, dev: str, mbps: float) -> None:
    # burst: at least rate/HZ bytes so tbf can reach its rate (88 Mbit/s / 1000 Hz = 11 kB);
    # latency: how long a packet may queue before tbf drops it (a radio's buffer).
    subprocess.run(
        ["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "tbf",
         "rate", f"{mbps}mbit", "burst", "32kb", "latency", "400ms"],
        check=True, capture_output=True,
    )  # fmt: skip


@pytest.fixture
def two_hosts() -> Iterator[dict]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (ip netns add)")
    if shutil.which("ip") is None or shutil.which("tc") is None:
        pytest.skip("iproute2 (ip, tc) is not installed")
    tag = f"{os.getpid() % 100_000}"
    cloud_ns, dev_ns = f"es-cloud-{tag}", f"es-dev-{tag}"
    subnet = 10 + os.getpid() % 240  # 10.203.<subnet>.0/30: inside our namespaces only
    cloud_ip, dev_ip = f"10.203.{subnet}.1", f"10.203.{subnet}.2"
    made: list[str] = []
    try:
        for ns in (cloud_ns, dev_ns):
            res = _ip("netns", "add", ns, check=False)
            if res.returncode != 0:
                pytest.skip(f"cannot create a network namespace here: {res.stderr.strip()}")
            made.append(ns)
        _ip("link", "add", f"esc{tag}", "type", "veth", "peer", "name", f"esd{tag}")
        _ip("link", "set", f"esc{tag}", "netns", cloud_ns)
        _ip("link", "set", f"esd{tag}", "netns", dev_ns)
        for ns, dev, addr in ((cloud_ns, f"esc{tag}", cloud_ip), (dev_ns, f"esd{tag}", dev_ip)):
            _ip("-n", ns, "addr", "add", f"{addr}/30", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")  # the link emulator listens on loopback
        _tbf(dev_ns, f"esd{tag}", WIFI.up_mbps)  # device -> cloud: the uplink
        _tbf(cloud_ns, f"esc{tag}", WIFI.down_mbps)  # cloud -> device: the downlink
        yield {"cloud_ns": cloud_ns, "dev_ns": dev_ns, "cloud_ip": cloud_ip, "tag": tag}
    finally:
        for ns in made:  # deleting a namespace deletes its end of the veth, and so the pair
            _ip("netns", "del", ns, check=False)


def _in(ns: str) -> list[str]:
    return ["ip", "netns", "exec", ns]


def test_demo_across_two_namespaces_over_a_shaped_veth(
    two_hosts, tmp_path: Path, ocr_workload, kws_workload, intent_workload
):
    h = two_hosts
    tls = make_ca(tmp_path, hosts=(h["cloud_ip"],))
    url = f"https://{h['cloud_ip']}:{PORT}"
    serve = [*_in(h["cloud_ns"]), *CLI, "cloud", "serve", "--host", h["cloud_ip"]]
    serve += ["--port", str(PORT), "--ssl-keyfile", str(tls["server.key"])]
    serve += ["--ssl-certfile", str(tls["server.pem"])]
    for m in MODELS:
        serve += ["--model", m]
    log = (tmp_path / "cloud.log").open("w")
    env = os.environ | {"EDGESPLIT_API_KEYS": KEY, "EDGESPLIT_API_KEY": KEY}
    cloud = subprocess.Popen(serve, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        # Wait for the cloud from the device's namespace (the only place that can reach it).
        # 240 s: loading four models on a loaded 2-core machine takes tens of seconds.
        wait = (
            "import sys,time\n"
            "from edgesplit.device.oip_client import OipClient\n"
            f"c = OipClient({url!r}, ca_cert={str(tls['ca.pem'])!r}, timeout_s=5)\n"
            "end = time.monotonic() + 240\n"
            "while time.monotonic() < end:\n"
            "    try:\n"
            "        c.get('/v2/health/ready'); sys.exit(0)\n"
            "    except Exception:\n"
            "        time.sleep(0.3)\n"
            "sys.exit(1)\n"
        )
        ready = subprocess.run([*_in(h["dev_ns"]), sys.executable, "-c", wait], timeout=300)
        assert ready.returncode == 0, (tmp_path / "cloud.log").read_text()[-2000:]
        out = tmp_path / "demo.json"
        demo = [*_in(h["dev_ns"]), *CLI, "demo", "--headless", "--cloud", url]
        demo += ["--ca-cert", str(tls["ca.pem"]), "--link-emulation", "delay"]
        # 12 requests a device at one a second; the emulated outage from 3 s to 11 s; no link
        # switch (the kernel's rate is Wi-Fi's for the whole run). Deadlines of 3 s: room for a
        # loaded machine's FP32 OCR in the cloud, short enough that outage timeouts stay short.
        demo += ["--requests", "12", "--outage-at", "3", "--outage-for", "8", "--switch-at", "1e6"]
        # --no-hub: each device straight to the cloud through the namespaces (the phone hub's
        # path is tests/test_demo_tiers.py's).
        demo += ["--no-hub", "--policy", "earbuds=split", "--deadline", "glasses=3000"]
        demo += ["--deadline", "earbuds=3000", "--json", str(out), "--out", str(tmp_path / "run")]
        res = subprocess.run(demo, env=env, capture_output=True, text=True, timeout=900)
        assert res.returncode == 0, res.stderr
    finally:
        cloud.terminate()
        cloud.wait(timeout=60)
    doc = json.loads(out.read_text())
    events = doc["events"]
    routes = {r for e in events for r in [e["route"]]}
    # The routes the one-machine demo shows: frames to the cloud, the split KWS, and fallback
    # while the link is cut.
    assert {"cloud", "split", "fallback"} <= routes, routes
    assert all(e["label"] is not None for e in events)
    # Outage behaviour: a request wholly inside the cut is answered on the device and nothing of
    # it crossed; a fallback is flagged degraded, with the cloud's error or the breaker's
    # "offline". (A request that spans the end of the cut may rightly reach the cloud after it.)
    start_s, end_s = doc["windows"]["outage"]
    inside = [e for e in events if e["t_s"] - e["total_ms"] / 1e3 >= start_s and e["t_s"] <= end_s]
    assert inside and all(e["route"] in ("device", "fallback") for e in inside)
    assert all(e["bytes_up"] == 0 for e in inside)
    fallback = [e for e in events if e["route"] == "fallback"]
    assert all(e["degraded"] and (e["error"] or "offline" in e["reason"]) for e in fallback)
    # The breaker opened: later requests inside the cut did not wait for timeouts.
    assert any(e["client_wait_ms"] == 0 for e in inside if e["route"] == "fallback")
    # ... and the cloud is used again after it.
    assert any(e["route"] in ("cloud", "split") for e in events if e["t_s"] > end_s + 1)
    # Timings: a frame crossed the tbf-shaped veth, so its transfer took at least its
    # serialisation at the Wi-Fi rate plus the emulator's round trip (both one-way delays).
    for e in events:
        if e["device"] == "glasses" and e["route"] == "cloud":
            assert e["bytes_up"] > FRAME_BYTES
            floor_ms = e["bytes_up"] * 8 / (WIFI.up_mbps * 1e3) + 2 * WIFI.one_way_delay_ms
            assert e["network_ms"] >= 0.9 * floor_ms, (e["network_ms"], floor_ms)
    # The shaping is the kernel's: the qdisc saw the uplink's bytes.
    stats = subprocess.run(
        [*_in(h["dev_ns"]), "tc", "-s", "qdisc", "show", "dev", f"esd{h['tag']}"],
        capture_output=True,
        text=True,
    ).stdout
    sent = int(stats.split("Sent ")[1].split(" bytes")[0])
    glasses_up = sum(e["bytes_up"] for e in events if e["device"] == "glasses")
    assert sent >= glasses_up
