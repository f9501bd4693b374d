"""How many requests a model admits while it is refusing others.

Under sustained overload a full queue buys no throughput: the server is busy either way, and
every admitted request waits out the whole queue (at kws-large's 512 places, 130-190 ms here)
before its run. A device with a deadline would rather have its 429 at once and answer locally.
CoDel (RFC 8289) draws the same line for network queues: a *burst* passes through a queue and is
absorbed; a *standing* queue, whose wait stays above a target for an interval, only delays
everyone and is shed.

So each model version keeps, on the event loop, the shortest wait of the requests it runs in each
``interval_s`` (from the arrival of a request's last byte, or its admission if later, to the
start of its run: the event loop's backlog, decoding and the queue; not a slow link's upload).
At the end of an interval in which 429s were given:

- even the shortest wait over ``target_s`` (a standing queue, as CoDel judges it: a burst
  drains, and its last requests wait briefly): the admitted count is cut in proportion (at most
  halved per interval, never below ``floor``, which keeps every instance busy);
- else it grows back by a tenth.

Without 429s the limit stays where it is while refused clients are still inside their
Retry-After (they are a wave still to come back: restoring the whole queue for them would refill
it, and everyone admitted would wait its drain again), and returns to the whole capacity once
none is. An interval with no request at all restores it too. A queue that fills without
overload (as many clients as places) is never cut: nobody is refused.

It is a model's choice (``standing_queue_target_ms``, off by default), because the wait counted
includes decoding a request while others run, which for some models is concurrency the
throughput needs, not a queue: kws-large (runs of ~0.2 ms; the event loop is its limit, so
requests admitted beyond it only wait for the loop) kept its goodput with tens admitted instead
of 514, while ocr-rec (runs of ~8 ms, 184 KB bodies decoded in the codec pool) lost 21-35 % of
its goodput at 2-4 admitted.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# RFC 8289 section 4.3-4.4: interval 100 ms (a worst-case round trip), target 5 ms (5-10 % of it).
INTERVAL_S = 0.100
TARGET_S = 0.005
GROW = 0.1  # back up by this share of the limit per interval while waits are within target
MAX_CUT = 0.5  # the limit at most halves per interval


class StandingQueue:
    """Per model version, on the event loop: :meth:`limit_now` at admission, :meth:`refused` per
    429, :meth:`waited` per request whose run began. ``target_s`` 0: never cut."""

    def __init__(
        self,
        capacity: int,
        floor: int,
        target_s: float = TARGET_S,
        interval_s: float = INTERVAL_S,
        returning: Callable[[], int] = lambda: 0,
        clock: Callable[[], float] = time.monotonic,
        on_limit: Callable[[int], None] = lambda _n: None,
    ) -> None:
        self.capacity, self.floor = capacity, max(1, min(floor, capacity))
        self.target_s, self.interval_s = target_s, interval_s
        self._returning = returning  # refused clients still inside their Retry-After
        self._clock, self._on_limit = clock, on_limit
        self.limit = capacity
        self._last_seen = clock()
        self._end = self._last_seen + interval_s  # of the current interval
        self._min_wait, self._refusing = float("inf"), False

    def limit_now(self) -> int:
        """The admitted count allowed now; after an interval without any request, all of it."""
        now = self._clock()
        if now - self._last_seen > self.interval_s:
            self._restart(now)
            self._set(self.capacity)
        self._last_seen = now
        return self.limit

    def refused(self) -> None:
        self._refusing = True

    def waited(self, wait_s: float) -> None:
        if wait_s < self._min_wait:
            self._min_wait = wait_s
        now = self._clock()
        self._last_seen = now
        if now >= self._end:
            self._adapt()
            self._restart(now)

    def _restart(self, now: float) -> None:
        self._end = now + self.interval_s
        self._min_wait, self._refusing = float("inf"), False

    def _adapt(self) -> None:
        if not self.target_s:
            return
        shortest = self._min_wait
        if self._refusing and shortest > self.target_s:
            cut = max(MAX_CUT, self.target_s / shortest)
            self._set(max(self.floor, min(self.limit - 1, int(self.limit * cut))))
        elif self._refusing:
            self._set(min(self.capacity, self.limit + max(1, int(self.limit * GROW))))
        elif self.limit < self.capacity and not self._returning():
            self._set(self.capacity)

    def _set(self, limit: int) -> None:
        if limit != self.limit:
            self.limit = limit
            self._on_limit(limit)
