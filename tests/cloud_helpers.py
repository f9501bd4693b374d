"""Helpers for the cloud tests: small model repositories written on the fly, server gauges."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import yaml
from edgesplit.cloud.loadgen import http_request, raw_exchange, read_response
from edgesplit.cloud.repository import DEFAULT_REPOSITORY


def write_repo(
    root: Path, configs: dict[str, dict], copy_versions: dict[str, str] | None = None
) -> Path:
    """Write ``config.yaml`` files (and symlink version dirs from the shipped repository)."""
    for name, cfg in configs.items():
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.yaml").write_text(yaml.safe_dump({"name": name, **cfg}))
        src = (copy_versions or {}).get(name)
        if src:
            (d / "1").symlink_to(DEFAULT_REPOSITORY / src / "1", target_is_directory=True)
    return root


KWS_SMALL = {"model_file": "pkg://edgesplit.device/models/kws_dscnn_fp32.onnx"}
OCR_PIPELINE = {
    "platform": "edgesplit-pipeline",
    "pipeline": "glasses-ocr",
    "parameters": {"det_limit_type": "max", "det_limit_side_len": 1280},
    "intra_op_threads": 1,
}


def inflight_requests(port: int) -> float:
    """The server's ``edgesplit_inflight_requests`` gauge, from ``/metrics`` on the main port:
    what a test waits on before acting on requests it has sent (not a sleep)."""
    r = raw_exchange(port, http_request("GET", "/metrics", b"", None), timeout_s=30)
    assert r is not None and r.status == 200
    for line in r.body.decode().splitlines():
        if line.startswith("edgesplit_inflight_requests "):
            return float(line.split()[1])
    return 0.0


def open_counted_connections(port: int, n: int, host: str = "127.0.0.1") -> list[socket.socket]:
    """``n`` connections the server has counted (each answered a health check on it): to fill
    ``max_connections``. Retried while the readiness checks' own connections are still closing."""
    held: list[socket.socket] = []
    end = time.monotonic() + 60
    while len(held) < n:
        assert time.monotonic() < end, f"{len(held)} of {n} connections open after 60 s"
        s = socket.create_connection((host, port), timeout=30)
        s.sendall(http_request("GET", "/v2/health/live"))
        if read_response(s).status == 200:
            held.append(s)
        else:  # refused: the readiness checks' connections were still being closed
            s.close()
            time.sleep(0.05)
    return held
