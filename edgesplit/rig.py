"""The demo rig: a cloud (in-process, or remote), one link emulator per device, a router per device.

Used by ``edgesplit demo`` (all three devices) and ``edgesplit sim validate`` (one device, one
policy, one link profile at a time). With ``cloud.url`` the rig is the device side alone: no
server in this process, each device's link emulator forwards to the remote cloud (``link_mode``
``full``: the emulator applies the profile's rate, delay, jitter and loss; ``delay``: all but the
rate, which the real network sets, e.g. a ``tbf``-shaped interface; ``off``: no emulator, the
network as it is, and no emulated outage or link switch).

Each device runs in its own worker thread at its own pace (:func:`run_devices`): a device whose
cloud hangs or whose sensor stalls never delays another device's requests.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from edgesplit.device.link import LinkProfile
from edgesplit.device.link_emulator import LinkEmulator
from edgesplit.device.policy import PolicyConfig, RequestCosts, SplitOption
from edgesplit.device.router import Answer, Router, Task
from edgesplit.device.telemetry import TelemetryLog
from edgesplit.errors import ToolMissingError
from edgesplit.streams import Item

if TYPE_CHECKING:
    from edgesplit.sources import Source

LinkMode = Literal["full", "delay", "off"]
LINK_MODES: tuple[str, ...] = ("full", "delay", "off")
API_KEY_ENV = "EDGESPLIT_API_KEY"  # the device's key; the server reads EDGESPLIT_API_KEYS
UNSHAPED_MBPS = 1e5  # "delay" mode: the emulator adds no serialisation of its own

HTTP_OVERHEAD_BYTES = 400  # request line, headers and the OIP JSON header (measured ~350-450)


@dataclass
class DeviceSpec:
    name: str
    task: Callable[[int], Task]  # threads -> task
    items: Callable[[int, int], list[Item]]  # (n, seed) -> items
    links: list[str]  # technologies from the device to the cloud, in order
    policy: str
    deadline_ms: float  # as the scenario files (sim/scenarios/*.yaml)
    cloud_models: tuple[str, ...]
    threshold: float = 0.5  # cascade: escalate below this confidence
    # One request per interval (a sensor's rate): the glasses read a frame a second (the 1 s
    # deadline: one frame in flight), the earbuds take an utterance a second (the bundled
    # stream's speech cadence, 0.6-1.4 s gaps), the phone a typed request every two seconds.
    interval_s: float = 1.0


def _specs() -> dict[str, DeviceSpec]:
    """One device per registered workload plugin (its ``demo`` block)."""
    from edgesplit.device.workloads.registry import plugins

    out = {}
    for p in plugins().values():
        d = p.demo
        out[d.device] = DeviceSpec(
            d.device,
            p.task,
            p.stream,
            list(d.links),
            d.policy,
            d.deadline_ms,
            d.cloud_models,
            threshold=d.threshold,
            interval_s=d.interval_s,
        )
    return out


SPECS = _specs


@dataclass
class CostTracker:
    """The device's running estimates of what a request costs (EWMA of what it observed)."""

    deadline_ms: float
    device_ms: float = 0.0
    cloud_ms: float = 5.0
    request_bytes: float = 0.0
    response_bytes: float = 200.0
    split_head_ms: float = 0.0
    split_index: int | None = None
    split_bytes: float = 0.0
    alpha: float = 0.3

    def _ewma(self, old: float, new: float) -> float:
        return new if old <= 0 else (1 - self.alpha) * old + self.alpha * new

    def update(self, ans: Answer, input_bytes: int) -> None:
        if ans.route == "split":
            self.split_head_ms = self._ewma(self.split_head_ms, ans.device_ms)
            self.split_bytes = self._ewma(self.split_bytes, ans.bytes_up)
        elif ans.route in ("device", "fallback") and not ans.error:
            self.device_ms = self._ewma(self.device_ms, ans.device_ms)
        if ans.server_ms > 0:
            self.cloud_ms = self._ewma(self.cloud_ms, ans.server_ms)
        if ans.bytes_up and ans.route in ("cloud", "device+cloud"):
            self.request_bytes = self._ewma(self.request_bytes, ans.bytes_up)
            self.response_bytes = self._ewma(self.response_bytes, ans.bytes_down)
        if not self.request_bytes:
            self.request_bytes = input_bytes + HTTP_OVERHEAD_BYTES

    def costs(self) -> RequestCosts:
        splits: tuple[SplitOption, ...] = ()
        if self.split_index is not None:
            head = self.split_head_ms or self.device_ms / 2
            splits = (
                SplitOption(
                    self.split_index, head, max(self.device_ms - head, 0.0), int(self.split_bytes)
                ),
            )
        return RequestCosts(
            self.deadline_ms,
            int(self.request_bytes),
            int(self.response_bytes),
            self.device_ms,
            self.cloud_ms,
            splits,
        )


def input_bytes(x: Any) -> int:
    if isinstance(x, np.ndarray):
        return int(x.nbytes)
    return len(str(x).encode())


@dataclass(frozen=True)
class CloudTarget:
    """Where the devices find the cloud. ``url`` None: a server in this process on loopback."""

    url: str | None = None
    api_key: str | None = None  # sent as ``Authorization: Bearer``; default $EDGESPLIT_API_KEY
    ca_cert: Path | None = None  # HTTPS against a private CA; None: the system trust store

    @classmethod
    def from_env(cls, url: str | None, ca_cert: Path | None = None) -> CloudTarget:
        return cls(url, os.environ.get(API_KEY_ENV) or None, ca_cert)


def _emulated(profile: LinkProfile, mode: LinkMode) -> LinkProfile:
    """What the emulator applies: the whole profile, or (``delay``) all but the rate."""
    if mode == "delay":
        return replace(profile, up_mbps=UNSHAPED_MBPS, down_mbps=UNSHAPED_MBPS)
    return profile


@dataclass
class DeviceLoop:
    spec: DeviceSpec
    task: Task
    router: Router
    emulator: LinkEmulator | None  # None: link_mode "off", the network as it is
    costs: CostTracker
    items: list[Item]
    profile: LinkProfile  # the link the device believes it is on (its estimator's prior)
    link_mode: LinkMode = "full"
    source: Source | None = None  # a live or recorded sensor instead of the bundled items
    interval_s: float = 1.0  # one request per interval (the spec's, or the user's)
    next_item: int = 0
    answers: list[dict] = field(default_factory=list)

    def switch_link(self, profile: LinkProfile) -> None:
        """The device moved to another network: the emulator changes, and the OS tells the device
        (as Android's network callbacks do), so its link estimate restarts from the new prior."""
        self.profile = profile
        if self.emulator is not None:
            self.emulator.set_profile(_emulated(profile, self.link_mode))
        self.router.estimator = profile.estimator()

    def cut(self, on: bool) -> None:
        if self.emulator is not None:
            self.emulator.cut(on)

    @property
    def is_cut(self) -> bool:
        return self.emulator is not None and self.emulator.is_cut

    @property
    def exhausted(self) -> bool:
        return self.source is not None and self.source.exhausted

    def take(self, timeout_s: float = 0.5) -> Item | None:
        """The next input: from the sensor source when there is one, else the bundled stream."""
        if self.source is not None:
            return self.source.read(timeout_s)
        item = self.items[self.next_item % len(self.items)]
        self.next_item += 1
        return item

    def step(self, t0: float, item: Item | None = None) -> dict | None:
        """One request; None when the source had nothing to give (a quiet microphone)."""
        if item is None:
            item = self.take()
            if item is None:
                return None
        ans = self.router.handle(
            self.task, item.x, self.costs.costs(), link=self.profile.name, cut=self.is_cut
        )
        self.costs.update(ans, input_bytes(item.x))
        verdict = item.check(ans.label)
        event = asdict(ans) | {
            "device": self.spec.name,
            "policy": self.router.policy.kind,
            "truth": item.truth,
            "correct": None if verdict is None else bool(verdict),
            "source": self.source.name if self.source is not None else "bundled",
            "t_s": time.monotonic() - t0,
        }
        self.answers.append(event)
        return event


class Rig:
    """Context manager: cloud + emulators + routers. ``loops`` maps device name -> DeviceLoop."""

    def __init__(
        self,
        devices: list[str],
        n_items: int,
        seed: int,
        threads: int = 1,
        policy: str | None = None,
        privacy: bool = False,
        threshold: float | None = None,
        telemetry: Path | None = None,
        timeout_s: float = 1.0,
        link_override: dict[str, LinkProfile] | None = None,
        log: Callable[[str], None] = lambda _m: None,
        cloud: CloudTarget | None = None,
        link_mode: LinkMode = "full",
        policies: dict[str, str] | None = None,
        deadlines_ms: dict[str, float] | None = None,
        sources: dict[str, Source] | None = None,
        intervals_s: dict[str, float] | None = None,
    ) -> None:
        self.devices, self.n_items, self.seed, self.threads = devices, n_items, seed, threads
        self.policy, self.privacy, self.threshold = policy, privacy, threshold
        self.telemetry_path, self.timeout_s = telemetry, timeout_s
        self.link_override = link_override or {}
        self.log = log
        self.cloud = cloud or CloudTarget()
        self.link_mode = link_mode
        self.policies, self.deadlines_ms = policies or {}, deadlines_ms or {}
        self.sources = sources or {}
        self.intervals_s = intervals_s or {}
        self.loops: dict[str, DeviceLoop] = {}
        self.server: Any = None
        self.telemetry: TelemetryLog | None = None

    def _cloud_address(self) -> tuple[str, tuple[str, int]]:
        """The cloud's URL and its TCP address."""
        from edgesplit.device.oip_client import OipClient

        if self.cloud.url is None:
            return self.server.url, (self.server.host, self.server.port)
        probe = OipClient(self.cloud.url, ca_cert=self.cloud.ca_cert)
        return self.cloud.url, (probe.host, probe.port)

    def __enter__(self) -> Rig:
        try:
            return self._enter()
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def _enter(self) -> Rig:
        from edgesplit.device.cloud_client import CloudClient
        from edgesplit.device.oip_client import OipClient
        from edgesplit.device.resilience import CircuitBreaker

        specs = SPECS()
        if self.cloud.url is None:
            try:
                from edgesplit.cloud.repository import DEFAULT_REPOSITORY, Repository
                from edgesplit.cloud.serve import ServerThread
            except ImportError as exc:  # a Pi installs the device extra only
                raise ToolMissingError(
                    f"the in-process cloud needs the cloud extra ({exc.name} is missing): run the "
                    "device side against a cloud elsewhere with --cloud URL, or install the "
                    "cloud extra"
                ) from None

            models = sorted({m for d in self.devices for m in specs[d].cloud_models})
            self.log(f"starting the cloud service ({', '.join(models)})...")
            self.server = ServerThread(Repository(DEFAULT_REPOSITORY, models)).__enter__()
        url, address = self._cloud_address()
        self.telemetry = LockedTelemetry(self.telemetry_path) if self.telemetry_path else None
        for i, name in enumerate(self.devices):
            spec = specs[name]
            deadline_ms = self.deadlines_ms.get(name, spec.deadline_ms)
            self.log(f"{name}: preparing inputs and models...")
            profile = self.link_override.get(name) or LinkProfile.chain(
                [LinkProfile.technology(t) for t in spec.links]
            )
            emu = None
            if self.link_mode != "off":
                emu = LinkEmulator(address, _emulated(profile, self.link_mode), self.seed + i)
                emu.start()
            threshold = spec.threshold if self.threshold is None else self.threshold
            cfg = PolicyConfig(
                self.policies.get(name) or self.policy or spec.policy,  # type: ignore[arg-type]
                threshold=threshold,
                privacy=self.privacy,
            )
            # A deadline longer than the default client timeout lengthens the timeout with it
            # (a user who allows the glasses 5 s lets the cloud take that long).
            timeout_s = max(self.timeout_s, deadline_ms / 1e3)
            client = CloudClient(
                url,
                timeout_s=timeout_s,
                retries=1,
                breaker=CircuitBreaker(3, 3.0),
                seed=self.seed + i,
            )
            # The device's own OIP client: the cloud's URL (TLS checks its name) over a TCP
            # connection to this device's link emulator.
            client.oip = OipClient(
                url,
                self.cloud.api_key,
                timeout_s,
                ca_cert=self.cloud.ca_cert,
                connect_to=(emu.host, emu.port) if emu is not None else None,
            )
            estimator = profile.estimator()
            task = spec.task(self.threads)
            items = spec.items(self.n_items, self.seed)
            costs = CostTracker(deadline_ms, split_index=task.split_index)
            local = time.perf_counter()
            task.local(items[0].x)  # warm-up, and the device's first latency estimate
            costs.device_ms = (time.perf_counter() - local) * 1e3
            costs.request_bytes = input_bytes(items[0].x) + HTTP_OVERHEAD_BYTES
            if task.split_head is not None:  # the tensor at the cut, as measured on one input
                tensor = sum(v.nbytes for v in task.split_head(items[0].x).values())
                costs.split_bytes = tensor + HTTP_OVERHEAD_BYTES
            router = Router(cfg, client, estimator, self.telemetry)
            self.loops[name] = DeviceLoop(
                spec,
                task,
                router,
                emu,
                costs,
                items,
                profile,
                self.link_mode,
                self.sources.get(name),
                self.intervals_s.get(name, spec.interval_s),
            )
        return self

    def __exit__(self, *exc: object) -> None:
        for loop in self.loops.values():
            if loop.emulator is not None:
                loop.emulator.stop()
        for source in self.sources.values():
            source.close()
        if self.telemetry is not None:
            self.telemetry.close()
        if self.server is not None:
            self.server.__exit__(None, None, None)


class LockedTelemetry(TelemetryLog):
    """One telemetry file written by every device's worker thread: one line at a time."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        with self._lock:
            super().write(record)


class DeviceWorkers:
    """One thread per device loop, each at its own pace: a request starts every
    ``loop.interval_s`` (or at once when the previous one overran; missed ticks are skipped,
    not bunched). A device that waits on its cloud or its sensor holds only its own thread.

    ``on_event`` is called from the workers; the first exception in a worker stops them all and
    is raised again by :meth:`join`.
    """

    def __init__(
        self,
        loops: dict[str, DeviceLoop],
        t0: float,
        on_event: Callable[[dict], None],
        requests: int | None = None,
        duration_s: float | None = None,
    ) -> None:
        self.loops, self.t0, self.on_event = loops, t0, on_event
        self.requests, self.duration_s = requests, duration_s
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.threads = [
            threading.Thread(target=self._work, args=(loop,), name=f"device-{name}", daemon=True)
            for name, loop in loops.items()
        ]

    def start(self) -> DeviceWorkers:
        for t in self.threads:
            t.start()
        return self

    def _finished(self, loop: DeviceLoop) -> bool:
        if self.requests is not None and len(loop.answers) >= self.requests:
            return True
        if self.duration_s is not None and time.monotonic() - self.t0 >= self.duration_s:
            return True
        return loop.exhausted

    def _work(self, loop: DeviceLoop) -> None:
        next_at = time.monotonic()
        try:
            while not self.stop.is_set() and not self._finished(loop):
                wait = next_at - time.monotonic()
                if wait > 0 and self.stop.wait(wait):
                    return
                next_at = max(next_at + loop.interval_s, time.monotonic())
                item = loop.take()
                if item is None:  # the sensor had nothing (quiet room, no new frame)
                    next_at = time.monotonic()
                    continue
                event = loop.step(self.t0, item)
                if event is not None:
                    self.on_event(event)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread by join()
            self.errors.append(exc)
            self.stop.set()

    @property
    def alive(self) -> bool:
        return any(t.is_alive() for t in self.threads)

    def join(self, timeout_s: float | None = None) -> None:
        for t in self.threads:
            t.join(timeout_s)
        if self.errors:
            raise self.errors[0]
