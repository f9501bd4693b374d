"""Routers for one workload against a real cloud, and ``edgesplit eval``'s measurements.

Both ``edgesplit device run --route`` and ``edgesplit eval`` go through the real
:class:`~edgesplit.device.router.Router` and a real cloud over HTTP, so device-only, cloud-only
and cascade are measured by the same code the demo runs. ``evaluate_workload`` is generic over the
workload registry: it takes each plugin's task and held-out evaluation set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgesplit.device.policy import LinkEstimator, PolicyConfig, PolicyKind, RequestCosts
from edgesplit.device.router import Answer, Router, Task
from edgesplit.device.workloads.registry import EvalSet, Item, WorkloadPlugin
from edgesplit.errors import ConfigError

ROUTES: dict[str, PolicyKind] = {
    "device": "device-only",
    "cloud": "cloud-only",
    "cascade": "cascade",
}
# The router's link prior when the cloud is on a LAN or loopback: it only matters to the
# deadline-aware and split policies, which these commands do not use.
LAN_PRIOR = (100.0, 100.0, 2.0)  # up Mbit/s, down Mbit/s, RTT ms
MAX_LABELS = 50  # per-label accuracy is reported for label sets up to this size
CLOUD_TIMEOUT_S = 30.0  # generous: the first cloud request can build a model on a busy machine


def make_router(
    route: str,
    cloud_url: str | None,
    api_key: str | None,
    threshold: float = 0.5,
    ca_cert: Path | None = None,
) -> Router:
    """A router for ``route`` in device | cloud | cascade; cloud routes need ``cloud_url``."""
    from edgesplit.device.cloud_client import CloudClient

    if route not in ROUTES:
        raise ConfigError(f"--route {route!r}: expected one of {', '.join(ROUTES)}")
    if route != "device" and not cloud_url:
        raise ConfigError(f"--route {route} needs --cloud URL (a running `edgesplit cloud serve`)")
    client = None
    if cloud_url and route != "device":
        client = CloudClient(
            cloud_url, api_key, timeout_s=CLOUD_TIMEOUT_S, retries=1, ca_cert=ca_cert
        )
    return Router(
        PolicyConfig(ROUTES[route], threshold=threshold), client, LinkEstimator(*LAN_PRIOR)
    )


def costs() -> RequestCosts:
    """Costs for policies that do not look at them (device-only, cloud-only, cascade)."""
    return RequestCosts(deadline_ms=1e9, request_bytes=0, response_bytes=0, device_ms=0, cloud_ms=0)


@contextmanager
def local_cloud(models: tuple[str, ...]) -> Iterator[str]:
    """The shipped model repository's ``models`` served on loopback; yields the URL."""
    from edgesplit.cloud.repository import DEFAULT_REPOSITORY, Repository
    from edgesplit.cloud.serve import ServerThread

    with ServerThread(Repository(DEFAULT_REPOSITORY, list(models))) as srv:
        yield srv.url


@dataclass
class RouteStats:
    accuracy: float
    median_ms: float
    p95_ms: float
    escalated: float  # fraction of requests that reached the cloud
    degraded: float  # fraction answered by the device because the cloud could not
    # Accuracy per true label (recall), when the labels are a small set (intents, keywords).
    per_truth: dict[str, float]

    @staticmethod
    def of(answers: list[Answer], items: list[Item]) -> RouteStats:
        ms = np.array([a.total_ms for a in answers])
        right = [it.check(a.label) for a, it in zip(answers, items, strict=True)]
        truths = sorted({it.truth for it in items})
        per_truth = {}
        if len(truths) <= MAX_LABELS:
            for t in truths:
                mine = [r for r, it in zip(right, items, strict=True) if it.truth == t]
                per_truth[t] = float(np.mean(mine))
        return RouteStats(
            accuracy=float(np.mean(right)),
            median_ms=float(np.median(ms)),
            p95_ms=float(np.percentile(ms, 95)),
            escalated=float(np.mean([a.route in ("cloud", "device+cloud") for a in answers])),
            degraded=float(np.mean([a.degraded for a in answers])),
            per_truth=per_truth,
        )


def evaluate_workload(
    plugin: WorkloadPlugin,
    cloud_url: str | None,
    api_key: str | None = None,
    quick: bool = False,
    threads: int = 1,
    log: Callable[[str], None] = lambda _m: None,
    ca_cert: Path | None = None,
) -> dict:
    """Device-only, cascade and cloud-only on the plugin's held-out set, requests interleaved
    (each input through the three routes in turn, in rotating order) so machine drift and
    cache warmth hit every route alike.

    ``cloud_url`` None: the task's cloud model from the shipped repository, served on loopback.
    """
    if not (wl := plugin.workload()).int8_ready():
        log(f"{plugin.name}: building INT8 models...")
    wl.ensure_int8()
    data = plugin.eval_set(quick)
    log(f"{plugin.name}: {len(data.items)} inputs ({data.name})...")
    task: Task = plugin.task(threads)
    if cloud_url is None:
        with local_cloud((task.cloud_model,)) as url:
            return _evaluate(plugin, task, data, url, api_key)
    return _evaluate(plugin, task, data, cloud_url, api_key, ca_cert)


def _evaluate(
    plugin: WorkloadPlugin,
    task: Task,
    data: EvalSet,
    cloud_url: str,
    api_key: str | None,
    ca_cert: Path | None = None,
) -> dict:
    routers = {
        r: make_router(r, cloud_url, api_key, plugin.demo.threshold, ca_cert)
        for r in ("device", "cascade", "cloud")
    }
    task.local(data.items[0].x)  # warm-up: first-call allocations are not a route's latency
    answers: dict[str, list[Answer]] = {r: [] for r in routers}
    order = list(routers)
    for i, item in enumerate(data.items):
        # Rotate which route sees an input first: the first call on a new input pays the cache
        # misses (measured: OCR 25 % slower, KWS 3x), which would otherwise favour later routes.
        for r in order[i % 3 :] + order[: i % 3]:
            answers[r].append(routers[r].handle(task, item.x, costs()))
    stats = {r: RouteStats.of(a, data.items) for r, a in answers.items()}
    dev, cas = stats["device"], stats["cascade"]
    return {
        "workload": plugin.name,
        "device": plugin.demo.device,
        "data": data.name,
        "inputs": len(data.items),
        "cascade_threshold": plugin.demo.threshold,
        "routes": {r: vars(s) for r, s in stats.items()},
        "accuracy_gain_points": 100 * (cas.accuracy - dev.accuracy),
        "median_latency_change_pct": 100 * (cas.median_ms / dev.median_ms - 1),
        "p95_latency_change_pct": 100 * (cas.p95_ms / dev.p95_ms - 1),
    }
