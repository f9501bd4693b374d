"""``edgesplit cloud ...``: serve the OIP v2 model repository, and benchmark it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from edgesplit.output import fail

cloud_app = typer.Typer(
    help="Cloud service: Open Inference Protocol v2 server.", no_args_is_help=True
)


@cloud_app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8000,
    models: Annotated[Path | None, typer.Option(help="model repository directory")] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="serve only these models (repeatable)")
    ] = None,
    api_key_env: Annotated[
        str,
        typer.Option(help="environment variable holding comma-separated API keys (unset = open)"),
    ] = "EDGESPLIT_API_KEYS",
    max_body_mb: Annotated[float, typer.Option(min=0.001, help="request body limit, MiB")] = 64.0,
    timeout_s: Annotated[float, typer.Option(min=0.001, help="per-request timeout, s")] = 30.0,
    drain_s: Annotated[float, typer.Option(min=0, help="graceful-shutdown drain time, s")] = 30.0,
) -> None:
    """Serve the model repository over OIP v2 REST (uvicorn); SIGTERM drains in-flight requests."""
    from cloud.errors import ModelConfigError
    from cloud.repository import DEFAULT_REPOSITORY
    from cloud.serve import serve as run
    from cloud.server import ServerSettings

    keys = [k.strip() for k in os.environ.get(api_key_env, "").split(",") if k.strip()]
    try:
        settings = ServerSettings(
            api_keys=keys,
            max_body_bytes=int(max_body_mb * 1024 * 1024),
            request_timeout_s=timeout_s,
            drain_timeout_s=drain_s,
        )
        run(models or DEFAULT_REPOSITORY, host, port, settings, only=model or None)
    except (ModelConfigError, ValueError) as exc:
        fail(str(exc))
