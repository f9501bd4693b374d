"""The data plane: model loading, admission, limits, decoding, inference and encoding.

No HTTP here (as MLServer's ``handlers/dataplane.py``): the REST layer turns requests into calls
on :class:`DataPlane` and its answers or :class:`OipError` into responses. Work that can take
more than a few milliseconds (parsing a large body, converting tensors, formatting JSON output)
runs in a small codec thread pool, so the event loop keeps answering health checks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from edgesplit.cloud.batcher import Executor, probe_batch_efficiency
from edgesplit.cloud.errors import InferenceTimeout, OipError, Overloaded, Unavailable
from edgesplit.cloud.limits import Limits, ModelLimits, content_length
from edgesplit.cloud.metrics import Metrics
from edgesplit.cloud.protocol import (
    HEADER_LENGTH,
    ModelMetadata,
    RequestHeader,
    build_response_parts,
    decode_inputs,
    parse_header,
    to_parsed,
)
from edgesplit.cloud.repository import Repository
from edgesplit.cloud.retry_after import RetryAfter

log = logging.getLogger("edgesplit.cloud")
T = TypeVar("T")
PROBE_BATCH = 8  # batch size of the load-time batching probe


HEADER_CACHE_ENTRIES = 256  # validated binary-extension JSON headers kept (see DataPlane._parse)
HEADER_CACHE_MAX_BYTES = 4096  # only headers up to this size are kept


class BodySource(Protocol):
    async def read_exact(self, n: int) -> bytes: ...
    async def read_all(self, limit: int) -> bytes: ...
    async def expect_end(self) -> None: ...
    def received_at(self) -> float | None: ...


@dataclass
class Admission:
    """A place reserved in a model's queue (and in the in-flight byte budget), from headers."""

    plane: DataPlane
    name: str
    version: str
    model: Any
    executor: Executor
    limits: ModelLimits
    content_length: int | None
    json_len: int | None
    released: bool = False
    at: float = field(default_factory=time.monotonic)  # when the place was taken

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.executor.release()
            self.plane.inflight_bytes -= self.content_length or 0


@dataclass
class Served:
    body: list[bytes]  # chunks, sent in order
    headers: dict[str, str]
    server_s: float  # from the complete body to the encoded response


class DataPlane:
    def __init__(
        self, repository: Repository, limits: Limits, request_timeout_s: float = 30.0
    ) -> None:
        self.repository, self.limits = repository, limits
        self.request_timeout_s = request_timeout_s
        self.metrics = Metrics(repository.models)
        # Model loading and the batching probe (each model's instances are its own threads).
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="load")
        self.codec = ThreadPoolExecutor(max_workers=2, thread_name_prefix="codec")
        self.executors: dict[tuple[str, str], Executor] = {}
        self.model_limits: dict[tuple[str, str], ModelLimits] = {}
        self.efficiency: dict[str, float | None] = {}
        self.inflight_bytes = 0
        self._headers: dict[bytes, RequestHeader] = {}  # see _parse
        self.ready = False
        self.load_error: str | None = None
        self.draining = False
        self.active: set[asyncio.Task] = set()
        self.on_state: list[Callable[[], None]] = []  # told when ready/draining/load_error change
        self._loader: asyncio.Task | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Begin loading models in the background; the server is live meanwhile."""
        self._loader = asyncio.create_task(self._load_all())

    async def _load_all(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            for name, entry in self.repository.models.items():
                await loop.run_in_executor(self.pool, self.repository.load, name)
                for version, model in entry.versions.items():
                    limits = ModelLimits(entry.config, model.inputs, self.limits)
                    batching = await loop.run_in_executor(self.pool, self._decide_batching, model)
                    retry = RetryAfter(
                        self.limits.overload_penalty_s, self.limits.refusals_per_answer
                    )
                    ex = Executor(model, self.metrics, name, batching, retry)
                    ex.start()
                    self.model_limits[(name, version)] = limits
                    self.executors[(name, version)] = ex
        except Exception as exc:  # a model that cannot load keeps the server unready
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.error("load failed", extra={"fields": {"error": self.load_error}})
            self._changed()
            return
        self.ready = True
        self._changed()
        log.info("ready", extra={"fields": {"models": sorted(self.repository.models)}})

    def _changed(self) -> None:
        for fn in self.on_state:
            fn()

    def _decide_batching(self, model: Any) -> bool:
        """Batch only where a probe shows a batch of n is cheaper than n single runs."""
        cfg = model.cfg
        db = cfg.dynamic_batching
        if not (db and db.enabled and cfg.max_batch_size > 0):
            return False
        if not db.auto:
            return True
        n = min(PROBE_BATCH, cfg.max_batch_size)
        try:
            eff = probe_batch_efficiency(model, db.probe_dims, n)
        except Exception as exc:  # the probe must not stop the server; keep the config's choice
            log.warning(
                "batch probe failed", extra={"fields": {"model": cfg.name, "error": str(exc)}}
            )
            return True
        self.efficiency[cfg.name] = eff
        if eff is None:
            return True
        self.metrics.batch_efficiency.labels(cfg.name).set(eff)
        decision = eff <= db.max_efficiency
        fields = {"model": cfg.name, "n": n, "efficiency": round(eff, 3), "batching": decision}
        log.info("batch probe", extra={"fields": fields})
        return decision

    async def wait_loaded(self, timeout_s: float) -> None:
        if self._loader is not None:
            await asyncio.wait_for(asyncio.shield(self._loader), timeout_s)

    def begin_drain(self, timeout_s: float) -> None:
        """Answer 503 for work that cannot finish in ``timeout_s``; the rest is served."""
        self.draining = True
        self._changed()
        deadline = time.monotonic() + timeout_s
        for ex in self.executors.values():
            ex.begin_drain(deadline)
        asyncio.get_running_loop().call_later(timeout_s, self._drain_deadline)

    def _drain_deadline(self) -> None:
        for ex in self.executors.values():
            ex.refuse_queued()
        for task in list(self.active):
            task.cancel(msg="drain")  # the REST layer answers these 503

    async def stop(self) -> None:
        if self._loader is not None and not self._loader.done():
            self._loader.cancel()
        await asyncio.gather(*(ex.stop() for ex in self.executors.values()))
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.codec.shutdown(wait=True, cancel_futures=True)

    # -- metadata --------------------------------------------------------------------------
    def model(self, name: str, version: str | None) -> tuple[Any, str, Any]:
        return self.repository.get(name, version)

    def metadata(self, name: str, version: str | None) -> ModelMetadata:
        entry, v, model = self.repository.get(name, version)
        lim = self.model_limits.get((name, v))
        return ModelMetadata(
            name=name,
            versions=sorted(entry.versions, key=int),
            platform=model.platform,
            inputs=lim.metadata() if lim else model.inputs,
            outputs=model.outputs,
        )

    def model_ready(self, name: str, version: str | None) -> bool:
        entry = self.repository.models.get(name)
        if entry is None:
            self.repository.get(name, version)  # 404 with the list of models
        if entry is None or not entry.loaded:
            return False
        _, v, _ = self.repository.get(name, version)
        return (name, v) in self.executors

    # -- inference -------------------------------------------------------------------------
    def admit(self, name: str, version: str | None, headers: dict[str, str]) -> Admission:
        """Judge a request from its headers alone: 404, 413, 429 or 503 before any body byte."""
        _entry, v, model = self.repository.get(name, version)
        ex = self.executors.get((name, v))
        if ex is None:
            raise Unavailable(f"model '{name}' is loading; see /v2/health/ready")
        lim = self.model_limits[(name, v)]
        clen = content_length(headers)
        json_len = lim.check_headers(clen, headers.get(HEADER_LENGTH.lower()))
        declared = clen or 0
        if self.inflight_bytes + declared > self.limits.max_inflight_body_bytes:
            raise Overloaded(
                f"{self.inflight_bytes} bytes of request bodies are in flight (limit "
                f"{self.limits.max_inflight_body_bytes} bytes); retry later",
                retry_after_s=1.0,
            )
        ex.reserve()
        self.inflight_bytes += declared
        return Admission(self, name, v, model, ex, lim, clen, json_len)

    async def _run(self, size: int, fn: Callable[..., T], *args: Any) -> T:
        """Small work inline (a thread hop costs more), large work in the codec pool."""
        if size <= self.limits.offload_bytes:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self.codec, fn, *args)

    def _parse(self, buf: bytes) -> RequestHeader:
        """Binary-extension headers (no tensor data in them) repeat from request to request of
        a client, so the validated result of each of the last few is kept: parsing one with
        every bound checked costs ~17 us of the event loop (a 161-byte kws-large header, this
        machine). Results with JSON data are not kept, and nothing downstream changes a header."""
        cacheable = len(buf) <= HEADER_CACHE_MAX_BYTES
        if cacheable and (hit := self._headers.get(buf)) is not None:
            return hit
        header = parse_header(buf, self.limits.max_json_depth, self.limits.max_number_chars)
        if cacheable and not header.data:
            if len(self._headers) >= HEADER_CACHE_ENTRIES:
                del self._headers[next(iter(self._headers))]  # the oldest
            self._headers[buf] = header
        return header

    async def infer(self, adm: Admission, body: BodySource) -> Served:
        if adm.json_len is not None:
            head = await body.read_exact(adm.json_len)
            header = await self._run(len(head), self._parse, head)
            if adm.content_length is not None:
                rest = adm.content_length - adm.json_len
            else:
                rest = sum(header.binary_sizes.values())
            adm.limits.check_request(header, rest)  # before the tensors are read
            binary = await body.read_exact(rest)
            await body.expect_end()
        else:
            raw = await body.read_all(adm.limits.max_body_bytes(binary=False))
            header = await self._run(len(raw), self._parse, raw)
            adm.limits.check_request(header, 0)
            binary = b""
        t_body = time.monotonic()
        # Its wait for a run counts from when its last byte arrived (a slow link's upload time
        # is not a queue; cloud/standing_queue.py), at the earliest from its admission.
        received = max(adm.at, body.received_at() or adm.at)
        size_bytes = (adm.content_length or 0) + sum(header.counts.values())
        parsed, batch = await self._run(size_bytes, self._decode, adm, header, binary)
        timeout = self.request_timeout_s
        t = parsed.parameters.get("timeout")
        if isinstance(t, int | float) and not isinstance(t, bool) and t > 0:
            timeout = min(timeout, t / 1e6)  # Triton: microseconds
        try:
            async with asyncio.timeout(timeout):
                outputs = await adm.executor.infer(parsed.inputs, batch, received)
        except TimeoutError:
            raise InferenceTimeout(f"inference did not finish within {timeout:g} s") from None
        out_size = sum(a.nbytes if a.dtype != object else a.size * 16 for a in outputs.values())
        body_out, headers = await self._run(
            out_size,
            build_response_parts,
            adm.name,
            adm.version,
            parsed,
            outputs,
            self.limits.max_json_output_elements,
        )
        return Served(body_out, headers, time.monotonic() - t_body)

    def _decode(self, adm: Admission, header: RequestHeader, binary: bytes) -> tuple[Any, int]:
        parsed = to_parsed(header, decode_inputs(header, binary))
        batch = adm.model.validate(parsed.inputs)
        names = {t.name for t in adm.model.outputs}
        unknown = [o for o in parsed.requested or [] if o not in names]
        if unknown:
            raise OipError(f"model '{adm.name}' has no outputs {unknown}")
        return parsed, batch
