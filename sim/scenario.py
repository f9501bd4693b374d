"""Scenario files (YAML): devices, links, cloud, workload and policy, with units in field names.

Every default names its source in a comment. Invalid files raise :class:`ScenarioError` naming the
field, the value and the unit expected.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sim.links import TECHNOLOGIES


class ScenarioError(ValueError):
    pass


_UNIT_SUFFIXES = {
    "_ms": "milliseconds", "_s": "seconds", "_per_s": "per second", "_bytes": "bytes",
    "_mbps": "megabits per second", "_w": "watts", "_wh": "watt-hours", "_usd": "US dollars",
    "_rate": "fraction 0..1", "_accuracy": "fraction 0..1", "cores": "cores",
    "replicas": "replicas", "max_batch": "requests",
}  # fmt: skip


def _unit(field: str) -> str:
    for suffix, unit in sorted(_UNIT_SUFFIXES.items(), key=lambda kv: -len(kv[0])):  # longest first
        if field.endswith(suffix):
            return unit
    return ""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Device(_Strict):
    name: str
    cores: int = Field(1, ge=1, le=64)
    # Compute power while running a model. Default 5 W: an edge AI chip's budget (REFERENCE.md,
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
    # Outage windows (s from start, s long): the link carries nothing; requests fall back.
    outages_s: list[tuple[float, float]] = []


class Cloud(_Strict):
    replicas: int = Field(2, ge=1, le=10_000)
    max_batch: int = Field(8, ge=1, le=4096)
    batch_delay_ms: float = Field(2.0, ge=0, le=10_000)
    # Service time of a batch of n: fixed + per_item * n (measured: `edgesplit cloud bench`).
    batch_fixed_ms: float = Field(1.0, ge=0)
    per_item_ms: float = Field(0.5, ge=0)
    # Illustrative price per request; set your provider's.
    cost_per_request_usd: float = Field(0.00001, ge=0)


class Workload(_Strict):
    name: str
    arrival: Literal["poisson", "bursty"] = "poisson"
    rate_per_s: float = Field(gt=0, le=1e6)
    burst_size: int = Field(5, ge=1, le=10_000)  # bursty: requests arrive in bursts of this size
    deadline_ms: float = Field(gt=0)
    request_bytes: int = Field(ge=0)
    response_bytes: int = Field(64, ge=0)
    # Device and cloud model latency: from `edgesplit device bench` profiles (medians) or set.
    device_model_ms: float = Field(ge=0)
    cloud_model_ms: float = Field(ge=0)
    service_distribution: Literal["deterministic", "exponential"] = "deterministic"
    device_accuracy: float = Field(ge=0, le=1)
    cloud_accuracy: float = Field(ge=0, le=1)
    # Cascade: the fraction of requests the device is not confident about (measured by the
    # workload's evaluation at the router's threshold, e.g. phone-intent escalation_rate).
    escalation_rate: float = Field(0.1, ge=0, le=1)


class Policy(_Strict):
    kind: Literal["device-only", "cloud-only", "cascade"]


class Scenario(_Strict):
    name: str
    seed: int = 0
    requests: int = Field(10_000, ge=1, le=100_000_000)
    device: Device
    links: list[Link] = Field(min_length=1)  # device -> ... -> cloud, in order
    cloud: Cloud = Cloud()
    workload: Workload
    policies: list[Policy] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        for i, link in enumerate(self.links):
            for start, length in link.outages_s:
                if start < 0 or length <= 0:
                    raise ValueError(f"links.{i}.outages_s: ({start}, {length}) needs start >= 0 s "
                                     "and length > 0 s")  # fmt: skip
        return self

    def link_params(self, i: int) -> dict:
        """The link's effective parameters: the file's values, else the technology's defaults."""
        link, tech = self.links[i], TECHNOLOGIES[self.links[i].technology]
        return {
            "technology": link.technology,
            "up_mbps": link.up_mbps or tech.up_mbps,
            "down_mbps": link.down_mbps or tech.down_mbps,
            "one_way_delay_ms": tech.one_way_delay_ms if link.one_way_delay_ms is None
            else link.one_way_delay_ms,
            "jitter_p90_ms": tech.jitter_p90_ms,
            "loss_rate": tech.loss_rate if link.loss_rate is None else link.loss_rate,
            "retransmit_timeout_ms": tech.retransmit_timeout_ms,
            "outages_s": link.outages_s,
        }  # fmt: skip


def _explain(path: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        field = next((str(p) for p in reversed(err["loc"]) if isinstance(p, str)), "")
        unit = _unit(field)
        value = err.get("input")
        msg = re.sub(r"^Value error, ", "", err["msg"])
        lines.append(f"{path}: field '{loc}' = {value!r}: {msg}"
                     + (f" (unit: {unit})" if unit else ""))  # fmt: skip
    return "\n".join(lines)


def parse_scenario(doc: object, origin: str = "<scenario>") -> Scenario:
    if not isinstance(doc, dict):
        raise ScenarioError(f"{origin}: expected a mapping of fields, got {type(doc).__name__}")
    try:
        return Scenario.model_validate(doc)
    except ValidationError as exc:
        raise ScenarioError(_explain(origin, exc)) from None


def load_scenario(path: Path) -> Scenario:
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ScenarioError(f"scenario file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    return parse_scenario(doc, str(path))
