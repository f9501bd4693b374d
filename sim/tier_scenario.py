"""Three-tier scenarios (YAML): wearable -> phone -> cloud as a chain of tiers, units in names.

A tier has compute (cores, a slowdown against the machine that measured the model's profile,
power), a battery, and the link to the next tier (``sim/scenario.py``'s ``Link``: the same
technologies, radio states and outages). The first tier may have several instances (wearables)
that share the next one (the phone), which also serves its own requests. The model is one cut
table; a placement says where each tier stops (``start``, a cut index, ``end``). Every default
names its source (docs/REFERENCE.md); errors name the field, the value and the unit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from edgesplit.device.link import LinkProfile
from edgesplit.sim.scenario import (
    HOUR_MS,
    MAX_BYTES,
    Client,
    Link,
    ScenarioError,
    _explain,
    _Strict,
    check_profile,
    read_device_profile,
    read_yaml_mapping,
)
from pydantic import Field, ValidationError, model_validator

Boundary = int | Literal["start", "end"]


class Cut(_Strict):
    """A cut of the model: layers 0..index run before it (reference-machine ms)."""

    index: int = Field(ge=0, le=100_000)
    head_ms: float = Field(ge=0, le=HOUR_MS)
    tensor_bytes: int = Field(ge=0, le=MAX_BYTES)


class TierModel(_Strict):
    """The model, timed on one reference machine; tiers scale it by their slowdown."""

    name: str
    # A device profile JSON (path relative to the scenario): fills whole_ms and cuts.
    device_profile: str | None = None
    profile_variant: Literal["fp32", "int8"] = "int8"
    whole_ms: float | None = Field(None, gt=0, le=HOUR_MS)
    cuts: list[Cut] = Field([], max_length=10_000)


class Tier(_Strict):
    name: str
    # Instances sharing the next tier (several wearables on one phone); only the first tier.
    count: int = Field(1, ge=1, le=10_000)
    cores: int = Field(1, ge=1, le=100_000)  # the cloud: replicas
    has_model: bool = True  # False: today's earbuds, no on-device model (docs/REFERENCE.md)
    # Times slower than the machine that measured the profile (earbud MCU ~5100x: MLPerf Tiny
    # KWS 182 ms on Cortex-M4 vs 0.0355 ms on the desktop core, docs/REFERENCE.md).
    slowdown: float = Field(1.0, gt=0, le=1e6)
    # Measured times of the whole model on this tier (ms), e.g. behind a real server on a loaded
    # host: when given, each computation draws one, scaled to its share of the model, instead
    # of ``slowdown`` times the reference time (the spread, and its tail, as measured).
    service_samples_ms: list[float] = Field([], max_length=100_000)
    # Power while computing; defaults: edge AI chip 5 W (docs/REFERENCE.md, "50 TOPS at 5 W").
    compute_power_w: float = Field(5.0, ge=0, le=10_000)
    idle_power_w: float = Field(0.0, ge=0, le=10_000)
    battery_wh: float | None = Field(None, gt=0, le=1000)  # None: mains powered (the cloud)
    # The tier's own requests (the phone's assistant), served on its cores: Poisson, fixed time.
    own_rate_per_s: float = Field(0.0, ge=0, le=1e6)
    own_service_ms: float = Field(0.0, ge=0, le=HOUR_MS)
    cost_per_request_usd: float = Field(0.0, ge=0, le=1000)  # cloud: illustrative price
    link: Link | None = None  # to the next tier; none on the last
    # The tier's client toward the last tier (the phone hub's, edgesplit/phone_hub.py): each
    # attempt's timeout, retries with backoff and the circuit breaker, run by device/flow.py as
    # the hub runs it; a cloud that fails or is too slow is answered by this tier. Defaults: the
    # hub's (`edgesplit phone serve`: 1 s, no retry, breaker 3 failures / 3 s).
    client: Client = Field(
        default_factory=lambda: Client.model_validate({"retries": 0, "breaker_reset_s": 3.0})
    )


class TierWorkload(_Strict):
    rate_per_s: float = Field(gt=0, le=1e6)  # per wearable, Poisson
    deadline_ms: float = Field(gt=0, le=HOUR_MS)
    request_bytes: int = Field(ge=0, le=MAX_BYTES)  # the model's input, sent at cut "start"
    response_bytes: int = Field(64, ge=0, le=MAX_BYTES)
    service_distribution: Literal["deterministic", "exponential"] = "deterministic"


class Placement(_Strict):
    """Where each tier stops: ``cuts[i]`` is the last layer boundary tier i runs to.

    ``run_on: phone`` runs everything there; ``auto: true`` picks, per request, the placement with
    the lowest estimate (policy code's transfer estimate plus the queues now)."""

    name: str
    cuts: list[Boundary] | None = None
    run_on: str | None = None
    auto: bool = False


class TierScenario(_Strict):
    name: str
    seed: int = Field(0, ge=0, le=2**63 - 1)
    requests: int = Field(5000, ge=1, le=10_000_000)  # wearable requests, all wearables
    model: TierModel
    tiers: list[Tier] = Field(min_length=2, max_length=8)
    workload: TierWorkload
    placements: list[Placement] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> TierScenario:
        if self.model.whole_ms is None:
            raise ValueError("model.whole_ms: missing; set it (ms) or give a device_profile")
        for i, t in enumerate(self.tiers):
            last = i == len(self.tiers) - 1
            if last and t.link is not None:
                raise ValueError(f"tiers.{i}.link: the last tier ({t.name}) has no next tier")
            if not last and t.link is None:
                raise ValueError(f"tiers.{i}.link: missing; the link from {t.name} to the next")
            if i and t.count != 1:
                raise ValueError(f"tiers.{i}.count = {t.count}: only the first tier can be many")
        for j, p in enumerate(self.placements):
            self.boundaries(p, f"placements.{j}")
        return self

    def cut_index(self) -> dict[int, Cut]:
        return {c.index: c for c in self.model.cuts}

    def position(self, b: Boundary) -> tuple[int, float, int]:
        """(order, reference head ms, bytes sent up) of a boundary."""
        whole = float(self.model.whole_ms or 0.0)
        if b == "start":
            return (-1, 0.0, self.workload.request_bytes)
        if b == "end":
            return (1 << 30, whole, 0)
        c = self.cut_index()[b]
        return (c.index, min(c.head_ms, whole), c.tensor_bytes)

    def boundaries(self, p: Placement, where: str = "placement") -> list[Boundary]:
        """The placement as one boundary per tier (the last is ``end``), checked."""
        n = len(self.tiers)
        names = [t.name for t in self.tiers]
        if sum((p.cuts is not None, p.run_on is not None, p.auto)) != 1:
            raise ValueError(f"{where}: give exactly one of cuts, run_on, auto")
        if p.auto:
            return []
        cuts: list[Boundary]
        if p.run_on is not None:
            if p.run_on not in names:
                raise ValueError(f"{where}.run_on = {p.run_on!r}: not a tier ({', '.join(names)})")
            k = names.index(p.run_on)
            start: list[Boundary] = ["start"]
            end: list[Boundary] = ["end"]
            cuts = start * k + end * (n - 1 - k)
        else:
            cuts = list(p.cuts or [])
        if len(cuts) != n - 1:
            raise ValueError(
                f"{where}.cuts: expected {n - 1} boundaries (one per tier but the last)"
            )
        known = self.cut_index()
        for b in cuts:
            if isinstance(b, int) and b not in known:
                raise ValueError(f"{where}.cuts: {b} is not a cut index ({sorted(known)})")
        full: list[Boundary] = [*cuts, "end"]
        order = [self.position(b)[0] for b in full]
        if order != sorted(order):
            raise ValueError(f"{where}.cuts = {cuts}: boundaries must not go back")
        prev: Boundary = "start"
        for i, b in enumerate(full):
            if self.position(b)[1] > self.position(prev)[1] and not self.tiers[i].has_model:
                raise ValueError(f"{where}: tier {self.tiers[i].name} has no model to run")
            prev = b
        return full


def link_profile(link: Link) -> LinkProfile:
    """A tier link's profile (device/link.py): the file's values over the technology's."""
    overrides = link.model_dump(exclude={"technology", "outages_s"}, exclude_none=True)
    return LinkProfile.technology(link.technology, **overrides)


def apply_profile(doc: dict, profile_path: Path, origin: str) -> dict:
    """Fill model.whole_ms and model.cuts from a device profile (``edgesplit device bench``)."""
    model = dict(doc["model"])
    prof = read_device_profile(profile_path, "model.device_profile", origin)
    variant = model.get("profile_variant", "int8")
    entries = {(m["workload"], m["variant"]): m for m in prof.get("models", [])}
    entry = entries.get((model.get("name"), variant))
    if entry is None:
        have = ", ".join(f"{w}/{v}" for w, v in entries) or "none"
        raise ScenarioError(
            f"{origin}: field 'model.name' = {model.get('name')!r}: no {variant} entry in "
            f"{profile_path} (has: {have})"
        )
    check_profile(entry, f"{origin}: field 'model.device_profile' ({profile_path})")
    model.setdefault("whole_ms", entry["median_ms"])
    model.setdefault(
        "cuts",
        [
            {"index": p["index"], "head_ms": p["head_median_ms"], "tensor_bytes": p["tensor_bytes"]}
            for p in entry.get("split_points") or []
        ],
    )
    return doc | {"model": model}


def parse_tier_scenario(doc: object, origin: str = "<scenario>") -> TierScenario:
    if not isinstance(doc, dict):
        raise ScenarioError(f"{origin}: expected a mapping of fields, got {type(doc).__name__}")
    try:
        return TierScenario.model_validate(doc)
    except ValidationError as exc:
        raise ScenarioError(_explain(origin, exc)) from None


def load_tier_doc(path: Path) -> dict:
    path = Path(path)
    doc = read_yaml_mapping(path)
    model = doc.get("model")
    if isinstance(model, dict) and model.get("device_profile"):
        doc = apply_profile(doc, path.parent / str(model["device_profile"]), str(path))
    return doc


def load_tier_scenario(path: Path) -> TierScenario:
    return parse_tier_scenario(load_tier_doc(path), str(path))
