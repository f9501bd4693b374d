"""A small Open Inference Protocol (KServe v2) HTTP client for the device, standard library only.

Sends tensors with Triton's binary extension (no JSON number formatting on the device's CPU) and
reads JSON or binary outputs. Any OIP server works; so does ``tritonclient`` against our server.
"""

from __future__ import annotations

import json
import math
import struct
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgesplit.errors import CloudError

HEADER_LENGTH = "Inference-Header-Content-Length"
_DTYPES = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}
_TO_OIP = {np.dtype(v): k for k, v in _DTYPES.items()}


@dataclass(frozen=True)
class Exchange:
    """One inference call as the client saw it."""

    sent_bytes: int  # request body
    received_bytes: int  # response body
    total_ms: float  # request out to response in
    server_ms: float | None  # the server's own time (Server-Timing header), if it said


def server_timing_ms(value: str | None) -> float | None:
    """``infer;dur=1.234`` -> 1.234 (W3C Server-Timing); None when absent or unreadable."""
    for part in (value or "").split(";"):
        key, _, num = part.strip().partition("=")
        if key == "dur":
            try:
                return float(num)
            except ValueError:
                return None
    return None


class OipClientError(CloudError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status, self.message = status, message


class OipClient:
    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key, self.timeout_s = api_key, timeout_s

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[bytes, Any]:
        headers = dict(headers or {})
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(
            self.base_url + path, data=body, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return resp.read(), resp.headers
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                message = json.loads(raw)["error"]
            except (ValueError, KeyError, TypeError):
                message = raw.decode("utf-8", "replace")[:200]
            raise OipClientError(exc.code, message) from None

    def live(self) -> bool:
        try:
            self._request("GET", "/v2/health/live")
            return True
        except (OSError, OipClientError):
            return False

    def metadata(self, model: str) -> dict:
        return json.loads(self._request("GET", f"/v2/models/{model}")[0])

    def infer(
        self,
        model: str,
        inputs: dict[str, np.ndarray],
        outputs: list[str] | None = None,
        version: str | None = None,
    ) -> dict[str, np.ndarray]:
        return self.infer_exchange(model, inputs, outputs, version)[0]

    def infer_exchange(
        self,
        model: str,
        inputs: dict[str, np.ndarray],
        outputs: list[str] | None = None,
        version: str | None = None,
    ) -> tuple[dict[str, np.ndarray], Exchange]:
        """Like :meth:`infer`, also returning the exchange's sizes and times."""
        tensors, blobs = [], []
        for name, arr in inputs.items():
            arr = np.ascontiguousarray(arr)
            if arr.dtype == object:
                blob = b"".join(struct.pack("<I", len(b)) + b for b in arr.reshape(-1))
                dtype = "BYTES"
            else:
                blob, dtype = arr.astype(arr.dtype.newbyteorder("<")).tobytes(), _TO_OIP[arr.dtype]
            tensors.append(
                {
                    "name": name,
                    "shape": list(arr.shape),
                    "datatype": dtype,
                    "parameters": {"binary_data_size": len(blob)},
                }
            )
            blobs.append(blob)
        doc: dict[str, Any] = {"inputs": tensors}
        if outputs:
            doc["outputs"] = [{"name": o, "parameters": {"binary_data": True}} for o in outputs]
        else:
            doc["parameters"] = {"binary_data_output": True}
        head = json.dumps(doc).encode()
        path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
        payload = head + b"".join(blobs)
        t0 = time.perf_counter()
        body, headers = self._request(
            "POST",
            path,
            payload,
            {HEADER_LENGTH: str(len(head)), "Content-Type": "application/octet-stream"},
        )
        total_ms = (time.perf_counter() - t0) * 1e3
        exchange = Exchange(
            len(payload), len(body), total_ms, server_timing_ms(headers.get("Server-Timing"))
        )
        return parse_infer_response(body, headers.get(HEADER_LENGTH)), exchange


def parse_infer_response(body: bytes, header_length: str | None) -> dict[str, np.ndarray]:
    n = int(header_length) if header_length else len(body)
    doc = json.loads(body[:n])
    pos, out = n, {}
    for o in doc["outputs"]:
        shape, dtype = o["shape"], o["datatype"]
        size = (o.get("parameters") or {}).get("binary_data_size")
        if size is None:
            data = o["data"]
            if dtype == "BYTES":
                arr = np.array([d.encode() for d in data], dtype=object)
            else:
                arr = np.asarray(data, dtype=_DTYPES[dtype])
            out[o["name"]] = arr.reshape(shape)
            continue
        raw = body[pos : pos + size]
        pos += size
        if dtype == "BYTES":
            items, p = [], 0
            for _ in range(math.prod(shape)):
                (k,) = struct.unpack_from("<I", raw, p)
                items.append(raw[p + 4 : p + 4 + k])
                p += 4 + k
            out[o["name"]] = np.array(items, dtype=object).reshape(shape)
        else:
            out[o["name"]] = np.frombuffer(raw, dtype=_DTYPES[dtype]).reshape(shape)
    return out
