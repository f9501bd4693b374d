"""Parameter sweeps: a grid of scenario overrides x policies x replications, run on Dask.

Each task simulates one (grid point, policy, seed) and returns flat metrics; replications are
aggregated into a mean and a Student-t 95 % confidence interval. The cluster is a LocalCluster
on this machine unless a scheduler address is given (``tcp://host:8786``) to go past it.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Iterator
from typing import Any

from edgesplit.sim.scenario import ScenarioError, parse_scenario

METRICS = (
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "mean_ms",
    "deadline_miss_rate",
    "energy_mj_per_request",
    "battery_hours",
    "expected_accuracy",
    "bytes_out_per_request",
    "cloud_cost_usd",
)


def parse_param(spec: str) -> tuple[str, list[Any]]:
    """``links.0.up_mbps=1,10,100`` -> ("links.0.up_mbps", [1, 10, 100])."""
    import yaml

    path, sep, values = spec.partition("=")
    if not sep or not path or not values:
        raise ScenarioError(
            f"--param {spec!r}: expected FIELD=V1,V2,... (e.g. links.0.up_mbps=1,10)"
        )
    return path.strip(), [yaml.safe_load(v) for v in values.split(",")]


def set_field(doc: dict, path: str, value: Any) -> dict:
    """A copy of ``doc`` with the dotted ``path`` set; list items by index (``links.0.up_mbps``)."""
    out = copy.deepcopy(doc)
    node: Any = out
    keys = path.split(".")
    for i, key in enumerate(keys[:-1]):
        try:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        except (IndexError, ValueError):
            raise ScenarioError(
                f"--param {path}: no item {'.'.join(keys[: i + 1])!r} in the scenario"
            ) from None
        if not isinstance(node, dict | list):
            raise ScenarioError(
                f"--param {path}: {'.'.join(keys[: i + 1])!r} is a value, not a section"
            )
    if isinstance(node, list):
        raise ScenarioError(f"--param {path}: the last part must be a field name")
    node[keys[-1]] = value
    return out


def grid(doc: dict, params: list[tuple[str, list[Any]]]) -> Iterator[tuple[dict, dict]]:
    """(overrides, scenario doc) for every combination of the parameters' values."""
    names = [p for p, _ in params]
    for combo in itertools.product(*(values for _, values in params)):
        point = dict(zip(names, combo, strict=True))
        d = doc
        for path, value in point.items():
            d = set_field(d, path, value)
        yield point, d


def run_point(doc: dict, policy: str, seed: int, requests: int | None) -> dict[str, float]:
    """One replication of one grid point (runs on a Dask worker)."""
    from edgesplit.sim.model import simulate
    from edgesplit.sim.report import summarise

    sc = parse_scenario(doc, "sweep point")
    s = summarise(simulate(sc, policy, seed, requests))
    done = max(1, s["completed"])
    return {
        "p50_ms": s["latency_ms"]["p50"],
        "p95_ms": s["latency_ms"]["p95"],
        "p99_ms": s["latency_ms"]["p99"],
        "mean_ms": s["latency_ms"]["mean"],
        "deadline_miss_rate": s["deadline_miss_rate"],
        "energy_mj_per_request": s["energy_j"]["per_request"] * 1e3,
        "battery_hours": s["battery_hours"],
        "expected_accuracy": s["expected_accuracy"],
        "bytes_out_per_request": s["bytes_leaving_device"] / done,
        "cloud_cost_usd": s["cloud_cost_usd"],
    }


def confidence_interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its Student-t interval (0 with one replication)."""
    from scipy import stats

    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return mean, 0.0
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)


def sweep(
    doc: dict,
    params: list[tuple[str, list[Any]]],
    policies: list[str],
    replications: int,
    requests: int | None,
    scheduler: str | None = None,
    workers: int | None = None,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> list[dict]:
    """Run the grid on Dask; one row per (point, policy) with mean and CI of every metric."""
    from distributed import Client, LocalCluster, as_completed

    points = list(grid(doc, params))
    for point, d in points:  # fail before starting a cluster if any point is invalid
        parse_scenario(d, f"sweep point {point}")
    base_seed = int(doc.get("seed", 0))
    tasks = [
        (i, pol, base_seed + r)
        for i in range(len(points))
        for pol in policies
        for r in range(replications)
    ]
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
    client = Client(scheduler or cluster)
    try:
        futures = {
            client.submit(run_point, points[i][1], pol, seed, requests, pure=False): (i, pol)
            for i, pol, seed in tasks
        }
        results: dict[tuple[int, str], list[dict]] = {}
        for done, fut in enumerate(as_completed(futures), 1):
            results.setdefault(futures[fut], []).append(fut.result())
            on_progress(done, len(tasks))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    rows = []
    for (i, pol), reps in sorted(
        results.items(), key=lambda kv: (kv[0][0], policies.index(kv[0][1]))
    ):
        row: dict[str, Any] = dict(points[i][0]) | {"policy": pol, "replications": len(reps)}
        for m in METRICS:
            mean, half = confidence_interval([r[m] for r in reps])
            row[m], row[f"{m}_ci95"] = mean, half
        rows.append(row)
    return rows
