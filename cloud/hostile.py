"""The hostile-input suite: requests a production inference server must refuse cleanly.

Every case runs against a real server subprocess on loopback while a prober times
``/v2/health/live``. A case passes when no response is 5xx, every error body is OIP
``{"error": ...}`` without a traceback, and health p99 during the case stays under the budget.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from edgesplit.cloud.loadgen import (
    HOST,
    HealthProbe,
    ProbeProcess,
    RawResponse,
    ServerUnderTest,
    binary_body,
    http_request,
    raw_exchange,
    read_response,
)

KWS = "/v2/models/kws-large/infer"
REC = "/v2/models/ocr-rec/infer"
OCR = "/v2/models/glasses-ocr/infer"
# Server flags for the suite: short read timeouts so slow-client cases finish in seconds.
SUITE_FLAGS = [
    "--header-timeout-s",
    "1",
    "--body-timeout-s",
    "1",
    "--keep-alive-s",
    "1",
    "--max-connections",
    "512",
]
SUITE_MODELS: dict[str, dict] = {
    "kws-large": {},
    "ocr-rec": {},
    "glasses-ocr": {"intra_op_threads": 1},
    "kws-q": {"from": "kws-large", "max_queue_size": 2, "instances": 1, "dynamic_batching": None},
}

Responses = list[RawResponse | None]  # None: the server closed the connection without answering


@dataclass
class Case:
    name: str
    run: Callable[[int], Responses]
    allow_closed: bool = False  # slow or vanished clients may just be disconnected


@dataclass
class CaseResult:
    name: str
    statuses: list[int | None]
    health_p99_ms: float
    main_port_health_p99_ms: float
    health_failures: int
    problems: list[str]


def _post(port: int, path: str, body: bytes, headers: dict[str, str] | None = None) -> Responses:
    return [raw_exchange(port, http_request("POST", path, body, headers))]


def _json(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def _mfcc_doc(n: int = 1, **extra: Any) -> dict:
    x = np.zeros((n, 1, 49, 10), np.float32)
    inp = {"name": "mfcc", "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}
    return {"inputs": [inp | extra]}


def _post_json(path: str, doc_or_bytes: Any, headers: dict[str, str] | None = None) -> Callable:
    body = doc_or_bytes if isinstance(doc_or_bytes, bytes) else _json(doc_or_bytes)
    return lambda port: _post(port, path, body, headers)


def _big_declared(path: str, length: int, headers: dict[str, str], first: bytes) -> Callable:
    """Declare a huge body, send only its first bytes, and read the answer."""

    def run(port: int) -> Responses:
        hdrs = {"Host": HOST, "Content-Length": str(length)} | headers
        head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
        with socket.create_connection((HOST, port), timeout=30) as s:
            s.sendall(head.encode() + b"\r\n" + first)
            try:
                return [read_response(s)]
            except (ConnectionError, OSError):
                return [None]

    return run


def _raw(data: bytes) -> Callable:
    return lambda port: [raw_exchange(port, data)]


def _trickled(data: bytes, piece: int = 1024) -> Callable:
    """Send ``data`` in pieces with a pause between them, so the server parses it piecewise."""

    def run(port: int) -> Responses:
        with socket.create_connection((HOST, port), timeout=10) as s:
            try:
                for i in range(0, len(data), piece):
                    s.sendall(data[i : i + piece])
                    time.sleep(0.002)
            except OSError:
                pass  # closed by the server once over the limit: its answer is read below
            try:
                return [read_response(s)]
            except (ConnectionError, OSError):
                return [None]

    return run


def _slowloris(n: int, body: bool) -> Callable:
    """n connections trickle headers (or a body) one byte at a time; all must be cut off."""

    def run(port: int) -> Responses:
        socks = []
        for _ in range(n):
            s = socket.create_connection((HOST, port), timeout=10)
            if body:
                s.sendall(
                    b"POST "
                    + KWS.encode()
                    + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 999\r\n\r\n{"
                )
            else:
                s.sendall(b"POST " + KWS.encode() + b" HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        out: Responses = []
        end = time.monotonic() + 8  # limits are 1 s; 8 s is generous for a busy machine
        open_socks = list(socks)
        for s in socks:
            s.setblocking(False)
        while open_socks and time.monotonic() < end:
            for s in list(open_socks):
                try:
                    s.send(b"a")
                    data = s.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data:
                    status = int(data.split(b" ", 2)[1])
                    out.append(RawResponse(status, {}, data.partition(b"\r\n\r\n")[2]))
                else:
                    out.append(None)
                open_socks.remove(s)
                s.close()
            time.sleep(0.1)
        if open_socks:
            out.append(RawResponse(999, {}, f"{len(open_socks)} connections still open".encode()))
        for s in open_socks:
            s.close()
        return out

    return run


def _idle(n: int) -> Callable:
    def run(port: int) -> Responses:
        socks = [socket.create_connection((HOST, port), timeout=10) for _ in range(n)]
        out: Responses = []
        for s in socks:
            s.settimeout(8)
            try:
                data = s.recv(65536)  # b"" = closed by the server, as it should
                out.append(None if not data else RawResponse(int(data.split()[1]), {}, b""))
            except TimeoutError:
                out.append(RawResponse(999, {}, b"idle connection still open after 8 s"))
            s.close()
        return out

    return run


def _disconnect_mid_body(n: int) -> Callable:
    def run(port: int) -> Responses:
        for _ in range(n):
            s = socket.create_connection((HOST, port), timeout=10)
            s.sendall(http_request("POST", KWS, b"x" * 100, {"Content-Length": "20000"}))
            s.close()
        return []

    return run


def _disconnect_waiting(n: int) -> Callable:
    body, hdrs = binary_body({"x": np.zeros((16, 3, 48, 320), np.float32)})

    def run(port: int) -> Responses:
        socks = []
        for _ in range(n):
            s = socket.create_connection((HOST, port), timeout=10)
            s.sendall(http_request("POST", REC, body, hdrs))
            socks.append(s)
        time.sleep(0.2)
        for s in socks:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()  # RST while queued or running
        return []

    return run


def _burst(path: str, body: bytes, headers: dict[str, str], n: int) -> Callable:
    def run(port: int) -> Responses:
        with ThreadPoolExecutor(n) as pool:
            return list(
                pool.map(
                    lambda _: raw_exchange(port, http_request("POST", path, body, headers)),
                    range(n),
                )
            )

    return run


def _pipelined(port: int) -> Responses:
    one = http_request("POST", KWS, _json(_mfcc_doc()))
    with socket.create_connection((HOST, port), timeout=30) as s:
        s.sendall(one + one)
        return [read_response(s), read_response(s)]


def _chunked(body: bytes, chunk: int = 4096) -> bytes:
    out = b""
    for i in range(0, len(body), chunk):
        part = body[i : i + chunk]
        out += f"{len(part):x}\r\n".encode() + part + b"\r\n"
    return out + b"0\r\n\r\n"


def _chunked_request(path: str, body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    return head.encode() + _chunked(body)


def cases() -> list[Case]:
    """Every row of issue 12's table, and more; each needs a server with SUITE_MODELS/FLAGS."""
    deep = b"[" * 10_000 + b"]" * 10_000
    deep_obj = b'{"inputs":[{"name":"mfcc","shape":[1],"datatype":"FP32","data":[1],' + (
        b'"parameters":' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}]}"
    )
    kws_ok = _mfcc_doc()
    rec_img = np.zeros((1, 3, 48, 320), np.float32)
    rec_body, rec_hdrs = binary_body({"x": rec_img})
    rec_batch_json_out = binary_body(
        {"x": np.zeros((16, 3, 48, 320), np.float32)}, json_output=True
    )
    bytes_blob = b"\x00\x00\x10\x00" + b"a" * (1 << 20)
    bytes_doc = _json(
        {
            "inputs": [
                {
                    "name": "mfcc",
                    "shape": [60],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": 61 << 20},
                }
            ]
        }
    )
    img_big = _json(
        {
            "inputs": [
                {
                    "name": "image",
                    "shape": [4000, 4000, 3],
                    "datatype": "UINT8",
                    "parameters": {"binary_data_size": 48_000_000},
                }
            ]
        }
    )
    c: list[Case] = [
        Case("valid JSON request (control)", _post_json(KWS, kws_ok)),
        Case("valid binary ocr-rec crop (control)", lambda p: _post(p, REC, rec_body, rec_hdrs)),
        Case("not JSON", _post_json(KWS, b"not json")),
        Case("empty body", _post_json(KWS, b"")),
        Case("JSON array at top level", _post_json(KWS, b"[]")),
        Case("JSON string at top level", _post_json(KWS, b'"x"')),
        Case("no inputs field", _post_json(KWS, {})),
        Case("empty inputs", _post_json(KWS, {"inputs": []})),
        Case("65 inputs", _post_json(KWS, {"inputs": [kws_ok["inputs"][0]] * 65})),
        Case(
            "input without shape",
            _post_json(KWS, {"inputs": [{"name": "mfcc", "datatype": "FP32", "data": [1]}]}),
        ),
        Case("shape is a string", _post_json(KWS, _mfcc_doc(shape="abc"))),
        Case("negative dimension", _post_json(KWS, _mfcc_doc(shape=[-1, 1, 49, 10]))),
        Case("dimension 10**18", _post_json(KWS, _mfcc_doc(shape=[10**18, 1, 49, 10]))),
        Case("17-dimensional shape", _post_json(KWS, _mfcc_doc(shape=[1] * 17))),
        Case(
            "5 000-digit integer in shape",
            _post_json(
                KWS,
                b'{"inputs":[{"name":"mfcc","shape":['
                + b"9" * 5000
                + b'],"datatype":"FP32","data":[1]}]}',
            ),
        ),
        Case(
            "5 000-digit integer in data",
            _post_json(
                KWS,
                b'{"inputs":[{"name":"mfcc","shape":[1],"datatype":"FP32","data":['
                + b"9" * 5000
                + b"]}]}",
            ),
        ),
        Case(
            "5 000-digit float in data",
            _post_json(
                KWS,
                b'{"inputs":[{"name":"mfcc","shape":[1],"datatype":"FP32","data":[0.'
                + b"9" * 5000
                + b"]}]}",
            ),
        ),
        Case("10 000-deep JSON array", _post_json(KWS, deep)),
        Case("5 000-deep object in parameters", _post_json(KWS, deep_obj)),
        Case(
            "NaN literal",
            _post_json(
                KWS, b'{"inputs":[{"name":"mfcc","shape":[1],"datatype":"FP32","data":[NaN]}]}'
            ),
        ),
        Case(
            "Infinity literal",
            _post_json(
                KWS, b'{"inputs":[{"name":"mfcc","shape":[1],"datatype":"FP32","data":[Infinity]}]}'
            ),
        ),
        Case("data shorter than shape", _post_json(KWS, _mfcc_doc(data=[1.0]))),
        Case("data longer than shape", _post_json(KWS, _mfcc_doc(data=[1.0] * 491))),
        Case("ragged nested data", _post_json(KWS, _mfcc_doc(shape=[2, 2], data=[[1, 2], [3]]))),
        Case("strings in FP32 data", _post_json(KWS, _mfcc_doc(data=["a"] * 490))),
        Case("objects in FP32 data", _post_json(KWS, _mfcc_doc(data=[{}] * 490))),
        Case("unknown datatype", _post_json(KWS, _mfcc_doc(datatype="FP128"))),
        Case("datatype FP64 for an FP32 model", _post_json(KWS, _mfcc_doc(datatype="FP64"))),
        Case(
            "wrong input name",
            _post_json(KWS, {"inputs": [kws_ok["inputs"][0] | {"name": "audio"}]}),
        ),
        Case("duplicate input", _post_json(KWS, {"inputs": [kws_ok["inputs"][0]] * 2})),
        Case(
            "batch 65 over max_batch_size",
            _post_json(KWS, _mfcc_doc(shape=[65, 1, 49, 10], data=[0.0] * (65 * 490))),
        ),
        Case("batch 0", _post_json(KWS, _mfcc_doc(shape=[0, 1, 49, 10], data=[]))),
        Case("wrong rank", _post_json(KWS, _mfcc_doc(shape=[490], data=[0.0] * 490))),
        Case("unknown output requested", _post_json(KWS, kws_ok | {"outputs": [{"name": "nope"}]})),
        Case("extra top-level field", _post_json(KWS, kws_ok | {"evil": 1})),
        Case("id is a number", _post_json(KWS, kws_ok | {"id": 5})),
        Case("parameters is a list", _post_json(KWS, kws_ok | {"parameters": [1]})),
        Case(
            "timeout parameter negative (ignored)",
            _post_json(KWS, kws_ok | {"parameters": {"timeout": -5}}),
        ),
        Case("invalid UTF-8", _post_json(KWS, b'{"inputs": "\xff\xfe"}')),
        Case("binary_data_size negative", _bin_case(-4)),
        Case("binary_data_size mismatches shape", _bin_case(100)),
        Case(
            "header length not an integer",
            _post_json(KWS, b"{}", {"Inference-Header-Content-Length": "x"}),
        ),
        Case(
            "header length beyond the body",
            _post_json(KWS, b"{}", {"Inference-Header-Content-Length": "1000"}),
        ),
        Case(
            "header length zero", _post_json(KWS, b"{}", {"Inference-Header-Content-Length": "0"})
        ),
        Case(
            "header length 10**12",
            _post_json(KWS, b"{}", {"Inference-Header-Content-Length": str(10**12)}),
        ),
        Case("binary trailing bytes", _bin_case(1960, extra=b"zz")),
        Case("binary body shorter than declared", _bin_case(1960, cut=100)),
        Case(
            "one 61 MB BYTES tensor to an FP32 model",
            _big_declared(
                KWS,
                61 << 20,
                {"Inference-Header-Content-Length": str(len(bytes_doc))},
                bytes_doc + bytes_blob,
            ),
            allow_closed=True,
        ),
        Case(
            "one 57 MB JSON body",
            _big_declared(
                KWS, 57 << 20, {}, b'{"inputs":[{"name":"mfcc","data":[' + b"1," * 500_000
            ),
            allow_closed=True,
        ),
        Case("Content-Length 10**15", _big_declared(KWS, 10**15, {}, b"{"), allow_closed=True),
        Case(
            "Content-Length not a number",
            _raw(
                b"POST " + KWS.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}"
            ),
        ),
        Case(
            "two Content-Length headers",
            _raw(
                b"POST "
                + KWS.encode()
                + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"
            ),
        ),
        Case("chunked valid request", _raw(_chunked_request(KWS, _json(kws_ok)))),
        Case(
            "chunked body over the JSON limit",
            lambda p: [
                raw_exchange(
                    p, _chunked_request(KWS, b'{"a":"' + b"x" * (9 << 20) + b'"}'), send_all=False
                )
            ],
            allow_closed=True,
        ),
        Case(
            "ocr-rec [1,3,512,512]",
            lambda p: _post(p, REC, *binary_body({"x": np.zeros((1, 3, 512, 512), np.float32)})),
        ),
        Case(
            "ocr-rec width 8000",
            lambda p: _post(p, REC, *binary_body({"x": np.zeros((1, 3, 48, 8000), np.float32)})),
        ),
        Case(
            "ocr-rec batch 16 with JSON output (4.2 M floats)",
            lambda p: _post(p, REC, *rec_batch_json_out),
        ),
        Case("ocr-rec batch 16 as 14 MB of JSON", _post_json(REC, _rec_json(16))),
        Case(
            "glasses-ocr 4000x4000 frame declared",
            lambda p: _post(
                p, OCR, img_big, {"Inference-Header-Content-Length": str(len(img_big))}
            ),
        ),
        Case(
            "glasses-ocr [8,8,4] image",
            lambda p: _post(p, OCR, *binary_body({"image": np.zeros((8, 8, 4), np.uint8)})),
        ),
        Case("unknown model", _post_json("/v2/models/nope/infer", kws_ok)),
        Case("unknown version", _post_json("/v2/models/kws-large/versions/99/infer", kws_ok)),
        Case(
            "path traversal in model name",
            _post_json("/v2/models/..%2F..%2Fetc%2Fpasswd/infer", kws_ok),
        ),
        Case("8 KB model name", _post_json("/v2/models/" + "a" * 8000 + "/infer", kws_ok)),
        Case(
            "headers over 16 KB",
            _raw(b"GET /v2 HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"),
        ),
        Case(
            "headers over 16 KB, sent in 1 KB pieces",
            _trickled(b"GET /v2 HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"),
        ),
        Case(
            "Content-Length and Transfer-Encoding together (smuggling)",
            _raw(
                b"POST " + KWS.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            ),
        ),
        Case(
            "Upgrade: websocket on infer",
            _post_json(KWS, kws_ok, {"Connection": "Upgrade", "Upgrade": "websocket"}),
        ),
        Case(
            "GET ready asking for Upgrade: h2c (curl --http2)",
            _raw(
                b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, "
                b"HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA"
                b"\r\n\r\n"
            ),
        ),
        Case("CR without LF in a header", _raw(b"GET /v2 HTTP/1.1\r\nHost: x\rX: y\r\n\r\n")),
        Case("malformed request line", _raw(b"HELLO\r\n\r\n")),
        Case("binary garbage", _raw(bytes(range(256)) * 4)),
        Case("HTTP/1.0 request", _raw(b"GET /v2/health/ready HTTP/1.0\r\n\r\n")),
        Case("PUT on infer", lambda p: [raw_exchange(p, http_request("PUT", KWS, b"{}"))]),
        Case("GET on infer", lambda p: [raw_exchange(p, http_request("GET", KWS))]),
        Case("unknown route", lambda p: [raw_exchange(p, http_request("GET", "/v3/anything"))]),
        Case(
            "metadata of unknown model",
            lambda p: [raw_exchange(p, http_request("GET", "/v2/models/nope"))],
        ),
        Case(
            "Triton config of unknown model",
            lambda p: [raw_exchange(p, http_request("GET", "/v2/models/nope/config"))],
        ),
        Case("pipelined requests", _pipelined),
        Case("Expect: 100-continue", _post_json(KWS, kws_ok, {"Expect": "100-continue"})),
        Case("300 slowloris header connections", _slowloris(300, body=False), allow_closed=True),
        Case("100 slow-body connections", _slowloris(100, body=True), allow_closed=True),
        Case("300 idle connections", _idle(300), allow_closed=True),
        Case("50 disconnects mid-body", _disconnect_mid_body(50)),
        Case("8 disconnects while queued or running", _disconnect_waiting(8)),
        Case(
            "burst of 40 at a queue of 2", _burst("/v2/models/kws-q/infer", _json(kws_ok), {}, 40)
        ),
        Case("burst of 30 unknown models", _burst("/v2/models/zz/infer", _json(kws_ok), {}, 30)),
        Case("metrics scrape", lambda p: [raw_exchange(p, http_request("GET", "/metrics"))]),
    ]
    return c


def _bin_case(size: int, extra: bytes = b"", cut: int = 0) -> Callable:
    """kws-large binary request declaring ``size`` bytes; ``cut`` bytes short of its length."""
    params = {"binary_data_size": size}
    doc = {
        "inputs": [
            {"name": "mfcc", "shape": [1, 1, 49, 10], "datatype": "FP32", "parameters": params}
        ]
    }
    head = _json(doc)
    body = head + b"\x00" * max(0, size) + extra
    hdrs = {"Inference-Header-Content-Length": str(len(head))}
    if cut:
        hdrs["Content-Length"] = str(len(body))
        return lambda p: [raw_exchange(p, http_request("POST", KWS, body, hdrs)[:-cut])]
    return lambda p: _post(p, KWS, body, hdrs)


def _rec_json(n: int) -> bytes:
    x = np.full((n, 3, 48, 320), 0.123456789, np.float32)
    return _json(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": list(x.shape),
                    "datatype": "FP32",
                    "data": x.ravel().tolist(),
                }
            ]
        }
    )


def check(case: Case, responses: Responses) -> list[str]:
    problems = []
    for r in responses:
        if r is None:
            if not case.allow_closed:
                problems.append("connection closed without a response")
            continue
        if r.status >= 500:
            problems.append(f"status {r.status}: {r.body[:200]!r}")
        if b"Traceback" in r.body or b'File "' in r.body:
            problems.append("traceback in a response body")
        if 400 <= r.status < 500 and r.body:
            try:
                doc = json.loads(r.body)
                if not isinstance(doc, dict) or not isinstance(doc.get("error"), str):
                    problems.append(f"{r.status} body is not OIP {{'error'}}: {r.body[:100]!r}")
            except ValueError:
                problems.append(f"{r.status} body is not JSON: {r.body[:100]!r}")
    return problems


def _run_case(
    case: Case,
    server: ServerUnderTest,
    prober: ProbeProcess,
    main: ProbeProcess,
    health_budget_ms: float,
    log: Callable[[str], None],
    min_samples: int = 10,
) -> CaseResult:
    with (
        HealthProbe(server.port, prober, min_samples) as probe,
        HealthProbe(server.port, main, min_samples) as main_probe,
    ):
        t0 = time.monotonic()
        try:
            responses = case.run(server.port)
            problems = check(case, responses)
        except Exception as exc:  # a client-side failure is reported, not hidden
            responses, problems = [], [f"client error: {type(exc).__name__}: {exc}"]
        wall = time.monotonic() - t0
    p99 = probe.p99_ms()
    main_p99 = main_probe.p99_ms()
    if p99 > health_budget_ms:
        problems.append(f"health p99 {p99:.1f} ms > {health_budget_ms} ms")
    statuses = [r.status if r else None for r in responses]
    seen = sorted({str(s) for s in statuses})
    verdict = "ok  " if not problems else "FAIL"
    log(
        f"{verdict} {case.name} {seen} health p99 {p99:.1f} ms (main port {main_p99:.1f} ms) "
        f"({wall:.1f} s)"
    )
    return CaseResult(case.name, statuses, p99, main_p99, probe.failures, problems)


def run_hostile(
    server: ServerUnderTest,
    health_budget_ms: float = 50.0,
    only: list[str] | None = None,
    log: Callable[[str], None] = lambda _m: None,
    min_samples: int = 10,
) -> dict:
    """Run every case; returns per-case results and the totals the issue asks for.

    ``min_samples``: health probes (every 5 ms) each case waits for, so its p99 means something;
    a quick run that only bounds health loosely may ask for fewer."""
    results = []
    # The budget applies to the health port (its own process, as Triton's own port); the main
    # port's health route is probed too and reported.
    with (
        ProbeProcess(server.health_port or server.port) as prober,
        ProbeProcess(server.port) as main,
    ):
        for case in cases():
            if only and case.name not in only:
                continue
            results.append(
                _run_case(case, server, prober, main, health_budget_ms, log, min_samples)
            )
    # Give the server a moment to log what the last cases caused (disconnects), then read it.
    time.sleep(0.5)
    text = server.log_text()
    five = sum(1 for r in results for s in r.statuses if s is not None and 500 <= s < 900)
    return {
        "cases": len(results),
        "failed": [r.name for r in results if r.problems],
        "responses_5xx": five,
        "tracebacks_in_log": text.count("Traceback"),
        "first_traceback": (
            text[max(0, text.find("Traceback") - 300) :][:3000] if "Traceback" in text else None
        ),
        "error_log_lines": sum(1 for line in text.splitlines() if '"level": "ERROR"' in line),
        "health_p99_ms_max": max(r.health_p99_ms for r in results),
        "main_port_health_p99_ms_max": max(r.main_port_health_p99_ms for r in results),
        "health_probe": "health port" if server.health_port else "main port",
        "results": [asdict(r) for r in results],
    }
