"""Measuring a rig on a shared machine: what the device would see, not what its neighbours cost.

``sim validate`` times the real router against the simulator on one machine that also runs the
cloud, the link emulators and other people's work. Two helpers keep that from showing up as the
device's latency: the rig's priority (a device runs its pipeline above background work) and a
wait, before each timed request, for the rig's other threads to go quiet (a device does not share
its CPU with the cloud).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import numpy as np

PRIORITY_NICE = -10  # the rig's priority while it measures (the health process's, cloud/)
# The measuring thread's real-time priority: low among SCHED_FIFO levels (1-99), under the audio
# servers' data threads a device also runs (PipeWire's default RT priority is 88, rtkit's cap 20
# for clients), and above every normal-priority process, which is the point.
REALTIME_PRIORITY = 10


@contextmanager
def raised_priority(nice: int = PRIORITY_NICE) -> Iterator[int | None]:
    """Run the rig (device, emulators, cloud; the phone hub inherits it) at ``nice`` while it
    measures, as a device runs its audio/inference pipeline above background work: a nice-0
    process keeping a core busy otherwise preempts the device path for a scheduler slice
    (4-6 ms local answers among 1 ms ones), rarely enough that a percentile sitting on them
    swings by 50 % between runs. Yields the nice value in force, or None where the OS refused
    (not root, no CAP_SYS_NICE): the run goes on at the old priority. Restored afterwards."""
    try:
        old = os.getpriority(os.PRIO_PROCESS, 0)
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    except (OSError, AttributeError):
        yield None
        return
    try:
        yield nice
    finally:
        with suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, old)


@contextmanager
def realtime_thread(priority: int = REALTIME_PRIORITY) -> Iterator[bool]:
    """Run the calling thread under SCHED_FIFO at ``priority`` while it measures, as a device runs
    its audio/inference thread at real-time priority (PipeWire, JACK): at nice -10 the device
    path still waited in the run queue behind a nice-0 process busy on its core, rarely (2 of
    1 356 local answers, each by 1.2 ms, under one busy core), but a cascade's p50 sits on its
    slowest local answers, so one such wait moved that p50 by 45 %. Only this thread: threads it
    starts inherit the policy, so enter once the rig's threads exist; they stay at the normal
    policy. The thread sleeps between requests, and Linux keeps 5 % of each second for
    normal tasks (``sched_rt_runtime_us``) should it not. Yields whether the OS allowed it (root
    or CAP_SYS_NICE, Linux); restored afterwards."""
    try:
        old_policy, old_param = os.sched_getscheduler(0), os.sched_getparam(0)
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, AttributeError):
        yield False
        return
    try:
        yield True
    finally:
        with suppress(OSError):
            os.sched_setscheduler(0, old_policy, old_param)


class Settle:
    """Waits, before each timed request, until the rig's other threads have stopped running.

    The rig runs the cloud server and the link emulators as threads of this process: their work
    after an answer (the server finishing a response, an emulator closing a connection) holds the
    interpreter lock and a core for a few ms, and a device request started then waits for it
    (local answers 20 ms after an escalation were 15 % slower at the median than 20 ms after a
    local answer; 200 ms after, no slower). A device does not share its CPU with the cloud, and the
    simulator does not model that wait, so each timed request starts once the other threads have
    used under ``busy_fraction`` of a core for ``quiet_ms`` and none is runnable (read from each
    thread's ``/proc/self/task/*/schedstat`` and ``stat``), or after ``max_ms``. Linux only;
    elsewhere it returns."""

    def __init__(self, quiet_ms: float = 2.0, max_ms: float = 100.0, busy_fraction: float = 0.05):
        self.quiet_s, self.max_s, self.busy_fraction = quiet_ms / 1e3, max_ms / 1e3, busy_fraction
        self.waited_ms: list[float] = []
        self.timeouts = 0

    @staticmethod
    def _others() -> tuple[int, bool] | None:
        """The other threads' CPU time so far (ns) and whether any is runnable now: a thread
        waiting for a core has not used CPU yet (its schedstat moves only once it runs), so on a
        busy machine CPU time alone can look quiet while work is still queued."""
        me, total, runnable = threading.get_native_id(), 0, False
        try:
            tids = os.listdir("/proc/self/task")
        except OSError:
            return None
        for tid in tids:
            if int(tid) == me:
                continue
            try:
                with open(f"/proc/self/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
                with open(f"/proc/self/task/{tid}/stat") as f:
                    runnable |= f.read().rpartition(")")[2].split()[0] == "R"
            except (OSError, ValueError, IndexError):  # a thread that just ended
                continue
        return total, runnable

    def __call__(self) -> None:
        t0 = time.perf_counter()
        first = self._others()
        if first is None:
            return
        window = [(t0, first[0])]
        while True:
            time.sleep(0.0005)
            now, (cpu, runnable) = time.perf_counter(), self._others() or (0, False)
            window.append((now, cpu))
            while len(window) > 1 and now - window[1][0] >= self.quiet_s:
                window.pop(0)
            t_then, cpu_then = window[0]
            if (
                now - t_then >= self.quiet_s
                and not runnable
                and cpu - cpu_then <= self.busy_fraction * (now - t_then) * 1e9
            ):
                break
            if now - t0 >= self.max_s:
                self.timeouts += 1
                break
        self.waited_ms.append((time.perf_counter() - t0) * 1e3)

    def summary(self) -> dict:
        w = np.array(self.waited_ms or [0.0])
        return {
            "settles": len(self.waited_ms),
            "waited_ms_p50": float(np.median(w)),
            "waited_ms_p95": float(np.percentile(w, 95)),
            "waited_max_out": self.timeouts,
        }
