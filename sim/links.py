"""Link technologies: throughput, delay, loss and the radio power-state model, each with a source.

Energy follows Huang et al. (MobiSys 2012): while transferring, power = base + slope_up * Mbps up +
slope_down * Mbps down; after the last transfer the radio stays in a high-power *tail* state, and
a transfer that finds the radio idle first pays a *promotion*. BLE has no tail: the radio wakes for
connection events; we charge the TX/RX current for the time on air.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
    jitter_p90_ms: float  # extra delay at the 90th percentile (lognormal body)
    loss_rate: float  # packet loss; each loss costs one retransmission timeout
    retransmit_timeout_ms: float
    radio: RadioPower
    sources: tuple[str, ...]


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
        RadioPower(
            base_mw=21.3,
            up_mw_per_mbps=0.0,
            down_mw_per_mbps=0.0,
            tail_s=0.0,
            tail_mw=0.0,
            promotion_s=0.0,
            promotion_mw=0.0,
        ),
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
        RadioPower(
            base_mw=132.86,
            up_mw_per_mbps=283.17,
            down_mw_per_mbps=137.01,
            tail_s=0.238,
            tail_mw=119.3,
            promotion_s=0.079,
            promotion_mw=124.4,
        ),
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
        RadioPower(
            base_mw=1288.04,
            up_mw_per_mbps=438.39,
            down_mw_per_mbps=51.97,
            tail_s=11.576,
            tail_mw=1060.0,
            promotion_s=0.260,
            promotion_mw=1210.7,
        ),
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
        RadioPower(
            base_mw=1288.04,
            up_mw_per_mbps=438.39,
            down_mw_per_mbps=51.97,
            tail_s=11.576,
            tail_mw=1060.0,
            promotion_s=0.260,
            promotion_mw=1210.7,
        ),
        (
            "Ookla via RCR Wireless (uplink, latency)",
            "assumption: LTE-like RRC power states (NSA 5G), Huang et al. 2012",
        ),
    ),
}


def transfer_energy_j(
    tech: LinkTechnology, up_bytes: int, down_bytes: int, seconds: float
) -> float:
    """Active-state radio energy for a transfer lasting ``seconds`` (J)."""
    if seconds <= 0:
        return 0.0
    up_mbps = up_bytes * 8 / 1e6 / seconds
    down_mbps = down_bytes * 8 / 1e6 / seconds
    r = tech.radio
    power_mw = r.base_mw + r.up_mw_per_mbps * up_mbps + r.down_mw_per_mbps * down_mbps
    return power_mw / 1e3 * seconds


def radio_energy_j(tech: LinkTechnology, busy: list[tuple[float, float, int, int]]) -> dict:
    """Energy of one radio over a timeline of (start_s, end_s, up_bytes, down_bytes) transfers.

    Returns active, tail and promotion energy (J) and the number of promotions.
    """
    r = tech.radio
    active = tail = promo = 0.0
    promotions = 0
    last_end = None
    for start, end, up, down in sorted(busy):
        if last_end is None or start - last_end > r.tail_s:
            promotions += 1
            promo += r.promotion_mw / 1e3 * r.promotion_s
            if last_end is not None:
                tail += r.tail_mw / 1e3 * r.tail_s
        elif last_end is not None and start > last_end:
            tail += r.tail_mw / 1e3 * (start - last_end)
        active += transfer_energy_j(tech, up, down, end - start)
        last_end = max(last_end or end, end)
    if last_end is not None:
        tail += r.tail_mw / 1e3 * r.tail_s
    return {"active_j": active, "tail_j": tail, "promotion_j": promo, "promotions": promotions}
