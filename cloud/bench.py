"""Load generator on loopback: raw ORT in-process vs the server without and with batching.

Each mode sees the same requests (batch-1 tensors, binary protocol) from the same number of
concurrent clients (threads with keep-alive HTTP connections); the server runs in a subprocess,
like in production. Reported: throughput (requests/s), p50/p99 latency (ms), and ratios.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import yaml
from edgesplit.cloud.models import resolve_source
from edgesplit.cloud.protocol import HEADER_LENGTH
from edgesplit.cloud.repository import DEFAULT_REPOSITORY


@dataclass
class LoadResult:
    mode: str
    concurrency: int
    requests: int
    errors: int
    throughput_rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float


def _summarise(mode: str, conc: int, lat_s: list[float], errors: int, wall_s: float) -> LoadResult:
    ms = np.asarray(lat_s) * 1e3 if lat_s else np.array([np.nan])
    return LoadResult(
        mode,
        conc,
        len(lat_s),
        errors,
        len(lat_s) / wall_s,
        float(np.percentile(ms, 50)),
        float(np.percentile(ms, 90)),
        float(np.percentile(ms, 99)),
    )


def run_load(
    call_factory: Callable[[], Callable[[], bool]], concurrency: int, total: int, mode: str
) -> LoadResult:
    """``concurrency`` threads share ``total`` calls; each thread gets its own call (connection)."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    counter = [total]
    calls = [call_factory() for _ in range(concurrency)]
    for c in calls:  # warm-up, not timed
        c()

    def worker(call):
        mine = []
        while True:
            with lock:
                if counter[0] <= 0:
                    break
                counter[0] -= 1
            t0 = time.perf_counter()
            ok = call()
            dt = time.perf_counter() - t0
            if ok:
                mine.append(dt)
            else:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(c,)) for c in calls]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return _summarise(mode, concurrency, latencies, errors[0], time.perf_counter() - t0)


def request_body(name: str, x: np.ndarray) -> tuple[bytes, dict[str, str]]:
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": name,
                    "shape": list(x.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": x.nbytes},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    return head + x.tobytes(), {
        HEADER_LENGTH: str(len(head)),
        "Content-Type": "application/octet-stream",
    }


def http_call_factory(port: int, path: str, body: bytes, headers: dict[str, str]):
    def factory() -> Callable[[], bool]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        def call() -> bool:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            return resp.status == 200

        return call

    return factory


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Subprocess:
    """A server process with a temporary directory; SIGTERM (then kill) and clean up on close."""

    proc: subprocess.Popen
    tmp: tempfile.TemporaryDirectory
    port: int

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.tmp.cleanup()


class ServerProcess(_Subprocess):
    """``edgesplit cloud serve`` on a one-model repository with config overrides."""

    def __init__(self, model: str, overrides: dict) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        src = DEFAULT_REPOSITORY / model
        dst = Path(self.tmp.name) / model
        dst.mkdir()
        cfg = yaml.safe_load((src / "config.yaml").read_text()) | overrides
        (dst / "config.yaml").write_text(yaml.safe_dump(cfg))
        for d in src.iterdir():
            if d.is_dir() and d.name.isdigit():
                (dst / d.name).symlink_to(d, target_is_directory=True)
        self.port = free_tcp_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edgesplit.cli",
                "cloud",
                "serve",
                "--port",
                str(self.port),
                "--models",
                self.tmp.name,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=os.environ | {"EDGESPLIT_API_KEYS": ""},
        )
        _wait_ready(self.port, "/v2/health/ready", self.proc, f"benchmark server for {model}")


class MLServerProcess(_Subprocess):
    """MLServer (the peer) serving the same ONNX file with cloud/peer/mlserver_runtime.py."""

    def __init__(self, venv: Path, model: str, model_path: Path, threads: int) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        root = Path(self.tmp.name)
        self.port = free_tcp_port()
        (root / "settings.json").write_text(
            json.dumps(
                {
                    "http_port": self.port,
                    "grpc_port": free_tcp_port(),
                    "metrics_port": free_tcp_port(),
                    "parallel_workers": 0,
                    "debug": False,
                }
            )
        )
        mdir = root / model
        mdir.mkdir()
        (mdir / "model-settings.json").write_text(
            json.dumps(
                {
                    "name": model,
                    "implementation": "mlserver_runtime.OnnxRuntimeModel",
                    "parameters": {"uri": str(model_path), "extra": {"intra_op_threads": threads}},
                }
            )
        )
        runtime_dir = Path(__file__).resolve().parent / "peer"
        env = os.environ | {"PYTHONPATH": str(runtime_dir)}
        self.proc = subprocess.Popen(
            [str(venv / "bin" / "mlserver"), "start", str(root)],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_ready(self.port, f"/v2/models/{model}/ready", self.proc, "MLServer")


def _wait_ready(port: int, path: str, proc: subprocess.Popen, what: str) -> None:
    end = time.monotonic() + 120
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", path)
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > end:
            raise RuntimeError(f"{what} did not become ready on port {port}")
        time.sleep(0.2)


def json_request_body(name: str, x: np.ndarray) -> tuple[bytes, dict[str, str]]:
    doc = {
        "inputs": [
            {
                "name": name,
                "shape": list(x.shape),
                "datatype": "FP32",
                "data": x.reshape(-1).tolist(),
            }
        ]
    }
    return json.dumps(doc).encode(), {"Content-Type": "application/json"}


def raw_factory(model_path: Path, input_name: str, x: np.ndarray, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])

    def factory() -> Callable[[], bool]:
        def call() -> bool:
            sess.run(None, {input_name: x})
            return True

        return call

    return factory


def run_bench(
    model: str,
    concurrency: list[int],
    requests: int,
    log: Callable[[str], None] = print,
    shape: list[int] | None = None,
    peer_venv: Path | None = None,
) -> dict:
    cfg = yaml.safe_load((DEFAULT_REPOSITORY / model / "config.yaml").read_text())
    model_path = DEFAULT_REPOSITORY / model / "1" / "model.onnx"
    if not model_path.is_file():
        if not cfg.get("model_file"):
            raise ValueError(f"bench needs a plain ONNX model; {model} is not one")
        model_path = resolve_source(DEFAULT_REPOSITORY / model, cfg["model_file"])
    import onnx

    g = onnx.load(str(model_path)).graph
    inp = g.input[0]
    declared = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    if shape is None:
        shape = [1] + declared[1:]
        if any(d <= 0 for d in shape):
            raise ValueError(
                f"{model} input '{inp.name}' has free dimensions {declared} (0 = free); "
                f"give --input-shape, e.g. 1,{','.join(str(d or 320) for d in declared[1:])}"
            )
    x = np.random.default_rng(0).normal(0, 1, shape).astype(np.float32)
    path = f"/v2/models/{model}/infer"
    body, headers = request_body(inp.name, x)
    results: list[LoadResult] = []
    log(f"raw ORT in-process ({cfg.get('intra_op_threads', 1)} intra-op thread(s))...")
    raw = raw_factory(model_path, inp.name, x, cfg.get("intra_op_threads", 1))
    for c in concurrency:
        results.append(run_load(raw, c, requests, "raw-ort"))
    unbatched = {"dynamic_batching": {"enabled": False}}
    forced = {"dynamic_batching": (cfg.get("dynamic_batching") or {}) | {"auto": False}}
    modes: list[tuple[str, Callable[[], _Subprocess], bytes, dict[str, str]]] = [
        ("server-unbatched", lambda: ServerProcess(model, unbatched), body, headers),
        ("server-batched", lambda: ServerProcess(model, forced), body, headers),
        # As shipped: batching only if the load-time probe found that batches pay.
        ("server-auto", lambda: ServerProcess(model, {}), body, headers),
    ]
    if peer_venv is not None:
        # The peer speaks JSON tensors only, so this pair compares JSON against JSON.
        jbody, jheaders = json_request_body(inp.name, x)
        threads = cfg.get("intra_op_threads", 1)
        modes += [
            ("server-unbatched-json", lambda: ServerProcess(model, unbatched), jbody, jheaders),
            (
                "mlserver-json",
                lambda: MLServerProcess(peer_venv, model, model_path, threads),
                jbody,
                jheaders,
            ),
        ]
    for mode, start, mode_body, mode_headers in modes:
        log(f"{mode}: starting a server subprocess...")
        srv = start()
        try:
            factory = http_call_factory(srv.port, path, mode_body, mode_headers)
            for c in concurrency:
                results.append(run_load(factory, c, requests, mode))
        finally:
            srv.close()
    by = {(r.mode, r.concurrency): r for r in results}
    ratios = {}
    for c in concurrency:
        raw_r, nob, bat = by[("raw-ort", c)], by[("server-unbatched", c)], by[("server-batched", c)]
        ratios[f"c{c}_raw_over_server_throughput"] = raw_r.throughput_rps / nob.throughput_rps
        ratios[f"c{c}_batching_gain_throughput"] = bat.throughput_rps / nob.throughput_rps
        auto = by[("server-auto", c)]
        ratios[f"c{c}_auto_over_unbatched_throughput"] = auto.throughput_rps / nob.throughput_rps
        ratios[f"c{c}_server_overhead_p50_ms"] = nob.p50_ms - raw_r.p50_ms
        if ("mlserver-json", c) in by:
            ours, peer = by[("server-unbatched-json", c)], by[("mlserver-json", c)]
            ratios[f"c{c}_ours_over_mlserver_throughput"] = (
                ours.throughput_rps / peer.throughput_rps
            )
            ratios[f"c{c}_mlserver_minus_ours_p50_ms"] = peer.p50_ms - ours.p50_ms
    return {
        "model": model,
        "input_shape": shape,
        "requests_per_level": requests,
        "config": cfg,
        "results": [asdict(r) for r in results],
        "ratios": ratios,
    }
