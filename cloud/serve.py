"""Run the server: in the foreground (``edgesplit cloud serve``, one or N worker processes sharing
the port with SO_REUSEPORT) or in a thread (tests, bench, demo)."""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing as mp
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from edgesplit.cloud.errors import ModelConfigError
from edgesplit.cloud.http import Server, guarded_protocol
from edgesplit.cloud.repository import Repository
from edgesplit.cloud.server import (
    BatchedStreamHandler,
    JsonLogFormatter,
    ServerSettings,
    create_app,
)

SWITCH_INTERVAL_S = 0.001
DRAIN_MARGIN_S = 2.0  # uvicorn's own cancel comes after the data plane answered 503s


def configure_logging(level: int = logging.INFO) -> None:
    handler = BatchedStreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    logger = logging.getLogger("edgesplit.cloud")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def uvicorn_config(
    app: Any,
    host: str,
    port: int,
    settings: ServerSettings,
    ssl_keyfile: Path | None = None,
    ssl_certfile: Path | None = None,
) -> uvicorn.Config:
    """HTTPS when given a key and a certificate (PEM), plain HTTP otherwise."""
    limits = settings.limits
    assert limits is not None
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        http=guarded_protocol(limits, getattr(app, "admit_early", None)),
        # (no timeout_keep_alive: the guarded protocol's own timer closes idle connections)
        # Room in the accept queue for a storm of new connections: one the kernel cannot queue
        # is not refused but left to TCP's SYN-ACK retries (1, 2, 4... s), which its client sees
        # as a request taking seconds. Linux caps it at net.core.somaxconn.
        backlog=max(2048, limits.max_connections),
        ws="none",  # no WebSocket routes: an Upgrade is answered as plain HTTP
        timeout_graceful_shutdown=int(settings.drain_timeout_s + DRAIN_MARGIN_S),
        lifespan="on",
        # Two headers fewer to build per response.
        server_header=False,
        date_header=False,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
    )


# Descriptors a server holds besides its connections: model files, logs, the health port's
# pipe and socket, thread wake-ups. Measured: 41 open with three models loaded; 256 leaves room.
FD_RESERVE = 256


def fit_connections_to_fd_limit(settings: ServerSettings) -> ServerSettings:
    """Raise this process's soft ``RLIMIT_NOFILE`` to what ``max_connections`` needs, as nginx's
    ``worker_rlimit_nofile`` and Go's runtime do (many systems start processes at a soft 1 024).
    Where the hard limit is lower, the cap is lowered to fit, with a warning: a connection over
    the cap gets a 429, while one over the descriptor limit would stall the accept loop."""
    import resource

    limits = settings.limits
    assert limits is not None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = limits.max_connections + FD_RESERVE
    if soft == resource.RLIM_INFINITY or soft >= want:
        return settings
    new = want if hard == resource.RLIM_INFINITY else min(hard, want)
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    if new >= want:
        return settings
    fits = max(1, new - FD_RESERVE)
    logging.getLogger("edgesplit.cloud").warning(
        "max_connections lowered",
        extra={
            "fields": {
                "max_connections": limits.max_connections,
                "now": fits,
                "why": f"the hard limit on open files (ulimit -Hn) is {hard}",
            }
        },
    )
    return dataclasses.replace(settings, limits=dataclasses.replace(limits, max_connections=fits))


class _Server(Server):
    """Exits when a model fails to load (the CLI then prints the reason as one line)."""

    async def on_tick(self, counter: int) -> bool:
        if self.plane.load_error:
            return True
        return await super().on_tick(counter)


def _reuseport_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _serve_one(
    models: Path,
    host: str,
    port: int,
    settings: ServerSettings,
    only: list[str] | None,
    reuse_port: bool,
    ssl_keyfile: Path | None = None,
    ssl_certfile: Path | None = None,
) -> None:
    configure_logging()
    settings = fit_connections_to_fd_limit(settings)
    # Hand the interpreter lock over every 1 ms instead of 5 ms: the health thread and the event
    # loop wait less behind a codec thread formatting a large JSON response.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    repo = Repository(models, only, load=False)  # live at once, models load in the background
    app = create_app(repo, settings)
    config = uvicorn_config(app, host, port, settings, ssl_keyfile, ssl_certfile)
    server = _Server(config, app.plane, settings.drain_timeout_s)
    if reuse_port:
        server.run(sockets=[_reuseport_socket(host, port)])
    else:
        server.run()
    if app.plane.load_error:
        raise ModelConfigError(app.plane.load_error)


def _die_with_parent(parent_pid: int) -> None:
    """Linux: SIGTERM (a drain) when the supervisor dies, even by SIGKILL, so that workers are
    never left serving the port as orphans (PR_SET_PDEATHSIG, prctl(2))."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:  # it died before the prctl took effect
        sys.exit(0)


def _worker_main(
    parent_pid: int,
    models: Path,
    host: str,
    port: int,
    settings: ServerSettings,
    only: list[str] | None,
    ssl_keyfile: Path | None,
    ssl_certfile: Path | None,
) -> None:
    """One of N workers: errors as one line on stderr and exit status 2, like the CLI."""
    _die_with_parent(parent_pid)
    try:
        _serve_one(models, host, port, settings, only, True, ssl_keyfile, ssl_certfile)
    except (ModelConfigError, OSError) as exc:
        sys.stderr.write(f"error: worker {os.getpid()}: {exc}\n")
        sys.exit(2)


def serve(
    models: Path,
    host: str,
    port: int,
    settings: ServerSettings,
    only: list[str] | None = None,
    workers: int = 1,
    ssl_keyfile: Path | None = None,
    ssl_certfile: Path | None = None,
) -> None:
    """Blocking: serve until SIGINT/SIGTERM, then drain. ``workers`` > 1: one process each."""
    if workers <= 1:
        _serve_one(models, host, port, settings, only, False, ssl_keyfile, ssl_certfile)
        return
    if port == 0:
        raise ValueError("--workers > 1 needs a fixed --port (the workers share it)")
    if settings.health_port is not None and settings.health_port != 0:
        raise ValueError("--health-port with --workers > 1: run one health port per worker")
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(
            target=_worker_main,
            args=(os.getpid(), models, host, port, settings, only, ssl_keyfile, ssl_certfile),
        )
        for _ in range(workers)
    ]
    for p in procs:
        p.start()

    def forward(sig: int, _frame: Any) -> None:
        for p in procs:
            if p.pid and p.is_alive():
                os.kill(p.pid, sig)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for p in procs:
        p.join()
    if any(p.exitcode not in (0, -signal.SIGTERM) for p in procs):
        raise ModelConfigError(f"worker exit codes {[p.exitcode for p in procs]}")


class ServerThread:
    """A real uvicorn server on loopback in a background thread; entered once models are loaded."""

    def __init__(
        self,
        repository: Repository,
        settings: ServerSettings | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        wait_ready: bool = True,
    ) -> None:
        self.settings = settings or ServerSettings()
        self.app = create_app(repository, self.settings)
        self.plane = self.app.plane
        config = uvicorn_config(self.app, host, port, self.settings)
        self.server = Server(config, self.plane, self.settings.drain_timeout_s)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.wait_ready = wait_ready

    def __enter__(self) -> ServerThread:
        self.thread.start()
        end = time.monotonic() + 120
        while not self.server.started or (self.wait_ready and not self.plane.ready):
            if self.plane.load_error:
                self.__exit__()
                raise ModelConfigError(self.plane.load_error)
            if time.monotonic() > end or not self.thread.is_alive():
                self.__exit__()
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        sock = self.server.servers[0].sockets[0]
        self.host, self.port = sock.getsockname()[:2]
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        """host:port, as tritonclient wants it."""
        return f"{self.host}:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=60)
