"""``edgesplit demo``: glasses, earbuds and phone answering their sensors, with a cloud behind.

Three tiers by default: the earbuds reach the cloud through the phone hub (``edgesplit phone
serve``, its own process), each earbud over its own emulated BLE hop and the hub over an emulated
LTE uplink; the hub answers itself or relays (edgesplit/phone_hub.py), and each answer says who
gave it: ``device``, ``phone``, ``cloud``, an escalation (``device+phone``, ``device+cloud``) or a
cut (``device>phone``, ``device>cloud``: the other bud runs the model's head). The glasses go
straight to the cloud over their own Wi-Fi (or through the hub: ``--via-phone glasses``), the
phone over 5G. The cloud service runs in-process on loopback. Mid-run the links are cut (the
phone's uplink first, then the earbuds' hop to it: the tier below answers, flagged degraded) and
the glasses drop from Wi-Fi to LTE (the deadline-aware policy stops sending frames). Every input is
generated from the seed: no camera, microphone, network or external server is needed.

Two hosts: ``--cloud URL`` runs the device side alone against a cloud elsewhere
(``edgesplit cloud serve``, HTTPS with ``--ssl-keyfile/--ssl-certfile``), with the API key from
$EDGESPLIT_API_KEY and ``--ca-cert`` for a private CA. Real sensors: ``--camera``, ``--mic``,
``--serial``, ``--text`` replace a device's bundled stream (edgesplit/sources/). Each device runs
in its own thread at its own pace (edgesplit/rig.DeviceWorkers).
"""

from __future__ import annotations

import ssl
import threading
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
    "phone": "bright_green",
    "cloud": "cyan",
    "device+phone": "bright_blue",
    "device+cloud": "blue",
    "device>phone": "bright_magenta",
    "device>cloud": "magenta",
    "split": "magenta",
    "fallback": "yellow",
}
ROUTE_COLOR = {  # the timeline's colours, route by route
    "device": "tab:green",
    "phone": "tab:olive",
    "cloud": "tab:cyan",
    "device+phone": "tab:brown",
    "device+cloud": "tab:blue",
    "device>phone": "tab:pink",
    "device>cloud": "tab:purple",
    "split": "tab:purple",
    "fallback": "tab:orange",
}


def _link_cell(extra: dict) -> str:
    cut = extra["cut"]
    if not cut:
        return extra["link"]
    return extra["link"] + (" [red](cut)[/]" if cut is True else f" [red]({cut} cut)[/]")


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
            _link_cell(e["extra"]),
            f"[{style}]{e['route']}{' *' if e['degraded'] else ''}[/]",
            f"{e['device_ms']:.1f}",
            f"{e['network_ms']:.1f}",
            f"{e['server_ms']:.1f}",
            f"{e['total_ms']:.1f}",
            f"{e['confidence']:.2f}",
            str(e["label"])[:34],
            "-" if e["correct"] is None else "[green]yes[/]" if e["correct"] else "[red]no[/]",
        )
    return table


def _fraction(verdicts: list[bool | None]) -> float | None:
    """Share of right answers among the scored ones (live inputs have no ground truth)."""
    scored = [v for v in verdicts if v is not None]
    return float(np.mean(scored)) if scored else None


def summarise(events: list[dict]) -> list[dict]:
    out = []
    for device in dict.fromkeys([*DEVICES, *(e["device"] for e in events)]):
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
                "correct_fraction": _fraction([e["correct"] for e in ev]),
                "degraded": sum(e["degraded"] for e in ev),
                "routes": routes,
                "median_ms": float(np.median(lat)),
                "p95_ms": float(np.percentile(lat, 95)),
                "bytes_up": int(sum(e["bytes_up"] for e in ev)),
            }
        )
    return out


def plot_timeline(events: list[dict], windows: dict, path: Path) -> Path | None:
    """Latency over time per device, coloured by route, with the outage shaded. None when
    matplotlib is not installed (a Pi with only the device extra)."""
    try:
        import matplotlib
    except ImportError:
        return None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    devices = list(dict.fromkeys([*DEVICES, *(e["device"] for e in events)]))
    devices = [d for d in devices if any(e["device"] == d for e in events)]
    fig, axes = plt.subplots(
        len(devices), 1, figsize=(8, 2.2 * len(devices) + 0.6), sharex=True, squeeze=False
    )
    for ax, device in zip(axes[:, 0], devices, strict=True):
        ev = [e for e in events if e["device"] == device]
        for route, color in ROUTE_COLOR.items():
            pts = [(e["t_s"], e["total_ms"]) for e in ev if e["route"] == route]
            if pts:
                ax.scatter(*zip(*pts, strict=True), s=12, color=color, label=route)
        if "uplink" in windows:  # three tiers: the phone's uplink cut, then the hop to it
            ax.axvspan(*windows["uplink"], color="orange", alpha=0.12, label="phone uplink cut")
            ax.axvspan(*windows["hop"], color="red", alpha=0.12, label="wearable hop cut")
        elif "outage" in windows:
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


def _per_device(values: list[str] | None, option: str, default_all: bool) -> dict[str, str]:
    """``KIND`` (every device, when ``default_all``) or ``DEVICE=VALUE`` entries -> {device: v}."""
    out: dict[str, str] = {}
    from edgesplit.rig import CUT_EARBUD

    known = (*DEVICES, CUT_EARBUD)
    for v in values or []:
        device, sep, value = v.partition("=")
        if not sep:
            if not default_all:
                fail(f"{option} {v!r}: expected DEVICE=VALUE, e.g. glasses=1500")
            out.update(dict.fromkeys(known, v))
            continue
        if device not in known:
            fail(f"{option} {v!r}: device {device!r} is not one of {', '.join(known)}")
        out[device] = value
    return out


def demo_command(
    duration: Annotated[float, typer.Option(min=1, help="seconds to run")] = 40.0,
    requests: Annotated[
        int | None, typer.Option(min=1, help="stop after this many requests per device")
    ] = None,
    devices: Annotated[
        list[str] | None, typer.Option("--device", help="glasses|earbuds|phone")
    ] = None,
    policy: Annotated[
        list[str] | None,
        typer.Option(
            help="KIND for every device, or DEVICE=KIND (repeatable); KIND: device-only|"
            "cloud-only|cascade|split|deadline-aware (default: deadline-aware glasses, cascade "
            "earbuds/phone)"
        ),
    ] = None,
    deadline: Annotated[
        list[str] | None,
        typer.Option(
            help="DEVICE=MS: a device's deadline (defaults: glasses 1000, earbuds 500, "
            "phone 300 ms, as sim/scenarios)"
        ),
    ] = None,
    interval: Annotated[
        list[str] | None,
        typer.Option(
            help="DEVICE=S: one request every S seconds (defaults: glasses 1, earbuds 1, phone 2)"
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
    cloud: Annotated[
        str | None,
        typer.Option(
            help="the cloud's URL (http[s]://HOST:PORT, from `edgesplit cloud serve`): run the "
            "device side alone against it; API key from $EDGESPLIT_API_KEY"
        ),
    ] = None,
    ca_cert: Annotated[
        Path | None,
        typer.Option(help="PEM CA certificate to trust for an https --cloud (default: system)"),
    ] = None,
    link_emulation: Annotated[
        str,
        typer.Option(
            help="full: emulate each device's link (rate, delay, loss, outages); delay: all but "
            "the rate (the real network shapes it); off: the network as it is, no events"
        ),
    ] = "full",
    camera: Annotated[
        str | None,
        typer.Option(help="glasses input: camera index (0), video file, stream URL, picamera2"),
    ] = None,
    mic: Annotated[
        str | None,
        typer.Option(
            help="earbuds input: a microphone (default, an index or a name) or a WAV "
            "file, gated by VAD"
        ),
    ] = None,
    serial: Annotated[
        str | None,
        typer.Option(help="earbuds input: the sensor MCU's audio features on this serial port"),
    ] = None,
    text: Annotated[
        bool, typer.Option("--text", help="phone input: requests typed on standard input")
    ] = False,
    hub: Annotated[
        bool,
        typer.Option(
            help="three tiers: the earbuds reach the cloud through the phone hub (`edgesplit "
            "phone serve`, its own process) over BLE, the hub over LTE; --no-hub: straight to "
            "the cloud over one folded BLE+LTE link"
        ),
    ] = True,
    via_phone: Annotated[
        list[str] | None,
        typer.Option(
            help="a device that goes through the phone hub (repeatable; default: earbuds); "
            "glasses through it are tethered over BLE at 1.4 Mbit/s instead of their own Wi-Fi"
        ),
    ] = None,
    cut_earbud: Annotated[
        bool,
        typer.Option(
            help="with the hub: the other earbud runs the head of the KWS and sends the cut "
            "(routes device>phone, device>cloud)"
        ),
    ] = True,
    hub_route: Annotated[
        str,
        typer.Option(help="the hub's policy: cascade (answer unless unsure) | cloud | phone"),
    ] = "cascade",
    hub_timeout_s: Annotated[
        float, typer.Option(min=0.01, help="the hub's wait for the cloud per attempt (s)")
    ] = 0.6,
    wearable_timeout_s: Annotated[
        float,
        typer.Option(min=0.01, help="a wearable's wait for the hub (s); longer than the hub's"),
    ] = 1.5,
    seed: Annotated[int, typer.Option(help="seed for every generated input")] = 7,
    threads: Annotated[int, typer.Option(min=1, help="ORT intra-op threads")] = 1,
    headless: Annotated[bool, typer.Option(help="no live view (scripts, CI)")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="write events + summary")] = None,
    out: Annotated[Path, typer.Option(help="directory for telemetry JSONL and the plot")] = Path(
        "edgesplit-demo"
    ),
) -> None:
    """Devices, emulated links and the cloud together: routing, fallback and a summary."""
    from edgesplit.device.errors import EdgesplitError
    from edgesplit.device.policy import POLICY_KINDS
    from edgesplit.device.workloads.registry import plugins
    from edgesplit.phone_hub import HUB_ROUTES
    from edgesplit.rig import CUT_EARBUD, LINK_MODES, CloudTarget, HubSetup, Rig
    from edgesplit.sources import open_sources

    known = list(dict.fromkeys([*DEVICES, *(p.demo.device for p in plugins().values())]))
    names = list(devices or DEVICES)
    for d in names:
        if d not in known:
            fail(f"--device {d!r}: expected one of {', '.join(known)}")
    for d in via_phone or []:
        if d not in known or d == "phone":
            fail(f"--via-phone {d!r}: expected a wearable, one of glasses, earbuds")
    if hub_route not in HUB_ROUTES:
        fail(f"--hub-route {hub_route!r}: expected one of {', '.join(HUB_ROUTES)}")
    hub_setup = None
    if hub:
        carried = [*(via_phone or ["earbuds"]), CUT_EARBUD]
        hub_setup = HubSetup(
            tuple(carried),
            hub_route,
            cloud_timeout_s=hub_timeout_s,
            wearable_timeout_s=max(wearable_timeout_s, hub_timeout_s),
        )
        live_audio = mic is not None or serial is not None  # one microphone, one earbud
        if cut_earbud and "earbuds" in names and "earbuds" in carried and not live_audio:
            names.insert(names.index("earbuds") + 1, CUT_EARBUD)
    policies = _per_device(policy, "--policy", default_all=True)
    for kind in policies.values():
        if kind not in POLICY_KINDS:
            fail(f"--policy {kind!r}: expected one of {', '.join(POLICY_KINDS)}")
    deadlines_ms: dict[str, float] = {}
    for device, ms in _per_device(deadline, "--deadline", default_all=False).items():
        try:
            deadlines_ms[device] = float(ms)
        except ValueError:
            fail(f"--deadline {device}={ms}: expected milliseconds, e.g. {device}=1000")
        if deadlines_ms[device] <= 0:
            fail(f"--deadline {device}={ms}: expected milliseconds > 0")
    intervals_s: dict[str, float] = {}
    for device, sec in _per_device(interval, "--interval", default_all=False).items():
        try:
            intervals_s[device] = float(sec)
        except ValueError:
            fail(f"--interval {device}={sec}: expected seconds, e.g. {device}=0.5")
        if intervals_s[device] < 0:
            fail(f"--interval {device}={sec}: expected seconds >= 0")
    if link_emulation not in LINK_MODES:
        fail(f"--link-emulation {link_emulation!r}: expected one of {', '.join(LINK_MODES)}")
    if ca_cert is not None and not (cloud or "").startswith("https://"):
        fail(f"--ca-cert {ca_cert}: only used with an https:// --cloud URL")
    windows: dict = {}
    if not no_events and link_emulation == "off":
        err_console.print("note: --link-emulation off: no emulated outage or link switch")
    elif not no_events:
        start = duration * 0.35 if outage_at is None else outage_at
        end = start + (duration * 0.2 if outage_for is None else outage_for)
        windows["outage"] = (start, end)
        if hub_setup is not None and any(d in hub_setup.via_phone for d in names):
            # three tiers: the phone's uplink is cut first, then the wearables' hop to it
            windows["uplink"] = (start, (start + end) / 2)
            windows["hop"] = ((start + end) / 2, end)
        windows["switch"] = duration * 0.7 if switch_at is None else switch_at
    sources: dict = {}
    try:
        from edgesplit.device.workloads.registry import by_device

        for d in dict.fromkeys(n for n in names if n != CUT_EARBUD):
            wl = by_device(d).workload()
            if not wl.int8_ready():
                with err_console.status(f"first run: quantising {wl.name} to INT8..."):
                    wl.ensure_int8()  # another process may be building it: wait, don't redo
        sources = open_sources(camera, mic, serial, text, threads)
        for device in sources:
            if device not in names:
                names.append(device)
        target = CloudTarget.from_env(cloud, ca_cert)
        if cloud is not None:
            _check_cloud(target)
        n_items = requests or 12
        telemetry = out / "telemetry.jsonl"
        with (
            err_console.status("starting...") as status,
            Rig(
                names,
                n_items,
                seed,
                threads,
                None,
                privacy,
                telemetry=telemetry,
                log=lambda m: status.update(m),
                cloud=target,
                link_mode=link_emulation,  # type: ignore[arg-type]
                policies=policies,
                deadlines_ms=deadlines_ms,
                sources=sources,
                intervals_s=intervals_s,
                hub=hub_setup,
            ) as rig,
        ):
            status.stop()  # one live display at a time: the request view takes over
            events = _run(rig, names, duration, requests, windows, headless or text)
    except EdgesplitError as exc:
        fail(str(exc))
    finally:
        for src in sources.values():
            src.close()
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
        frac = s["correct_fraction"]
        table.add_row(
            s["device"],
            s["policy"],
            str(s["requests"]),
            "-" if frac is None else f"{frac:.0%}",
            str(s["degraded"]),
            routes,
            f"{s['median_ms']:.1f}",
            f"{s['p95_ms']:.1f}",
            str(s["bytes_up"]),
        )
    console.print(table)
    png = plot_timeline(events, windows, out / "timeline.png")
    err_console.print(f"telemetry: {telemetry}\nplot: {png or 'skipped (no matplotlib)'}")
    if json_out:
        write_json(json_out, {"events": events, "summary": summary, "windows": windows})


def _check_cloud(target) -> None:
    """Fail early, in one line, when the remote cloud cannot be reached or refuses the key."""
    from edgesplit.device.oip_client import OipClient, OipClientError
    from edgesplit.errors import CloudError

    client = OipClient(target.url, target.api_key, timeout_s=10, ca_cert=target.ca_cert)
    try:
        client.get("/v2/health/ready")
        client.get("/v2/models/glasses-ocr")  # needs the key when the cloud has keys
    except OipClientError as exc:
        hint = " (set $EDGESPLIT_API_KEY)" if exc.status in (401, 403) else ""
        raise CloudError(f"--cloud {target.url}: {exc}{hint}") from None
    except ssl.SSLCertVerificationError as exc:
        raise CloudError(
            f"--cloud {target.url}: certificate verify failed ({exc.verify_message}); "
            "pass the cloud's CA with --ca-cert FILE"
        ) from None
    except OSError as exc:
        reason = getattr(exc, "reason", None) or exc
        raise CloudError(f"--cloud {target.url}: cannot reach the cloud ({reason})") from None


def _run(rig, names, duration, requests, windows, headless) -> list[dict]:
    """Each device in its own worker thread; this thread drives the link events and the view."""
    from edgesplit.device.link import LinkProfile
    from edgesplit.rig import DeviceWorkers

    events: list[dict] = []
    lock = threading.Lock()
    t0 = time.monotonic()
    state = {"cut": False, "uplink": False, "hop": False, "switched": False}

    def within(window: str, now: float) -> bool:
        return window in windows and windows[window][0] <= now < windows[window][1]

    def control(now: float) -> str:
        cut, uplink, hop = within("outage", now), within("uplink", now), within("hop", now)
        if (cut, uplink, hop) != (state["cut"], state["uplink"], state["hop"]):
            state.update(cut=cut, uplink=uplink, hop=hop)
            rig.cut_uplink(uplink)
            for loop in rig.loops.values():  # direct links: the whole window; wearables: the hop
                loop.cut(hop if loop.via_phone and "hop" in windows else cut)
        glasses = rig.loops.get("glasses")
        if "switch" in windows and now >= windows["switch"] and not state["switched"]:
            state["switched"] = True
            if glasses is not None and not glasses.via_phone:
                glasses.switch_link(LinkProfile.technology("lte"))
        if uplink:
            status = "[red]phone uplink cut[/] (direct links cut)"
        elif hop:
            status = "[red]wearable hop to the phone cut[/] (direct links cut)"
        else:
            status = "[red]links cut[/]" if cut else "links up"
        switched = state["switched"] and glasses is not None and not glasses.via_phone
        return status + (", glasses on LTE" if switched else "")

    def on_event(e: dict) -> None:
        with lock:
            events.append(e)
        if e["device"] == "phone" and e["source"].startswith("text"):
            console.print(f"phone: {e['label']} ({e['route']}, {e['total_ms']:.0f} ms)")

    control(0.0)  # an outage from t=0 is in place before the first request
    loops = {n: rig.loops[n] for n in names}
    workers = DeviceWorkers(
        loops, t0, on_event, requests, None if requests is not None else duration
    ).start()

    def tick(update) -> None:
        while workers.alive:
            status = control(time.monotonic() - t0)
            with lock:
                snapshot = list(events)
            update(snapshot, status)
            workers.stop.wait(0.05)

    try:
        if headless:
            tick(lambda _e, _s: None)
        else:
            with Live(
                _events_table(events, "starting"), console=console, refresh_per_second=8
            ) as live:
                tick(lambda ev, s: live.update(_events_table(ev, s)))
    except KeyboardInterrupt:
        workers.stop.set()
    workers.join()
    return sorted(events, key=lambda e: e["t_s"])
