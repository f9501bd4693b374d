"""The application: the data plane, the REST layer and the fast path wired together.

``create_app`` returns an ASGI app; :mod:`edgesplit.cloud.serve` runs it under uvicorn with the
guarded protocol (timeouts, connection cap) and the drain-aware server.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from edgesplit.cloud.dataplane import DataPlane
from edgesplit.cloud.health import HealthProcess
from edgesplit.cloud.http import ApiKeys, FastPath
from edgesplit.cloud.limits import Limits
from edgesplit.cloud.repository import Repository

__all__ = ["ServerSettings", "create_app"]
log = logging.getLogger("edgesplit.cloud")


@dataclass
class ServerSettings:
    api_keys: list[str] = field(default_factory=list)  # empty = no authentication
    max_body_bytes: int = 64 * 1024 * 1024
    request_timeout_s: float = 30.0
    drain_timeout_s: float = 30.0
    limits: Limits | None = None  # None: Limits() with max_body_bytes above
    metrics_require_key: bool = False  # /metrics behind the API keys too
    health_port: int | None = None  # health + metrics also on this port, in their own process
    health_stale_s: float = 5.0  # the health port says "not live" when the loop stalls this long
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1024:
            raise ValueError(f"max_body_bytes={self.max_body_bytes}: expected >= 1024 bytes")
        if self.request_timeout_s <= 0:
            raise ValueError(f"request_timeout_s={self.request_timeout_s}: expected > 0 seconds")
        if any(len(k) < 16 for k in self.api_keys):
            raise ValueError("API keys must be at least 16 characters long")
        if self.limits is None:
            self.limits = Limits(
                max_body_bytes=self.max_body_bytes,
                max_json_bytes=min(Limits.max_json_bytes, self.max_body_bytes),
                max_header_json_bytes=min(Limits.max_header_json_bytes, self.max_body_bytes),
            )


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: structured logs a collector can index."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": round(record.created, 6),
            "level": record.levelname,
            "msg": record.getMessage(),
        }
        doc.update(getattr(record, "fields", {}))
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc)


class BatchedStreamHandler(logging.Handler):
    """Writes log lines in batches: at most one write per ``FLUSH_S`` (or per 64 KiB), at once
    for warnings and errors. A write per request is a system call on the event loop, and each
    call hands the interpreter lock to another thread and must wait to get it back."""

    FLUSH_S = 0.2
    MAX_BYTES = 64 * 1024

    def __init__(self, stream: Any) -> None:
        super().__init__()
        self.stream = stream
        self.lines: list[str] = []
        self.size = 0
        threading.Thread(target=self._flusher, daemon=True, name="log-flush").start()

    def emit(self, record: logging.LogRecord) -> None:  # called with self.lock held
        try:
            line = self.format(record) + "\n"
        except Exception:  # logging's contract: a bad record must not break the caller
            self.handleError(record)
            return
        self.lines.append(line)
        self.size += len(line)
        if record.levelno >= logging.WARNING or self.size >= self.MAX_BYTES:
            self._write()

    def _write(self) -> None:
        if self.lines:
            text, self.lines, self.size = "".join(self.lines), [], 0
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):  # stderr closed: nothing to report it to
                pass

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write()

    def _flusher(self) -> None:
        while True:
            time.sleep(self.FLUSH_S)
            self.flush()


def flush_logs() -> None:
    for handler in logging.getLogger("edgesplit.cloud").handlers:
        handler.flush()


def create_app(repository: Repository, settings: ServerSettings | None = None) -> Any:
    """The ASGI app. Models not yet loaded in ``repository`` load in the background."""
    settings = settings or ServerSettings()
    assert settings.limits is not None
    plane = DataPlane(repository, settings.limits, settings.request_timeout_s)
    keys = ApiKeys(settings.api_keys)

    health: list[HealthProcess] = []

    async def startup() -> None:
        if settings.health_port is not None:
            server = HealthProcess(
                plane, settings.host, settings.health_port, settings.health_stale_s
            )
            server.start()
            health.append(server)
        await plane.start()

    async def shutdown() -> None:
        await plane.stop()
        for server in health:
            server.stop()
        log.info("stopped")
        flush_logs()  # uvicorn may end the process by re-raising SIGTERM: no exit handlers

    def build_api() -> Any:
        from edgesplit.cloud.rest import create_api

        return create_api(plane, keys)

    return FastPath(
        plane,
        build_api,
        keys,
        metrics_open=not settings.metrics_require_key,
        on_startup=startup,
        on_shutdown=shutdown,
    )
