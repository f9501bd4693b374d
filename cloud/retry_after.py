"""Retry-After for a full model: long enough that refused clients do not crowd out answers.

A 429 is cheap but not free: on this machine one costs the event loop a read, the parser's
callbacks and a write (~25-50 us), an answer ~135-170 us. At 10x overload of a 512-place queue,
5 120 clients told "1 s" came back about 4 000 times a second, 1.5 refusals per answer, and the
loop's time went to refusing them rather than answering: goodput fell to 0.67x of saturation.

So Retry-After spreads the refused clients' returns: with ``waiting`` clients inside a
Retry-After they were given and places freed at ``answers`` a second, a mean Retry-After of
T = waiting / (``refusals_per_answer`` x answers) brings those clients back, if they honour it, at
about ``refusals_per_answer`` per answer, however many they are. The waiting are counted, not
estimated (each 429's expiry, in tenths of a second), so a Retry-After never feeds back into its
own estimate; the answer rate is smoothed over half-second windows.

Clients refused in one burst and told the same time would come back in one burst (a herd: a
stall of the loop for everyone admitted), so successive 429s get T x 0.5 ... T x 1.5 in an even,
deterministic sequence (golden-ratio steps): a burst returns spread over a whole T. Every value is
at least 1 s and the time the queue as it is takes to drain; the spread values at most ``cap_s``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

WINDOW_S = 0.5  # rates are taken over at least this long
STALE_WINDOWS = 4  # a window this many times longer (no 429 for a while): start afresh
GOLDEN = (5**0.5 - 1) / 2  # steps of it modulo 1 fill [0, 1) evenly, in any stretch of them


def whole_seconds(seconds: float) -> int:
    """Retry-After in whole seconds (RFC 9110 allows no fractions), rounded up, at least 1."""
    return max(1, math.ceil(seconds - 1e-9))


class RetryAfter:
    """Per model version, on the event loop: :meth:`freed` per place given back, :meth:`refuse`
    per 429."""

    def __init__(
        self,
        cap_s: float,
        refusals_per_answer: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cap_s, self.refusals_per_answer, self._clock = cap_s, refusals_per_answer, clock
        self.spread_s = 0.0  # T, the mean Retry-After that spreads the waiting clients' returns
        self._turn = 0.0  # where the next 429 is in the spread, in [0, 1)
        self._rate = 0.0  # smoothed places freed per second
        self._t0 = clock()
        self._freed = 0  # places freed in this window
        self._expiring: dict[int, int] = {}  # tenth of a second a Retry-After runs out -> clients
        self._waiting = 0  # their sum

    def freed(self) -> None:
        self._freed += 1

    def refuse(self, floor_s: float) -> int:
        """One 429: its Retry-After in whole seconds, at least ``floor_s`` (the queue's drain)."""
        now = self._clock()
        if now - self._t0 >= WINDOW_S:
            self._roll(now)
        self._turn = (self._turn + GOLDEN) % 1.0
        seconds = whole_seconds(max(floor_s, self.spread_s * (0.5 + self._turn)))
        tenth = int((now + seconds) * 10)
        self._expiring[tenth] = self._expiring.get(tenth, 0) + 1
        self._waiting += 1
        return seconds

    def waiting(self) -> int:
        """Refused clients whose Retry-After has not yet run out: a wave still to come back."""
        self._expire(self._clock())
        return self._waiting

    def _expire(self, now: float) -> None:
        for tenth in [t for t in self._expiring if t + 1 <= now * 10]:  # wholly past
            self._waiting -= self._expiring.pop(tenth)

    def _roll(self, now: float) -> None:
        dt = now - self._t0
        rate = self._freed / dt
        # After a quiet spell (no 429 for a while) the old rate is gone; else halve its weight.
        self._rate = rate if dt > STALE_WINDOWS * WINDOW_S else 0.5 * (self._rate + rate)
        self._t0, self._freed = now, 0
        self._expire(now)
        if not self._waiting:
            self.spread_s = 0.0
        elif self._rate <= 0:  # refusing and answering nothing: come back as late as we say
            self.spread_s = self.cap_s / 1.5
        else:
            t = self._waiting / (self.refusals_per_answer * self._rate)
            self.spread_s = min(self.cap_s / 1.5, t)  # its largest spread value: cap_s
