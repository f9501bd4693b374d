"""Simulator speed: simulated requests per wall-second, next to a bare SimPy skeleton.

The skeleton is the least SimPy code for the same chain (Poisson arrivals, the device's cores,
FIFO links with propagation delay each way, cloud replicas), with no policy, radio, batching,
records or statistics: what the engine alone costs. It follows the policy's route: the device's
model (device-only, and cascade before its escalations), the cloud chain (cloud-only,
deadline-aware), or the split's head on the device and its tensor up the chain (split, the cut
the policy picks at the link prior). Both run in the same process, interleaved, so machine noise
hits both alike.
"""

from __future__ import annotations

import time

import numpy as np
import simpy
from edgesplit.device.policy import PolicyConfig, decide
from edgesplit.sim.model import simulate
from edgesplit.sim.scenario import Scenario


def skeleton(scenario: Scenario, requests: int, seed: int, policy: str) -> float:
    """The bare chain; returns the simulated end time (s).

    device-only: the device's cores; cascade: those, then the cloud chain for the escalated
    fraction; any other policy: the cloud chain for every request.
    """
    rng = np.random.default_rng(seed)
    env = simpy.Environment()
    wl, cl = scenario.workload, scenario.cloud
    cpu = simpy.Resource(env, capacity=scenario.device.cores)
    params = [scenario.link_profile(i) for i in range(len(scenario.links))]
    ups = [simpy.Resource(env, 1) for _ in params]
    downs = [simpy.Resource(env, 1) for _ in params]
    server = simpy.Resource(env, capacity=cl.replicas)
    costs = scenario.request_costs()
    device_s = costs.device_ms / 1e3
    cloud_s = (cl.batch_fixed_ms + cl.per_item_ms) / 1e3
    up_bytes = wl.request_bytes
    if policy == "split":  # the head on the device, its tensor up the chain, the tail there
        pol = next((p for p in scenario.policies if policy in (p.name, p.kind)), None)
        cfg = pol.config() if pol is not None else PolicyConfig("split")
        d = decide(cfg, costs, scenario.link_prior())
        if d.split is not None:
            device_s, up_bytes = d.split.head_ms / 1e3, d.upload_bytes
            cloud_s = d.split.tail_ms / costs.cloud_speedup / 1e3

    def hop(res: simpy.Resource, seconds: float, delay_s: float):
        with res.request() as req:
            yield req
            yield env.timeout(seconds)
        yield env.timeout(delay_s)

    def request():
        if policy in ("device-only", "cascade", "split"):
            with cpu.request() as req:
                yield req
                yield env.timeout(device_s)
            if policy == "device-only" or (
                policy == "cascade" and rng.random() >= wl.escalation_rate
            ):
                return
        for p, res in zip(params, ups, strict=True):
            yield from hop(res, up_bytes * 8 / (p.up_mbps * 1e6), p.one_way_delay_ms / 1e3)
        with server.request() as req:
            yield req
            yield env.timeout(cloud_s)
        for p, res in zip(reversed(params), reversed(downs), strict=True):
            yield from hop(
                res, wl.response_bytes * 8 / (p.down_mbps * 1e6), p.one_way_delay_ms / 1e3
            )

    def arrivals():
        for _ in range(requests):
            yield env.timeout(rng.exponential(1 / wl.rate_per_s))
            env.process(request())

    env.process(arrivals())
    env.run()
    return env.now


def bench(scenario: Scenario, policy: str, requests: int, rounds: int = 3) -> dict:
    """Interleaved rounds of the full model and the skeleton; rates in requests per wall-second,
    ratios the median over rounds of each round's ratio.

    CPU seconds are reported too: on a shared machine the wall clock also counts the time other
    processes held the core, the CPU time only this process's work (what an idle core would take).
    """
    ours, bare, ours_cpu, bare_cpu = [], [], [], []
    for r in range(rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        simulate(scenario, policy, seed=r, requests=requests)
        ours.append(requests / (time.perf_counter() - t0))
        ours_cpu.append(time.process_time() - c0)
        t0, c0 = time.perf_counter(), time.process_time()
        skeleton(scenario, requests, seed=r, policy=policy)
        bare.append(requests / (time.perf_counter() - t0))
        bare_cpu.append(time.process_time() - c0)
    ours_med, bare_med = float(np.median(ours)), float(np.median(bare))
    ours_cpu_s, bare_cpu_s = float(np.median(ours_cpu)), float(np.median(bare_cpu))
    # Each round's two runs are adjacent, so their ratio sees nearly the same machine; the median
    # of those ratios is steadier under a changing load than the ratio of the two medians.
    ratios = [o / b for o, b in zip(ours, bare, strict=True)]
    cpu_ratios = [b / o for o, b in zip(ours_cpu, bare_cpu, strict=True) if o > 0]
    return {
        "scenario": scenario.name,
        "policy": policy,
        "requests_per_round": requests,
        "rounds": rounds,
        "edgesplit_requests_per_s": ours_med,
        "skeleton_requests_per_s": bare_med,
        "ratio_edgesplit_over_skeleton": float(np.median(ratios)),
        "seconds_per_million_requests": 1e6 / ours_med,
        "cpu_ratio_edgesplit_over_skeleton": float(np.median(cpu_ratios)) if cpu_ratios else 0.0,
        "cpu_seconds_per_million_requests": ours_cpu_s / requests * 1e6,
        "skeleton_cpu_seconds_per_million_requests": bare_cpu_s / requests * 1e6,
        "round_ratios": ratios,
        "round_cpu_ratios": cpu_ratios,
    }
