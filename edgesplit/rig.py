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

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

import numpy as np

from edgesplit.device.flow import Route
from edgesplit.device.link import LinkProfile
from edgesplit.device.link_emulator import LinkEmulator
from edgesplit.device.policy import PolicyConfig, RequestCosts, SplitOption
from edgesplit.device.router import Answer, Router, Task
from edgesplit.device.telemetry import TelemetryLog
from edgesplit.errors import LinkError, ToolMissingError
from edgesplit.phone_hub import RouteClient
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


CUT_EARBUD = "earbuds-cut"  # the other bud of the pair: runs the model's head, sends the cut


@dataclass(frozen=True)
class HubSetup:
    """Three tiers: the phone hub (``edgesplit phone serve``, its own process) between the
    wearables in ``via_phone`` and the cloud. The rig runs each wearable's hop to the phone (its
    first link, e.g. BLE) and the phone's ``uplink`` to the cloud as link emulators, so either
    hop can be cut. The hub answers itself or relays by ``route`` (``cascade``: relay below
    ``threshold``), giving the cloud ``cloud_timeout_s`` per attempt; a wearable gives the hub
    ``wearable_timeout_s``, longer, so a cut uplink is answered by the phone, not taken for a cut
    hop to it."""

    via_phone: tuple[str, ...] = ("earbuds", CUT_EARBUD)
    route: str = "cascade"
    threshold: float = 0.8
    cloud_timeout_s: float = 0.6
    wearable_timeout_s: float = 1.5
    uplink: str = "lte"  # the phone's link to the cloud (docs/REFERENCE.md: LTE profile)


TETHER_MBPS = 1.4  # glasses to phone: BLE 2M PHY + DLE (Memfault; docs/REFERENCE.md)


def _tether(name: str, specs: dict[str, DeviceSpec]) -> LinkProfile:
    """A wearable's hop to the phone: BLE; at 1.4 Mbit/s for a device whose own radio is not
    BLE (glasses with Wi-Fi, tethered), the 200 kbit/s default for earbuds."""
    if specs[name].links[0] == "ble":
        return LinkProfile.technology("ble")
    return LinkProfile.technology("ble", up_mbps=TETHER_MBPS, down_mbps=TETHER_MBPS)


def _cut_earbud_spec(earbuds: DeviceSpec) -> DeviceSpec:
    """The earbuds with the split policy: head on the bud, the tensor at the cut to the phone,
    which finishes it or relays it to the cloud's tail. Deadline 3 s: the [64, 25, 5] float32
    activation takes ~1.3 s over 200 kbit/s BLE (the "naive splits rarely win" of
    docs/REFERENCE.md), and the client's timeout follows the deadline."""
    return replace(earbuds, name=CUT_EARBUD, policy="split", deadline_ms=3000.0)


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

    # When the device's whole model last ran (time.monotonic s): the device estimate ages while
    # every request goes to the cloud (DeviceLoop probes it again after ``probe_every_s``).
    device_measured_s: float = 0.0

    def observe_device(self, ms: float, now_s: float | None = None) -> None:
        """One run of the device's whole model took ``ms``."""
        self.device_ms = self._ewma(self.device_ms, ms)
        self.device_measured_s = time.monotonic() if now_s is None else now_s

    def device_stale(self, every_s: float, now_s: float | None = None) -> bool:
        now_s = time.monotonic() if now_s is None else now_s
        return now_s - self.device_measured_s >= every_s

    def update(self, ans: Answer, input_bytes: int) -> None:
        if ans.route == "split":
            self.split_head_ms = self._ewma(self.split_head_ms, ans.device_ms)
            self.split_bytes = self._ewma(self.split_bytes, ans.bytes_up)
        elif (
            ans.route in ("device", "fallback", "device+cloud")
            and ans.device_ms > 0
            and "split_index" not in ans.extra  # a split that fell back ran head + whole
        ):
            # The whole model ran here: on its own, as a fallback, before an escalation, or as
            # the hedge beside a slow cloud; each run refreshes the estimate the hedge uses.
            self.observe_device(ans.device_ms)
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
    # Three tiers: the device reaches the cloud through the phone hub (its emulator is then the
    # wearable's own hop, e.g. BLE; ``uplink`` the phone's, shared by the hub's wearables).
    via_phone: bool = False
    uplink: LinkEmulator | None = None
    telemetry: TelemetryLog | None = None
    # While every request goes to the cloud the device's own latency is measured again this
    # often (s), after the answer, so the deadline-aware hedge starts the device at the right time.
    probe_every_s: float = 10.0

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

    def cut_state(self) -> str | bool:
        """Which hop is cut: False, True (a direct link), or the hop's name through the phone."""
        if not self.via_phone:
            return self.is_cut
        if self.is_cut:
            return self.spec.links[0]
        if self.uplink is not None and self.uplink.is_cut:
            return self.spec.links[-1]
        return False

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
        box: dict[str, Any] = {}
        client = self.router.client
        if isinstance(client, RouteClient):
            client.box = box  # the hub says which tier answered
        ans = self.router.handle(
            self.task, item.x, self.costs.costs(), link=self.profile.name, cut=self.cut_state()
        )
        self.costs.update(ans, input_bytes(item.x))
        route, tier, degraded = tier_route(ans, box if self.via_phone else None)
        verdict = item.check(ans.label)
        event = asdict(ans) | {
            "route": route,
            "tier": tier,
            "degraded": degraded,
            "router_route": str(ans.route),
            "device": self.spec.name,
            "policy": self.router.policy.kind,
            "truth": item.truth,
            "correct": None if verdict is None else bool(verdict),
            "source": self.source.name if self.source is not None else "bundled",
            "t_s": time.monotonic() - t0,
        }
        if tier != "device" and self.costs.device_stale(self.probe_every_s):
            probe = time.perf_counter()  # after the answer: no request waits for it
            self.task.local(item.x)
            event["probe_device_ms"] = (time.perf_counter() - probe) * 1e3
            self.costs.observe_device(event["probe_device_ms"])
        if self.telemetry is not None:
            self.telemetry.write(event)
        self.answers.append(event)
        return event


def tier_route(ans: Answer, hub: dict[str, Any] | None) -> tuple[str, str, bool]:
    """(route, tier that answered, degraded) of an answer; ``hub`` is what the phone hub said
    (None: the device talks to the cloud directly, and the router's route stands).

    Through the hub: ``phone`` / ``cloud`` (the whole input went up), ``device+phone`` /
    ``device+cloud`` (the device was unsure and escalated), ``device>phone`` / ``device>cloud``
    (a cut: the device ran the head, the phone or the cloud the tail); ``device`` and ``fallback``
    as directly. A hub that answered itself because its cloud did not is flagged degraded."""
    remote = ans.route in Route.remote()
    if not remote:
        return str(ans.route), "device", ans.degraded
    if hub is None or "route" not in hub:
        return str(ans.route), "cloud", ans.degraded
    tier = str(hub["route"])
    route = {Route.CLOUD: tier, Route.ESCALATED: f"device+{tier}"}.get(ans.route, f"device>{tier}")
    return route, tier, ans.degraded or bool(hub.get("degraded"))


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
        hub: HubSetup | None = None,
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
        self.hub = hub
        self.uplink: LinkEmulator | None = None  # the phone's link to the cloud
        self.hub_process: subprocess.Popen | None = None
        self.hub_log: IO[str] | None = None
        self.hub_url: str | None = None

    def via_phone(self, device: str) -> bool:
        return self.hub is not None and device in self.hub.via_phone

    def _start_hub(self, cloud_url: str, via: tuple[str, int] | None) -> None:
        """``edgesplit phone serve`` as its own process; its URL is read in :meth:`_hub_ready`."""
        assert self.hub is not None
        args = [
            *("--cloud", cloud_url, "--cloud-link", "none", "--wearable-link", "none"),
            *("--route", self.hub.route, "--threshold", str(self.hub.threshold)),
            *("--cloud-timeout-s", str(self.hub.cloud_timeout_s)),
        ]
        if via is not None:
            args += ["--cloud-via", f"{via[0]}:{via[1]}"]
        if self.cloud.ca_cert is not None:
            args += ["--ca-cert", str(self.cloud.ca_cert)]
        self.log("starting the phone hub (its own process)...")
        # Its errors go to a file, not a pipe nobody drains while the demo runs (a full pipe
        # would block the hub); read back when it fails to start.
        self.hub_log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in __exit__
        self.hub_process = subprocess.Popen(
            [sys.executable, "-m", "edgesplit.cli", "phone", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=self.hub_log,
            text=True,
        )

    def _hub_ready(self) -> str:
        """The hub's URL, once it listens (it prints one JSON line then)."""
        if self.hub_url is None:
            proc = self.hub_process
            assert proc is not None and proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                proc.wait(timeout=30)
                err = ""
                if self.hub_log is not None:
                    self.hub_log.seek(0)
                    err = self.hub_log.read()
                raise LinkError(f"the phone hub did not start: {err.strip()[-300:]}")
            self.hub_url = str(json.loads(line)["hub"])
        return self.hub_url

    def cut_uplink(self, on: bool) -> None:
        """Cut (or restore) the phone's link to the cloud."""
        if self.uplink is not None:
            self.uplink.cut(on)

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
        if "earbuds" in specs:
            specs[CUT_EARBUD] = _cut_earbud_spec(specs["earbuds"])
        hub_devices = [d for d in self.devices if self.via_phone(d)]
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
        if hub_devices and self.link_mode != "off":
            # The phone's uplink first, so the hub starts while the cloud loads its models; the
            # emulator connects to the cloud once it knows where it is.
            assert self.hub is not None
            uplink = LinkProfile.technology(self.hub.uplink)
            self.uplink = LinkEmulator(("127.0.0.1", 0), _emulated(uplink, self.link_mode))
            self.uplink.start()
            if self.cloud.url is None:
                self._start_hub(self.uplink.url, None)
            else:
                self._start_hub(self.cloud.url, (self.uplink.host, self.uplink.port))
        if self.cloud.url is None:
            models = sorted({m for d in self.devices for m in specs[d].cloud_models})
            self.log(f"starting the cloud service ({', '.join(models)})...")
            # The cloud loads its models while the devices prepare theirs (startup time).
            starting: dict[str, Any] = {}
            cloud_up = threading.Thread(
                target=_enter_server,
                args=(lambda: ServerThread(Repository(DEFAULT_REPOSITORY, models)), starting),
                name="cloud-start",
                daemon=True,
            )
            cloud_up.start()
            try:
                prepared = self._prepare(specs)
            finally:
                cloud_up.join()
                self.server = starting.get("server")
            if "error" in starting:
                raise starting["error"]
        else:
            prepared = self._prepare(specs)
        url, address = self._cloud_address()
        if self.uplink is not None:
            self.uplink.target = address
        elif hub_devices:  # no emulation: the hub talks to the cloud as it is
            self._start_hub(url, None)
        self.telemetry = LockedTelemetry(self.telemetry_path) if self.telemetry_path else None
        for i, name in enumerate(self.devices):
            spec = specs[name]
            deadline_ms = self.deadlines_ms.get(name, spec.deadline_ms)
            profile = self.link_override.get(name) or LinkProfile.chain(
                [LinkProfile.technology(t) for t in spec.links]
            )
            via_phone = self.via_phone(name)
            target_url, target = url, address
            if via_phone:  # the device's own hop reaches the hub; the hub's uplink the cloud
                assert self.hub is not None
                spec = replace(spec, links=["ble", self.hub.uplink])
                profile = self.link_override.get(name) or LinkProfile.chain(
                    [_tether(name, specs), LinkProfile.technology(self.hub.uplink)]
                )
                target_url = self._hub_ready()
                hub_client = OipClient(target_url)
                target = (hub_client.host, hub_client.port)
            emu = None
            if self.link_mode != "off":
                own = _tether(name, specs) if via_phone else profile
                emu = LinkEmulator(target, _emulated(own, self.link_mode), self.seed + i)
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
            connect_to = (emu.host, emu.port) if emu is not None else None
            client: CloudClient
            if via_phone:
                assert self.hub is not None
                # Longer than the hub's own wait for the cloud (and its model after it).
                timeout_s = max(timeout_s, self.hub.wearable_timeout_s)
                client = RouteClient(
                    target_url,
                    timeout_s=timeout_s,
                    retries=1,
                    breaker=CircuitBreaker(3, 3.0),
                    seed=self.seed + i,
                    connect_to=connect_to,
                )
            else:
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
                    connect_to=connect_to,
                )
            estimator = profile.estimator()
            task, items, warm_ms = prepared[name]
            costs = CostTracker(deadline_ms, split_index=task.split_index)
            costs.observe_device(warm_ms)
            costs.request_bytes = input_bytes(items[0].x) + HTTP_OVERHEAD_BYTES
            if task.split_head is not None:  # the tensor at the cut, as measured on one input
                tensor = sum(v.nbytes for v in task.split_head(items[0].x).values())
                costs.split_bytes = tensor + HTTP_OVERHEAD_BYTES
            router = Router(cfg, client, estimator)  # the loop writes the telemetry line
            self.loops[name] = loop = DeviceLoop(
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
                via_phone=via_phone,
                uplink=self.uplink if via_phone else None,
                telemetry=self.telemetry,
            )
            if name == CUT_EARBUD:  # the other bud of the pair hears the same stream, later on
                loop.next_item = len(items) // 2
        return self

    def _prepare(self, specs: dict[str, DeviceSpec]) -> dict[str, tuple[Task, list[Item], float]]:
        """Each device's task, its inputs, and one warm-up run's time (its first estimate, ms).
        The pair of earbuds shares one generated stream."""
        out: dict[str, tuple[Task, list[Item], float]] = {}
        streams: dict[str, list[Item]] = {}
        for name in self.devices:
            self.log(f"{name}: preparing inputs and models...")
            spec = specs[name]
            task = spec.task(self.threads)
            stream = "earbuds" if name == CUT_EARBUD else name
            if stream not in streams:
                streams[stream] = spec.items(self.n_items, self.seed)
            items = streams[stream]
            local = time.perf_counter()
            task.local(items[0].x)  # warm-up, and the device's first latency estimate
            out[name] = (task, items, (time.perf_counter() - local) * 1e3)
        return out

    def __exit__(self, *exc: object) -> None:
        for loop in self.loops.values():
            if loop.emulator is not None:
                loop.emulator.stop()
        if self.hub_process is not None:
            end_process(self.hub_process)
            self.hub_process = None
        if self.hub_log is not None:
            self.hub_log.close()
            self.hub_log = None
        if self.uplink is not None:
            self.uplink.stop()
        for source in self.sources.values():
            source.close()
        if self.telemetry is not None:
            self.telemetry.close()
        if self.server is not None:
            self.server.__exit__(None, None, None)


def _enter_server(make: Callable[[], Any], into: dict[str, Any]) -> None:
    """Load and start a ServerThread; the started server or the error lands in ``into``."""
    try:
        into["server"] = make().__enter__()
    except BaseException as exc:  # noqa: BLE001 - raised again by the thread that waits
        into["error"] = exc


def end_process(proc: subprocess.Popen) -> None:
    """Stop a process this rig started (SIGTERM, then SIGKILL after 30 s) and reap it."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


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
