"""Execution of one model version: a bounded queue, ``instances`` workers, optional batching.

Capacity is reserved at admission (from the request's headers, before its body is read), so an
overloaded model answers 429 without doing any work. Each instance (a thread) takes the head
request and, when batching is on, the same-shaped requests behind it (up to ``max_batch_size``
samples, waiting at most ``max_queue_delay_ms`` after the head arrived), runs them as one ORT
call and splits the outputs back.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from edgesplit.cloud.errors import OipError, Overloaded, Unavailable
from edgesplit.cloud.metrics import Metrics
from edgesplit.cloud.retry_after import RetryAfter
from edgesplit.cloud.standing_queue import StandingQueue

log = logging.getLogger("edgesplit.cloud")


@dataclass
class _Item:
    inputs: dict[str, np.ndarray]
    size: int
    key: tuple
    future: asyncio.Future
    enqueued: float = field(default_factory=time.monotonic)
    started: float = 0.0  # when its run began (set by the instance)


def batch_key(inputs: dict[str, np.ndarray]) -> tuple:
    """Requests can share a batch when everything but the batch dimension matches."""
    return tuple(sorted((k, v.dtype.str, v.shape[1:]) for k, v in inputs.items()))


def _is_ort_input_error(exc: Exception) -> bool:
    """ORT rejecting the tensors it was given (shape/type deep in the graph): the client's fault."""
    name = type(exc).__name__
    return name in {"InvalidArgument", "Fail", "InvalidGraph"} or (
        name == "RuntimeException" and "shape" in str(exc).lower()
    )


class Executor:
    """Runs one model version: batched (dynamic batching) or one request at a time per instance.

    Each instance is a thread that takes its next request from the queue itself as soon as it
    has finished the last, and hands results to the event loop. Scheduled from the loop instead
    (an asyncio worker per instance, ORT calls sent to a thread pool), an instance waited for the
    loop twice per request, to hear that its run had ended and to be handed the next: under load
    the loop is busy reading and answering requests, and on the overload bench each instance sat
    idle about two thirds of the time with its queue full.
    """

    def __init__(
        self, model: Any, metrics: Metrics, label: str, batching: bool, retry: RetryAfter
    ) -> None:
        self.model, self.metrics, self.label = model, metrics, label
        # The labelled children, kept (``labels()`` takes a lock and builds a key each call).
        self._depth = metrics.queue_depth.labels(label)
        self._batch_sizes = metrics.batch_size.labels(label)
        cfg = model.cfg
        db = cfg.dynamic_batching
        self.batching = batching and cfg.max_batch_size > 0
        self.max_batch = cfg.max_batch_size if self.batching else 1
        self.delay_s = (db.max_queue_delay_ms / 1000.0) if (db and self.batching) else 0.0
        self.instances = cfg.instances
        self.max_queue = cfg.max_queue_size
        # Admitted = reserved at the headers and not yet answered: waiting, reading, or running.
        # Counted on the event loop only (reserve / release).
        self.capacity = self.max_queue + self.instances * self.max_batch
        self.admitted = 0
        self.retry = retry  # Retry-After for this model's 429s
        # While refusing, fewer are admitted if their waits stay long (a standing queue); two
        # per instance (per batch place, when batching) keep every instance busy.
        self._shedding = False
        self._limit_gauge = metrics.admission_limit.labels(label)
        self._limit_gauge.set(self.capacity)
        self.standing = StandingQueue(
            self.capacity,
            2 * self.instances * self.max_batch,
            target_s=cfg.standing_queue_target_ms / 1000.0,
            returning=retry.waiting,
            on_limit=self._limit_changed,
        )
        # The queue, the running counts and the stop flag are shared with the instance threads.
        self.queue: deque[_Item] = deque()
        self._cond = threading.Condition()
        self.running = 0  # batches being run
        self.in_run = 0  # requests inside running batches
        self.ewma_run_s = 0.01
        self._stopping = False
        self._collecting = threading.Lock()  # one collector at a time; the others run batches
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._accepting = True
        self._deadline: float | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._threads = [
            threading.Thread(target=self._instance, name=f"{self.label}-{i}", daemon=True)
            for i in range(self.instances)
        ]
        for t in self._threads:
            t.start()

    # -- admission (event loop) ------------------------------------------------------------
    def expected_wait_s(self, depth: int | None = None) -> float:
        depth = self.admitted if depth is None else depth
        return depth * self.ewma_run_s / (self.instances * self.max_batch)

    def reserve(self) -> None:
        """Take one place or raise 429 (queue full) / 503 (draining, would not be reached)."""
        late = self._deadline is None or time.monotonic() + self.expected_wait_s() > self._deadline
        if not self._accepting and late:
            raise Unavailable("server is shutting down; this request would not be served")
        if self.at_limit():
            raise self.overloaded(self.refuse())
        self.admitted += 1

    def at_limit(self) -> bool:
        """For admission, on the loop: no place left now (a quiet spell restores every place)."""
        return self.admitted >= self.standing.limit_now()

    @property
    def full(self) -> bool:
        """No place left, as last set (no side effects: safe to read from any thread)."""
        return self.admitted >= self.standing.limit

    def refuse(self) -> int:
        """One 429, counted: its Retry-After in whole seconds, at least the time the queue as it
        is now takes to drain (see :mod:`edgesplit.cloud.retry_after`)."""
        self.standing.refused()
        return self.retry.refuse(self.expected_wait_s())

    def overloaded(self, retry_after_s: int) -> Overloaded:
        held = self.standing.limit
        places = (
            f"max_queue_size {self.max_queue} + {self.capacity - self.max_queue} running"
            if held >= self.capacity
            else f"held to {held} of {self.capacity} while its queue stands over "
            f"{self.standing.target_s * 1e3:g} ms, standing_queue_target_ms"
        )
        return Overloaded(
            f"model '{self.label}' is full ({places}); retry later",
            retry_after_s=retry_after_s,
        )

    def _limit_changed(self, limit: int) -> None:
        """The gauge follows every change; the log only the start and end of shedding."""
        self._limit_gauge.set(limit)
        if self._shedding != (limit < self.capacity):
            self._shedding = limit < self.capacity
            fields = {"model": self.label, "admission_limit": limit, "capacity": self.capacity}
            what = "standing queue shed" if self._shedding else "standing queue restored"
            log.info(what, extra={"fields": fields})

    def release(self) -> None:
        self.admitted -= 1
        self.retry.freed()

    # -- execution -------------------------------------------------------------------------
    async def infer(
        self, inputs: dict[str, np.ndarray], size: int, since: float
    ) -> dict[str, np.ndarray]:
        """Queue and await one request; ``since``: when it was all in, the start of its wait."""
        fut = asyncio.get_running_loop().create_future()
        item = _Item(inputs, size, batch_key(inputs), fut)
        with self._cond:
            self.queue.append(item)
            depth = len(self.queue)
            self._cond.notify()
        self._depth.set(depth)
        try:
            return await fut
        finally:  # not run (timed out, cancelled): it waited at least until now
            self.standing.waited((item.started or time.monotonic()) - since)

    def _instance(self) -> None:
        """One instance: take a batch, run it, hand the results to the loop; until stopped."""
        while True:
            with self._collecting, self._cond:
                batch = self._collect()
                if batch is None:
                    return
                self.running += 1
                self.in_run += len(batch)
                depth = len(self.queue)
            self._depth.set(depth)
            try:
                self._run_batch(batch)
            finally:
                with self._cond:
                    self.running -= 1
                    self.in_run -= len(batch)

    def _collect(self) -> list[_Item] | None:
        """Under the lock: the head request and same-shaped followers until full or the delay ran
        out; None once stopping."""
        while True:
            while self.queue and self.queue[0].future.done():  # timed out / cancelled
                self.queue.popleft()
            if self._stopping:
                return None
            if self.queue:
                break
            self._cond.wait()
        first = self.queue.popleft()
        batch, total = [first], first.size
        deadline = first.enqueued + self.delay_s
        while total < self.max_batch:
            if self.queue:
                nxt = self.queue[0]
                if nxt.future.done():
                    self.queue.popleft()
                    continue
                if nxt.key != first.key or total + nxt.size > self.max_batch:
                    break
                batch.append(self.queue.popleft())
                total += nxt.size
                continue
            if self.admitted - self.in_run - len(batch) <= 0:
                break  # every admitted request is here or running: nobody else is coming
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._stopping:
                break
            self._cond.wait(remaining)
        return batch

    def _run_batch(self, batch: list[_Item]) -> None:
        total = sum(it.size for it in batch)
        t0 = time.monotonic()
        for it in batch:
            it.started = t0
        try:
            names = list(batch[0].inputs)
            merged = (
                batch[0].inputs
                if len(batch) == 1
                else {n: np.concatenate([it.inputs[n] for it in batch]) for n in names}
            )
            out = self.model.run(merged)
        except Exception as exc:  # every waiting request gets the failure; the instance goes on
            if _is_ort_input_error(exc):
                exc = OipError(f"model '{self.label}' rejected the input: {exc}"[:600])
            self._deliver([(it.future, exc) for it in batch])
            return
        self.ewma_run_s = 0.8 * self.ewma_run_s + 0.2 * (time.monotonic() - t0)
        self._batch_sizes.observe(total)
        if len(batch) == 1:  # whole outputs: an unbatched model's rows are not samples
            self._deliver([(batch[0].future, out)])
            return
        parts, start = [], 0
        for it in batch:
            parts.append((it.future, {k: v[start : start + it.size] for k, v in out.items()}))
            start += it.size
        self._deliver(parts)

    def _deliver(self, results: list[tuple[asyncio.Future, Any]]) -> None:
        assert self._loop is not None
        with suppress(RuntimeError):  # the loop closed while this batch ran: nobody waits
            self._loop.call_soon_threadsafe(_settle, results)

    # -- shutdown (event loop) -------------------------------------------------------------
    def begin_drain(self, deadline: float) -> None:
        """Stop admitting work that cannot finish by ``deadline``; 503 the queue's tail now."""
        self._accepting, self._deadline = False, deadline
        now, kept, refused = time.monotonic(), deque[_Item](), []
        with self._cond:
            for i, item in enumerate(self.queue):
                if now + self.expected_wait_s(i + self.running * self.max_batch) > deadline:
                    refused.append(item)
                else:
                    kept.append(item)
            self.queue = kept
        for item in refused:
            self._unserved(item)

    def refuse_queued(self) -> None:
        """The drain deadline: everything still queued gets 503 instead of a cancelled 500."""
        with self._cond:
            queued, self.queue = list(self.queue), deque()
        for item in queued:
            self._unserved(item)

    def _unserved(self, item: _Item) -> None:
        """503 for a queued request the drain will not reach (a 429 is :meth:`refuse`)."""
        if not item.future.done():
            item.future.set_exception(
                Unavailable("server is shutting down; this request was not served")
            )

    @property
    def idle(self) -> bool:
        return not self.queue and not self.running and not self.admitted

    async def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for t in self._threads:  # a run in progress finishes first (ORT cannot be interrupted)
            await asyncio.to_thread(t.join)


def _settle(results: list[tuple[asyncio.Future, Any]]) -> None:
    """On the loop: each waiting request's outputs or error (skipped if it stopped waiting)."""
    for fut, value in results:
        if fut.done():
            continue
        if isinstance(value, BaseException):
            fut.set_exception(value)
        else:
            fut.set_result(value)


def probe_batch_efficiency(model: Any, probe_dims: dict[str, list[int]], n: int) -> float | None:
    """time(batch n) / (n x time(batch 1)) on zero inputs, each the fastest of interleaved
    runs; None if a sample shape is unknown."""
    feeds1: dict[str, np.ndarray] = {}
    from edgesplit.cloud.datatypes import OIP_TO_NUMPY

    for t in model.inputs:
        sample = probe_dims.get(t.name, t.shape[1:])
        if any(d < 1 for d in sample) or t.datatype == "BYTES":
            return None
        feeds1[t.name] = np.zeros([1, *sample], OIP_TO_NUMPY[t.datatype])
    feeds_n = {k: np.repeat(v, n, axis=0) for k, v in feeds1.items()}
    model.run(feeds1)  # warm-up: first runs allocate
    model.run(feeds_n)
    # Interleaved, and the fastest of each kept: on a shared machine other work only ever adds
    # time, so the minimum is the cost and the median is the cost plus whatever else ran (with
    # a median of 7 and of 3 runs, three starts read kws-large at 0.15, 0.71 and 0.26).
    t1 = tn = float("inf")
    rounds, end = 0, time.perf_counter() + PROBE_BUDGET_S
    while rounds < PROBE_MIN_ROUNDS or (rounds < PROBE_MAX_ROUNDS and time.perf_counter() < end):
        t0 = time.perf_counter()
        model.run(feeds1)
        t_mid = time.perf_counter()
        model.run(feeds_n)
        t1, tn = min(t1, t_mid - t0), min(tn, time.perf_counter() - t_mid)
        rounds += 1
    return tn / (n * t1)


PROBE_MIN_ROUNDS = 5  # batch-1 and batch-n runs, interleaved, at least
PROBE_MAX_ROUNDS = 40  # and at most, within the time budget
PROBE_BUDGET_S = 0.5  # per model version, at load
