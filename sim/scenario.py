"""Scenario files (YAML): devices, links, cloud, workload and policy, with units in field names.

Every default names its source in a comment. Invalid files raise :class:`ScenarioError` naming the
field, the value and the unit expected.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from edgesplit.device.link import LinkProfile
from edgesplit.device.policy import (
    LinkEstimate,
    PolicyConfig,
    PolicyKind,
    RequestCosts,
    SplitOption,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edgesplit.errors import ConfigError


class ScenarioError(ConfigError):
    pass


_UNIT_SUFFIXES = {
    "_ms": "milliseconds",
    "_s": "seconds",
    "_per_s": "per second",
    "_bytes": "bytes",
    "_mbps": "megabits per second",
    "_w": "watts",
    "_wh": "watt-hours",
    "_usd": "US dollars",
    "_rate": "fraction 0..1",
    "_accuracy": "fraction 0..1",
    "cores": "cores",
    "replicas": "replicas",
    "max_batch": "requests",
}


def _unit(field: str) -> str:
    for suffix, unit in sorted(_UNIT_SUFFIXES.items(), key=lambda kv: -len(kv[0])):  # longest first
        if field.endswith(suffix):
            return unit
    return ""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# Upper bounds: physical, finite, and far beyond any real system (so typos like 1e300 fail).
HOUR_MS = 3_600_000.0
MAX_BYTES = 10**10  # 10 GB in one request
MAX_RUN_S = 10**10  # ~300 years of simulated time
Milliseconds = Annotated[float, Field(ge=0, le=HOUR_MS)]
OutageStart = Annotated[float, Field(ge=0, le=MAX_RUN_S)]  # s from the start of the run
OutageLength = Annotated[float, Field(gt=0, le=MAX_RUN_S)]  # s


class Device(_Strict):
    name: str
    cores: int = Field(1, ge=1, le=64)
    # Compute power while running a model. Default 5 W: an edge AI chip's budget (docs/REFERENCE.md,
    # "50 TOPS at 5 W"); override with a measured figure for your device.
    compute_power_w: float = Field(5.0, gt=0, le=500)
    # Battery: earbud 49.7 mAh x 3.7 V = 0.184 Wh (AirPods Pro 2 filing); glasses 0.96 Wh
    # (Meta Ray-Ban Display, iFixit); phone 12.98 Wh (iPhone 15 filing).
    battery_wh: float = Field(0.96, gt=0, le=1000)
    idle_power_w: float = Field(0.02, ge=0, le=100)


class Link(_Strict):
    technology: Literal["ble", "wifi", "lte", "5g"]
    up_mbps: float | None = Field(None, gt=0, le=10_000)  # default: the technology's (sim/links.py)
    down_mbps: float | None = Field(None, gt=0, le=10_000)
    one_way_delay_ms: float | None = Field(None, ge=0, le=10_000)
    loss_rate: float | None = Field(None, ge=0, lt=1)
    jitter_p90_ms: float | None = Field(None, ge=0, le=10_000)
    retransmit_timeout_ms: float | None = Field(None, ge=0, le=60_000)
    promotion_ms: float | None = Field(None, ge=0, le=60_000)  # radio idle -> active
    tail_ms: float | None = Field(None, ge=0, le=HOUR_MS)  # radio stays active after traffic
    # Outage windows (s from start, s long): the link carries nothing; requests fall back.
    outages_s: list[
        tuple[
            Annotated[float, Field(ge=0, le=MAX_RUN_S)], Annotated[float, Field(gt=0, le=MAX_RUN_S)]
        ]
    ] = Field([], max_length=10_000)


class Cloud(_Strict):
    replicas: int = Field(2, ge=1, le=10_000)
    max_batch: int = Field(8, ge=1, le=4096)
    batch_delay_ms: float = Field(2.0, ge=0, le=10_000)
    # Service time of a batch of n: fixed + per_item * n (measured: `edgesplit cloud bench`).
    batch_fixed_ms: float = Field(1.0, ge=0, le=HOUR_MS)
    per_item_ms: float = Field(0.5, ge=0, le=HOUR_MS)
    # Illustrative price per request; set your provider's.
    cost_per_request_usd: float = Field(0.00001, ge=0, le=1000)


class SplitPointSpec(_Strict):
    """A cut of the device's model, as in a device profile's ``split_points``."""

    index: int = Field(ge=0, le=100_000)
    head_ms: float = Field(ge=0, le=HOUR_MS)  # layers 0..k on the device
    tail_ms: float = Field(ge=0, le=HOUR_MS)  # layers k..end, measured on the device
    tensor_bytes: int = Field(ge=0, le=MAX_BYTES)


class Generation(_Strict):
    """A generative cloud request: time to first token, then decoding at a steady rate."""

    # Defaults: an 8B model on one H100 serving a few streams: TTFT ~ 0.2 s, ~50 tokens/s per
    # stream (assumption in the range vLLM/TGI publish; set your measured figures).
    ttft_ms: float = Field(200.0, gt=0, le=HOUR_MS)
    output_tokens: int = Field(64, ge=1, le=10**6)
    tokens_per_s: float = Field(50.0, gt=0, le=10**7)
    streams_per_replica: int = Field(8, ge=1, le=4096)  # continuous batching slots


class Workload(_Strict):
    name: str
    arrival: Literal["poisson", "bursty"] = "poisson"
    rate_per_s: float = Field(gt=0, le=1e6)
    burst_size: int = Field(5, ge=1, le=10_000)  # bursty: requests arrive in bursts of this size
    deadline_ms: float = Field(gt=0, le=HOUR_MS)
    request_bytes: int = Field(ge=0, le=MAX_BYTES)
    response_bytes: int = Field(64, ge=0, le=MAX_BYTES)
    # Device model latency: a `edgesplit device bench` profile's median, or set here. The cloud's
    # time comes from the cloud section (batch_fixed_ms + per_item_ms for one request).
    device_model_ms: float | None = Field(None, ge=0, le=HOUR_MS)
    # A device profile JSON (path relative to this file): fills device_model_ms and split_points.
    device_profile: str | None = None
    profile_variant: Literal["fp32", "int8"] = "int8"
    # The target device is this many times slower than the machine that measured the profile
    # (e.g. ~1500 for a Cortex-M4 earbud vs a desktop core, MLPerf Tiny KWS 182 ms vs 0.12 ms).
    profile_slowdown: float = Field(1.0, gt=0, le=1e6)
    split_points: list[SplitPointSpec] = []
    # The cloud runs a split tail this many times faster than the device measured it
    # (Neurosurgeon's GPU server vs mobile CPU; 1 = same speed, the conservative default).
    cloud_speedup: float = Field(1.0, gt=0, le=1e4)
    generation: Generation | None = None
    service_distribution: Literal["deterministic", "exponential", "empirical"] = "deterministic"
    # empirical: device times drawn from these measured samples (ms), scaled to the step's mean.
    device_samples_ms: list[Milliseconds] = Field([], max_length=100_000)
    device_accuracy: float = Field(ge=0, le=1)
    cloud_accuracy: float = Field(ge=0, le=1)
    # Cascade: the fraction of requests the device is not confident about (measured by the
    # workload's evaluation at the router's threshold, e.g. phone-intent escalation_rate).
    escalation_rate: float = Field(0.1, ge=0, le=1)


class Policy(_Strict):
    """A routing policy (device/policy.py, the same code the device router runs)."""

    kind: PolicyKind
    label: str | None = None  # the name in tables and plots; default: the kind
    threshold: float = Field(0.5, ge=0, le=1)
    split_index: int | None = Field(None, ge=0)
    compression: float = Field(1.0, ge=1, le=1e4)  # e.g. 4 for float32 -> int8 activations
    deadline_margin: float = Field(0.8, gt=0, le=1)
    privacy: bool = False

    @property
    def name(self) -> str:
        return self.label or self.kind

    def config(self) -> PolicyConfig:
        return PolicyConfig(
            self.kind,
            self.threshold,
            self.split_index,
            self.compression,
            self.deadline_margin,
            self.privacy,
        )


class Client(_Strict):
    """The device's cloud client (device/cloud_client.py): timeouts, retries, circuit breaker."""

    timeout_ms: float = Field(1000.0, gt=0, le=HOUR_MS)
    retries: int = Field(1, ge=0, le=10)
    backoff_ms: float = Field(50.0, ge=0, le=HOUR_MS)  # first retry waits this, doubling each time
    breaker_failures: int = Field(3, ge=1, le=10_000)  # consecutive failures that open it
    breaker_reset_s: float = Field(5.0, gt=0, le=86_400)  # then one probe after this long


class Scenario(_Strict):
    name: str
    seed: int = Field(0, ge=0, le=2**63 - 1)
    requests: int = Field(10_000, ge=1, le=100_000_000)
    device: Device
    links: list[Link] = Field(min_length=1)  # device -> ... -> cloud, in order
    cloud: Cloud = Field(default_factory=lambda: Cloud.model_validate({}))
    workload: Workload
    client: Client = Field(default_factory=lambda: Client.model_validate({}))
    policies: list[Policy] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        wl = self.workload
        if wl.device_model_ms is None:
            raise ValueError(
                "workload.device_model_ms: missing; set it (ms) or give a device_profile"
            )
        if wl.service_distribution == "empirical" and not wl.device_samples_ms:
            raise ValueError(
                "workload.device_samples_ms: an empirical service distribution "
                "needs measured samples (ms)"
            )
        known = {p.index for p in wl.split_points}
        for i, pol in enumerate(self.policies):
            if pol.kind == "split" and not wl.split_points:
                raise ValueError(
                    f"policies.{i}: a split policy needs workload.split_points or "
                    "a device_profile with split points"
                )
            if pol.split_index is not None and pol.split_index not in known:
                raise ValueError(
                    f"policies.{i}.split_index = {pol.split_index}: not one of the "
                    f"split points {sorted(known)}"
                )
        return self

    def cloud_ms(self) -> float:
        """One request's cloud service time, unbatched (ms)."""
        gen = self.workload.generation
        if gen:
            return gen.ttft_ms + gen.output_tokens / gen.tokens_per_s * 1e3
        return self.cloud.batch_fixed_ms + self.cloud.per_item_ms

    def request_costs(self) -> RequestCosts:
        wl = self.workload
        return RequestCosts(
            deadline_ms=wl.deadline_ms,
            request_bytes=wl.request_bytes,
            response_bytes=wl.response_bytes,
            device_ms=float(wl.device_model_ms or 0.0),
            cloud_ms=self.cloud_ms(),
            cloud_speedup=wl.cloud_speedup,
            splits=tuple(
                SplitOption(p.index, p.head_ms, p.tail_ms, p.tensor_bytes) for p in wl.split_points
            ),
        )

    def link_prior(self) -> LinkEstimate:
        """The chain's nominal bottleneck rates and round trip: the device's starting estimate."""
        return self.chain_profile().prior()

    def chain_profile(self) -> LinkProfile:
        return LinkProfile.chain([self.link_profile(i) for i in range(len(self.links))])

    def link_profile(self, i: int) -> LinkProfile:
        """The link's profile (device/link.py): the file's values over the technology's."""
        link = self.links[i]
        overrides = {
            k: v
            for k in (
                "up_mbps",
                "down_mbps",
                "one_way_delay_ms",
                "jitter_p90_ms",
                "loss_rate",
                "retransmit_timeout_ms",
                "promotion_ms",
                "tail_ms",
            )
            if (v := getattr(link, k)) is not None
        }
        return LinkProfile.technology(link.technology, **overrides)


def _explain(path: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        field = next((str(p) for p in reversed(err["loc"]) if isinstance(p, str)), "")
        unit = _unit(field)
        msg = re.sub(r"^Value error, ", "", err["msg"])
        if not loc:  # a check across fields: its message names them; never dump the document
            lines.append(f"{path}: {msg}")
            continue
        value = err.get("input")
        shown = repr(value) if not isinstance(value, dict | list) else f"<{type(value).__name__}>"
        if len(shown) > 80:
            shown = shown[:77] + "..."
        lines.append(
            f"{path}: field '{loc}' = {shown}: {msg}" + (f" (unit: {unit})" if unit else "")
        )
    return "\n".join(lines)


def parse_scenario(doc: object, origin: str = "<scenario>") -> Scenario:
    if not isinstance(doc, dict):
        raise ScenarioError(f"{origin}: expected a mapping of fields, got {type(doc).__name__}")
    try:
        return Scenario.model_validate(doc)
    except ValidationError as exc:
        raise ScenarioError(_explain(origin, exc)) from None


# The head at the last cut is the whole model: a cut table that disagrees with the whole-model
# median by more than this was measured under different conditions and would mislead the sweep.
PROFILE_TOLERANCE = 0.25


def check_profile(entry: dict, where: str) -> None:
    """The head of the last cut (the whole model) must match the model's median."""
    cuts = entry.get("split_points") or []
    if not cuts:
        return
    last = max(cuts, key=lambda p: p["index"])
    whole, head = float(entry["median_ms"]), float(last["head_median_ms"])
    if whole > 0 and abs(head - whole) / whole > PROFILE_TOLERANCE:
        raise ScenarioError(
            f"{where}: {entry['workload']}/{entry['variant']} is inconsistent: the head at the "
            f"last cut (index {last['index']}) takes {head:.4g} ms but the whole model "
            f"{whole:.4g} ms (more than {PROFILE_TOLERANCE:.0%} apart); re-measure it with "
            "`edgesplit device bench`"
        )


def read_device_profile(path: Path, field: str, origin: str) -> dict:
    """A device profile JSON named by scenario field ``field``; one ScenarioError if unusable."""
    from edgesplit.device.profile import PROFILE_SCHEMA

    try:
        prof = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ScenarioError(
            f"{origin}: field '{field}' = {str(path)!r}: cannot read it ({exc})"
        ) from None
    if prof.get("schema") != PROFILE_SCHEMA:
        raise ScenarioError(
            f"{origin}: field '{field}': {path} is not a {PROFILE_SCHEMA} file "
            "(`edgesplit device bench` writes one)"
        )
    return dict(prof)


def apply_device_profile(doc: dict, profile_path: Path, origin: str) -> dict:
    """Fill the workload's device latency and split points from a device profile JSON."""
    wl = doc.get("workload")
    if not isinstance(wl, dict):
        return doc
    prof = read_device_profile(profile_path, "workload.device_profile", origin)
    name, variant = wl.get("name"), wl.get("profile_variant", "int8")
    models = {(m["workload"], m["variant"]): m for m in prof.get("models", [])}
    entry = models.get((name, variant))
    if entry is None:
        have = ", ".join(f"{w}/{v}" for w, v in models) or "none"
        raise ScenarioError(
            f"{origin}: field 'workload.name' = {name!r}: no {variant} entry in "
            f"{profile_path} (has: {have})"
        )
    wl = dict(wl)
    slow = wl.get("profile_slowdown", 1.0)
    if not isinstance(slow, int | float) or slow <= 0:
        raise ScenarioError(
            f"{origin}: field 'workload.profile_slowdown' = {slow!r}: expected a factor > 0 "
            "(unit: times slower than the profiled machine)"
        )
    check_profile(entry, f"{origin}: field 'workload.device_profile' ({profile_path})")
    wl.setdefault("device_model_ms", entry["median_ms"] * slow)
    # A variant without a cut table (cuts at contrib ops fail) borrows the FP32 one.
    splits = entry.get("split_points") or models.get((name, "fp32"), {}).get("split_points", [])
    if "split_points" not in wl and splits:
        wl["split_points"] = [
            {
                "index": p["index"],
                "head_ms": p["head_median_ms"] * slow,
                "tail_ms": p["tail_median_ms"] * slow,
                "tensor_bytes": p["tensor_bytes"],
            }
            for p in splits
        ]
    return doc | {"workload": wl}


def load_scenario(path: Path) -> Scenario:
    return parse_scenario(load_scenario_doc(path), str(path))


def read_yaml_mapping(path: Path) -> dict:
    """A scenario file that must hold a mapping; each failure is one ScenarioError naming it."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ScenarioError(f"scenario file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise ScenarioError(f"{path}: expected a mapping of fields, got {type(doc).__name__}")
    return doc


def load_scenario_doc(path: Path) -> dict:
    """The scenario file as a mapping, with its device profile (if any) already applied."""
    path = Path(path)
    doc = read_yaml_mapping(path)
    if isinstance(doc.get("workload"), dict):
        profile = doc["workload"].get("device_profile")
        if profile:
            doc = apply_device_profile(doc, path.parent / str(profile), str(path))
    return doc
