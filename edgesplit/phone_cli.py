"""``edgesplit phone serve``: the phone hub between wearables and the cloud, on emulated links."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from edgesplit.output import fail

phone_app = typer.Typer(help="Phone hub: wearables -> phone -> cloud.", no_args_is_help=True)
LINKS = ("ble", "wifi", "lte", "5g", "none")


def _pairs(items: list[str], option: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            fail(f"{option} {item!r}: expected NAME=VALUE")
        out[name] = value
    return out


@phone_app.command("serve")
def serve_command(
    cloud: Annotated[
        str | None, typer.Option(help="the cloud's OIP URL (e.g. http://127.0.0.1:8000)")
    ] = None,
    route: Annotated[str, typer.Option(help="default route: phone | cloud")] = "cloud",
    model: Annotated[
        list[str] | None,
        typer.Option(help="NAME=ONNX the phone runs (default: kws, the FP32 KWS, and kws-tail)"),
    ] = None,
    cloud_model: Annotated[
        list[str] | None,
        typer.Option(help="NAME=the cloud's model (default kws=kws-small, kws-tail)"),
    ] = None,
    cloud_link: Annotated[
        str, typer.Option(help="emulated phone->cloud link: " + " | ".join(LINKS))
    ] = "lte",
    wearable_link: Annotated[
        str, typer.Option(help="emulated wearable->phone link: " + " | ".join(LINKS))
    ] = "ble",
    cloud_timeout_s: Annotated[float, typer.Option(min=0.001, help="wait for the cloud (s)")] = 1.0,
    port: Annotated[int, typer.Option(min=0, max=65535, help="hub port (0: any free)")] = 0,
    seed: Annotated[int, typer.Option(help="seed of the link emulators")] = 0,
) -> None:
    """Serve until Ctrl-C; prints one JSON line with the URLs wearables and tools should use."""
    from edgesplit.device.link import LinkProfile
    from edgesplit.device.link_emulator import LinkEmulator
    from edgesplit.device.workloads import kws
    from edgesplit.phone_hub import LocalModel, PhoneHub, kws_tail_model

    if route not in ("phone", "cloud"):
        fail(f"--route {route!r}: expected phone or cloud")
    for opt, val in (("--cloud-link", cloud_link), ("--wearable-link", wearable_link)):
        if val not in LINKS:
            fail(f"{opt} {val!r}: expected one of {', '.join(LINKS)}")
    paths = _pairs(model or [], "--model") or {"kws": str(kws.model_path("fp32"))}
    names = _pairs(cloud_model or [], "--cloud-model") or {
        "kws": "kws-small",
        "kws-tail": "kws-tail",
    }
    models = {}
    for name, path in paths.items():
        if not Path(path).is_file():
            fail(f"--model {name}={path}: no such ONNX file")
        models[name] = LocalModel(Path(path))
    if not model:  # the default: also finish a KWS cut on the earbud (earbud head > phone tail)
        models["kws-tail"] = kws_tail_model()
    with contextlib.ExitStack() as stack:
        cloud_url = cloud
        if cloud and cloud_link != "none":
            host, _, port_s = cloud.removeprefix("http://").rstrip("/").partition(":")
            if not port_s.isdigit():
                fail(f"--cloud {cloud!r}: expected http://HOST:PORT")
            emu = LinkEmulator((host, int(port_s)), LinkProfile.technology(cloud_link), seed)
            cloud_url = stack.enter_context(emu).url
        hub = stack.enter_context(
            PhoneHub(models, cloud_url, route, names, cloud_timeout_s, port=port)  # type: ignore[arg-type]
        )
        wearable_url = hub.url
        if wearable_link != "none":
            emu = LinkEmulator(
                (hub.host, hub.port), LinkProfile.technology(wearable_link), seed + 1
            )
            wearable_url = stack.enter_context(emu).url
        info = {
            "hub": hub.url,
            "wearables_connect_to": wearable_url,
            "cloud_via": cloud_url,
            "wearable_link": wearable_link,
            "cloud_link": cloud_link if cloud else None,
            "route": route,
            "models": sorted(models),
        }
        typer.echo(json.dumps(info), nl=True)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
        typer.echo(json.dumps({"stats": vars(hub.stats)}))


@phone_app.command("demo")
def demo_command(
    duration: Annotated[float, typer.Option(min=3, help="seconds in all (three phases)")] = 30.0,
    telemetry: Annotated[Path, typer.Option(help="JSON lines, one per request")] = Path(
        "out/phone-demo.jsonl"
    ),
    headless: Annotated[bool, typer.Option(help="no live table, only the summary")] = False,
) -> None:
    """Earbuds -> BLE -> phone hub (own process) -> LTE -> cloud, with LTE then BLE cut."""
    from rich.live import Live
    from rich.table import Table

    from edgesplit.output import console
    from edgesplit.phone_demo import run_demo

    def table(counts: object, last: dict | None) -> Table:
        t = Table(title="earbuds -> phone hub -> cloud" + (f" ({last['phase']})" if last else ""))
        for c in ("earbud", "route", "answer", "requests"):
            t.add_column(c, justify="right")
        for (bud, route, flag), n in sorted(counts.items()):  # type: ignore[attr-defined]
            t.add_row(bud, route, flag, str(n))
        return t

    if headless:
        counts = run_demo(duration, telemetry)
    else:
        with Live(table({}, None), console=console, refresh_per_second=4) as live:
            counts = run_demo(duration, telemetry, on_event=lambda e, c: live.update(table(c, e)))
    console.print(table(counts, None))
    console.print(f"telemetry: {telemetry}")
