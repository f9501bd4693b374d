"""``edgesplit sim ...``: run scenarios of the end-cloud split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgesplit.output import console, err_console, fail, write_json

sim_app = typer.Typer(help="Simulator: SimPy model of the end-cloud split.", no_args_is_help=True)


@sim_app.command("run")
def run(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML (see sim/scenarios/)")],
    requests: Annotated[int | None, typer.Option(min=1, help="override the request count")] = None,
    seed: Annotated[int | None, typer.Option(help="override the scenario's seed")] = None,
    out: Annotated[Path | None, typer.Option(help="directory for CSV + summary JSON")] = None,
) -> None:
    """Simulate every policy of the scenario; print a table, write per-request CSV and a summary."""
    from rich.table import Table

    from sim.model import simulate
    from sim.report import summarise, write_csv
    from sim.scenario import ScenarioError, load_scenario

    try:
        sc = load_scenario(scenario)
    except ScenarioError as exc:
        fail(str(exc))
    table = Table(title=f"{sc.name}: {requests or sc.requests} requests per policy")
    for col in ("policy", "p50 ms", "p95 ms", "p99 ms", "miss %", "J/request", "battery h",
                "bytes out", "cloud $", "accuracy"):  # fmt: skip
        table.add_column(col, justify="right")
    summaries = []
    for pol in sc.policies:
        with err_console.status(f"simulating {pol.kind}..."):
            result = simulate(sc, pol.kind, seed, requests)
        s = summarise(result)
        summaries.append(s)
        lat = s["latency_ms"]
        table.add_row(pol.kind, f"{lat['p50']:.1f}", f"{lat['p95']:.1f}", f"{lat['p99']:.1f}",
                      f"{100 * s['deadline_miss_rate']:.1f}", f"{s['energy_j']['per_request']:.4f}",
                      f"{s['battery_hours']:.1f}", str(s["bytes_leaving_device"]),
                      f"{s['cloud_cost_usd']:.4f}", f"{s['expected_accuracy']:.3f}")  # fmt: skip
        if out:
            write_csv(result.records, out / f"{sc.name}-{pol.kind}.csv")
    console.print(table)
    if out:
        write_json(out / f"{sc.name}-summary.json", summaries)
