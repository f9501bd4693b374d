"""``edgesplit sim ...``: run, sweep and benchmark scenarios of the end-cloud split."""

from __future__ import annotations

import csv
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from edgesplit.output import console, err_console, fail, report_goal, write_json

sim_app = typer.Typer(help="Simulator: SimPy model of the end-cloud split.", no_args_is_help=True)

ScenarioArg = Annotated[Path, typer.Argument(help="scenario YAML (see sim/scenarios/)")]
RequestsOpt = Annotated[int | None, typer.Option(min=1, help="override the request count")]
SeedOpt = Annotated[int | None, typer.Option(help="override the scenario's seed")]


def _load(path: Path):
    from edgesplit.sim.scenario import ScenarioError, load_scenario

    try:
        return load_scenario(path)
    except ScenarioError as exc:
        fail(str(exc))


@sim_app.command("run")
def run(
    scenario: ScenarioArg,
    requests: RequestsOpt = None,
    seed: SeedOpt = None,
    out: Annotated[Path | None, typer.Option(help="directory for CSV, summary JSON, PNGs")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print the summaries as JSON")] = False,
) -> None:
    """Simulate every policy: a table; with --out, per-request CSV, summary JSON and PNG plots."""
    from rich.table import Table

    from edgesplit.sim import plots
    from edgesplit.sim.model import simulate
    from edgesplit.sim.report import summarise
    from edgesplit.sim.splits import split_sweep
    from edgesplit.sim.stats import CsvSink

    sc = _load(scenario)
    table = Table(title=f"{sc.name}: {requests or sc.requests} requests per policy")
    for col in (
        "policy",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "miss %",
        "J/request",
        "battery h",
        "bytes out",
        "cloud $",
        "accuracy",
        "fallbacks",
    ):
        table.add_column(col, justify="right")
    summaries, runs = [], []
    for pol in sc.policies:
        sink = CsvSink(out / f"{sc.name}-{pol.name}.csv") if out else None  # streamed to disk
        try:
            with err_console.status(f"simulating {pol.name}..."):
                result = simulate(sc, pol, seed, requests, sink=sink)
        finally:
            if sink is not None:
                sink.close()
        s = summarise(result)
        summaries.append(s)
        runs.append(result)
        lat = s["latency_ms"]
        table.add_row(
            pol.name,
            f"{lat['p50']:.1f}",
            f"{lat['p95']:.1f}",
            f"{lat['p99']:.1f}",
            f"{100 * s['deadline_miss_rate']:.1f}",
            f"{s['energy_j']['per_request']:.4f}",
            f"{s['battery_hours']:.1f}",
            str(s["bytes_leaving_device"]),
            f"{s['cloud_cost_usd']:.4f}",
            f"{s['expected_accuracy']:.3f}",
            str(s["routes"]["fallback"]),
        )
    if json_out:
        console.print_json(data=summaries)
    else:
        console.print(table)
    if out:
        write_json(out / f"{sc.name}-summary.json", summaries)
        deadline = sc.workload.deadline_ms
        pngs = [
            plots.latency_cdf(runs, out / f"{sc.name}-latency-cdf.png", deadline),
            plots.pareto(summaries, out / f"{sc.name}-pareto.png"),
        ]
        if sc.workload.split_points:
            with err_console.status("split-point sweep..."):
                rows = split_sweep(sc, requests=min(requests or sc.requests, 500), seed=seed)
            title = f"{sc.name}: latency and energy per split point"
            pngs.append(plots.split_sweep(rows, out / f"{sc.name}-split-sweep.png", title))
            write_json(out / f"{sc.name}-split-sweep.json", [asdict(r) for r in rows])
        for p in pngs:
            err_console.print(f"wrote {p}")


@sim_app.command("splits")
def splits(
    scenario: ScenarioArg,
    up_mbps: Annotated[
        list[float] | None, typer.Option(help="uplink caps to compare (Mbit/s); repeatable")
    ] = None,
    requests: Annotated[int, typer.Option(min=1, help="requests per split point")] = 300,
    seed: SeedOpt = None,
    out: Annotated[Path | None, typer.Option(help="directory for the PNG per uplink")] = None,
) -> None:
    """Neurosurgeon's study: latency at every split point, and the best one per uplink rate."""
    from rich.table import Table

    from edgesplit.sim import plots
    from edgesplit.sim.splits import DEVICE_ONLY, best_row, split_sweep, with_uplink

    sc = _load(scenario)
    if not sc.workload.split_points:
        fail(f"{scenario}: the workload has no split points (give it a device_profile)")
    table = Table(title=f"{sc.name}: best split per uplink")
    for col in (
        "uplink Mbit/s",
        "best",
        "bytes sent",
        "mean ms",
        "device-only ms",
        "cut 0 (input to cloud) ms",
    ):
        table.add_column(col, justify="right")
    for mbps in up_mbps or [100.0, 10.0, 1.0, 0.1]:
        rows = split_sweep(with_uplink(sc, mbps), requests, seed)
        row = best_row(rows)
        local = next(r for r in rows if r.index == DEVICE_ONLY)
        first_cut = next(r for r in rows if r.index != DEVICE_ONLY)
        table.add_row(
            f"{mbps:g}",
            row.label,
            str(row.tensor_bytes),
            f"{row.latency_ms:.1f}",
            f"{local.latency_ms:.1f}",
            f"{first_cut.latency_ms:.1f}",
        )
        if out:
            p = plots.split_sweep(
                rows,
                out / f"{sc.name}-split-{mbps:g}mbps.png",
                f"{sc.name}: split points at {mbps:g} Mbit/s uplink",
            )
            err_console.print(f"wrote {p}")
    console.print(table)


@sim_app.command("sweep")
def sweep_command(
    scenario: ScenarioArg,
    param: Annotated[
        list[str],
        typer.Option(help="FIELD=V1,V2,... e.g. links.0.up_mbps=1,10,100 (repeatable: a grid)"),
    ],
    policy: Annotated[
        list[str] | None, typer.Option(help="policies (label or kind); default: the scenario's")
    ] = None,
    replications: Annotated[int, typer.Option(min=1, help="seeds per grid point")] = 5,
    requests: RequestsOpt = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address; default: a LocalCluster here")
    ] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="LocalCluster workers")] = None,
    out: Annotated[Path | None, typer.Option(help="directory for sweep CSV + JSON")] = None,
) -> None:
    """Grid over any scenario field, with replications and 95% confidence intervals, on Dask."""
    from rich.progress import Progress
    from rich.table import Table

    from edgesplit.sim.scenario import ScenarioError, load_scenario_doc, parse_scenario
    from edgesplit.sim.sweep import parse_param, sweep

    try:
        doc = load_scenario_doc(scenario)
        sc = parse_scenario(doc, str(scenario))
        params = [parse_param(p) for p in param]
        policies = policy or [p.name for p in sc.policies]
        with Progress(console=err_console, transient=True) as progress:
            task = progress.add_task("simulating", total=None)

            def tick(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            rows = sweep(doc, params, policies, replications, requests, scheduler, workers, tick)
    except ScenarioError as exc:
        fail(str(exc))
    names = [p for p, _ in params]
    table = Table(title=f"{sc.name}: sweep, {replications} replications, mean ± 95% CI")
    for col in (*names, "policy", "p50 ms", "p95 ms", "miss %", "mJ/request", "accuracy"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            *(str(r[n]) for n in names),
            r["policy"],
            f"{r['p50_ms']:.1f} ± {r['p50_ms_ci95']:.1f}",
            f"{r['p95_ms']:.1f} ± {r['p95_ms_ci95']:.1f}",
            f"{100 * r['deadline_miss_rate']:.1f} ± {100 * r['deadline_miss_rate_ci95']:.1f}",
            f"{r['energy_mj_per_request']:.2f} ± {r['energy_mj_per_request_ci95']:.2f}",
            f"{r['expected_accuracy']:.3f}",
        )
    console.print(table)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        with (out / f"{sc.name}-sweep.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        write_json(out / f"{sc.name}-sweep.json", rows)


@sim_app.command("bench")
def bench_command(
    scenario: ScenarioArg,
    policy: Annotated[
        list[str] | None, typer.Option(help="policies (repeatable; default: the scenario's)")
    ] = None,
    requests: Annotated[int, typer.Option(min=1000, help="requests per round")] = 200_000,
    rounds: Annotated[int, typer.Option(min=1, help="interleaved rounds (median)")] = 3,
    json_out: Annotated[Path | None, typer.Option("--json", help="write results as JSON")] = None,
) -> None:
    """Simulated requests per wall-second, beside a bare SimPy skeleton of the same chain."""
    from rich.table import Table

    from edgesplit.sim.bench import bench

    sc = _load(scenario)
    table = Table(title=f"{sc.name}: simulator speed, {requests} requests x {rounds} rounds")
    for col in (
        "policy",
        "edgesplit req/s",
        "skeleton req/s",
        "ratio",
        "s per 1M requests",
        "CPU ratio",
        "CPU s per 1M",
    ):
        table.add_column(col, justify="right")
    results = []
    for pol in policy or [p.name for p in sc.policies]:
        with err_console.status(f"timing {pol}..."):
            r = bench(sc, pol, requests, rounds)
        results.append(r)
        table.add_row(
            pol,
            f"{r['edgesplit_requests_per_s']:,.0f}",
            f"{r['skeleton_requests_per_s']:,.0f}",
            f"{r['ratio_edgesplit_over_skeleton']:.2f}x",
            f"{r['seconds_per_million_requests']:.1f}",
            f"{r['cpu_ratio_edgesplit_over_skeleton']:.2f}x",
            f"{r['cpu_seconds_per_million_requests']:.1f}",
        )
    console.print(table)
    if json_out:
        write_json(json_out, results)


VALIDATE_CASES = ("links", "slow-cloud", "tiers")


@sim_app.command("validate")
def validate_command(
    device: Annotated[str, typer.Option(help="glasses | earbuds | phone")] = "earbuds",
    link: Annotated[
        list[str] | None, typer.Option(help="link profiles: ble | wifi | lte | 5g (repeatable)")
    ] = None,
    policy: Annotated[
        list[str] | None, typer.Option(help="policies to compare (repeatable; default: all)")
    ] = None,
    requests: Annotated[
        int,
        typer.Option(
            min=5,
            help="real requests per policy per round (150: a p95 placed by ~8 requests, not 2; "
            "about 3 min a round for LTE + Wi-Fi + slow cloud)",
        ),
    ] = 150,
    rounds: Annotated[int, typer.Option(min=1, help="interleaved rounds (for the CIs)")] = 3,
    slow_cloud: Annotated[
        bool, typer.Option(help="add the 3 s cloud vs 1 s client timeout case")
    ] = True,
    seed: Annotated[int, typer.Option(help="seed for inputs, emulator and simulator")] = 3,
    max_error: Annotated[float, typer.Option(help="goal: relative error of p50 and p95")] = 0.10,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="write the report as JSON")
    ] = None,
    case: Annotated[
        list[str] | None,
        typer.Option(
            help="cases (repeatable; default all): links (each --link), slow-cloud, tiers "
            "(earbud -> BLE -> real phone hub -> LTE -> cloud, goal 15 %)"
        ),
    ] = None,
) -> None:
    """The real router over the link emulator vs the simulator, in interleaved rounds."""
    from rich.table import Table

    from edgesplit.device.link import LinkProfile
    from edgesplit.device.policy import POLICY_KINDS
    from edgesplit.measuring import raised_priority
    from edgesplit.tiers_cli import TIERS_MAX_ERROR, tiers_case
    from edgesplit.validate import Case, slow_cloud_case, validate

    if device not in ("glasses", "earbuds", "phone"):
        fail(f"--device {device!r}: expected glasses, earbuds or phone")
    for p in policy or []:
        if p not in POLICY_KINDS:
            fail(f"--policy {p!r}: expected one of {', '.join(POLICY_KINDS)}")
    wanted = set(case or VALIDATE_CASES)
    for c in wanted - set(VALIDATE_CASES):
        fail(f"--case {c!r}: expected one of {', '.join(VALIDATE_CASES)}")
    pols = policy or list(POLICY_KINDS)
    try:
        links = (link or ["lte", "wifi"]) if "links" in wanted else []
        cases = [Case(t, LinkProfile.technology(t), pols) for t in links]
    except ValueError as exc:
        fail(str(exc))
    if slow_cloud and "slow-cloud" in wanted:
        cases.append(slow_cloud_case())
    tiers: tuple[dict, bool] | None = None
    with raised_priority() as nice:
        if nice is None:
            err_console.print(
                "note: could not raise the rig's priority (needs root or CAP_SYS_NICE): "
                "background work will show in the real latencies"
            )
        if "tiers" in wanted:  # the three-tier chain (edgesplit/tiers_cli.py)
            tiers = tiers_case(requests, rounds, seed, TIERS_MAX_ERROR)
            tiers[0]["nice"] = nice
            if not cases:
                report_goal(tiers[0], tiers[1], TIERS_MAX_ERROR, json_out)
                return
        with err_console.status("validating...") as status:
            report = validate(device, cases, requests, rounds, seed, log=status.update)
    report["nice"] = nice
    if not report["realtime"]:
        err_console.print(
            "note: could not run the measuring thread under SCHED_FIFO (needs root or "
            "CAP_SYS_NICE, Linux): a busy core may show in the real local answers"
        )
    table = Table(
        title=f"sim vs real: {device}, {rounds} rounds x {requests} requests per policy "
        f"(mean over rounds ± 95% CI; escalation {report['escalation_rate']:.0%})"
    )
    for col in (
        "case",
        "policy",
        "real p50",
        "sim p50",
        "err p50",
        "real p95",
        "sim p95",
        "err p95",
        "sim CDF at real p50 / p95",
    ):
        table.add_column(col, justify="right")
    ok = True
    for r in report["policies"]:
        ok &= r["p50_rel_error"] <= max_error and r["p95_rel_error"] <= max_error
        table.add_row(
            r["case"],
            r["policy"],
            f"{r['real_p50_ms']:.1f}",
            f"{r['sim_p50_ms']:.1f}",
            f"{r['p50_rel_error']:.1%} ± {r['p50_rel_error_ci95']:.1%}",
            f"{r['real_p95_ms']:.1f}",
            f"{r['sim_p95_ms']:.1f}",
            f"{r['p95_rel_error']:.1%} ± {r['p95_rel_error_ci95']:.1%}",
            f"{r['p50_sim_cdf']:.1%} / {r['p95_sim_cdf']:.1%}",
        )
    console.print(table)
    if tiers is not None:
        report["tiers"] = tiers[0]
        ok &= tiers[1]
    report_goal(report, ok, max_error, json_out)


# Three tiers (wearable -> phone -> cloud): sim tiers, tier-sweep, validate-tiers (tiers_cli.py).
from edgesplit.tiers_cli import register as _register_tiers  # noqa: E402

_register_tiers(sim_app)
