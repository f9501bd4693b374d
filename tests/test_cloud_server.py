"""The cloud service as a real HTTP server on loopback, driven by tritonclient and our client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnx
import pytest
import tritonclient.http as th
from edgesplit.cloud.bench import free_tcp_port
from edgesplit.cloud.repository import DEFAULT_REPOSITORY, Repository
from edgesplit.cloud.serve import ServerThread
from edgesplit.cloud.server import ServerSettings
from edgesplit.device.oip_client import OipClient, OipClientError
from edgesplit.device.runtime import ModelRunner
from edgesplit.device.vision.render import render_frame
from edgesplit.device.workloads import kws
from tritonclient.utils import InferenceServerException

from tests.cloud_helpers import KWS_SMALL, OCR_PIPELINE, inflight_requests, write_repo

KEY = "k3y-for-tests-0123456789"


@pytest.fixture(scope="module")
def server():
    repo = Repository(DEFAULT_REPOSITORY, only=["kws-large", "kws-small", "kws-tail", "ocr-rec"])
    with ServerThread(repo) as srv:
        yield srv


def mfcc(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 5, (n, 1, 49, 10)).astype(np.float32)


def test_tritonclient_health_metadata_and_infer(server):
    tc = th.InferenceServerClient(server.address)
    assert tc.is_server_live() and tc.is_server_ready()
    assert tc.is_model_ready("kws-large") and tc.is_model_ready("kws-large", "1")
    meta = tc.get_model_metadata("kws-large")
    assert meta["inputs"] == [{"name": "mfcc", "datatype": "FP32", "shape": [-1, 1, 49, 10]}]
    assert tc.get_server_metadata()["extensions"]
    index = tc.get_model_repository_index()
    assert {m["name"] for m in index} >= {"kws-large", "kws-tail"}
    x = mfcc(3)
    expected = ModelRunner(DEFAULT_REPOSITORY / "kws-large" / "1" / "model.onnx").run_single(x)
    for binary in (True, False):
        inp = th.InferInput("mfcc", list(x.shape), "FP32")
        inp.set_data_from_numpy(x, binary_data=binary)
        res = tc.infer("kws-large", [inp], outputs=[th.InferRequestedOutput("logits", binary)])
        np.testing.assert_allclose(res.as_numpy("logits"), expected, rtol=1e-4, atol=1e-4)
    res = tc.infer("kws-large", [inp])  # no outputs named: all outputs, binary
    assert res.as_numpy("logits").shape == (3, 12)


def test_tritonclient_sees_our_errors(server):
    tc = th.InferenceServerClient(server.address)
    inp = th.InferInput("mfcc", [1, 1, 40, 10], "FP32")
    inp.set_data_from_numpy(np.zeros((1, 1, 40, 10), np.float32))
    with pytest.raises(InferenceServerException, match=r"input 'mfcc' has shape \[1, 1, 40, 10\]"):
        tc.infer("kws-large", [inp])
    with pytest.raises(InferenceServerException, match="unknown model 'nope'"):
        tc.get_model_metadata("nope")


def test_our_client_and_errors(server):
    c = OipClient(server.url)
    assert c.live()
    assert c.infer("kws-large", {"mfcc": mfcc(2)})["logits"].shape == (2, 12)
    cases = [
        (
            {"audio": mfcc(1)},
            "takes inputs \\['mfcc'\\]; missing \\['mfcc'\\], unexpected \\['audio'\\]",
        ),
        ({"mfcc": mfcc(1).astype(np.float64)}, "datatype FP64, model 'kws-large' expects FP32"),
        ({"mfcc": mfcc(65)}, "batch size 65 is outside 1..64"),
    ]
    for inputs, match in cases:
        with pytest.raises(OipClientError, match=match) as info:
            c.infer("kws-large", inputs)
        assert info.value.status == 400
    with pytest.raises(OipClientError) as info:
        c.infer("kws-large", {"mfcc": mfcc(1)}, version="7")
    assert info.value.status == 404 and "no version '7'" in info.value.message


def post(url: str, body: bytes, headers: dict | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, data=body, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_malformed_http_bodies_get_400(server):
    url = f"{server.url}/v2/models/kws-large/infer"
    for body, match in [
        (b"not json", "not valid JSON"),
        (b'{"inputs": [{"name": "mfcc"}]}', "inputs.0.shape: Field required"),
        (
            b'{"inputs": [{"name": "mfcc", "shape": [1,1,49,10], '
            b'"datatype": "FP32", "data": [1]}]}',
            "needs 490 elements, data has 1",
        ),
    ]:
        status, _, raw = post(url, body)
        assert status == 400 and match in json.loads(raw)["error"]
    status, _, raw = post(url, b"{}", {"Inference-Header-Content-Length": "x"})
    assert status == 400 and "must be an integer" in json.loads(raw)["error"]


def test_dynamic_batching_merges_and_splits_correctly(tmp_path):
    repo = Repository(
        write_repo(
            tmp_path,
            {
                "kws-small": {
                    **KWS_SMALL,
                    "max_batch_size": 32,
                    "instances": 1,
                    "dynamic_batching": {"max_queue_delay_ms": 30, "auto": False},
                }
            },
        )
    )
    direct = ModelRunner(kws.model_path("fp32"))
    rng = np.random.default_rng(1)
    inputs = [mfcc(int(rng.integers(1, 5)), seed=i) for i in range(24)]
    with ServerThread(repo) as srv:
        client = OipClient(srv.url)
        with ThreadPoolExecutor(12) as pool:
            results = list(pool.map(lambda x: client.infer("kws-small", {"mfcc": x}), inputs))
        metrics = urllib.request.urlopen(f"{srv.url}/metrics").read().decode()
    for x, res in zip(inputs, results, strict=True):
        assert res["logits"].shape == (len(x), 12)
        np.testing.assert_allclose(res["logits"], direct.run_single(x), rtol=1e-4, atol=1e-4)
    count = float(metrics.split('edgesplit_batch_size_count{model="kws-small"} ')[1].split()[0])
    total = float(metrics.split('edgesplit_batch_size_sum{model="kws-small"} ')[1].split()[0])
    assert total == sum(len(x) for x in inputs)
    assert count < len(inputs), "no two requests were merged"
    assert 'edgesplit_requests_total{model="kws-small",status="200"} 24.0' in metrics


def test_different_shapes_are_not_merged(server):
    """ocr-rec takes [N, 3, 48, W]: crops of different widths must run in separate batches."""
    client = OipClient(server.url)
    xs = [
        np.random.default_rng(i).normal(0, 1, (1, 3, 48, w)).astype(np.float32)
        for i, w in enumerate([160, 320, 160, 480])
    ]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda x: client.infer("ocr-rec", {"x": x}), xs))
    from edgesplit.device.workloads.ocr import model_paths

    rec = ModelRunner(model_paths("fp32")["rec"])
    for x, res in zip(xs, results, strict=True):
        out = next(iter(res.values()))
        np.testing.assert_allclose(out, rec.run_single(x), rtol=1e-3, atol=1e-4)


def test_split_head_on_device_tail_in_cloud(server):
    """Split computing: device layers 0..k + cloud layers k..end == the whole model."""
    path = kws.model_path("fp32")
    cut = "/net/net.15/Relu_output_0"
    head_bytes = onnx.utils.Extractor(onnx.shape_inference.infer_shapes(onnx.load(str(path))))
    head = head_bytes.extract_model(["mfcc"], [cut])
    import onnxruntime as ort

    sess = ort.InferenceSession(head.SerializeToString(), providers=["CPUExecutionProvider"])
    x = mfcc(2, seed=5)
    activation = sess.run(None, {"mfcc": x})[0]
    assert activation.shape == (2, 64, 25, 5)
    out = OipClient(server.url).infer("kws-tail", {cut: activation})["logits"]
    np.testing.assert_allclose(out, ModelRunner(path).run_single(x), rtol=1e-4, atol=1e-4)


def test_api_keys_and_body_limit(tmp_path):
    repo = Repository(write_repo(tmp_path, {"kws-small": KWS_SMALL}))
    settings = ServerSettings(api_keys=[KEY], max_body_bytes=4096)
    with ServerThread(repo, settings) as srv:
        url = f"{srv.url}/v2/models/kws-small/infer"
        x = mfcc(1)
        status, headers, raw = post(url, b"{}")
        assert status == 401 and headers.get("www-authenticate", headers.get("WWW-Authenticate"))
        assert "API key" in json.loads(raw)["error"]
        assert post(url, b"{}", {"Authorization": "Bearer wrong-key-wrong-key"})[0] == 401
        # Health stays open for orchestrators; everything else needs the key.
        assert urllib.request.urlopen(f"{srv.url}/v2/health/live").status == 200
        assert OipClient(srv.url, api_key=KEY).infer("kws-small", {"mfcc": x})["logits"].shape == (
            1,
            12,
        )
        status, _, _ = post(url, b"{}", {"X-API-Key": KEY})
        assert status == 400  # authenticated, then rejected for its body
        tc = th.InferenceServerClient(srv.address)
        assert tc.is_model_ready("kws-small", headers={"Authorization": f"Bearer {KEY}"})
        big = OipClient(srv.url, api_key=KEY)
        with pytest.raises(OipClientError) as info:
            big.infer("kws-small", {"mfcc": mfcc(4)})  # 7 840 bytes of tensor > 4 096
        assert info.value.status == 413 and "4096 bytes" in info.value.message


def test_overload_gets_429_with_retry_after_and_timeout_gets_504(tmp_path):
    repo = Repository(write_repo(tmp_path, {"glasses-ocr": {**OCR_PIPELINE, "max_queue_size": 1}}))
    image = render_frame(2).image
    with ServerThread(repo, ServerSettings(request_timeout_s=20)) as srv:
        client = OipClient(srv.url, timeout_s=60)

        def call(_):
            try:
                return 200, client.infer("glasses-ocr", {"image": image})
            except OipClientError as exc:
                return exc.status, exc

        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(call, range(6)))
        statuses = sorted(s for s, _ in results)
        assert statuses.count(200) >= 2 and statuses.count(429) >= 1, statuses
        # Retry-After is on the 429 response itself:
        with ThreadPoolExecutor(4) as pool:
            futs = [
                pool.submit(post, f"{srv.url}/v2/models/glasses-ocr/infer", _image_body(image))
                for _ in range(4)
            ]
            answers = [f.result() for f in futs]
        rejected = [(h, b) for s, h, b in answers if s == 429]
        assert rejected and int(rejected[0][0]["retry-after"]) >= 1
        assert "retry later" in json.loads(rejected[0][1])["error"]
    with ServerThread(repo, ServerSettings(request_timeout_s=0.01)) as srv:
        with pytest.raises(OipClientError) as info:
            OipClient(srv.url).infer("glasses-ocr", {"image": image})
        assert info.value.status == 504 and "within 0.01 s" in info.value.message


def _image_body(image: np.ndarray) -> bytes:
    doc = {
        "inputs": [
            {
                "name": "image",
                "shape": list(image.shape),
                "datatype": "UINT8",
                "data": image.reshape(-1).tolist(),
            }
        ]
    }
    return json.dumps(doc).encode()


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


def test_graceful_shutdown_drains_in_flight_requests(tmp_path):
    write_repo(tmp_path, {"glasses-ocr": OCR_PIPELINE})
    port = free_tcp_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgesplit.cli",
            "cloud",
            "serve",
            "--port",
            str(port),
            "--models",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        client = OipClient(f"http://127.0.0.1:{port}", timeout_s=60)
        end = time.monotonic() + 60
        while not _ready(port):  # live at once; ready once the model is loaded
            assert proc.poll() is None and time.monotonic() < end, proc.stderr.read()
            time.sleep(0.1)
        frame = render_frame(1)
        results: list = []

        def call():
            try:
                results.append(client.infer("glasses-ocr", {"image": frame.image})["text"][0])
            except Exception as exc:  # recorded and asserted on below
                results.append(exc)

        threads = [threading.Thread(target=call) for _ in range(3)]
        for t in threads:
            t.start()
        # Wait (on the server's own gauge, not on luck) until all three are in: one running,
        # two queued; a busy machine can take seconds to get the requests there.
        while inflight_requests(port) + len(results) < 3:
            assert time.monotonic() < end, "the three requests never reached the server"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(timeout=60)
        # uvicorn drains, then re-raises the captured SIGTERM: -15 is the conventional exit.
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert results == [frame.text.encode()] * 3, results
    logs = [json.loads(line) for line in proc.stderr.read().splitlines() if line.startswith("{")]
    assert sum(1 for r in logs if r["msg"] == "infer" and r["status"] == 200) == 3
    assert logs[-1]["msg"] == "stopped"
    assert not os.environ.get("EDGESPLIT_API_KEYS")


def test_cloud_bench_runs_and_reports_ratios(tmp_path):
    """The benchmark itself (no timing asserted): every mode answers, ratios are computed."""
    out = tmp_path / "bench.json"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgesplit.cli",
            "cloud",
            "bench",
            "--model",
            "kws-small",
            "--requests",
            "20",
            "-c",
            "1",
            "-c",
            "3",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads(out.read_text())
    modes = {(r["mode"], r["concurrency"]) for r in doc["results"]}
    assert modes == {
        (m, c)
        for m in ("raw-ort", "server-unbatched", "server-batched", "server-auto")
        for c in (1, 3)
    }
    assert all(r["errors"] == 0 and r["requests"] == 20 for r in doc["results"])
    assert set(doc["ratios"]) >= {"c1_batching_gain_throughput", "c3_raw_over_server_throughput"}


def test_a_repeated_binary_header_is_parsed_once_and_still_checked_per_model(server):
    """The data plane keeps the validated JSON header of binary requests: the same header
    again gives the same answer as a fresh parse; sent to another model, that model's own
    checks still apply; JSON requests (tensor data in the header) are not kept."""
    x = np.random.default_rng(3).normal(0, 5, (1, 1, 49, 10)).astype(np.float32)
    client = th.InferenceServerClient(server.address)
    inp = th.InferInput("mfcc", [1, 1, 49, 10], "FP32")
    inp.set_data_from_numpy(x, binary_data=True)
    first = client.infer("kws-large", [inp]).as_numpy("logits")
    kept = len(server.plane._headers)
    again = client.infer("kws-large", [inp]).as_numpy("logits")
    np.testing.assert_array_equal(first, again)
    assert len(server.plane._headers) == kept >= 1
    # kws-tail takes another input: the kept header passes parsing, the model's check refuses it
    with pytest.raises(InferenceServerException, match="mfcc"):
        client.infer("kws-tail", [inp])
    json_inp = th.InferInput("mfcc", [1, 1, 49, 10], "FP32")
    json_inp.set_data_from_numpy(x, binary_data=False)
    np.testing.assert_allclose(client.infer("kws-large", [json_inp]).as_numpy("logits"), first)
    assert len(server.plane._headers) == kept
