"""Execution of inference requests: dynamic batching, or direct runs, with bounded queues.

Dynamic batching merges concurrent requests to one model version whose inputs agree on everything
but the batch dimension, up to ``max_batch_size`` samples or ``max_queue_delay_ms`` after the
first request arrived, runs them as one ORT call, and splits the outputs back per request.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from edgesplit.cloud.errors import OipError, Overloaded
from edgesplit.cloud.metrics import Metrics
from edgesplit.cloud.models import batch_key


@dataclass
class _Item:
    inputs: dict[str, np.ndarray]
    size: int
    key: tuple
    future: asyncio.Future
    enqueued: float = field(default_factory=time.monotonic)


class Executor:
    """Runs one model version: batched (dynamic batching) or one request at a time per instance."""

    def __init__(self, model, pool: ThreadPoolExecutor, metrics: Metrics, label: str) -> None:
        self.model, self.pool, self.metrics, self.label = model, pool, metrics, label
        cfg = model.cfg
        db = cfg.dynamic_batching
        self.batching = bool(db and db.enabled and cfg.max_batch_size > 0)
        self.max_batch = cfg.max_batch_size
        self.delay_s = (db.max_queue_delay_ms / 1000.0) if db else 0.0
        self.max_queue = cfg.max_queue_size
        self.slots = asyncio.Semaphore(cfg.instances)
        self.queue: deque[_Item] = deque()
        self.arrived = asyncio.Event()
        self.waiting = 0  # unbatched requests waiting for an instance
        self.inflight = 0
        self.ewma_run_s = 0.01
        self._loop_task: asyncio.Task | None = None
        self._accepting = True

    def start(self) -> None:
        if self.batching:
            self._loop_task = asyncio.create_task(self._batch_loop())

    async def infer(self, inputs: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
        if not self._accepting:
            raise OipError("server is shutting down", status=503)
        depth = len(self.queue) if self.batching else self.waiting
        if depth >= self.max_queue:
            retry = max(1.0, depth * self.ewma_run_s / max(1, self.max_batch or 1))
            raise Overloaded(
                f"model '{self.label}' has {depth} requests queued (max_queue_size "
                f"{self.max_queue}); retry later",
                retry_after_s=retry,
            )
        if not self.batching:
            return await self._run_direct(inputs)
        fut = asyncio.get_running_loop().create_future()
        self.queue.append(_Item(inputs, size, batch_key(inputs), fut))
        self.metrics.queue_depth.labels(self.label).set(len(self.queue))
        self.arrived.set()
        return await fut

    async def _run_direct(self, inputs):
        self.waiting += 1
        self.metrics.queue_depth.labels(self.label).set(self.waiting)
        try:
            await self.slots.acquire()
        finally:
            self.waiting -= 1
            self.metrics.queue_depth.labels(self.label).set(self.waiting)
        self.inflight += 1
        t0 = time.monotonic()
        fut = asyncio.get_running_loop().run_in_executor(self.pool, self.model.run, inputs)

        def done(_f: asyncio.Future) -> None:
            # The slot is held until the ORT call really ends, even if the caller timed out.
            self.inflight -= 1
            self.slots.release()
            self._record(t0, 1)

        fut.add_done_callback(done)
        return await asyncio.shield(fut)

    def _record(self, t0: float, samples: int) -> None:
        self.ewma_run_s = 0.8 * self.ewma_run_s + 0.2 * (time.monotonic() - t0)
        self.metrics.batch_size.labels(self.label).observe(samples)

    async def _execute(self, inputs, samples: int):
        t0 = time.monotonic()
        out = await asyncio.get_running_loop().run_in_executor(self.pool, self.model.run, inputs)
        self._record(t0, samples)
        return out

    async def _batch_loop(self) -> None:
        while True:
            while not self.queue:
                self.arrived.clear()
                await self.arrived.wait()
            await self.slots.acquire()
            batch = await self._collect()
            self.metrics.queue_depth.labels(self.label).set(len(self.queue))
            if not batch:
                self.slots.release()
                continue
            task = asyncio.create_task(self._run_batch(batch))
            task.add_done_callback(lambda _t: self.slots.release())

    async def _collect(self) -> list[_Item]:
        """Take the head request and same-shaped followers until full or the delay ran out."""
        while self.queue and self.queue[0].future.done():  # timed out / cancelled while queued
            self.queue.popleft()
        if not self.queue:
            return []
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
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), remaining)
            except TimeoutError:
                break
        return batch

    async def _run_batch(self, batch: list[_Item]) -> None:
        self.inflight += 1
        try:
            names = list(batch[0].inputs)
            merged = (
                batch[0].inputs
                if len(batch) == 1
                else {n: np.concatenate([it.inputs[n] for it in batch]) for n in names}
            )
            total = sum(it.size for it in batch)
            try:
                out = await self._execute(merged, total)
            except Exception as exc:  # deliver the failure to every waiting request
                for it in batch:
                    if not it.future.done():
                        it.future.set_exception(exc)
                return
            start = 0
            for it in batch:
                part = {k: v[start : start + it.size] for k, v in out.items()}
                start += it.size
                if not it.future.done():
                    it.future.set_result(part)
        finally:
            self.inflight -= 1

    async def drain(self, timeout_s: float) -> None:
        """Stop accepting; wait for queued and running work to finish."""
        self._accepting = False
        end = time.monotonic() + timeout_s
        while (self.queue or self.inflight or self.waiting) and time.monotonic() < end:
            await asyncio.sleep(0.01)
        if self._loop_task:
            self._loop_task.cancel()
