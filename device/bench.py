"""``edgesplit device bench``: FP32 and INT8 side by side in one run, and the device profile."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgesplit.device.cpuinfo import read_cpuinfo
from edgesplit.device.profile import ModelProfile, split_profile, write_profile
from edgesplit.device.stats import LatencyStats
from edgesplit.device.workloads import VARIANTS, Workload


@dataclass
class VariantResult:
    variant: str
    model_bytes: int
    latency: LatencyStats
    metrics: dict[str, float]
    latency_cases: dict[str, LatencyStats] = field(default_factory=dict)


def interleaved_latency(
    calls: dict[str, Callable[[], object]], repeats: int, rounds: int = 5, warmup: int = 3
) -> dict[str, LatencyStats]:
    """Time each call in alternating rounds so drift on a shared machine hits all variants alike."""
    import time

    for fn in calls.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {k: [] for k in calls}
    per_round = max(1, repeats // rounds)
    for _ in range(rounds):
        for name, fn in calls.items():
            for _ in range(per_round):
                t0 = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - t0)
    return {k: LatencyStats.from_seconds(v) for k, v in samples.items()}


def run_bench(
    workload: Workload,
    threads: int,
    repeats: int,
    quick: bool = False,
    rebuild: bool = False,
    with_splits: bool = True,
    log: Callable[[str], None] = print,
) -> tuple[list[VariantResult], list[ModelProfile], dict]:
    if rebuild or not workload.int8_ready():
        log(f"building INT8 models for {workload.name} (static QDQ, per-channel)...")
        workload.build_int8()
    predictors = {v: workload.open(v, threads) for v in VARIANTS}
    log(f"timing {workload.name}: {repeats} calls per variant, interleaved, warm-up excluded...")
    latencies = interleaved_latency(
        {v: workload.latency_call(p) for v, p in predictors.items()}, repeats
    )
    cases: dict[str, dict[str, LatencyStats]] = {}
    if workload.latency_cases is not None:
        per_variant = {v: workload.latency_cases(p) for v, p in predictors.items()}
        for case in per_variant["fp32"]:
            log(f"timing case {case!r}...")
            cases[case] = interleaved_latency({v: per_variant[v][case] for v in VARIANTS}, repeats)
    results, profiles = [], []
    for v in VARIANTS:
        log(f"evaluating {workload.name} {v}{' (quick)' if quick else ''}...")
        metrics = workload.evaluate(predictors[v], quick)
        size = sum(p.stat().st_size for p in workload.model_files(v))
        results.append(
            VariantResult(
                v, size, latencies[v], metrics, {c: stats[v] for c, stats in cases.items()}
            )
        )
        lat = latencies[v]
        prof = ModelProfile(
            workload=workload.name,
            variant=v,
            model_bytes=size,
            median_ms=lat.median_ms,
            p90_ms=lat.p90_ms,
            p99_ms=lat.p99_ms,
            input_bytes=0,
            output_bytes=0,
            threads=threads,
        )
        if with_splits and workload.split_feed is not None:
            feed = workload.split_feed()
            points = split_profile(
                workload.model_files(v)[0], feed, repeats=repeats, threads=threads
            )
            prof.split_points = points
            prof.input_bytes, prof.output_bytes = points[0].tensor_bytes, points[-1].tensor_bytes
        profiles.append(prof)
    fp32, int8 = results
    m = workload.metric
    ratios = {
        "size_fp32_over_int8": fp32.model_bytes / int8.model_bytes,
        "median_latency_fp32_over_int8": fp32.latency.median_ms / int8.latency.median_ms,
        "p90_latency_fp32_over_int8": fp32.latency.p90_ms / int8.latency.p90_ms,
        f"{m}_int8_minus_fp32_points": 100.0 * (int8.metrics[m] - fp32.metrics[m]),
    }
    for case in cases:
        ratios[f"median_latency_fp32_over_int8_{case.replace(' ', '_')}"] = (
            fp32.latency_cases[case].median_ms / int8.latency_cases[case].median_ms
        )
    return results, profiles, ratios


def bench_document(
    workload: Workload, results: list[VariantResult], ratios: dict, threads: int
) -> dict:
    return {
        "workload": workload.name,
        "metric": workload.metric,
        "higher_is_better": workload.higher_is_better,
        "threads": threads,
        "cpu": read_cpuinfo().to_dict(),
        "variants": [asdict(r) for r in results],
        "ratios": ratios,
    }


def merge_profile(path: Path, new: list[ModelProfile]) -> dict:
    """Add or replace this run's models in the profile at ``path``, keeping other workloads."""
    kept: list[ModelProfile] = []
    if path.exists():
        from edgesplit.device.profile import SplitPoint

        old = json.loads(path.read_text())
        replaced = {(p.workload, p.variant) for p in new}
        for m in old.get("models", []):
            if (m["workload"], m["variant"]) not in replaced:
                m["split_points"] = [SplitPoint(**s) for s in m.get("split_points", [])]
                kept.append(ModelProfile(**m))
    return write_profile(kept + new, path)
