"""Retry-After spreads refused clients' returns (cloud/retry_after.py), on a simulated clock."""

from __future__ import annotations

import heapq
import random

import pytest
from edgesplit.cloud.limits import Limits
from edgesplit.cloud.retry_after import WINDOW_S, RetryAfter, whole_seconds

CAP_S, PER_ANSWER = Limits().overload_penalty_s, Limits().refusals_per_answer  # 10 s, 0.25


def _overload(
    waiting: int, answers_per_s: float, seconds: float = 60.0
) -> tuple[float, list[int], list[int]]:
    """``waiting`` clients honouring Retry-After, all refused in one 50 ms burst, against a full
    queue that frees ``answers_per_s`` places a second, each retaken at once by the client it
    answered (as in a closed loop): every return is refused. Returns, over the last half of the
    run, refusals per answer, the Retry-After values given and the refusals per second."""
    now = 0.0
    ra = RetryAfter(CAP_S, PER_ANSWER, clock=lambda: now)
    rng = random.Random(7)
    returns = [(rng.uniform(0, 0.05), i) for i in range(waiting)]
    heapq.heapify(returns)
    gap = 1.0 / answers_per_s
    next_answer, half = gap, seconds / 2
    refusals = answers = 0
    given: list[int] = []
    per_second = [0] * int(seconds + 1)
    while returns[0][0] < seconds or next_answer < seconds:
        if next_answer <= returns[0][0]:
            now = next_answer
            ra.freed()
            answers += now >= half
            next_answer += gap
            continue
        now, client = heapq.heappop(returns)
        seconds_given = ra.refuse(0.1)  # a queue that drains in 0.1 s
        if now >= half:
            refusals += 1
            given.append(seconds_given)
            per_second[int(now)] += 1
        heapq.heappush(returns, (now + seconds_given, client))
    return refusals / answers, given, per_second[int(half) : int(seconds)]


def test_many_waiting_clients_come_back_at_a_quarter_per_answer_and_not_as_a_herd():
    # The overload bench's shipped case: 5 120 clients, 514 places, ~2 800 answers/s.
    per_answer, given, per_second = _overload(4608, 2800)
    # T = 4 608 / (0.25 x 2 800) = 6.6 s, spread over 3.3-9.9 s, rounded up: 4-10 s.
    assert set(given) == set(range(4, 11))
    assert 0.17 < per_answer <= PER_ANSWER
    # Told 1 s each, the same clients came back 1.65 times per answer.
    assert 6 * per_answer < 4608 / 2800
    # Refused in one burst at first, they come back spread over the seconds: none sees more than
    # 1.3x the mean (told all the same time, all would come back in one second of every 7).
    # Whole seconds cannot spread a burst within a second: each second's share still comes
    # back within the burst's 50 ms.
    assert max(per_second) < 1.3 * sum(per_second) / len(per_second)


def test_a_small_overload_keeps_one_second():
    per_answer, given, _ = _overload(100, 3000)
    assert set(given) == {1}
    assert per_answer == pytest.approx(100 / 3000, rel=0.1)


def test_retry_after_is_capped_and_never_below_the_queues_drain():
    _, given, _ = _overload(4608, 300)  # 61 s by the estimate
    assert max(given) == CAP_S and sum(given) / len(given) > 0.6 * CAP_S
    now = 0.0
    ra = RetryAfter(CAP_S, PER_ANSWER, clock=lambda: now)
    assert ra.refuse(0.2) == 1  # nothing known yet: at least 1 s
    assert ra.refuse(12.2) == 13  # the queue as it is drains in 12.2 s: not sooner, cap or not


def test_refusing_while_nothing_is_answered_gives_the_cap():
    now = 0.0
    ra = RetryAfter(5.0, 0.5, clock=lambda: now)
    for _ in range(100):
        ra.refuse(0.0)
    now = WINDOW_S * 1.1
    assert {ra.refuse(0.0) for _ in range(20)} == {2, 3, 4, 5}  # 5 / 1.5 x (0.5 ... 1.5), up


def test_after_a_quiet_spell_the_old_load_is_forgotten():
    now = 0.0
    ra = RetryAfter(5.0, 0.5, clock=lambda: now)
    for i in range(2000):  # 2 000 refusals in 0.6 s, 100 answers
        now = i * 0.0003
        ra.refuse(0.0)
        if i % 20 == 0:
            ra.freed()
    now = 0.61
    assert ra.refuse(0.0) >= 3
    for i in range(3000):  # a minute of answers and no refusal
        now = 1 + i * 0.02
        ra.freed()
    assert ra.refuse(0.0) == 1


def test_whole_seconds_round_up():
    assert [whole_seconds(s) for s in (0.0, 0.2, 1.0, 1.01, 2.5, 3.0)] == [1, 1, 1, 2, 3, 3]
