"""Load and probe tools for the stress suites, loopback only: a raw HTTP/1.1 client, an asyncio
closed-loop load driver (run in its own process, so its work does not slow the probes), a
health prober, and ``edgesplit cloud serve`` in a subprocess on a temporary repository."""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

HOST = "127.0.0.1"


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


# Bytes read past one response belong to the next on the same socket (pipelined requests, or
# a server that sends two answers in one segment): kept here, not thrown away.
_LEFTOVER: weakref.WeakKeyDictionary[socket.socket, bytes] = weakref.WeakKeyDictionary()


def read_response(sock: socket.socket) -> RawResponse:
    """One HTTP/1.1 response with Content-Length (what our server sends); skips 1xx."""
    buf = _LEFTOVER.pop(sock, b"")
    while True:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"connection closed after {len(buf)} bytes of response")
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 1"):
            break
        buf = rest
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    parts, got = [rest], len(rest)
    while got < n:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    data = b"".join(parts)
    if len(data) > n:
        _LEFTOVER[sock] = data[n:]
    return RawResponse(status, headers, data[:n])


def raw_exchange(
    port: int, data: bytes, timeout_s: float = 30.0, send_all: bool = True
) -> RawResponse | None:
    """Send raw bytes (all, or as far as the server reads them) and read one response."""
    with socket.create_connection((HOST, port), timeout=timeout_s) as s:
        try:
            if send_all:
                s.sendall(data)
            else:
                view, sent = memoryview(data), 0
                s.settimeout(2.0)
                while sent < len(view):
                    try:
                        sent += s.send(view[sent : sent + (1 << 20)])
                    except (TimeoutError, BrokenPipeError, ConnectionResetError):
                        break
                s.settimeout(timeout_s)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            return read_response(s)
        except (ConnectionError, OSError):
            return None


def http_request(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    hdrs = {"Host": "127.0.0.1", "Content-Length": str(len(body))} | (headers or {})
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
    return head.encode() + b"\r\n" + body


def binary_body(inputs: dict[str, np.ndarray], json_output: bool = False) -> tuple[bytes, dict]:
    doc: dict[str, Any] = {
        "inputs": [
            {
                "name": n,
                "shape": list(x.shape),
                "datatype": "FP32" if x.dtype == np.float32 else "UINT8",
                "parameters": {"binary_data_size": x.nbytes},
            }
            for n, x in inputs.items()
        ],
        "parameters": {"binary_data_output": not json_output},
    }
    head = json.dumps(doc).encode()
    return head + b"".join(x.tobytes() for x in inputs.values()), {
        "Inference-Header-Content-Length": str(len(head)),
        "Content-Type": "application/octet-stream",
    }


# The prober is a separate tiny process, so the suite's own work (building bodies, client
# threads) cannot delay it: what it measures is the server. It prints one line per probe.
PROBE_SRC = r"""
import os, socket, sys, time
port, path, interval = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
try:  # where permitted, ahead of ordinary work, as a kubelet's probes run outside the pods' share
    os.setpriority(os.PRIO_PROCESS, 0, -10)
except OSError:
    pass
req = ("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode()
s = None
while True:
    t0 = time.monotonic()
    try:
        if s is None:
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(req)
        buf = b""
        while b"\r\n\r\n" not in buf:
            c = s.recv(65536)
            if not c:
                raise OSError("closed")
            buf += c
        head, _, rest = buf.partition(b"\r\n\r\n")
        n = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                n = int(v)
        while len(rest) < n:
            rest += s.recv(65536)
        status = int(head.split()[1])
    except (OSError, ValueError, IndexError):
        status = 0
        if s is not None:
            s.close()
        s = None
    sys.stdout.write("%.6f %.3f %d\n" % (t0, (time.monotonic() - t0) * 1e3, status))
    sys.stdout.flush()
    time.sleep(interval)
"""


class ProbeProcess:
    """GET a health path every ``interval_s`` from a child process; samples by time window."""

    def __init__(self, port: int, path: str = "/v2/health/live", interval_s: float = 0.005):
        self.samples: list[tuple[float, float, int]] = []  # (start, ms, status)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PROBE_SRC, str(port), path, str(interval_s)],
            stdout=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            t, ms, status = line.split()
            self.samples.append((float(t), float(ms), int(status)))

    def window(self, t0: float, t1: float) -> list[tuple[float, float, int]]:
        return [s for s in self.samples if t0 <= s[0] <= t1]

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)

    def __enter__(self) -> ProbeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HealthProbe:
    """Health latencies during a ``with`` block, from a (shared or own) probe process."""

    def __init__(self, port: int, probe: ProbeProcess | None = None, min_samples: int = 10):
        self.own = probe is None
        self.probe = probe or ProbeProcess(port)
        self.min_samples = min_samples
        self.samples: list[float] = []
        self.failures = 0

    def __enter__(self) -> HealthProbe:
        self.t0 = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        end = time.monotonic() + 10
        while time.monotonic() < end:  # enough samples for a p99, and the last probe answered
            got = self.probe.window(self.t0, time.monotonic())
            if len(got) >= self.min_samples:
                break
            time.sleep(0.01)
        window = self.probe.window(self.t0, time.monotonic())
        self.samples = [ms for _, ms, _ in window]
        self.failures = sum(1 for *_, st in window if st != 200)
        if self.own:
            self.probe.close()

    def p99_ms(self) -> float:
        return float(np.percentile(self.samples, 99)) if self.samples else float("nan")


# -- the load driver (runs in a child process) ----------------------------------------------
SERVER_MS_HEADER = "edgesplit-server-ms"  # the server's own time for an answered request


@dataclass
class DriveResult:
    clients: int
    duration_s: float
    ok: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    ok_latency_ms: list[float] = field(default_factory=list)  # client clock, send to last byte
    server_ms: list[float] = field(default_factory=list)  # server clock (its header), same requests
    connection_errors: int = 0

    @property
    def goodput_rps(self) -> float:
        return self.ok / self.duration_s

    def p(self, q: float) -> float:
        return float(np.percentile(self.ok_latency_ms, q)) if self.ok_latency_ms else float("nan")

    def server_p(self, q: float) -> float:
        return float(np.percentile(self.server_ms, q)) if self.server_ms else float("nan")


NAME_SLOT = b"@@NAME@@"  # replaced per request by a fresh name (unknown-model soak)


@dataclass
class _Budget:
    """Shared by a driver's clients: the measured window and an optional request count.

    Clients connect and start sending before ``start`` (a warm-up): only answers that arrive
    inside [start, end] are counted, so the connection storm at the start is not measured."""

    start: float
    end: float
    left: int | None = None
    sent: int = 0

    def take(self) -> int | None:
        if time.monotonic() >= self.end or (self.left is not None and self.left <= 0):
            return None
        if self.left is not None:
            self.left -= 1
        self.sent += 1
        return self.sent

    def counts(self, t: float) -> bool:
        return self.left is not None or self.start <= t <= self.end


async def _client(
    port: int,
    request: bytes,
    budget: _Budget,
    retry_cap_s: float,
    res: DriveResult,
    start_at: float,
) -> None:
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    reader = writer = None
    try:
        while (n := budget.take()) is not None:
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(HOST, port)
                assert reader is not None
                t0 = time.monotonic()
                data = request.replace(NAME_SLOT, b"u%d" % n) if NAME_SLOT in request else request
                writer.write(data)
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                status = int(lines[0].split()[1])
                hdrs = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (x.partition(":") for x in lines[1:])
                }
                await reader.readexactly(int(hdrs.get("content-length", "0")))
                t1 = time.monotonic()
                if budget.left is None and t1 > budget.end:
                    break  # finished after the window: not counted
                if budget.counts(t1):
                    res.statuses[status] = res.statuses.get(status, 0) + 1
                    if status == 200:
                        res.ok += 1
                        res.ok_latency_ms.append((t1 - t0) * 1e3)
                        if SERVER_MS_HEADER in hdrs:
                            res.server_ms.append(float(hdrs[SERVER_MS_HEADER]))
                if hdrs.get("connection") == "close":
                    writer.close()
                    writer = None
                if status == 429:  # no later than the window's end: nothing after it counts
                    wait = min(float(hdrs.get("retry-after", "1")), retry_cap_s)
                    await asyncio.sleep(min(wait, max(0.0, budget.end - time.monotonic())))
            except (OSError, asyncio.IncompleteReadError, ValueError):
                if budget.counts(time.monotonic()):
                    res.connection_errors += 1
                if writer is not None:
                    writer.close()
                writer = None
                await asyncio.sleep(0.01)
    finally:  # also when cancelled at the end of the window
        if writer is not None:
            writer.close()


async def _drive(
    port: int,
    request: bytes,
    clients: int,
    duration_s: float,
    retry_cap_s: float,
    total: int | None,
    warmup_s: float,
) -> DriveResult:
    now = time.monotonic()
    ramp = min(0.5, duration_s / 10)  # stagger connects over a short ramp
    start = now + ramp + warmup_s
    budget = _Budget(start, start + duration_s, total)
    res = DriveResult(clients, duration_s)
    tasks = [
        asyncio.ensure_future(
            _client(port, request, budget, retry_cap_s, res, now + ramp * i / clients)
        )
        for i in range(clients)
    ]
    # An answer after the window's end is not counted: a client still waiting then (on a
    # request the server holds for ignoring Retry-After, say) is stopped a second after it.
    _, late = await asyncio.wait(tasks, timeout=max(0.0, budget.end - time.monotonic()) + 1.0)
    for task in late:
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)
    if total is not None:
        res.duration_s = time.monotonic() - now
    return res


def _driver_main(conn: Any) -> None:
    factory = _fast_loop_factory()
    while (args := conn.recv()) is not None:
        with asyncio.Runner(loop_factory=factory) as runner:
            conn.send(runner.run(_drive(*args)))


def _fast_loop_factory() -> Any:
    """uvloop's event loop where it is installed (as the server's is, through uvicorn): the
    driver's own socket work is then a fraction of asyncio's, and at 10x overload on a small
    machine that work is what limits the load it can offer."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


class Driver:
    """Closed-loop load from one asyncio child process, kept across windows: starting a process
    costs about a second of imports on these cores, which must not land before a window.

    ``drive``: ``clients`` keep-alive connections for ``duration_s`` after ``warmup_s`` (or
    ``total`` requests); on 429 a client waits Retry-After, at most ``retry_cap_s``."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_driver_main, args=(child,), daemon=True)
        self.proc.start()
        child.close()

    def drive(
        self,
        port: int,
        request: bytes,
        clients: int,
        duration_s: float,
        retry_cap_s: float = 1.0,
        total: int | None = None,
        warmup_s: float = 0.0,
    ) -> DriveResult:
        self.conn.send((port, request, clients, duration_s, retry_cap_s, total, warmup_s))
        end = time.monotonic() + duration_s + warmup_s + 300
        while not self.conn.poll(0.2):
            if not self.proc.is_alive() or time.monotonic() > end:
                raise RuntimeError(f"load driver stopped (exit code {self.proc.exitcode})")
        return self.conn.recv()

    def close(self) -> None:
        if self.proc.is_alive():
            self.conn.send(None)
            self.proc.join(timeout=30)
        if self.proc.is_alive():
            self.proc.kill()
        self.conn.close()

    def __enter__(self) -> Driver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def drive(
    port: int,
    request: bytes,
    clients: int,
    duration_s: float,
    retry_cap_s: float = 1.0,
    total: int | None = None,
) -> DriveResult:
    """One :meth:`Driver.drive` in a fresh driver process."""
    with Driver() as d:
        return d.drive(port, request, clients, duration_s, retry_cap_s, total)


# -- the server under test ------------------------------------------------------------------
class ServerUnderTest:
    """``edgesplit cloud serve`` in a subprocess on a temporary repository of shipped models."""

    def __init__(
        self,
        models: dict[str, dict],
        flags: list[str] | None = None,
        health_port: bool = False,
        ready_timeout_s: float = 300,
        port: int | None = None,
        nice: int | None = None,
    ) -> None:
        """``nice``: run the server at this priority (coreutils ``nice``; where the OS refuses,
        it says so in the server log and runs at the usual priority)."""
        from edgesplit.cloud.bench import free_tcp_port
        from edgesplit.cloud.repository import DEFAULT_REPOSITORY

        self.tmp = tempfile.TemporaryDirectory()
        root = Path(self.tmp.name)
        for name, spec in models.items():
            src = DEFAULT_REPOSITORY / spec.get("from", name)
            cfg = yaml.safe_load((src / "config.yaml").read_text())
            cfg = cfg | {k: v for k, v in spec.items() if k != "from"} | {"name": name}
            (root / name).mkdir()
            (root / name / "config.yaml").write_text(yaml.safe_dump(cfg))
            for d in src.iterdir():
                if d.is_dir() and d.name.isdigit():
                    (root / name / d.name).symlink_to(d, target_is_directory=True)
        self.port = port or free_tcp_port()
        self.health_port = free_tcp_port() if health_port else None
        cmd = [sys.executable, "-m", "edgesplit.cli", "cloud", "serve", "--port", str(self.port)]
        cmd += ["--models", str(root), *(flags or [])]
        if self.health_port:
            cmd += ["--health-port", str(self.health_port)]
        if nice is not None:
            cmd = ["nice", "-n", str(nice), *cmd]
        self.log_path = root / "server.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in close())
        self.t_start = time.monotonic()
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            env=os.environ | {"EDGESPLIT_API_KEYS": ""},
        )
        self.live_after_s = self._wait("/v2/health/live", 60)
        self.ready_after_s = self._wait("/v2/health/ready", ready_timeout_s)

    def _wait(self, path: str, timeout_s: float) -> float:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                r = raw_exchange(self.port, http_request("GET", path), timeout_s=5)
                if r is not None and r.status == 200:
                    return time.monotonic() - self.t_start
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"{path} did not answer 200 within {timeout_s} s")

    def wait_ready_all(self, workers: int, timeout_s: float = 300) -> None:
        """With N workers sharing the port, each new connection may reach any of them: wait
        for 10 x N consecutive ready answers on fresh connections."""
        end, streak = time.monotonic() + timeout_s, 0
        while streak < 10 * workers:
            if time.monotonic() > end:
                raise RuntimeError(f"not every one of {workers} workers became ready")
            r = raw_exchange(self.port, http_request("GET", "/v2/health/ready"), timeout_s=5)
            streak = streak + 1 if r is not None and r.status == 200 else 0
            if not streak:
                time.sleep(0.05)

    def get(self, path: str) -> RawResponse:
        r = raw_exchange(self.port, http_request("GET", path))
        assert r is not None
        return r

    def cpu_s(self) -> float:
        """User + system CPU seconds the server process has used (Linux /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self) -> int:
        """Resident set size of the server process (Linux /proc)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS in /proc status")

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()
        self.tmp.cleanup()

    def __enter__(self) -> ServerUnderTest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
