"""The application: the data plane, the REST layer and the fast path wired together.

``create_app`` returns an ASGI app; :mod:`edgesplit.cloud.serve` runs it under uvicorn with the
guarded protocol (timeouts, connection cap) and the drain-aware server.
"""

from __future__ import annotations

import json
import logging
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
