"""A standing queue is shed under overload, a burst or a saturated queue is not
(cloud/standing_queue.py), on a simulated clock."""

from __future__ import annotations

from edgesplit.cloud.standing_queue import INTERVAL_S, TARGET_S, StandingQueue

CAPACITY, FLOOR = 514, 4  # kws-large unbatched: 512 places + 2 instances; 2 per instance
RATE = 4000.0  # answers a second: kws-large on this machine's event loop


class _Model:
    """A model whose queue is always filled to the admitted limit (a closed loop of more
    clients than places): each request waits for those ahead of it, limit / RATE."""

    def __init__(self, target_s: float = TARGET_S, returning: int = 0) -> None:
        self.now, self.returning = 0.0, returning
        self.sq = StandingQueue(
            CAPACITY,
            FLOOR,
            target_s=target_s,
            returning=lambda: self.returning,
            clock=lambda: self.now,
        )
        self.limits: list[int] = []

    def run(self, seconds: float, refusing: bool, wait_s: float | None = None) -> None:
        """1 ms steps: RATE / 1000 requests begin their runs, each after ``wait_s`` (default:
        the limit's own drain); ``refusing``: the queue's excess clients get 429s."""
        end = self.now + seconds
        while self.now < end:
            self.now += 0.001
            limit = self.sq.limit_now()
            if refusing:
                self.sq.refused()
            for _ in range(int(RATE / 1000)):
                self.sq.waited(limit / RATE if wait_s is None else wait_s)
            self.limits.append(self.sq.limit)


def test_under_overload_the_admitted_wait_is_held_near_the_target():
    m = _Model()
    m.run(3.0, refusing=True)
    # From 514 places (a 128 ms wait) to the ~20 that wait 5 ms, within half a second: at most
    # halved per interval.
    assert m.limits[500] < 40
    tail = m.limits[1000:]
    assert min(tail) >= FLOOR and max(tail) / RATE <= 2 * TARGET_S
    assert 0.5 * TARGET_S <= sum(tail) / len(tail) / RATE <= 1.5 * TARGET_S


def test_a_burst_drains_and_keeps_every_place():
    """600 requests at once against 514 places: 86 refused, the queue drains at RATE. The last
    admitted wait the whole drain (128 ms), but the first hardly at all: not a standing queue,
    nothing is cut (a mean over the interval, ~50 ms, would have halved the limit)."""
    m = _Model(returning=86)
    for _ in range(86):
        m.sq.refused()
    for i in range(CAPACITY):  # arrived at 0; the i-th run starts at i / RATE
        m.now = i / RATE
        m.sq.limit_now()
        m.sq.waited(i / RATE)
    assert m.sq.limit == CAPACITY


def test_a_queue_full_without_refusals_keeps_every_place():
    m = _Model()
    m.run(2.0, refusing=False)  # as many clients as places: long waits, nobody refused
    assert set(m.limits) == {CAPACITY}


def test_the_limit_is_held_while_refused_clients_are_still_to_come_back():
    m = _Model(returning=3000)
    m.run(1.0, refusing=True)
    held = m.sq.limit
    assert held < 40
    m.run(1.0, refusing=False, wait_s=0.001)  # a lull: the refused are inside their Retry-After
    assert m.sq.limit == held
    m.returning = 0
    m.run(0.3, refusing=False, wait_s=0.001)  # they have all come back: overload is over
    assert m.sq.limit == CAPACITY


def test_within_the_target_the_limit_grows_back_while_refusing():
    m = _Model()
    m.run(1.0, refusing=True)
    low = m.sq.limit
    m.run(1.0, refusing=True, wait_s=TARGET_S / 5)  # a faster model now: waits are short
    assert m.sq.limit > 2 * low


def test_a_quiet_interval_restores_every_place():
    m = _Model(returning=3000)
    m.run(1.0, refusing=True)
    assert m.sq.limit < CAPACITY
    m.now += 2 * INTERVAL_S  # nothing at all: the next request finds every place
    assert m.sq.limit_now() == CAPACITY


def test_the_floor_keeps_every_instance_busy_and_target_zero_never_cuts():
    m = _Model()
    m.run(2.0, refusing=True, wait_s=0.050)  # a slow model: 50 ms behind even one request
    assert m.sq.limit == FLOOR
    off = _Model(target_s=0.0)
    off.run(2.0, refusing=True)
    assert set(off.limits) == {CAPACITY}
