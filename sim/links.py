"""Radio energy over the link model of ``device/link.py`` (technologies, profile and physics).

Energy follows Huang et al. (MobiSys 2012): while transferring, power = base + slope_up * Mbps up +
slope_down * Mbps down; after the last transfer the radio stays in a high-power *tail* state, and
a transfer that finds the radio idle first pays a *promotion*. BLE has no tail: the radio wakes for
connection events; we charge the TX/RX current for the time on air.
"""

from __future__ import annotations

from edgesplit.device.link import (
    MTU_BYTES,
    TECHNOLOGIES,
    LinkProfile,
    LinkTechnology,
    RadioPower,
    jitter_mean_s,
    packets,
)

__all__ = [
    "MTU_BYTES",
    "TECHNOLOGIES",
    "LinkProfile",
    "LinkTechnology",
    "RadioPower",
    "jitter_mean_s",
    "packets",
    "radio_energy_j",
    "transfer_energy_j",
    "RadioMeter",
]


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


class RadioMeter:
    """Energy of one radio over its transfers, folded in as they come (memory stays flat).

    Transfers are admitted in event order, so they arrive nearly sorted by start; a small buffer
    sorts the recent ones before they are folded, which gives :func:`radio_energy_j`'s result.
    """

    BUFFER = 2048
    KEEP = 256  # the most recent transfers stay buffered: a later one may still start earlier

    def __init__(self, tech: LinkTechnology) -> None:
        self.tech = tech
        self._buf: list[tuple[float, float, int, int]] = []
        self.active = self.tail = self.promo = 0.0
        self.promotions = 0
        self._last_end: float | None = None

    def add(self, start: float, end: float, up_bytes: int, down_bytes: int) -> None:
        self._buf.append((start, end, up_bytes, down_bytes))
        if len(self._buf) >= self.BUFFER:
            self._fold(len(self._buf) - self.KEEP)

    def _fold(self, n: int) -> None:
        self._buf.sort()
        r = self.tech.radio
        for start, end, up, down in self._buf[:n]:
            last = self._last_end
            if last is None or start - last > r.tail_s:
                self.promotions += 1
                self.promo += r.promotion_mw / 1e3 * r.promotion_s
                if last is not None:
                    self.tail += r.tail_mw / 1e3 * r.tail_s
            elif start > last:
                self.tail += r.tail_mw / 1e3 * (start - last)
            self.active += transfer_energy_j(self.tech, up, down, end - start)
            self._last_end = end if last is None else max(last, end)
        del self._buf[:n]

    def result(self) -> dict:
        """Active, tail and promotion energy (J) and the number of promotions."""
        self._fold(len(self._buf))
        tail = self.tail
        if self._last_end is not None:
            tail += self.tech.radio.tail_mw / 1e3 * self.tech.radio.tail_s
        return {
            "active_j": self.active,
            "tail_j": tail,
            "promotion_j": self.promo,
            "promotions": self.promotions,
        }


def radio_energy_j(tech: LinkTechnology, busy: list[tuple[float, float, int, int]]) -> dict:
    """Energy of one radio over a timeline of (start_s, end_s, up_bytes, down_bytes) transfers.

    Returns active, tail and promotion energy (J) and the number of promotions.
    """
    meter = RadioMeter(tech)
    for item in busy:
        meter.add(*item)
    return meter.result()
