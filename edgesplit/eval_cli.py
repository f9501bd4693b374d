"""``edgesplit eval``: per device class, end-cloud cascade vs device-only on held-out data."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from edgesplit.output import console, err_console, write_json


def eval_command(
    workload: Annotated[
        list[str] | None, typer.Option("--workload", "-w", help="repeatable; default: all")
    ] = None,
    cloud: Annotated[
        str | None,
        typer.Option(
            help="a running cloud's URL (API key: $EDGESPLIT_API_KEY); default: serve "
            "the shipped model repository on loopback"
        ),
    ] = None,
    ca_cert: Annotated[
        Path | None,
        typer.Option(help="PEM CA that signed an https:// --cloud (default: system trust store)"),
    ] = None,
    quick: Annotated[bool, typer.Option(help="a small subset of each evaluation set")] = False,
    threads: Annotated[int, typer.Option(min=1, help="ORT intra-op threads on the device")] = 1,
    json_out: Annotated[Path | None, typer.Option("--json", help="write results as JSON")] = None,
) -> None:
    """Accuracy gain and median/p95 latency change of the cascade over device-only.

    Every input goes through device-only, cascade and cloud-only (interleaved) with the real
    router and a real cloud over HTTP; each workload's registered held-out set is used.
    """
    from edgesplit.device.workloads.registry import plugin, plugins
    from edgesplit.evaluation import evaluate_workload

    selected = [plugin(w) for w in workload] if workload else list(plugins().values())
    api_key = os.environ.get("EDGESPLIT_API_KEY")
    rows = []
    for p in selected:
        with err_console.status(f"{p.name}: starting...") as status:
            rows.append(
                evaluate_workload(
                    p,
                    cloud,
                    api_key,
                    quick,
                    threads,
                    log=lambda m: status.update(m),
                    ca_cert=ca_cert,
                )
            )
    table = Table(title="end-cloud cascade vs device-only (held-out data)")
    for col in (
        "device",
        "workload",
        "device acc",
        "cascade acc",
        "cloud acc",
        "gain pts",
        "escalated",
        "median ms dev→casc",
        "p95 ms dev→casc",
    ):
        table.add_column(col, justify="right")
    for r in rows:
        d, c, k = (r["routes"][x] for x in ("device", "cascade", "cloud"))
        table.add_row(
            r["device"],
            r["workload"],
            f"{100 * d['accuracy']:.1f} %",
            f"{100 * c['accuracy']:.1f} %",
            f"{100 * k['accuracy']:.1f} %",
            f"{r['accuracy_gain_points']:+.1f}",
            f"{100 * c['escalated']:.0f} %",
            f"{d['median_ms']:.1f}→{c['median_ms']:.1f} ({r['median_latency_change_pct']:+.0f} %)",
            f"{d['p95_ms']:.1f}→{c['p95_ms']:.1f} ({r['p95_latency_change_pct']:+.0f} %)",
        )
    console.print(table)
    for r in rows:
        console.print(f"{r['workload']}: {r['data']}", highlight=False)
    if json_out:
        write_json(json_out, {"workloads": rows})
