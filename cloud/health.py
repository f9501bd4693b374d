"""The health port, served by its own small process (``health_proc.py``), as Triton's.

A thread in the server would share the interpreter lock with the data plane: on a loaded machine
the OS may preempt whichever thread holds the lock, and the health thread then waits a whole
scheduler slice behind it (the hostile suite measured 38-72 ms worst cases that way). The child
process shares nothing but one page of memory: the server's event loop writes a heartbeat and its
state there every ``HEARTBEAT_S``, so a wedged loop reads as not live after ``stale_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mmap
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from edgesplit.cloud.health_proc import (
    ANSWER,
    ASK,
    DRAINING,
    FAILED,
    LOADING,
    PAGE_BYTES,
    READY,
    write_state,
)

log = logging.getLogger("edgesplit.cloud")
HEARTBEAT_S = 0.1
SCRIPT = Path(__file__).with_name("health_proc.py")


class HealthProcess:
    """Binds the health port here (so it is known and open at once) and hands it to the child."""

    def __init__(self, plane: Any, host: str, port: int, stale_s: float) -> None:
        if stale_s < 5 * HEARTBEAT_S:
            raise ValueError(f"health_stale_s={stale_s:g}: expected >= {5 * HEARTBEAT_S:g} s")
        self.plane, self.stale_s = plane, stale_s
        self.listener = socket.create_server((host, port), backlog=128)
        self.port: int = self.listener.getsockname()[1]
        if hasattr(os, "memfd_create"):  # Linux
            page_fd = os.memfd_create("edgesplit-health")
        else:  # an unlinked temporary file elsewhere (macOS)
            page_fd, path = tempfile.mkstemp(prefix="edgesplit-health-")
            os.unlink(path)
        os.ftruncate(page_fd, PAGE_BYTES)
        self.page_fd = page_fd
        self.page = mmap.mmap(page_fd, PAGE_BYTES)
        self.ours, self.theirs = socket.socketpair()
        self.proc: subprocess.Popen | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._buf = b""

    def state(self) -> tuple[int, str]:
        plane = self.plane
        if plane.load_error:
            return FAILED, f"model load failed: {plane.load_error}"
        if plane.draining:
            return DRAINING, "draining"
        return (READY, "") if plane.ready else (LOADING, "loading models")

    def publish(self) -> None:
        write_state(self.page, time.monotonic(), *self.state())

    def _tick(self) -> None:
        self.publish()
        self._timer = asyncio.get_running_loop().call_later(HEARTBEAT_S, self._tick)

    def start(self) -> None:
        """Call from the event loop: heartbeat first, then the child."""
        self._tick()
        self.plane.on_state.append(self.publish)
        fds = (self.listener.fileno(), self.page_fd, self.theirs.fileno())
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(SCRIPT), *map(str, fds), str(self.stale_s)],
            stdin=subprocess.PIPE,
            pass_fds=fds,
        )
        self.listener.close()  # the child accepts; our copy is not needed
        self.theirs.close()
        os.close(self.page_fd)
        self.ours.setblocking(False)
        asyncio.get_running_loop().add_reader(self.ours.fileno(), self._on_ask)
        log.info("health port", extra={"fields": {"port": self.port, "pid": self.proc.pid}})

    def _on_ask(self) -> None:
        try:
            data = self.ours.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self.ours.fileno())
            return
        self._buf += data
        whole = len(self._buf) // ASK.size * ASK.size
        if not whole:
            return
        (seq,) = ASK.unpack(self._buf[whole - ASK.size : whole])  # only the latest ask counts
        self._buf = self._buf[whole:]
        body = self.plane.metrics.exposition()
        self.ours.setblocking(True)
        self.ours.settimeout(1.0)  # a few KiB (bounded labels): fits the socket buffer at once
        try:
            self.ours.sendall(ANSWER.pack(seq, len(body)) + body)
        except OSError:
            pass  # the child asks again; it skips a torn answer by its sequence number
        finally:
            self.ours.setblocking(False)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with contextlib.suppress(RuntimeError, ValueError):  # no loop, or already closed
            asyncio.get_running_loop().remove_reader(self.ours.fileno())
        self.ours.close()
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # the child exits at EOF
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.page.close()
