"""``edgesplit device ...``: build, benchmark and run the on-device models."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from edgesplit.errors import InputError
from edgesplit.listen import listen_command
from edgesplit.output import console, err_console, fail, write_json

device_app = typer.Typer(help="On-device models: build INT8, benchmark, run.", no_args_is_help=True)

device_app.command("listen")(listen_command)

WorkloadOpt = Annotated[
    str,
    typer.Option(
        "--workload", "-w", help="earbuds-kws | glasses-ocr | phone-intent, or a plugin's"
    ),
]


def _workload(name: str):
    from edgesplit.device import workloads

    try:
        return workloads.get(name)
    except KeyError as exc:
        fail(str(exc.args[0]))


def _guard(fn, *args, **kwargs):
    """Run ``fn`` and turn user-facing errors into a one-line message and exit code 2."""
    from edgesplit.device.errors import EdgesplitError

    try:
        return fn(*args, **kwargs)
    except (EdgesplitError, ValueError, FileNotFoundError) as exc:
        fail(str(exc))


@device_app.command("info")
def info(json_out: Annotated[Path | None, typer.Option("--json")] = None) -> None:
    """CPU model, the ISA flags that decide INT8 speed, ONNX Runtime version and providers."""
    import onnxruntime as ort

    from edgesplit.device.cpuinfo import read_cpuinfo

    cpu = read_cpuinfo()
    doc = {
        "cpu": cpu.to_dict(),
        "onnxruntime": ort.__version__,
        "providers": ort.get_available_providers(),
        "python": platform.python_version(),
    }
    table = Table(title="device", show_header=False)
    table.add_row("machine", cpu.machine)
    table.add_row("cpu", f"{cpu.model} ({cpu.cores} cores)")
    table.add_row("int8 ISA", " ".join(f"{k}={'yes' if v else 'no'}" for k, v in cpu.flags.items()))
    table.add_row("fast int8", "yes" if cpu.fast_int8 else "no (INT8 may be no faster than FP32)")
    table.add_row("onnxruntime", f"{ort.__version__} {doc['providers']}")
    console.print(table)
    if json_out:
        write_json(json_out, doc)


@device_app.command("build")
def build(
    workload: Annotated[str, typer.Option("--workload", "-w", help="a workload, or 'all'")] = "all",
) -> None:
    """Quantise the FP32 models to static QDQ INT8 with this machine's ONNX Runtime."""
    from edgesplit.device import workloads

    selected = workloads.names() if workload == "all" else [workload]
    for name in selected:
        wl = _workload(name)
        with err_console.status(f"quantising {name}..."):
            _guard(wl.build_int8)
        for path in wl.model_files("int8"):
            console.print(f"{name}: {path} ({path.stat().st_size / 1024:.0f} KiB)")


@device_app.command("bench")
def bench(
    workload: WorkloadOpt,
    json_out: Annotated[Path | None, typer.Option("--json", help="write results as JSON")] = None,
    profile: Annotated[
        Path | None,
        typer.Option(help="device profile JSON to write/merge (default: cache/profiles/HOST.json)"),
    ] = None,
    threads: Annotated[int, typer.Option(min=1, help="ORT intra-op threads")] = 1,
    repeats: Annotated[int, typer.Option(min=5, help="timed calls per variant")] = 50,
    quick: Annotated[bool, typer.Option(help="evaluate on a small subset (smoke runs)")] = False,
    rebuild: Annotated[bool, typer.Option(help="re-quantise even if INT8 files exist")] = False,
) -> None:
    """FP32 vs INT8 in one run: size, latency (median, p90, p99), accuracy, and the ratios."""
    from edgesplit.device.bench import bench_document, merge_profile, run_bench
    from edgesplit.device.cpuinfo import read_cpuinfo
    from edgesplit.device.paths import cache_dir

    wl = _workload(workload)
    cpu = read_cpuinfo()
    flags = " ".join(f"{k}={'y' if v else 'n'}" for k, v in cpu.flags.items())
    console.print(
        f"[bold]{wl.name}[/] on {cpu.model} ({cpu.machine}), {threads} thread(s); {flags}"
    )
    if not cpu.fast_int8:
        console.print(
            "[yellow]no int8 dot-product instructions (VNNI/AMX/asimddp): INT8 may be no faster "
            "than FP32 here; expected[/]"
        )
    results, profiles, ratios = _guard(
        run_bench, wl, threads, repeats, quick, rebuild, log=lambda m: err_console.print(m)
    )
    m = wl.metric
    better = "higher" if wl.higher_is_better else "lower"
    table = Table(title=f"{wl.name}: FP32 vs INT8 ({m}: {better} is better)")
    metric_keys = [m, *(k for k in results[0].metrics if k != m)]
    for col in ("variant", "size KiB", "median ms", "p90 ms", "p99 ms", *metric_keys):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(
            r.variant,
            f"{r.model_bytes / 1024:.0f}",
            f"{r.latency.median_ms:.3f}",
            f"{r.latency.p90_ms:.3f}",
            f"{r.latency.p99_ms:.3f}",
            *(f"{r.metrics[k]:.4g}" for k in metric_keys),
        )
    console.print(table)
    if results[0].latency_cases:
        cases = Table(title="latency by input size (ms)")
        for col in ("variant", "case", "median", "p90", "p99"):
            cases.add_column(col, justify="right")
        for r in results:
            for case, st in r.latency_cases.items():
                cases.add_row(
                    r.variant, case, f"{st.median_ms:.2f}", f"{st.p90_ms:.2f}", f"{st.p99_ms:.2f}"
                )
        console.print(cases)
    ratio_table = Table(title="ratios, measured side by side")
    ratio_table.add_column("ratio")
    ratio_table.add_column("value", justify="right")
    for k, v in ratios.items():
        ratio_table.add_row(k, f"{v:+.2f}" if k.endswith("points") else f"{v:.2f}x")
    console.print(ratio_table)
    profile = profile or cache_dir() / "profiles" / f"{platform.node() or 'device'}.json"
    merge_profile(profile, profiles)
    err_console.print(f"device profile: {profile}")
    if json_out:
        write_json(json_out, bench_document(wl, results, ratios, threads))


@device_app.command("run")
def run(
    workload: WorkloadOpt,
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="PNG/JPEG frames (OCR), WAV (KWS), .txt one request a line (intent)"),
    ] = None,
    text: Annotated[
        list[str] | None, typer.Option("--text", help="a typed request (phone-intent); repeatable")
    ] = None,
    route: Annotated[str, typer.Option(help="device | cloud | cascade")] = "device",
    cloud: Annotated[
        str | None,
        typer.Option(help="cloud URL for --route cloud/cascade (key: $EDGESPLIT_API_KEY)"),
    ] = None,
    ca_cert: Annotated[
        Path | None,
        typer.Option(help="PEM CA that signed an https:// --cloud (default: system trust store)"),
    ] = None,
    threshold: Annotated[
        float | None, typer.Option(help="cascade: escalate below this confidence")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="one record per input: file, line, answer, ...")
    ] = None,
    threads: int = 1,
) -> None:
    """Run a workload on files through the real router; one line (and record) per input.

    A bad file gets one line naming it and the problem; the other files are still answered and
    the exit status is 2.
    """
    import os

    from edgesplit.device.workloads.registry import plugin
    from edgesplit.errors import EdgesplitError
    from edgesplit.evaluation import costs, make_router

    if not files and not text:
        fail("give input files and/or --text")
    try:
        p = plugin(workload)
        if text and p.read_text is None:
            fail(f"--text: workload {p.name} takes files ({p.file_types}), not typed text")
        router = make_router(
            route,
            cloud,
            os.environ.get("EDGESPLIT_API_KEY"),
            threshold or p.demo.threshold,
            ca_cert,
        )
        wl = p.workload()
        if not wl.int8_ready():
            with err_console.status("building INT8 models..."):
                wl.ensure_int8()
        task = p.task(threads)
    except EdgesplitError as exc:
        fail(str(exc))
    sources: list[tuple[str, object]] = [("--text", t) for t in text or []]
    sources += [(str(f), f) for f in files or []]
    records: list[dict] = []
    bad = 0
    for name, src in sources:
        try:
            if isinstance(src, Path):
                if not src.is_file():
                    raise InputError(f"{src}: no such file")
                inputs = p.read_file(src)
            else:
                inputs = [p.read_text(str(src))]  # type: ignore[misc]
        except EdgesplitError as exc:
            bad += 1
            typer.echo(f"error: {exc}", err=True)  # one line, never wrapped
            records.append({"file": name, "error": str(exc)})
            continue
        if not inputs:
            typer.echo(f"{name}: no speech detected")
            records.append({"file": name, "answer": None, "note": "no speech detected"})
        for inp in inputs:
            ans = router.handle(task, inp.x, costs())
            where = f" {inp.where}" if inp.where and name != "--text" else ""
            shown = f"{name}{where}: {ans.label!r} ({ans.confidence:.2f}, {ans.route}"
            shown += f", {ans.total_ms:.1f} ms" + (
                f", degraded: {ans.error}" if ans.degraded else ""
            )
            typer.echo(shown + ")")
            records.append(
                {
                    "file": name,
                    "line": inp.where or None,
                    "input": inp.x if isinstance(inp.x, str) else None,
                    "answer": ans.label,
                    "confidence": ans.confidence,
                    "route": ans.route,
                    "degraded": ans.degraded,
                    "error": ans.error,
                    "timings_ms": {
                        "device": ans.device_ms,
                        "network": ans.network_ms,
                        "server": ans.server_ms,
                        "total": ans.total_ms,
                    },
                }
            )
    if json_out:
        write_json(json_out, {"workload": p.name, "route": route, "records": records})
    if bad:
        fail(f"{bad} of {len(sources)} inputs could not be read (see above)")
