"""The demo rig: the cloud service in-process, one link emulator per device, a router per device.

Used by ``edgesplit demo`` (all three devices) and ``edgesplit sim validate`` (one device, one
policy, one link profile at a time).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgesplit.device.link import LinkProfile
from edgesplit.device.link_emulator import LinkEmulator
from edgesplit.device.policy import PolicyConfig, RequestCosts, SplitOption
from edgesplit.device.router import Answer, Router, Task
from edgesplit.device.telemetry import TelemetryLog
from edgesplit.streams import Item

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


def _specs() -> dict[str, DeviceSpec]:
    from edgesplit import streams
    from edgesplit.device import tasks

    return {
        "glasses": DeviceSpec(
            "glasses",
            tasks.ocr_task,
            streams.glasses_items,
            ["wifi"],
            "deadline-aware",
            1000.0,
            ("glasses-ocr",),
        ),
        "earbuds": DeviceSpec(
            "earbuds",
            tasks.kws_task,
            streams.earbuds_items,
            ["ble", "lte"],
            "cascade",
            500.0,
            ("kws-large", "kws-tail"),
            threshold=0.9,
        ),
        "phone": DeviceSpec(
            "phone",
            tasks.intent_task,
            streams.phone_items,
            ["5g"],
            "cascade",
            300.0,
            ("phone-intent",),
        ),
    }


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


@dataclass
class DeviceLoop:
    spec: DeviceSpec
    task: Task
    router: Router
    emulator: LinkEmulator
    costs: CostTracker
    items: list[Item]
    next_item: int = 0
    answers: list[dict] = field(default_factory=list)

    def switch_link(self, profile: LinkProfile) -> None:
        """The device moved to another network: the emulator changes, and the OS tells the device
        (as Android's network callbacks do), so its link estimate restarts from the new prior."""
        self.emulator.set_profile(profile)
        self.router.estimator = profile.estimator()

    def step(self, t0: float) -> dict:
        item = self.items[self.next_item % len(self.items)]
        self.next_item += 1
        emu = self.emulator
        ans = self.router.handle(
            self.task, item.x, self.costs.costs(), link=emu.profile.name, cut=emu.is_cut
        )
        self.costs.update(ans, input_bytes(item.x))
        event = asdict(ans) | {
            "device": self.spec.name,
            "policy": self.router.policy.kind,
            "truth": item.truth,
            "correct": bool(item.check(ans.label)),
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
    ) -> None:
        self.devices, self.n_items, self.seed, self.threads = devices, n_items, seed, threads
        self.policy, self.privacy, self.threshold = policy, privacy, threshold
        self.telemetry_path, self.timeout_s = telemetry, timeout_s
        self.link_override = link_override or {}
        self.log = log
        self.loops: dict[str, DeviceLoop] = {}

    def __enter__(self) -> Rig:
        from edgesplit.cloud.repository import DEFAULT_REPOSITORY, Repository
        from edgesplit.cloud.serve import ServerThread
        from edgesplit.device.cloud_client import CloudClient
        from edgesplit.device.resilience import CircuitBreaker

        specs = SPECS()
        models = sorted({m for d in self.devices for m in specs[d].cloud_models})
        self.log(f"starting the cloud service ({', '.join(models)})...")
        self.server = ServerThread(Repository(DEFAULT_REPOSITORY, models)).__enter__()
        self.telemetry = TelemetryLog(self.telemetry_path) if self.telemetry_path else None
        for i, name in enumerate(self.devices):
            spec = specs[name]
            self.log(f"{name}: preparing inputs and models...")
            profile = self.link_override.get(name) or LinkProfile.chain(
                [LinkProfile.technology(t) for t in spec.links]
            )
            emu = LinkEmulator((self.server.host, self.server.port), profile, self.seed + i)
            emu.start()
            threshold = spec.threshold if self.threshold is None else self.threshold
            cfg = PolicyConfig(
                self.policy or spec.policy,
                threshold=threshold,  # type: ignore[arg-type]
                privacy=self.privacy,
            )
            client = CloudClient(
                emu.url,
                timeout_s=self.timeout_s,
                retries=1,
                breaker=CircuitBreaker(3, 3.0),
                seed=self.seed + i,
            )
            estimator = profile.estimator()
            task = spec.task(self.threads)
            items = spec.items(self.n_items, self.seed)
            costs = CostTracker(spec.deadline_ms, split_index=task.split_index)
            local = time.perf_counter()
            task.local(items[0].x)  # warm-up, and the device's first latency estimate
            costs.device_ms = (time.perf_counter() - local) * 1e3
            costs.request_bytes = input_bytes(items[0].x) + HTTP_OVERHEAD_BYTES
            if task.split_head is not None:  # the tensor at the cut, as measured on one input
                tensor = sum(v.nbytes for v in task.split_head(items[0].x).values())
                costs.split_bytes = tensor + HTTP_OVERHEAD_BYTES
            router = Router(cfg, client, estimator, self.telemetry)
            self.loops[name] = DeviceLoop(spec, task, router, emu, costs, items)
        return self

    def __exit__(self, *exc: object) -> None:
        for loop in self.loops.values():
            loop.emulator.stop()
        if self.telemetry is not None:
            self.telemetry.close()
        self.server.__exit__(None, None, None)
