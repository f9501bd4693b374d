"""The health port's process: ``/v2/health/live``, ``/v2/health/ready`` and ``/metrics``.

Run by :class:`edgesplit.cloud.health.HealthProcess` as ``python -I -S health_proc.py``: standard
library only, so it starts in milliseconds and shares no interpreter lock, heap or garbage
collector with the data plane (Triton serves health from its own port and threads in C++; a
thread of a Python server waits for the lock behind the data plane). Its state comes from a shared
page that the server's event loop writes every ``HEARTBEAT_S``:

- live: the heartbeat is younger than ``stale_s`` (a wedged event loop reads as not live);
- ready: live, and the server says every model is loaded and it is not draining;
- /metrics: asked of the server over a socket pair (its registry lives there).

It exits when the server's end of its stdin pipe closes (the server stopped or died).
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# The shared page: heartbeat (CLOCK_MONOTONIC seconds, one clock for every process on Linux),
# state (one of STATES), and the length + text of the reason when not ready.
LAYOUT = struct.Struct("<dBH")
REASON_AT, REASON_MAX_BYTES, PAGE_BYTES = LAYOUT.size, 400, 4096
LOADING, READY, DRAINING, FAILED = 0, 1, 2, 3
STATES = {LOADING: "loading models", READY: "ready", DRAINING: "draining", FAILED: "load failed"}
METRICS_TIMEOUT_S = 10.0
# Best effort: where the process may (root or CAP_SYS_NICE) it runs ahead of ordinary processes,
# so a machine busy with other work does not delay a probe by a scheduler slice; it uses almost
# no CPU. Without the right the niceness stays as inherited.
HEALTH_NICE = -10
ASK, ANSWER = struct.Struct("<Q"), struct.Struct("<QQ")  # sequence; sequence, length


def write_state(page: Any, heartbeat: float, state: int, reason: str = "") -> None:
    """Called by the server: reason first, then the fixed part (a reader sees either version)."""
    raw = reason.encode()[:REASON_MAX_BYTES]
    page[REASON_AT : REASON_AT + len(raw)] = raw
    page[: LAYOUT.size] = LAYOUT.pack(heartbeat, state, len(raw))


def read_state(page: Any) -> tuple[float, int, str]:
    heartbeat, state, n = LAYOUT.unpack(page[: LAYOUT.size])
    n = min(n, REASON_MAX_BYTES)
    return heartbeat, state, bytes(page[REASON_AT : REASON_AT + n]).decode(errors="replace")


def error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


class Health:
    """Answers from the shared page; metrics through the server's socket."""

    def __init__(self, page: Any, metrics_sock: socket.socket, stale_s: float) -> None:
        self.page, self.metrics_sock, self.stale_s = page, metrics_sock, stale_s
        self.metrics_lock = threading.Lock()
        self.seq = 0

    def live(self) -> tuple[int, bytes]:
        heartbeat, _state, _ = read_state(self.page)
        age_s = time.monotonic() - heartbeat
        if age_s > self.stale_s:
            msg = f"not live: the server's event loop has not run for {age_s:.1f} s"
            return 503, error_body(msg + f" (limit {self.stale_s:g} s)")
        return 200, b'{"live":true}'

    def ready(self) -> tuple[int, bytes]:
        status, body = self.live()
        if status != 200:
            return status, body
        _, state, reason = read_state(self.page)
        if state == READY:
            return 200, b'{"ready":true}'
        return 503, error_body(f"not ready: {reason or STATES.get(state, 'unknown')}")

    def metrics(self) -> tuple[int, bytes]:
        """Ask the server for its text; a late answer to an earlier (timed-out) ask is skipped
        by its sequence number."""
        with self.metrics_lock:
            self.seq += 1
            try:
                self.metrics_sock.settimeout(METRICS_TIMEOUT_S)
                self.metrics_sock.sendall(ASK.pack(self.seq))
                while True:
                    seq, n = ANSWER.unpack(_recv_exact(self.metrics_sock, ANSWER.size))
                    body = _recv_exact(self.metrics_sock, n)
                    if seq == self.seq:
                        return 200, body
            except OSError as exc:
                return 503, error_body(f"metrics unavailable: {type(exc).__name__}: {exc}")


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise ConnectionError("server closed the metrics socket")
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def make_handler(health: Health) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else Nagle + delayed ACK add 40 ms per answer

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            ctype = "application/json"
            if self.path == "/v2/health/live":
                status, body = health.live()
            elif self.path == "/v2/health/ready":
                status, body = health.ready()
            elif self.path == "/metrics":
                status, body = health.metrics()
                if status == 200:
                    ctype = "text/plain; version=0.0.4; charset=utf-8"
            else:
                status, body = 404, error_body(f"no route {self.path[:100]}")
            head = (
                f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                f"content-type: {ctype}\r\ncontent-length: {len(body)}\r\n\r\n"
            )
            self.wfile.write(head.encode() + body)  # one segment

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a prober that hangs up is not an error


def main(argv: list[str]) -> None:
    """argv: listening socket fd, shared page fd, metrics socket fd, stale_s."""
    listen_fd, page_fd, metrics_fd, stale_s = int(argv[0]), int(argv[1]), int(argv[2]), argv[3]
    with contextlib.suppress(OSError):  # no right to raise priority: keep the inherited one
        os.setpriority(os.PRIO_PROCESS, 0, HEALTH_NICE)
    page = mmap.mmap(page_fd, PAGE_BYTES, access=mmap.ACCESS_READ)
    health = Health(page, socket.socket(fileno=metrics_fd), float(stale_s))
    listener = socket.socket(fileno=listen_fd)
    server = _Server(listener.getsockname()[:2], make_handler(health), bind_and_activate=False)
    server.socket.close()
    server.socket = listener

    def watch_parent() -> None:
        sys.stdin.buffer.read()  # returns at EOF: the server closed its end or died
        os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    server.serve_forever(poll_interval=0.5)


if __name__ == "__main__":
    main(sys.argv[1:])
