"""One link model: technologies with their sourced figures, a profile, and the physics.

The simulator (``sim/model.py``), the TCP link emulator (``device/link_emulator.py``) and the
router's starting estimate all read a link from here, so they cannot disagree on what "LTE" is:

- serialisation: ``bytes * 8 / rate``, FIFO per direction (one radio);
- one-way delay plus jitter, exponential with the profile's p90;
- loss: each MTU-sized packet is lost with the loss rate and costs one retransmission timeout;
- radio states (Huang et al., MobiSys 2012): a transfer that finds the radio idle (no traffic for
  longer than the tail) first pays the *promotion* delay; energy per state in ``sim/links.py``.

Units: ``_ms`` milliseconds, ``_s`` seconds, ``_mbps`` megabits per second, ``_mw`` milliwatts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from edgesplit.device.policy import LinkEstimate, LinkEstimator

from edgesplit.errors import ConfigError

MTU_BYTES = 1400  # a transfer is this many-byte packets for loss


def packets(nbytes: int) -> int:
    """Packets a transfer of ``nbytes`` takes (at least one)."""
    return max(1, math.ceil(nbytes / MTU_BYTES))


def jitter_mean_s(jitter_p90_ms: float) -> float:
    """Mean (s) of the exponential jitter whose 90th percentile is ``jitter_p90_ms``."""
    return jitter_p90_ms / 1e3 / math.log(10.0)


@dataclass(frozen=True)
class RadioPower:
    base_mw: float  # while active, before the throughput-dependent part
    up_mw_per_mbps: float
    down_mw_per_mbps: float
    tail_s: float
    tail_mw: float
    promotion_s: float
    promotion_mw: float


@dataclass(frozen=True)
class LinkTechnology:
    name: str
    up_mbps: float
    down_mbps: float
    one_way_delay_ms: float  # median, propagation + access
    jitter_p90_ms: float  # extra delay at the 90th percentile
    loss_rate: float  # packet loss; each loss costs one retransmission timeout
    retransmit_timeout_ms: float
    radio: RadioPower
    sources: tuple[str, ...]


_LTE_RADIO = RadioPower(
    base_mw=1288.04,
    up_mw_per_mbps=438.39,
    down_mw_per_mbps=51.97,
    tail_s=11.576,
    tail_mw=1060.0,
    promotion_s=0.260,
    promotion_mw=1210.7,
)

TECHNOLOGIES: dict[str, LinkTechnology] = {
    # BLE: 200 kbps application throughput default (Memfault primer: 100-800 kbps in practice);
    # 30 ms connection interval is typical on phones (Apple guidelines: iOS minimum 15 ms), so a
    # packet waits on average half an interval; nRF52832 at 3 V: TX 7.1 mA, RX 6.5 mA.
    "ble": LinkTechnology(
        "ble",
        0.2,
        0.2,
        15.0,
        15.0,
        0.001,
        30.0,
        RadioPower(21.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        (
            "Memfault BLE throughput primer",
            "Bluetooth Core spec / Apple Accessory Design Guidelines (connection interval)",
            "Nordic nRF52832 product spec (7.1 mA TX at 3 V)",
        ),
    ),
    # Wi-Fi: 802.11n single client 88 Mbps (EdgeCloudSim); hop latency median ~3 ms, p90 ~20 ms
    # (Sui et al. MobiSys 2016); power model Huang et al. 2012 (Wi-Fi column).
    "wifi": LinkTechnology(
        "wifi",
        88.0,
        88.0,
        3.0,
        17.0,
        0.001,
        200.0,
        RadioPower(132.86, 283.17, 137.01, 0.238, 119.3, 0.079, 124.4),
        ("EdgeCloudSim 802.11n model", "Sui et al. MobiSys 2016", "Huang et al. MobiSys 2012"),
    ),
    # LTE: median 13 Mbps down / 6 up (Huang et al. 2012); 40 ms one-way as Firebase's "LTE"
    # profile; 0.1 % loss (same profile); RRC promotion 260 ms, tail 11.576 s at ~1 W.
    "lte": LinkTechnology(
        "lte",
        6.0,
        13.0,
        40.0,
        30.0,
        0.001,
        300.0,
        _LTE_RADIO,
        ("Huang et al. MobiSys 2012", "Firebase Test Lab network profiles (LTE)"),
    ),
    # 5G (US, H1 2024): median uplink 14.56 Mbps, latency ~47 ms RTT (Ookla via RCR Wireless);
    # downlink and RRC timers assumed LTE-like (NSA 5G anchors on LTE): marked as an assumption.
    "5g": LinkTechnology(
        "5g",
        14.56,
        100.0,
        23.5,
        25.0,
        0.001,
        300.0,
        _LTE_RADIO,
        (
            "Ookla via RCR Wireless (uplink, latency)",
            "assumption: LTE-like RRC power states (NSA 5G), Huang et al. 2012",
        ),
    ),
}


@dataclass(frozen=True)
class LinkProfile:
    """A link as the simulator, the emulator and the router's prior all see it."""

    name: str
    up_mbps: float
    down_mbps: float
    one_way_delay_ms: float
    jitter_p90_ms: float
    loss_rate: float
    retransmit_timeout_ms: float
    promotion_ms: float = 0.0  # radio idle -> active before a transfer can start
    tail_ms: float = 0.0  # the radio stays active this long after the last transfer
    technology_name: str = ""  # the technology it derives from ("" for a custom profile)

    @classmethod
    def technology(cls, name: str, **overrides: float) -> LinkProfile:
        """The profile of ``ble``/``wifi``/``lte``/``5g``, with optional overrides."""
        if name not in TECHNOLOGIES:
            raise ConfigError(f"link profile {name!r}: expected one of {', '.join(TECHNOLOGIES)}")
        t = TECHNOLOGIES[name]
        base = cls(
            name,
            t.up_mbps,
            t.down_mbps,
            t.one_way_delay_ms,
            t.jitter_p90_ms,
            t.loss_rate,
            t.retransmit_timeout_ms,
            t.radio.promotion_s * 1e3,
            t.radio.tail_s * 1e3,
            name,
        )
        return replace(base, **overrides)  # type: ignore[arg-type]

    @classmethod
    def chain(cls, profiles: list[LinkProfile]) -> LinkProfile:
        """Hops in series as one link: slowest rate, delays and jitter added, losses combined.

        Each hop's radio may need promoting (as the simulator charges per hop): promotions add,
        and the chain's radio stays active for the shortest tail among the hops that promote."""
        keep = 1.0
        for p in profiles:
            keep *= 1 - p.loss_rate
        first = profiles[0]
        tails = [p.tail_ms for p in profiles if p.promotion_ms > 0]
        return cls(
            "+".join(p.name for p in profiles),
            min(p.up_mbps for p in profiles),
            min(p.down_mbps for p in profiles),
            sum(p.one_way_delay_ms for p in profiles),
            sum(p.jitter_p90_ms for p in profiles),
            1 - keep,
            max(p.retransmit_timeout_ms for p in profiles),
            sum(p.promotion_ms for p in profiles),
            min(tails) if tails else 0.0,
            first.technology_name,
        )

    def prior(self) -> LinkEstimate:
        """The device's starting estimate on this network: the nominal figures."""
        return LinkEstimate(self.up_mbps, self.down_mbps, 2 * self.one_way_delay_ms)

    def estimator(self) -> LinkEstimator:
        p = self.prior()
        return LinkEstimator(p.up_mbps, p.down_mbps, p.rtt_ms)

    def scenario_link(self) -> dict:
        """This profile as a scenario ``links`` entry (for ``sim validate``)."""
        tech = self.technology_name or (self.name if self.name in TECHNOLOGIES else "wifi")
        return {
            "technology": tech,
            "up_mbps": self.up_mbps,
            "down_mbps": self.down_mbps,
            "one_way_delay_ms": self.one_way_delay_ms,
            "loss_rate": self.loss_rate,
            "jitter_p90_ms": self.jitter_p90_ms,
            "retransmit_timeout_ms": self.retransmit_timeout_ms,
            "promotion_ms": self.promotion_ms,
            "tail_ms": self.tail_ms,
        }


class RadioState:
    """When the radio must first be promoted: idle after ``tail_ms`` without traffic."""

    def __init__(self, promotion_ms: float, tail_ms: float) -> None:
        self.promotion_s, self.tail_s = promotion_ms / 1e3, tail_ms / 1e3
        self.active_until_s = -math.inf  # the end of the last transfer plus the tail

    def promotion(self, now_s: float) -> float:
        """The promotion delay (s) a transfer starting at ``now_s`` pays first."""
        if not self.promotion_s or now_s <= self.active_until_s:
            return 0.0
        return self.promotion_s

    def busy_until(self, end_s: float) -> None:
        self.active_until_s = max(self.active_until_s, end_s + self.tail_s)
