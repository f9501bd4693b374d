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
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="worker processes sharing the port (SO_REUSEPORT)")
    ] = 1,
    health_port: Annotated[
        int | None,
        typer.Option(help="also serve health + metrics on this port, from their own process"),
    ] = None,
    health_stale_s: Annotated[
        float,
        typer.Option(min=0.5, help="health port: not live when the event loop stalls this long, s"),
    ] = 5.0,
    metrics_key: Annotated[bool, typer.Option(help="require the API key for /metrics too")] = False,
    header_timeout_s: Annotated[
        float, typer.Option(min=0.01, help="time to receive request headers, s")
    ] = 10.0,
    body_timeout_s: Annotated[
        float, typer.Option(min=0.01, help="time to receive a request body, s")
    ] = 30.0,
    keep_alive_s: Annotated[float, typer.Option(min=1, help="idle keep-alive, s")] = 5.0,
    max_connections: Annotated[
        int, typer.Option(min=1, help="open connections (the soft open-file limit is raised)")
    ] = 8192,
    ssl_keyfile: Annotated[
        Path | None, typer.Option(help="TLS private key (PEM): serve HTTPS with --ssl-certfile")
    ] = None,
    ssl_certfile: Annotated[
        Path | None, typer.Option(help="TLS certificate chain (PEM): serve HTTPS")
    ] = None,
) -> None:
    """Serve the model repository over OIP v2 REST (uvicorn); SIGTERM drains in-flight requests."""
    from edgesplit.cloud.errors import ModelConfigError
    from edgesplit.cloud.limits import Limits
    from edgesplit.cloud.repository import DEFAULT_REPOSITORY
    from edgesplit.cloud.serve import serve as run
    from edgesplit.cloud.server import ServerSettings

    if (ssl_keyfile is None) != (ssl_certfile is None):
        fail("HTTPS needs both --ssl-keyfile and --ssl-certfile")
    for opt, f in (("--ssl-keyfile", ssl_keyfile), ("--ssl-certfile", ssl_certfile)):
        if f is not None and not f.is_file():
            fail(f"{opt} {f}: file not found")
    keys = [k.strip() for k in os.environ.get(api_key_env, "").split(",") if k.strip()]
    try:
        body_bytes = int(max_body_mb * 1024 * 1024)
        limits = Limits(
            max_body_bytes=body_bytes,
            max_json_bytes=min(Limits.max_json_bytes, body_bytes),
            max_header_json_bytes=min(Limits.max_header_json_bytes, body_bytes),
            header_timeout_s=header_timeout_s,
            body_timeout_s=body_timeout_s,
            keep_alive_s=keep_alive_s,
            max_connections=max_connections,
        )
        settings = ServerSettings(
            api_keys=keys,
            max_body_bytes=body_bytes,
            request_timeout_s=timeout_s,
            drain_timeout_s=drain_s,
            limits=limits,
            metrics_require_key=metrics_key,
            health_port=health_port,
            health_stale_s=health_stale_s,
            host=host,
        )
        run(
            models or DEFAULT_REPOSITORY,
            host,
            port,
            settings,
            only=model or None,
            workers=workers,
            ssl_keyfile=ssl_keyfile,
            ssl_certfile=ssl_certfile,
        )
    except (ModelConfigError, ValueError) as exc:
        fail(str(exc))


@cloud_app.command("bench")
def bench(
    model: Annotated[str, typer.Option(help="model in the shipped repository")] = "kws-large",
    concurrency: Annotated[
        list[int] | None, typer.Option("--concurrency", "-c", help="client threads (repeatable)")
    ] = None,
    requests: Annotated[int, typer.Option(min=10, help="requests per level and mode")] = 400,
    input_shape: Annotated[
        str | None, typer.Option(help="request tensor shape, e.g. 1,3,48,320 (free dims)")
    ] = None,
    peer_venv: Annotated[
        Path | None,
        typer.Option(help="virtualenv with MLServer (scripts/setup_peer.sh) to compare against"),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write results as JSON")] = None,
    suite: Annotated[
        str,
        typer.Option(
            help="latency (raw ORT vs server), or issue 12's runs: hostile, overload, soak, "
            "startup, workers, all"
        ),
    ] = "latency",
) -> None:
    """Raw ORT vs server unbatched vs server batched, side by side: throughput, p50/p99, ratios.

    With --suite: the hostile-input suite, 10x overload, the unknown-model soak, start-up
    time and --workers scaling, each against a real server process on loopback."""
    from rich.table import Table

    from edgesplit.output import console, err_console, write_json

    if suite != "latency":
        _stress(suite, json_out)
        return
    from edgesplit.cloud.bench import run_bench

    levels = concurrency or [1, 4, 16]
    try:
        shape = [int(d) for d in input_shape.split(",")] if input_shape else None
        doc = run_bench(
            model,
            levels,
            requests,
            log=lambda m: err_console.print(m),
            shape=shape,
            peer_venv=peer_venv,
        )
    except (ValueError, RuntimeError) as exc:
        fail(str(exc))
    table = Table(title=f"cloud bench: {model} {doc['input_shape']}, {requests} requests/cell")
    for col in ("mode", "clients", "req/s", "p50 ms", "p90 ms", "p99 ms", "errors"):
        table.add_column(col, justify="right")
    for r in doc["results"]:
        table.add_row(
            r["mode"],
            str(r["concurrency"]),
            f"{r['throughput_rps']:.0f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p90_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            str(r["errors"]),
        )
    console.print(table)
    ratios = Table(title="ratios, measured side by side")
    ratios.add_column("ratio")
    ratios.add_column("value", justify="right")
    for k, v in doc["ratios"].items():
        ratios.add_row(k, f"{v:.2f}" + ("" if k.endswith("_ms") else "x"))
    console.print(ratios)
    if json_out:
        write_json(json_out, doc)


STRESS_SUITES = ("hostile", "overload", "soak", "startup", "workers")


def _stress(suite: str, json_out: Path | None) -> None:
    from rich.table import Table

    from edgesplit.cloud import stress
    from edgesplit.cloud.hostile import SUITE_FLAGS, SUITE_MODELS, run_hostile
    from edgesplit.cloud.loadgen import ServerUnderTest
    from edgesplit.output import console, err_console, write_json

    chosen = STRESS_SUITES if suite == "all" else (suite,)
    if any(s not in STRESS_SUITES for s in chosen):
        fail(f"--suite {suite!r}: expected latency, all or one of {', '.join(STRESS_SUITES)}")

    def log(m: str) -> None:
        err_console.print(m)

    doc: dict = {}
    try:
        for s in chosen:
            if s == "hostile":
                with ServerUnderTest(SUITE_MODELS, SUITE_FLAGS, health_port=True) as srv:
                    doc["hostile"] = run_hostile(srv, log=log)
            elif s == "overload":
                doc |= stress.run_overloads(log=log)
            elif s == "soak":
                doc["soak"] = stress.run_unknown_soak(log=log)
            elif s == "startup":
                doc["startup"] = stress.run_startup(log=log)
            elif s == "workers":
                doc["workers"] = stress.run_workers(log=log)
    except RuntimeError as exc:
        fail(str(exc))
    verdicts = stress.verdicts(doc)
    table = Table(title="issue 12 criteria, measured on this machine")
    table.add_column("criterion")
    table.add_column("met", justify="center")
    for k, ok in verdicts.items():
        table.add_row(k, "yes" if ok else "NO")
    console.print(table)
    bulky = {"rounds", "results"}  # per-round rows and per-case results: in the JSON file only
    for part in doc.values():
        console.print_json(data={k: v for k, v in part.items() if k not in bulky})
    if json_out:
        write_json(json_out, doc | {"verdicts": verdicts})
