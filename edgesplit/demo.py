"""``edgesplit demo``: glasses, earbuds and phone answering their sensors, with a cloud behind.

The cloud service runs in-process on loopback; each device reaches it through a user-space link
emulator (Wi-Fi for the glasses, BLE + LTE for the earbuds, 5G for the phone) and routes each
request with its policy. Mid-run the links are cut (offline fallback: every request is still
answered, flagged degraded) and the glasses drop from Wi-Fi to LTE (the deadline-aware policy
stops sending frames). Every input is generated from the seed: no camera, microphone, network or
external server is needed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.live import Live
from rich.table import Table

from edgesplit.output import console, err_console, fail, write_json

DEVICES = ("glasses", "earbuds", "phone")
ROUTE_STYLE = {
    "device": "green",
    "cloud": "cyan",
    "device+cloud": "blue",
    "split": "magenta",
    "fallback": "yellow",
}


def _events_table(events: list[dict], status: str) -> Table:
    table = Table(title=f"edgesplit demo: {status}", expand=False)
    for col in (
        "t s",
        "device",
        "link",
        "route",
        "device ms",
        "net ms",
        "cloud ms",
        "total ms",
        "conf",
        "answer",
        "ok",
    ):
        table.add_column(col, overflow="fold")
    for e in events[-16:]:
        style = ROUTE_STYLE.get(e["route"], "white")
        table.add_row(
            f"{e['t_s']:.1f}",
            e["device"],
            e["extra"]["link"] + (" [red](cut)[/]" if e["extra"]["cut"] else ""),
            f"[{style}]{e['route']}{' *' if e['degraded'] else ''}[/]",
            f"{e['device_ms']:.1f}",
            f"{e['network_ms']:.1f}",
            f"{e['server_ms']:.1f}",
            f"{e['total_ms']:.1f}",
            f"{e['confidence']:.2f}",
            str(e["label"])[:34],
            "[green]yes[/]" if e["correct"] else "[red]no[/]",
        )
    return table


def summarise(events: list[dict]) -> list[dict]:
    out = []
    for device in DEVICES:
        ev = [e for e in events if e["device"] == device]
        if not ev:
            continue
        lat = np.array([e["total_ms"] for e in ev])
        routes: dict[str, int] = {}
        for e in ev:
            routes[e["route"]] = routes.get(e["route"], 0) + 1
        out.append(
            {
                "device": device,
                "workload": ev[0]["workload"],
                "policy": ev[0]["policy"],
                "requests": len(ev),
                "correct_fraction": float(np.mean([e["correct"] for e in ev])),
                "degraded": sum(e["degraded"] for e in ev),
                "routes": routes,
                "median_ms": float(np.median(lat)),
                "p95_ms": float(np.percentile(lat, 95)),
                "bytes_up": int(sum(e["bytes_up"] for e in ev)),
            }
        )
    return out


def plot_timeline(events: list[dict], windows: dict, path: Path) -> Path:
    """Latency over time per device, coloured by route, with the outage shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    devices = [d for d in DEVICES if any(e["device"] == d for e in events)]
    fig, axes = plt.subplots(
        len(devices), 1, figsize=(8, 2.2 * len(devices) + 0.6), sharex=True, squeeze=False
    )
    colors = {
        "device": "tab:green",
        "cloud": "tab:cyan",
        "device+cloud": "tab:blue",
        "split": "tab:purple",
        "fallback": "tab:orange",
    }
    for ax, device in zip(axes[:, 0], devices, strict=True):
        ev = [e for e in events if e["device"] == device]
        for route, color in colors.items():
            pts = [(e["t_s"], e["total_ms"]) for e in ev if e["route"] == route]
            if pts:
                ax.scatter(*zip(*pts, strict=True), s=12, color=color, label=route)
        if "outage" in windows:
            ax.axvspan(*windows["outage"], color="red", alpha=0.12, label="link cut")
        if "switch" in windows:
            ax.axvline(windows["switch"], color="grey", ls="--", lw=1)
        ax.set_yscale("log")
        ax.set_ylabel(f"{device}\nms (log)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right", ncol=3)
    axes[-1, 0].set_xlabel("time since start (s); dashed: glasses Wi-Fi -> LTE")
    fig.suptitle("edgesplit demo: where each request ran, and how long it took")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def demo_command(
    duration: Annotated[float, typer.Option(min=1, help="seconds to run")] = 40.0,
    requests: Annotated[
        int | None, typer.Option(min=1, help="stop after this many requests per device")
    ] = None,
    devices: Annotated[
        list[str] | None, typer.Option("--device", help="glasses|earbuds|phone")
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option(
            help="one policy for all devices: device-only|cloud-only|cascade|split|"
            "deadline-aware (default: deadline-aware glasses, cascade earbuds/phone)"
        ),
    ] = None,
    privacy: Annotated[bool, typer.Option(help="privacy mode: nothing leaves the devices")] = False,
    outage_at: Annotated[
        float | None, typer.Option(help="cut the links at this second (default: 35% of the run)")
    ] = None,
    outage_for: Annotated[
        float | None, typer.Option(help="outage length in s (default: 20% of the run)")
    ] = None,
    switch_at: Annotated[
        float | None,
        typer.Option(help="glasses Wi-Fi -> LTE at this second (default: 70% of the run)"),
    ] = None,
    no_events: Annotated[
        bool, typer.Option("--no-events", help="no outage and no link switch")
    ] = False,
    seed: Annotated[int, typer.Option(help="seed for every generated input")] = 7,
    threads: Annotated[int, typer.Option(min=1, help="ORT intra-op threads")] = 1,
    headless: Annotated[bool, typer.Option(help="no live view (scripts, CI)")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="write events + summary")] = None,
    out: Annotated[Path, typer.Option(help="directory for telemetry JSONL and the plot")] = Path(
        "edgesplit-demo"
    ),
) -> None:
    """Devices, emulated links and the cloud together: routing, fallback and a summary."""
    from edgesplit.device import workloads
    from edgesplit.device.errors import EdgesplitError
    from edgesplit.device.policy import POLICY_KINDS
    from edgesplit.rig import Rig

    names = devices or list(DEVICES)
    for d in names:
        if d not in DEVICES:
            fail(f"--device {d!r}: expected one of {', '.join(DEVICES)}")
    if policy is not None and policy not in POLICY_KINDS:
        fail(f"--policy {policy!r}: expected one of {', '.join(POLICY_KINDS)}")
    windows: dict = {}
    if not no_events:
        start = duration * 0.35 if outage_at is None else outage_at
        windows["outage"] = (start, start + (duration * 0.2 if outage_for is None else outage_for))
        windows["switch"] = duration * 0.7 if switch_at is None else switch_at
    try:
        for name in ("glasses-ocr", "earbuds-kws", "phone-intent"):
            wl = workloads.get(name)
            if not wl.int8_ready():
                with err_console.status(f"first run: quantising {name} to INT8..."):
                    wl.build_int8()
        n_items = requests or 12
        telemetry = out / "telemetry.jsonl"
        with (
            err_console.status("starting...") as status,
            Rig(
                names,
                n_items,
                seed,
                threads,
                policy,
                privacy,
                telemetry=telemetry,
                log=lambda m: status.update(m),
            ) as rig,
        ):
            status.stop()  # one live display at a time: the request view takes over
            events = _run(rig, names, duration, requests, windows, headless)
    except EdgesplitError as exc:
        fail(str(exc))
    summary = summarise(events)
    table = Table(title="summary: every request answered")
    for col in (
        "device",
        "policy",
        "requests",
        "correct",
        "degraded",
        "routes",
        "median ms",
        "p95 ms",
        "bytes up",
    ):
        table.add_column(col, justify="right")
    for s in summary:
        routes = " ".join(f"{k}:{v}" for k, v in s["routes"].items())
        table.add_row(
            s["device"],
            s["policy"],
            str(s["requests"]),
            f"{s['correct_fraction']:.0%}",
            str(s["degraded"]),
            routes,
            f"{s['median_ms']:.1f}",
            f"{s['p95_ms']:.1f}",
            str(s["bytes_up"]),
        )
    console.print(table)
    png = plot_timeline(events, windows, out / "timeline.png")
    err_console.print(f"telemetry: {telemetry}\nplot: {png}")
    if json_out:
        write_json(json_out, {"events": events, "summary": summary, "windows": windows})


def _run(rig, names, duration, requests, windows, headless) -> list[dict]:
    from edgesplit.device.link import LinkProfile

    events: list[dict] = []
    t0 = time.monotonic()
    state = {"cut": False, "switched": False}

    def control(now: float) -> str:
        if "outage" in windows:
            cut = windows["outage"][0] <= now < windows["outage"][1]
            if cut != state["cut"]:
                state["cut"] = cut
                for loop in rig.loops.values():
                    loop.emulator.cut(cut)
        if "switch" in windows and now >= windows["switch"] and not state["switched"]:
            state["switched"] = True
            if "glasses" in rig.loops:
                rig.loops["glasses"].switch_link(LinkProfile.technology("lte"))
        return ("[red]links cut[/]" if state["cut"] else "links up") + (
            ", glasses on LTE" if state["switched"] else ""
        )

    def done() -> bool:
        if requests is not None:
            return all(len(rig.loops[n].answers) >= requests for n in names)
        return time.monotonic() - t0 >= duration

    def one_round(status_cb) -> None:
        for n in names:
            if requests is not None and len(rig.loops[n].answers) >= requests:
                continue
            status = control(time.monotonic() - t0)
            events.append(rig.loops[n].step(t0))
            status_cb(status)

    if headless:
        while not done():
            one_round(lambda s: None)
    else:
        with Live(_events_table(events, "starting"), console=console, refresh_per_second=8) as live:
            while not done():
                one_round(lambda s: live.update(_events_table(events, s)))
    return events
