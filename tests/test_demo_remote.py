"""Two roles: the device side of the demo against a cloud served by another process, over HTTPS
with a private CA (made here with the ``openssl`` binary), with an API key."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from edgesplit.device.oip_client import OipClient, OipClientError

from edgesplit.errors import CloudError

CLI = [sys.executable, "-m", "edgesplit.cli"]
KEY = "demo-remote-key-0123456789"  # the server wants >= 16 characters
MODELS = ("glasses-ocr", "kws-large", "kws-embed", "kws-embed-opus", "kws-tail", "phone-intent")
# Generous deadlines: on a busy 2-core machine one FP32 OCR in the cloud can take over 1 s; these
# tests check where requests go and that they arrive, not the deadline policy's timing.
ROOMY = ["--deadline", "glasses=30000", "--deadline", "earbuds=30000", "--deadline", "phone=30000"]


def make_ca(folder: Path, hosts: tuple[str, ...] = ("127.0.0.1",)) -> dict[str, Path]:
    """A throw-away CA and a server certificate it signed for ``hosts`` (IP addresses)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl binary is not installed (apt-get install openssl)")
    f = {n: folder / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem")}
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", *ec, "-keyout", f["ca.key"], "-out", f["ca.pem"], "-days", "2",
        "-subj", "/CN=edgesplit test CA")  # fmt: skip
    run("req", *ec, "-keyout", f["server.key"], "-out", f["server.csr"],
        "-subj", "/CN=edgesplit cloud")  # fmt: skip
    ext = folder / "ext.cnf"
    san = ",".join(f"IP:{h}" for h in hosts)
    ext.write_text(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n")
    run("x509", "-req", "-in", f["server.csr"], "-CA", f["ca.pem"], "-CAkey", f["ca.key"],
        "-CAcreateserial", "-out", f["server.pem"], "-days", "2", "-extfile", ext)  # fmt: skip
    return f


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(client: OipClient, proc: subprocess.Popen, timeout_s: float = 180.0) -> None:
    """Poll readiness; the server is another process, so there is no event to wait on. The
    budget is generous: loading four models on a loaded 2-core machine takes tens of seconds."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"cloud exited with {proc.returncode}: {proc.args}")
        try:
            client.get("/v2/health/ready")
            return
        except (OSError, OipClientError):
            time.sleep(0.2)
    raise AssertionError("cloud not ready in time")


def serve(
    tmp: Path,
    tls: dict[str, Path] | None,
    port: int,
    host: str = "127.0.0.1",
    ns: list | None = None,
) -> subprocess.Popen:
    args = [*(ns or []), *CLI, "cloud", "serve", "--host", host, "--port", str(port)]
    for m in MODELS:
        args += ["--model", m]
    if tls:
        args += ["--ssl-keyfile", str(tls["server.key"]), "--ssl-certfile", str(tls["server.pem"])]
    env = os.environ | {"EDGESPLIT_API_KEYS": KEY}
    log = (tmp / f"cloud-{port}.log").open("w")
    return subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def https_cloud(tmp_path_factory, ocr_workload, kws_workload, intent_workload) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("https-cloud")
    tls = make_ca(tmp)
    port = free_port()
    proc = serve(tmp, tls, port)
    try:
        url = f"https://127.0.0.1:{port}"
        wait_ready(OipClient(url, KEY, ca_cert=tls["ca.pem"], timeout_s=5), proc)
        yield {"url": url, "ca": tls["ca.pem"], "tmp": tmp}
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def demo(*args: str, key: str | None = KEY) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "EDGESPLIT_API_KEY"}
    if key is not None:
        env["EDGESPLIT_API_KEY"] = key
    res = subprocess.run(
        [*CLI, "demo", "--headless", *args], capture_output=True, text=True, env=env, timeout=600
    )
    assert "Traceback" not in res.stderr
    res.stderr = " ".join(res.stderr.split())  # Rich wraps long lines at 80 columns in a pipe
    return res


def test_demo_device_side_against_an_https_cloud(https_cloud, tmp_path):
    out = tmp_path / "demo.json"
    res = demo(
        "--cloud", https_cloud["url"], "--ca-cert", str(https_cloud["ca"]),
        "--requests", "3", "--no-events", "--policy", "earbuds=split", *ROOMY,
        "--hub-route", "cloud", "--deadline", "earbuds-cut=30000",
        "--json", str(out), "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    doc = json.loads(out.read_text())
    routes = {s["device"]: s["routes"] for s in doc["summary"]}
    assert routes["glasses"] == {"cloud": 3}  # the frames crossed TLS to the other process
    # The earbuds' cut through the phone hub (its own process), which relays the tensor over TLS
    # with the API key to the remote cloud's tail.
    assert routes["earbuds"] == routes["earbuds-cut"] == {"device>cloud": 3}
    glasses = [e for e in doc["events"] if e["device"] == "glasses"]
    assert all(e["bytes_up"] > 640 * 480 * 3 and e["server_ms"] > 0 for e in glasses)
    assert all(not e["degraded"] for e in doc["events"])


def test_remote_cloud_errors_are_one_line(https_cloud, tmp_path):
    url = https_cloud["url"]
    common = ["--requests", "1", "--device", "phone", "--out", str(tmp_path / "run")]
    untrusted = demo("--cloud", url, *common)  # the system store does not know our CA
    assert untrusted.returncode == 2
    assert "certificate verify failed" in untrusted.stderr and "--ca-cert" in untrusted.stderr
    wrong_key = demo("--cloud", url, "--ca-cert", str(https_cloud["ca"]), *common, key="nope")
    assert wrong_key.returncode == 2 and "HTTP 401" in wrong_key.stderr
    assert "EDGESPLIT_API_KEY" in wrong_key.stderr
    missing_ca = demo("--cloud", url, "--ca-cert", str(tmp_path / "none.pem"), *common)
    assert missing_ca.returncode == 2 and "none.pem: file not found" in missing_ca.stderr
    closed = demo("--cloud", f"http://127.0.0.1:{free_port()}", *common)
    assert closed.returncode == 2 and "cannot reach the cloud" in closed.stderr
    bad = demo("--cloud", "ftp://x", *common)
    assert bad.returncode == 2 and "expected http://HOST" in bad.stderr


def test_tls_through_a_tcp_proxy_still_checks_the_cloud_name(https_cloud):
    """connect_to: the TCP connection goes to the link emulator, TLS checks the URL's host."""
    from edgesplit.sim.emulator import LinkEmulator, LinkProfile

    url, ca = https_cloud["url"], https_cloud["ca"]
    port = int(url.rsplit(":", 1)[1])
    ideal = LinkProfile("ideal", 1e5, 1e5, 0.0, 0.0, 0.0, 0.0)
    with LinkEmulator(("127.0.0.1", port), ideal) as emu:
        client = OipClient(url, KEY, 30, ca_cert=ca, connect_to=(emu.host, emu.port))
        x = np.zeros((1, 1, 49, 10), np.float32)
        assert client.infer("kws-large", {"mfcc": x})["logits"].shape[-1] == 12
        assert emu.stats.bytes_up > x.nbytes  # it went through the proxy
        # The certificate names 127.0.0.1, not "localhost": the check is on, through the proxy.
        wrong_name = OipClient(
            url.replace("127.0.0.1", "localhost"),
            KEY,
            30,
            ca_cert=ca,
            connect_to=(emu.host, emu.port),
        )
        with pytest.raises(OSError, match="certificate"):
            wrong_name.infer("kws-large", {"mfcc": x})


def test_bad_ca_file_is_a_clear_error(tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(CloudError, match="not a PEM certificate"):
        OipClient("https://127.0.0.1:1", ca_cert=junk)
    with pytest.raises(CloudError, match="port is not a number"):
        OipClient("http://127.0.0.1:99999")


def test_cloud_serve_needs_both_tls_files(tmp_path):
    key = tmp_path / "k.pem"
    key.write_text("x")
    res = subprocess.run(
        [*CLI, "cloud", "serve", "--ssl-keyfile", str(key)], capture_output=True, text=True
    )
    assert res.returncode == 2 and "both --ssl-keyfile and --ssl-certfile" in res.stderr


def test_demo_over_the_network_as_it_is(https_cloud, tmp_path):
    """--link-emulation off: no emulator between the device and the cloud, and no emulated
    outage (it cannot cut a real network), said in one note."""
    out = tmp_path / "demo.json"
    res = demo(
        "--cloud", https_cloud["url"], "--ca-cert", str(https_cloud["ca"]),
        "--link-emulation", "off", "--requests", "2", "--device", "phone",
        "--policy", "phone=cloud-only", "--deadline", "phone=30000",
        "--json", str(out), "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "no emulated outage or link switch" in res.stderr
    doc = json.loads(out.read_text())
    assert doc["windows"] == {}
    assert [e["route"] for e in doc["events"]] == ["cloud", "cloud"]
    assert all(e["bytes_up"] > 0 and not e["extra"]["cut"] for e in doc["events"])


def test_device_run_calls_an_https_cloud_with_a_private_ca(https_cloud, tmp_path):
    """`device run --route cloud --cloud https://... --ca-cert`: the same TLS path as the demo."""
    env = {k: v for k, v in os.environ.items() if k != "EDGESPLIT_API_KEY"} | {
        "EDGESPLIT_API_KEY": KEY
    }
    out = tmp_path / "run.json"
    base = [*CLI, "device", "run", "-w", "phone-intent", "--text", "what's the weather like"]
    trusted = subprocess.run(
        [*base, "--route", "cloud", "--cloud", https_cloud["url"], "--ca-cert",
         str(https_cloud["ca"]), "--json", str(out)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert trusted.returncode == 0, trusted.stderr
    records = json.loads(out.read_text())["records"]
    assert [r["route"] for r in records] == ["cloud"] and records[0]["timings_ms"]["server"] > 0
    # Without the CA the system trust store refuses the certificate: the device answers instead,
    # flagged as a fallback, and nothing crashes.
    untrusted = subprocess.run(
        [*base, "--route", "cloud", "--cloud", https_cloud["url"], "--json", str(out)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert "Traceback" not in untrusted.stderr
    assert [r["route"] for r in json.loads(out.read_text())["records"]] == ["fallback"]
