"""Overload, unknown-model soak, start-up and worker-scaling runs against a real server process.

Each returns a dict of measured figures and ratios (side by side in one run); the criteria of
issue 12 are evaluated by :func:`verdicts` so the CLI and the tests report the same thing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np
from edgesplit.cloud.bench import free_tcp_port
from edgesplit.cloud.config import ModelConfig, load_config
from edgesplit.cloud.loadgen import (
    NAME_SLOT,
    Driver,
    DriveResult,
    HealthProbe,
    ProbeProcess,
    ServerUnderTest,
    binary_body,
    drive,
    http_request,
    raw_exchange,
)
from edgesplit.cloud.repository import DEFAULT_REPOSITORY

KWS_PATH = "/v2/models/kws-large/infer"


def _kws_request() -> bytes:
    x = np.random.default_rng(0).normal(0, 5, (1, 1, 49, 10)).astype(np.float32)
    body, hdrs = binary_body({"mfcc": x})
    return http_request("POST", KWS_PATH, body, hdrs)


def _summary(r: DriveResult) -> dict[str, Any]:
    return {
        "clients": r.clients,
        "duration_s": round(r.duration_s, 2),
        "goodput_rps": round(r.goodput_rps, 1),
        "p50_ms": round(r.p(50), 2),
        "p99_ms": round(r.p(99), 2),
        "server_p50_ms": round(r.server_p(50), 2),
        "server_p99_ms": round(r.server_p(99), 2),
        "statuses": {str(k): v for k, v in sorted(r.statuses.items())},
        "connection_errors": r.connection_errors,
    }


class _Probes:
    """Health probers on the health port and the main port, started once for a whole run (a
    process start right before a window would weigh on it)."""

    def __init__(self, srv: ServerUnderTest) -> None:
        assert srv.health_port is not None
        self.srv = srv
        self.health, self.main = ProbeProcess(srv.health_port), ProbeProcess(srv.port)

    def run(self, fn: Callable[[], DriveResult]) -> tuple[DriveResult, dict]:
        with (
            HealthProbe(self.srv.port, self.health) as h,
            HealthProbe(self.srv.port, self.main) as m,
        ):
            res = fn()
        return res, {
            "health_port_p99_ms": round(h.p99_ms(), 2),
            "main_port_p99_ms": round(m.p99_ms(), 2),
            "health_failures": h.failures,
        }

    def close(self) -> None:
        self.health.close()
        self.main.close()


# The server under overload runs above the load driver and other work on this machine, as an
# inference server is its machine's main tenant and its clients are elsewhere: at the same
# priority the load driver (1-2 cores' worth of asyncio at 10x overload) and any background job
# take the cores in scheduler slices, and an admitted request waits those slices out in the queue.
SERVER_NICE = -10


def shipped_config(model: str = "kws-large") -> ModelConfig:
    """``model``'s config in the shipped repository (the overload runs change only its queue)."""
    return load_config(DEFAULT_REPOSITORY / model / "config.yaml")


def run_overload(
    queue: int = 32,
    factor: int = 10,
    window_s: float = 1.5,
    rounds: int = 9,
    retry_caps_s: tuple[float, ...] = (10.0, 0.05),
    warmup_s: float = 0.5,
    log: Callable[[str], None] = lambda _m: None,
    server_nice: int | None = SERVER_NICE,
) -> dict[str, Any]:
    """kws-large with ``max_queue_size`` = queue: one client (unloaded), queue clients
    (saturation) and ``factor`` x queue clients honouring Retry-After (capped at each of
    ``retry_caps_s``), interleaved in ``rounds`` so a shared machine's load drifts weigh on every
    side alike; each window counts answers after a warm-up (connections open and the queue
    full). Medians over rounds are reported; ratios and bounds are per round, then the median.

    Admitted latency is reported twice: on the client's clock (what a client sees, including
    the load driver's own waits for a core) and on the server's (its response header: from the
    request's headers to its answer, queue included)."""
    # Unbatched, as the load-time probe decides for kws-large on this CPU in most starts: pinned,
    # so that a noisy probe cannot change the capacity (queue + instances x batch) between runs.
    models = {"kws-large": {"max_queue_size": queue, "dynamic_batching": None}}
    request = _kws_request()
    n = factor * queue
    out: dict[str, Any] = {"model": "kws-large", "max_queue_size": queue, "clients": n}
    out["server_nice"] = server_nice
    runs: dict[str, list[dict[str, Any]]] = {"unloaded": [], "saturation": []}
    with (
        ServerUnderTest(models, health_port=True, nice=server_nice) as srv,
        Driver() as driver,
    ):
        probes = _Probes(srv)
        instances = shipped_config().instances  # admitted = queue + instances running

        def window(clients: int, cap: float = 1.0) -> dict[str, Any]:
            cpu0 = srv.cpu_s()
            res, h = probes.run(
                lambda: driver.drive(srv.port, request, clients, window_s, cap, warmup_s=warmup_s)
            )
            cpu_s = srv.cpu_s() - cpu0
            time.sleep(0.3)  # let what the window left queued finish before the next one
            row = _summary(res) | h
            # Answers per CPU-second the server got: steady when other processes take cores.
            row["server_cpu_s"] = round(cpu_s, 3)
            row["goodput_per_cpu_s"] = round(res.ok / max(cpu_s, 1e-3), 1)
            return row

        sides = ["saturation", *(f"retry_cap_{c:g}s" for c in retry_caps_s)]
        try:
            for r in range(rounds):
                log(f"overload round {r + 1}/{rounds}: unloaded, saturation, {n} clients...")
                unloaded = window(1)
                runs["unloaded"].append(unloaded)
                got: dict[str, dict[str, Any]] = {}
                for side in sides[r % len(sides) :] + sides[: r % len(sides)]:  # rotate order
                    if side == "saturation":
                        got[side] = window(queue)
                    else:
                        got[side] = window(n, float(side.split("_")[-1].rstrip("s")))
                sat = got.pop("saturation")
                runs["saturation"].append(sat)
                drain_ms = (queue + instances) / max(sat["goodput_rps"], 1e-9) * 1e3
                for side, row in got.items():
                    row["goodput_over_saturation"] = round(
                        row["goodput_rps"] / max(sat["goodput_rps"], 1e-9), 3
                    )
                    row["goodput_per_cpu_over_saturation"] = round(
                        row["goodput_per_cpu_s"] / max(sat["goodput_per_cpu_s"], 1e-9), 3
                    )
                    # Does overload add latency for the admitted, beyond a full queue's own?
                    row["p99_over_saturation_p99"] = round(
                        row["p99_ms"] / max(sat["p99_ms"], 1e-9), 3
                    )
                    row["server_p99_over_saturation_p99"] = round(
                        row["server_p99_ms"] / max(sat["server_p99_ms"], 1e-9), 3
                    )
                    row["drain_ms"] = round(drain_ms, 1)
                    row["admitted_p99_bound_ms"] = round(2 * unloaded["p99_ms"] + drain_ms, 1)
                    row["server_admitted_p99_bound_ms"] = round(
                        2 * unloaded["server_p99_ms"] + drain_ms, 1
                    )
                    # The same bound with the queue drained at this window's own rate (reported,
                    # not judged: a slower overload would loosen it; goodput judges that).
                    own_ms = (queue + instances) / max(row["goodput_rps"], 1e-9) * 1e3
                    row["admitted_p99_bound_own_rate_ms"] = round(
                        2 * unloaded["p99_ms"] + own_ms, 1
                    )
                    runs.setdefault(side, []).append(row)
        finally:
            probes.close()
    out["rounds"] = runs
    for key, rows in runs.items():  # medians over rounds (ratios: median of per-round ratios)
        med = {
            k: float(np.median([row[k] for row in rows]))
            for k in rows[0]
            if isinstance(rows[0][k], int | float)
        }
        if "goodput_over_saturation" in med:
            med["admitted_p99_within_bound"] = med["p99_ms"] <= med["admitted_p99_bound_ms"]
            med["server_admitted_p99_within_bound"] = (
                med["server_p99_ms"] <= med["server_admitted_p99_bound_ms"]
            )
            med["rounds_goodput_met"] = sum(r["goodput_over_saturation"] >= 0.8 for r in rows)
            med["rounds_admitted_p99_met"] = sum(
                r["p99_ms"] <= r["admitted_p99_bound_ms"] for r in rows
            )
            med["rounds_server_admitted_p99_met"] = sum(
                r["server_p99_ms"] <= r["server_admitted_p99_bound_ms"] for r in rows
            )
        out[key] = med
    out["rounds_run"] = rounds
    return out


def run_overloads(log: Callable[[str], None] = lambda _m: None) -> dict[str, dict[str, Any]]:
    """10x overload at two queue sizes: 32 (the issue's 320 clients against a queue of 32: a
    ~27 ms drain, so its bound leaves 2 x the unloaded p99 for a full queue's jitter) and as
    shipped (512: the issue's 5 120 clients against kws-large's own queue, a ~0.2-0.4 s drain),
    with windows of several drains each. Its warm-up and windows are 5 s: the 5 120 connections
    open over a 0.5 s ramp, and clients refused at 10x overload are told to come back in 4-10 s
    (a mean of ~7 s, ``cloud.retry_after``), so warm-up and window together hold a whole round
    of their returns.
    (Before the server accepted every queued connection at once, the first requests of the last
    ones accepted finished up to 6.8 s after they were sent; see ``cloud.http.GreedyAcceptor``.)"""
    big = shipped_config().max_queue_size
    return {
        "overload": run_overload(log=log),
        "overload_shipped": run_overload(
            queue=big, window_s=5.0, warmup_s=5.0, rounds=5, log=lambda m: log(f"[{big}] {m}")
        ),
    }


def run_unknown_soak(
    total: int = 20_000, warmup: int = 2_000, clients: int = 16, log: Callable = lambda _m: None
) -> dict[str, Any]:
    """``total`` requests to never-repeating unknown model names: /metrics size and RSS."""
    request = http_request("POST", "/v2/models/" + NAME_SLOT.decode() + "/infer", b"{}")
    with ServerUnderTest({"kws-large": {}}) as srv:

        def metrics_bytes() -> int:
            r = raw_exchange(srv.port, http_request("GET", "/metrics"))
            assert r is not None and r.status == 200
            return len(r.body)

        log(f"soak: {warmup} warm-up requests to unknown models...")
        drive(srv.port, request, clients, 600, total=warmup)
        m0, rss0 = metrics_bytes(), srv.rss_bytes()
        log(f"soak: {total} requests to unknown models...")
        res = drive(srv.port, request, clients, 600, total=total)
        m1, rss1 = metrics_bytes(), srv.rss_bytes()
    return {
        "requests": sum(res.statuses.values()),
        "statuses": {str(k): v for k, v in res.statuses.items()},
        "rps": round(sum(res.statuses.values()) / res.duration_s, 1),
        "metrics_bytes_before": m0,
        "metrics_bytes_after": m1,
        "metrics_growth": round(m1 / m0 - 1, 4),
        "rss_bytes_before": rss0,
        "rss_bytes_after": rss1,
        "rss_growth": round(rss1 / rss0 - 1, 4),
    }


def run_startup(log: Callable = lambda _m: None) -> dict[str, Any]:
    """Seconds from process start to live and to ready, serving the shipped repository's
    kws-large, ocr-rec and glasses-ocr."""
    log("startup: serving kws-large, ocr-rec, glasses-ocr...")
    with ServerUnderTest({"kws-large": {}, "ocr-rec": {}, "glasses-ocr": {}}) as srv:
        return {
            "live_after_s": round(srv.live_after_s, 2),
            "ready_after_s": round(srv.ready_after_s, 2),
        }


def run_workers(
    window_s: float = 4.0, rounds: int = 5, clients: int = 16, log: Callable = lambda _m: None
) -> dict[str, Any]:
    """Throughput of ``--workers 1`` vs ``--workers 2`` (SO_REUSEPORT) under the same load: both
    servers run at once on two ports and the load alternates between them, round by round, so
    the machine's other load weighs on both; the median of the per-round ratios is reported."""
    request = _kws_request()
    models = {"kws-large": {"instances": 1, "dynamic_batching": None}}
    out: dict[str, Any] = {"clients": clients, "model": "kws-large, 1 instance per worker"}
    log("workers: starting --workers 1 and --workers 2...")
    with (
        ServerUnderTest(models, ["--workers", "1"], port=free_tcp_port()) as one,
        ServerUnderTest(models, ["--workers", "2"], port=free_tcp_port()) as two,
    ):
        two.wait_ready_all(2)
        rows: dict[str, list[dict[str, Any]]] = {"workers_1": [], "workers_2": []}
        ratios = []
        for r in range(rounds):
            log(f"workers: round {r + 1}/{rounds}")
            a = drive(one.port, request, clients, window_s)
            b = drive(two.port, request, clients, window_s)
            rows["workers_1"].append(_summary(a))
            rows["workers_2"].append(_summary(b))
            ratios.append(b.goodput_rps / max(a.goodput_rps, 1e-9))
    out["rounds"] = rows
    for key, rs in rows.items():
        out[key] = {
            k: float(np.median([x[k] for x in rs])) for k in ("goodput_rps", "p50_ms", "p99_ms")
        }
    out["round_ratios_2_over_1"] = [round(x, 3) for x in ratios]
    out["throughput_ratio_2_over_1"] = round(float(np.median(ratios)), 3)
    return out


def verdicts(doc: dict[str, Any], health_budget_ms: float = 50.0) -> dict[str, bool]:
    """Issue 12's "Done when" criteria over whichever runs are in ``doc``."""
    v: dict[str, bool] = {}
    for run in (k for k in doc if k.startswith("overload")):
        o = doc[run]
        name = f"{run} (queue {o['max_queue_size']}, {o['clients']} clients)"
        for side, r in o.items():
            if side.startswith("retry_cap"):
                key = f"{name} {side}"
                v[f"{key}: goodput >= 0.8x saturation"] = r["goodput_over_saturation"] >= 0.8
                v[f"{key}: admitted p99 <= 2x unloaded p99 + drain"] = r[
                    "admitted_p99_within_bound"
                ]
                v[f"{key}: same, server clock"] = r["server_admitted_p99_within_bound"]
                v[f"{key}: goodput per server CPU-s >= 0.8x saturation's"] = (
                    r["goodput_per_cpu_over_saturation"] >= 0.8
                )
                v[f"{key}: health p99 <= {health_budget_ms:g} ms"] = (
                    r["health_port_p99_ms"] <= health_budget_ms
                )
    if "hostile" in doc:
        h = doc["hostile"]
        v["hostile: >= 60 cases"] = h["cases"] >= 60
        v["hostile: 0 responses 5xx"] = h["responses_5xx"] == 0
        v["hostile: 0 tracebacks"] = h["tracebacks_in_log"] == 0
        v[f"hostile: health p99 <= {health_budget_ms:g} ms in every case"] = (
            h["health_p99_ms_max"] <= health_budget_ms
        )
    if "soak" in doc:
        s = doc["soak"]
        v["soak: /metrics flat (5 %)"] = abs(s["metrics_growth"]) <= 0.05
        v["soak: RSS flat (5 %)"] = abs(s["rss_growth"]) <= 0.05
    if "startup" in doc:
        v["startup: live within 2 s"] = doc["startup"]["live_after_s"] <= 2.0
    return v


def as_dict(r: DriveResult) -> dict[str, Any]:
    d = asdict(r)
    d.pop("ok_latency_ms")
    return d
