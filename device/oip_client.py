"""A small Open Inference Protocol (KServe v2) HTTP client for the device, standard library only.

Sends tensors with Triton's binary extension (no JSON number formatting on the device's CPU) and
reads JSON or binary outputs. Any OIP server works; so does ``tritonclient`` against our server.

HTTPS verifies the server against the system trust store, or against ``ca_cert`` (a PEM file, for
a cloud with a private CA). ``connect_to`` sends the TCP connection somewhere else than the URL's
host (curl's ``--connect-to``): the demo puts its link emulator there, while TLS still checks the
certificate against the URL's host name.
"""

from __future__ import annotations

import http.client
import json
import math
import socket
import ssl
import struct
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
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


MAX_RETRY_AFTER_S = 60.0  # a longer Retry-After is read as this (the device's own bound)


class OipClientError(CloudError):
    def __init__(self, status: int, message: str, retry_after_s: float = 0.0) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status, self.message, self.retry_after_s = status, message, retry_after_s


def retry_after_s(value: str | None) -> float:
    """A Retry-After header in seconds (RFC 9110 10.2.3: delta-seconds; the HTTP-date form,
    which needs a clock shared with the server, is read as none): 0 if absent or unreadable,
    at most ``MAX_RETRY_AFTER_S``."""
    text = (value or "").strip()
    ok = text.isascii() and text.isdigit() and len(text) < 10  # not "²": isdigit() alone takes it
    return min(float(text), MAX_RETRY_AFTER_S) if ok else 0.0


def tls_context(ca_cert: Path | None = None) -> ssl.SSLContext:
    """Certificate and host-name checks on; the system trust store, or only ``ca_cert``."""
    if ca_cert is None:
        return ssl.create_default_context()
    if not Path(ca_cert).is_file():
        raise CloudError(f"--ca-cert {ca_cert}: file not found (a PEM file with the cloud's CA)")
    try:
        return ssl.create_default_context(cafile=str(ca_cert))
    except ssl.SSLError as exc:
        raise CloudError(f"--ca-cert {ca_cert}: not a PEM certificate ({exc.reason})") from None


class _Connection(http.client.HTTPConnection):
    """HTTP over a TCP connection to ``connect_to`` instead of the URL's host."""

    def __init__(self, host: str, port: int, timeout: float, connect_to: tuple[str, int]) -> None:
        super().__init__(host, port, timeout=timeout)
        self.connect_to = connect_to

    def connect(self) -> None:
        self.sock = socket.create_connection(self.connect_to, self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _TlsConnection(http.client.HTTPSConnection):
    """HTTPS over a TCP connection to ``connect_to``; the certificate is checked against the
    URL's host name all the same."""

    def __init__(
        self,
        host: str,
        port: int,
        timeout: float,
        context: ssl.SSLContext,
        connect_to: tuple[str, int],
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.connect_to, self.tls = connect_to, context

    def connect(self) -> None:
        sock = socket.create_connection(self.connect_to, self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)


class OipClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout_s: float = 5.0,
        ca_cert: Path | None = None,
        connect_to: tuple[str, int] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        url = urllib.parse.urlsplit(self.base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise CloudError(
                f"cloud URL {base_url!r}: expected http://HOST[:PORT] or https://HOST[:PORT]"
            )
        self.scheme, self.host, self.prefix = url.scheme, url.hostname, url.path
        try:
            self.port = url.port or (443 if url.scheme == "https" else 80)
        except ValueError:
            raise CloudError(f"cloud URL {base_url!r}: the port is not a number 0..65535") from None
        self.connect_to = connect_to or (self.host, self.port)
        self.context = tls_context(ca_cert) if url.scheme == "https" else None
        self.api_key, self.timeout_s = api_key, timeout_s

    def _connection(self) -> http.client.HTTPConnection:
        if self.context is not None:
            return _TlsConnection(
                self.host, self.port, self.timeout_s, self.context, self.connect_to
            )
        return _Connection(self.host, self.port, self.timeout_s, self.connect_to)

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[bytes, Any]:
        """One request on a fresh connection (as the device's radio sees it: no pooled state
        survives an outage). Raises OSError for network failures, OipClientError for 4xx/5xx."""
        headers = dict(headers or {})
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        conn = self._connection()
        try:
            conn.request(method, self.prefix + path, body=body, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except http.client.HTTPException as exc:  # a torn response: a network failure
            raise ConnectionError(f"{type(exc).__name__}: {exc}") from None
        finally:
            conn.close()
        if resp.status >= 400:
            try:
                message = json.loads(raw)["error"]
            except (ValueError, KeyError, TypeError):
                message = raw.decode("utf-8", "replace")[:200]
            wait_s = retry_after_s(resp.headers.get("Retry-After"))
            raise OipClientError(resp.status, message, wait_s)
        return raw, resp.headers

    def get(self, path: str) -> bytes:
        """GET a path (``/v2/health/ready``); raises like an inference call would."""
        return self._request("GET", path)[0]

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
        tensors, blobs = binary_tensors(inputs)
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


def binary_tensors(arrays: dict[str, np.ndarray]) -> tuple[list[dict], list[bytes]]:
    """OIP tensor descriptions using the binary data extension, and each tensor's bytes
    (little-endian numbers; BYTES as 4-byte length + data per element)."""
    tensors, blobs = [], []
    for name, arr in arrays.items():
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
    return tensors, blobs


def parse_infer_response(
    body: bytes, header_length: str | None, key: str = "outputs"
) -> dict[str, np.ndarray]:
    """The tensors of an OIP body (JSON or binary data); ``key="inputs"`` reads a request."""
    n = int(header_length) if header_length else len(body)
    doc = json.loads(body[:n])
    pos, out = n, {}
    for o in doc[key]:
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
