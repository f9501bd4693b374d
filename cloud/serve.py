"""Run the server: in the foreground (``edgesplit cloud serve``) or in a thread (tests, bench)."""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path

import uvicorn
from edgesplit.cloud.repository import Repository
from edgesplit.cloud.server import JsonLogFormatter, ServerSettings, create_app


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    logger = logging.getLogger("edgesplit.cloud")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def uvicorn_config(
    app,
    host: str,
    port: int,
    drain_timeout_s: float,
    ssl_keyfile: Path | None = None,
    ssl_certfile: Path | None = None,
) -> uvicorn.Config:
    """HTTPS when given a key and a certificate (PEM), plain HTTP otherwise."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=drain_timeout_s,
        lifespan="on",
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
    )


def serve(
    models: Path,
    host: str,
    port: int,
    settings: ServerSettings,
    only: list[str] | None = None,
    ssl_keyfile: Path | None = None,
    ssl_certfile: Path | None = None,
) -> None:
    """Blocking: load the repository and serve until SIGINT/SIGTERM, then drain."""
    configure_logging()
    app = create_app(Repository(models, only), settings)
    config = uvicorn_config(app, host, port, settings.drain_timeout_s, ssl_keyfile, ssl_certfile)
    uvicorn.Server(config).run()


class ServerThread:
    """A real uvicorn server on loopback in a background thread."""

    def __init__(
        self,
        repository: Repository,
        settings: ServerSettings | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.settings = settings or ServerSettings()
        self.app = create_app(repository, self.settings)
        config = uvicorn_config(self.app, host, port, self.settings.drain_timeout_s)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        end = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > end or not self.thread.is_alive():
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
        self.thread.join(timeout=30)
