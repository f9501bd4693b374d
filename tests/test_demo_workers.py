"""One device, one worker: a device whose cloud hangs does not delay another device's requests."""

from __future__ import annotations

import threading
import time

import numpy as np

from edgesplit.rig import DeviceWorkers, Rig


def test_a_hanging_cloud_holds_only_its_own_device(kws_workload, intent_workload):
    # The earbuds send everything to the cloud, whose link is cut: each request hangs until the
    # client's 10 s timeout. The phone answers locally, one request every 0.2 s.
    with Rig(
        ["earbuds", "phone"],
        8,
        seed=3,
        policies={"earbuds": "cloud-only", "phone": "device-only"},
        deadlines_ms={"earbuds": 10_000},
        intervals_s={"earbuds": 0.2, "phone": 0.2},
    ) as rig:
        rig.loops["earbuds"].cut(True)
        phone_done = threading.Event()
        events: list[dict] = []

        def on_event(e: dict) -> None:
            events.append(e)
            if sum(x["device"] == "phone" for x in events) >= 10:
                phone_done.set()

        t0 = time.monotonic()
        workers = DeviceWorkers(rig.loops, t0, on_event).start()
        # 60 s: far beyond 10 paced requests even on a loaded machine; the phone needs ~2 s.
        assert phone_done.wait(60), "the phone stopped answering while the earbuds hung"
        hung_for_s = time.monotonic() - t0
        workers.stop.set()
        rig.loops["earbuds"].cut(False)  # the hung connection is dropped: the worker ends
        workers.join(30)
    phone = [e for e in events if e["device"] == "phone"]
    starts = np.array([e["t_s"] - e["total_ms"] / 1e3 for e in phone])
    gaps = np.diff(starts)
    # Its own pace: a request every 0.2 s. The budget is generous for a loaded 2-core machine,
    # and still far below the 10 s a shared loop would have waited on the earbuds' timeout.
    assert np.median(gaps) < 0.5 and gaps.max() < 3.0, gaps
    assert hung_for_s < 10  # the ten phone requests were all answered inside one cloud timeout
    earbuds = [e for e in events if e["device"] == "earbuds"]
    assert len(earbuds) <= 1  # the earbuds were still waiting on their first request


def test_a_worker_error_stops_the_run_and_is_raised(intent_workload):
    """A source or task that fails raises in the caller, not silently in a thread."""
    with Rig(["phone"], 4, seed=1, policies={"phone": "device-only"}) as rig:
        loop = rig.loops["phone"]

        def broken(_x):
            raise RuntimeError("sensor unplugged")

        loop.task.local = broken
        workers = DeviceWorkers(rig.loops, time.monotonic(), lambda e: None, requests=3).start()
        try:
            workers.join(30)
        except RuntimeError as exc:
            assert "sensor unplugged" in str(exc)
        else:
            raise AssertionError("the worker's error was lost")
