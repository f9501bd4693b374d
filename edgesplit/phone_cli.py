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


def default_models() -> tuple[dict, dict[str, str]]:
    """The phone's models by the name wearables ask for, and the cloud's name for each: the FP32
    KWS (``kws``: the cloud's ``kws-small``; ``kws-large``: what the earbuds' router escalates,
    the phone's KWS standing in for the cloud's ensemble) and the tail of a cut KWS."""
    from edgesplit.device.workloads import kws
    from edgesplit.phone_hub import KwsOnPhone, LocalModel, kws_tail_model

    phone_kws = LocalModel(kws.model_path("fp32"))
    on_phone = KwsOnPhone(phone_kws)  # stands in for every cloud KWS model the earbuds call
    models = {
        "kws": phone_kws,
        "kws-large": on_phone,
        "kws-embed": on_phone,
        "kws-embed-opus": on_phone,
        "kws-tail": kws_tail_model(),
    }
    return models, {"kws": "kws-small", "kws-large": "kws-large", "kws-tail": "kws-tail"}


def _address(value: str, option: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        fail(f"{option} {value!r}: expected HOST:PORT")
    return host, int(port)


@phone_app.command("serve")
def serve_command(
    cloud: Annotated[
        str | None,
        typer.Option(
            help="the cloud's OIP URL (http[s]://HOST:PORT); API key from $EDGESPLIT_API_KEY"
        ),
    ] = None,
    route: Annotated[
        str,
        typer.Option(
            help="default route: phone (answer here) | cloud (relay; the phone answers when the "
            "cloud cannot) | cascade (answer here unless unsure, then the cloud)"
        ),
    ] = "cloud",
    threshold: Annotated[
        float, typer.Option(min=0, max=1, help="cascade: relay below this confidence")
    ] = 0.8,
    model: Annotated[
        list[str] | None,
        typer.Option(help="NAME=ONNX the phone runs (default: kws, kws-large and kws-tail)"),
    ] = None,
    cloud_model: Annotated[
        list[str] | None,
        typer.Option(help="NAME=the cloud's model (default kws=kws-small, kws-large, kws-tail)"),
    ] = None,
    cloud_link: Annotated[
        str, typer.Option(help="emulated phone->cloud link: " + " | ".join(LINKS))
    ] = "lte",
    wearable_link: Annotated[
        str, typer.Option(help="emulated wearable->phone link: " + " | ".join(LINKS))
    ] = "ble",
    cloud_via: Annotated[
        str | None,
        typer.Option(
            help="HOST:PORT to reach the cloud through (e.g. a link emulator run elsewhere); the "
            "URL still names the cloud"
        ),
    ] = None,
    ca_cert: Annotated[
        Path | None, typer.Option(help="PEM CA to trust for an https --cloud (default: system)")
    ] = None,
    cloud_timeout_s: Annotated[
        float, typer.Option(min=0.001, help="each cloud attempt's timeout (s)")
    ] = 1.0,
    retries: Annotated[int, typer.Option(min=0, max=10, help="cloud retries per request")] = 0,
    port: Annotated[int, typer.Option(min=0, max=65535, help="hub port (0: any free)")] = 0,
    seed: Annotated[int, typer.Option(help="seed of the link emulators")] = 0,
) -> None:
    """Serve until Ctrl-C; prints one JSON line with the URLs wearables and tools should use."""
    import os

    from edgesplit.device.link import LinkProfile
    from edgesplit.device.link_emulator import LinkEmulator
    from edgesplit.device.oip_client import OipClient
    from edgesplit.errors import EdgesplitError
    from edgesplit.phone_hub import HUB_ROUTES, LocalModel, PhoneHub

    if route not in HUB_ROUTES:
        fail(f"--route {route!r}: expected one of {', '.join(HUB_ROUTES)}")
    for opt, val in (("--cloud-link", cloud_link), ("--wearable-link", wearable_link)):
        if val not in LINKS:
            fail(f"{opt} {val!r}: expected one of {', '.join(LINKS)}")
    if ca_cert is not None and not ca_cert.is_file():
        fail(f"--ca-cert {ca_cert}: no such file")
    via = _address(cloud_via, "--cloud-via") if cloud_via else None
    try:
        if model:
            models: dict = {}
            for name, path in _pairs(model, "--model").items():
                if not Path(path).is_file():
                    fail(f"--model {name}={path}: no such ONNX file")
                models[name] = LocalModel(Path(path))
            names = _pairs(cloud_model or [], "--cloud-model")
        else:
            models, names = default_models()
            names |= _pairs(cloud_model or [], "--cloud-model")
        with contextlib.ExitStack() as stack:
            connect_to = via
            if cloud:
                probe = OipClient(cloud)  # checks the URL: one error line when it is not one
                connect_to = via or (probe.host, probe.port)
                if cloud_link != "none":
                    emu = LinkEmulator(connect_to, LinkProfile.technology(cloud_link), seed)
                    stack.enter_context(emu)
                    connect_to = (emu.host, emu.port)
            hub = stack.enter_context(
                PhoneHub(
                    models,
                    cloud,
                    route,  # type: ignore[arg-type]
                    names,
                    cloud_timeout_s,
                    port=port,
                    retries=retries,
                    threshold=threshold,
                    connect_to=connect_to,
                    api_key=os.environ.get("EDGESPLIT_API_KEY") or None,
                    ca_cert=ca_cert,
                )
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
                "cloud": cloud,
                "cloud_via": f"{connect_to[0]}:{connect_to[1]}" if connect_to else None,
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
    except EdgesplitError as exc:
        fail(str(exc))


@phone_app.command("demo")
def demo_command(
    duration: Annotated[float, typer.Option(min=3, help="seconds to run")] = 30.0,
    headless: Annotated[bool, typer.Option(help="no live view, only the summary")] = False,
    out: Annotated[Path, typer.Option(help="directory for telemetry JSONL and the plot")] = Path(
        "edgesplit-demo"
    ),
) -> None:
    """Earbuds -> phone hub -> cloud alone: `edgesplit demo --device earbuds` (an alias)."""
    from edgesplit.demo import demo_command as main_demo

    main_demo(duration=duration, devices=["earbuds"], headless=headless, out=out)
