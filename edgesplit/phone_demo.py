"""``edgesplit phone demo``: earbuds -> phone hub -> cloud as separate components on emulated links.

The cloud service runs here on loopback behind an emulated LTE link; the phone hub is its own
process (``edgesplit phone serve``) behind an emulated BLE link; three earbuds send held-out KWS
windows in turn: one with the INT8 KWS, one without a model (today's products), and one that
runs the head of the model and sends the activation at the cut (the hub's route finishes it:
``device+cloud``, or ``device+phone`` when the phone finishes it). The run has
three phases: both links up, the LTE link cut (the phone answers, degraded), the BLE link cut
(an earbud with a model answers itself, degraded; the one without cannot). Every request is one
telemetry line (``device/telemetry.py``) with the route (``device``, ``phone``, ``cloud``).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from edgesplit.errors import LinkError

PHASES = ("links up", "LTE cut", "BLE cut")


def run_demo(
    duration_s: float,
    telemetry: Path,
    gap_s: float = 0.3,
    cloud_timeout_s: float = 1.0,
    wearable_timeout_s: float | None = None,
    on_event: Callable[[dict, Counter], None] = lambda _e, _c: None,
) -> Counter:
    """Run the three phases for ``duration_s`` in all; returns counts per (earbud, route, flag).

    An earbud waits for the hub longer than the hub waits for the cloud (default: 2 s more), so
    an LTE outage is answered by the phone, not mistaken for a BLE one."""
    bud_timeout_s = wearable_timeout_s or cloud_timeout_s + 2.0
    from edgesplit.cloud.repository import Repository
    from edgesplit.cloud.serve import ServerThread
    from edgesplit.device.link import LinkProfile
    from edgesplit.device.link_emulator import LinkEmulator
    from edgesplit.device.tasks import kws_head
    from edgesplit.device.telemetry import TelemetryLog
    from edgesplit.device.workloads import get, kws
    from edgesplit.phone_hub import LocalModel, Wearable
    from edgesplit.tier_validate import kws_cloud_repository

    split_feed = get("earbuds-kws").split_feed
    assert split_feed is not None  # the KWS workload has one
    feed = split_feed()
    counts: Counter = Counter()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        cloud = stack.enter_context(ServerThread(Repository(kws_cloud_repository(tmp))))
        lte = stack.enter_context(
            LinkEmulator((cloud.host, cloud.port), LinkProfile.technology("lte"), seed=1)
        )
        hub = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edgesplit.cli",
                "phone",
                "serve",
                "--cloud",
                lte.url,
                "--cloud-link",
                "none",
                "--wearable-link",
                "none",
                "--cloud-timeout-s",
                str(cloud_timeout_s),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        stack.callback(_stop, hub)
        assert hub.stdout is not None
        line = hub.stdout.readline()  # the hub prints its URLs once it listens
        if not line:
            raise LinkError(f"phone hub did not start: {hub.stderr.read() if hub.stderr else ''}")
        info = json.loads(line)
        host, _, port = info["hub"].removeprefix("http://").partition(":")
        ble = stack.enter_context(
            LinkEmulator((host, int(port)), LinkProfile.technology("ble"), seed=2)
        )
        own = LocalModel(kws.model_path("int8"))
        head, _index = kws_head()
        buds = {
            "earbud-kws": Wearable(ble.url, own, bud_timeout_s),
            "earbud-nomodel": Wearable(ble.url, None, bud_timeout_s),
            "earbud-split": Wearable(ble.url, own, bud_timeout_s),  # head here, tail up the chain
        }
        log = stack.enter_context(TelemetryLog(telemetry, fsync=False))
        t0 = time.perf_counter()
        k = 0
        while (now := time.perf_counter() - t0) < duration_s:
            phase = PHASES[min(2, int(3 * now / duration_s))]
            lte.cut(phase == "LTE cut")
            ble.cut(phase == "BLE cut")
            name = list(buds)[k % len(buds)]
            k += 1
            event: dict = {"t_s": round(now, 3), "phase": phase, "wearable": name}
            try:
                if name == "earbud-split":
                    ans = buds[name].infer_split(head, "kws-tail", feed)
                else:
                    ans = buds[name].infer("kws", feed)
                label = kws.labels()[int(ans.outputs["logits"].argmax())]
                event |= {
                    "route": ans.route,
                    "degraded": ans.degraded,
                    "total_ms": round(ans.total_ms, 1),
                    "sent_bytes": ans.sent_bytes,
                    "label": label,
                }
            except LinkError as exc:
                event |= {"route": "none", "degraded": True, "error": str(exc)}
            log.write(event)
            counts[(name, event["route"], "degraded" if event["degraded"] else "ok")] += 1
            on_event(event, counts)
            time.sleep(gap_s)  # the demo's pacing between requests, not a wait on a result
        lte.cut(False)
        ble.cut(False)
    return counts


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
