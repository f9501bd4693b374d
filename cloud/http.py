"""The HTTP edge: connection guards, the fast path for infer/health/metrics, drain-aware server.

- :func:`guarded_protocol`: uvicorn's httptools protocol with a header read timeout (slowloris),
  a header size bound, a connection cap, and OIP ``{"error"}`` bodies for what the HTTP parser
  itself rejects.
- :class:`FastPath`: raw ASGI for the hot and the must-not-starve routes (infer, health,
  metrics): admission from headers before the body is read, no framework routing per request.
  Everything else goes to the FastAPI app (metadata, config, repository, OpenAPI docs).
- :class:`Server`: on SIGTERM, first tells the data plane to drain (503 for what will not be
  served), then lets uvicorn finish the connections.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import json
import logging
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httptools
import uvicorn
from edgesplit.cloud.dataplane import Admission, DataPlane
from edgesplit.cloud.errors import ClientClosed, OipError, Overloaded, ReadTimeout, TooLarge
from edgesplit.cloud.limits import Limits
from edgesplit.cloud.metrics import CLIENT_CLOSED
from edgesplit.cloud.retry_after import whole_seconds
from prometheus_client import CONTENT_TYPE_LATEST
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

log = logging.getLogger("edgesplit.cloud")
INFER_PATH = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?/infer$")
JSON = [(b"content-type", b"application/json")]
# Python collects its youngest generation once 700 more container objects are alive than at
# the last collection. A queue of 512 requests in flight keeps thousands alive, so at 10x
# overload (5 120 clients, kws-large, one core busy) the collector ran ~150 young, ~13 middle and
# ~1 full collections a second: 210 ms of every second with the interpreter lock held, full ones
# of 90-107 ms (they scan every connection's objects), goodput 0.78x of saturation. At 50 000,
# none ran in 5 s windows of steady load; goodput 0.88-0.90x. Cyclic garbage still counts toward
# the threshold, so what it holds stays bounded.
GC_YOUNG_THRESHOLD = 50_000
PENALTY_KEY = "edgesplit.penalty_s"  # set in the scope by FastPath, read by the protocol
ADMISSION_KEY = "edgesplit.admission"  # set in the scope by the protocol, read by FastPath
RECEIVED_KEY = "edgesplit.received_at"  # monotonic s the body's last byte was parsed (protocol)
SERVER_MS = "Edgesplit-Server-Ms"  # response header: ms from request headers to the answer
REFUSAL_LOG_S = 1.0  # 429s are summed into one log line per this many seconds
HELD_BYTES = 64 * 1024  # read from a connection within its 429's penalty before reading pauses
FULL_ANSWERS_KEPT = 256  # built early 429s kept (per Retry-After and admission limit)


def error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


class ApiKeys:
    """Bearer / X-API-Key check against every key in constant time per key."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = [k.encode() for k in keys]

    def check(self, headers: dict[str, str]) -> None:
        if not self.keys:
            return
        auth = headers.get("authorization", "")
        given = auth[7:] if auth.lower().startswith("bearer ") else headers.get("x-api-key")
        given_b = (given or "").encode()
        ok = False
        for key in self.keys:
            ok |= hmac.compare_digest(given_b, key)
        if not ok:
            raise OipError("missing or invalid API key (send 'Authorization: Bearer KEY')", 401)


def error_headers(exc: OipError) -> dict[str, str]:
    if exc.status == 401:
        return {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, Overloaded):
        return {"Retry-After": str(whole_seconds(exc.retry_after_s))}
    return {}


class BodyReader:
    """Reads an ASGI request body with a deadline; a disconnect raises :class:`ClientClosed`."""

    def __init__(self, receive: Any, timeout_s: float, scope: dict | None = None) -> None:
        self.receive, self.timeout_s, self.scope = receive, timeout_s, scope or {}
        self.deadline = time.monotonic() + timeout_s
        self.buf = bytearray()
        self.more = True

    def received_at(self) -> float | None:
        """When the body's last byte arrived (the protocol's clock, not this task's)."""
        return self.scope.get(RECEIVED_KEY)

    async def _next(self) -> None:
        remaining = self.deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise TimeoutError
            async with asyncio.timeout(remaining):
                msg = await self.receive()
        except TimeoutError:
            raise ReadTimeout(
                f"request body did not arrive within {self.timeout_s:g} s (body_timeout_s)"
            ) from None
        if msg["type"] == "http.disconnect":
            raise ClientClosed
        self.buf += msg.get("body", b"")
        self.more = msg.get("more_body", False)

    async def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n and self.more:
            await self._next()
        if len(self.buf) < n:
            raise OipError(f"request body ended after {len(self.buf)} of {n} expected bytes")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    async def expect_end(self) -> None:
        while self.more and not self.buf:
            await self._next()
        if self.buf:
            raise OipError("the request body goes on after the declared tensors")

    async def discard(self, declared: int | None, limit: int) -> bool:
        """Read and drop the rest of a refused body, so the client (which may send it all
        before reading) sees our answer; False if it is too big: then the connection closes."""
        if not self.more:
            return True
        if declared is None or declared > limit:
            return False
        self.buf.clear()
        try:
            while self.more:
                await self._next()
                self.buf.clear()
        except (ReadTimeout, ClientClosed):
            return False
        return True

    async def read_all(self, limit: int) -> bytes:
        while self.more:
            await self._next()
            if len(self.buf) > limit:
                raise TooLarge(f"request body exceeds {limit} bytes")
        out = bytes(self.buf)
        self.buf.clear()
        return out


async def respond(
    send: Any,
    status: int,
    body: bytes | list[bytes],
    headers: dict[str, str] | None = None,
    json_body: bool = True,
) -> None:
    parts = [body] if isinstance(body, bytes) else body
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if json_body and not any(k == b"content-type" for k, _ in raw):
        raw += JSON
    raw.append((b"content-length", str(sum(len(p) for p in parts)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    if len(parts) == 1:
        await send({"type": "http.response.body", "body": parts[0]})
        return
    for i, part in enumerate(parts):
        await send({"type": "http.response.body", "body": part, "more_body": i < len(parts) - 1})


class FastPath:
    """ASGI entry: infer, health and metrics here; the rest to the FastAPI app.

    It runs the lifespan itself and builds the FastAPI app only after the port is open
    (importing FastAPI takes about as long as everything else before the port opens), so the
    server is live sooner; the import is warmed in a thread right after start-up."""

    def __init__(
        self,
        plane: DataPlane,
        build_api: Callable[[], Any],
        keys: ApiKeys,
        metrics_open: bool,
        on_startup: Callable[[], Awaitable[None]],
        on_shutdown: Callable[[], Awaitable[None]],
    ) -> None:
        self.plane, self.keys, self.metrics_open = plane, keys, metrics_open
        self.build_api, self.on_startup, self.on_shutdown = build_api, on_startup, on_shutdown
        self.api: Any = None
        self._warm: asyncio.Future | None = None
        self._settle: asyncio.Task | None = None
        self._refused: dict[str, int] = {}
        self._refused_timer: asyncio.TimerHandle | None = None
        # A full model's early 429, built once per (executor, Retry-After, places): its message
        # is the same every time.
        self._full_answers: dict[tuple[Any, int, int], EarlyRefusal] = {}
        self.limits: Limits = plane.limits

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                try:
                    await self.on_startup()
                except Exception as exc:  # reported by uvicorn as a failed start
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
                self._warm = asyncio.get_running_loop().run_in_executor(None, self.build_api)
                self._settle = asyncio.create_task(self._freeze_heap())
            elif msg["type"] == "lifespan.shutdown":
                await self.on_shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _freeze_heap(self) -> None:
        """Once models and the API are loaded, move every object into the collector's permanent
        generation: a full collection then scans only what requests allocate (on this machine
        one took 20-120 ms over the ~74 000 start-up objects, a stall every request would see).
        Then collect young objects only every ``GC_YOUNG_THRESHOLD`` (see there)."""
        try:
            await self.plane.wait_loaded(3600)
            await self.get_api()
        except Exception:  # load errors are reported by the data plane; nothing to freeze
            return
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])

    async def get_api(self) -> Any:
        if self.api is None:
            self.api = await self._warm if self._warm is not None else self.build_api()
        return self.api

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        if scope["type"] != "http":
            return await (await self.get_api())(scope, receive, send)
        path, method = scope["path"], scope["method"]
        if path == "/v2/health/live" and method == "GET":
            return await respond(send, 200, b'{"live":true}')
        if path == "/v2/health/ready" and method == "GET":
            if self.plane.ready and not self.plane.draining:
                return await respond(send, 200, b'{"ready":true}')
            why = "draining" if self.plane.draining else (self.plane.load_error or "loading models")
            return await respond(send, 503, error_body(f"not ready: {why}"))
        if path == "/metrics" and method == "GET":
            if not self.metrics_open:
                try:
                    self.keys.check(_headers(scope))
                except OipError as exc:
                    return await respond(send, 401, error_body(exc.message), error_headers(exc))
            body = self.plane.metrics.exposition()
            return await respond(
                send, 200, body, {"content-type": CONTENT_TYPE_LATEST}, json_body=False
            )
        if method == "POST" and (m := INFER_PATH.match(path)):
            return await self.infer(scope, receive, send, m.group(1), m.group(2))
        return await (await self.get_api())(scope, receive, send)

    async def infer(
        self, scope: dict, receive: Any, send: Any, name: str, version: str | None
    ) -> None:
        t0 = time.monotonic()
        metrics = self.plane.metrics
        metrics.inflight.inc()
        task = asyncio.current_task()
        assert task is not None
        self.plane.active.add(task)
        status: int = 500
        body: bytes | list[bytes] = b""
        headers: dict[str, str] = {}
        reader = BodyReader(receive, self.limits.body_timeout_s, scope)
        hdrs: dict[str, str] = {}
        try:
            hdrs = _headers(scope)
            adm = scope.pop(ADMISSION_KEY, None)
            if adm is None:  # not admitted from the headers by the protocol
                self.keys.check(hdrs)
                adm = self.plane.admit(name, version, hdrs)
            try:
                served = await self.plane.infer(adm, reader)
            finally:
                adm.release()
            status, body, headers = 200, served.body, served.headers
            if getattr(getattr(receive, "__self__", None), "disconnected", False):
                status = CLIENT_CLOSED  # uvicorn's cycle saw the client go while we worked
            # W3C Server-Timing: lets a client tell network time from server time.
            headers["Server-Timing"] = f"infer;dur={served.server_s * 1e3:.3f}"
            # From the request's headers to its answer, admission queue included: what a load
            # test compares with its own clock to see its own scheduling delays.
            headers[SERVER_MS] = f"{(time.monotonic() - t0) * 1e3:.3f}"
        except OipError as exc:
            status, body, headers = exc.status, error_body(exc.message), error_headers(exc)
            if isinstance(exc, Overloaded):
                scope[PENALTY_KEY] = self._penalty_s(exc)
        except ClientClosed:
            status = CLIENT_CLOSED
        except asyncio.CancelledError:
            if not self.plane.draining:
                raise
            task.uncancel()
            status = 503
            body = error_body("server is shutting down; this request was not served")
        except Exception as exc:  # a bug: logged once with its traceback, answered 500
            log.exception("internal error")
            status, body = 500, error_body(f"internal error: {type(exc).__name__}")
        finally:
            self.plane.active.discard(task)
            metrics.inflight.dec()
        elapsed = time.monotonic() - t0
        metrics.record(name, status, elapsed)
        if status == 429:
            self._log_refusal(metrics.label(name))
        else:
            self._log_infer(name, version, status, elapsed)
        if status == CLIENT_CLOSED:
            return
        if reader.more:  # refused before the body was read
            declared = hdrs.get("content-length", "")
            size = int(declared) if declared.isdigit() and len(declared) < 19 else None
            if not await reader.discard(size, self.limits.max_discard_bytes):
                headers["connection"] = "close"
        await respond(send, status, body, headers)

    def admit_early(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]
    ) -> Admission | EarlyRefusal | None:
        """For the protocol, from the request line and headers alone, in the same turn of the
        event loop that parsed them: a place in the model's queue (handed to :meth:`infer` in
        the scope), or a 429 answered before any ASGI work (no task, no scope, no body reader).
        Taking the place here, not when the request's task first runs, means requests parsed
        in one turn cannot all see a free place and then be refused one by one on the slow path.
        None: the ordinary path decides (auth, unknown model, large or chunked body, any other
        error, anything unusual)."""
        if method != b"POST" or self.keys.keys or self.plane.draining or b"%" in target:
            return None
        m = INFER_PATH.match(target.partition(b"?")[0].decode("latin-1"))
        if m is None:
            return None
        name, version = m.group(1), m.group(2)
        entry = self.plane.repository.models.get(name)
        if entry is None or not entry.loaded:
            return None
        ex = self.plane.executors.get((name, version or entry.latest))
        if ex is None:
            return None
        length = next((v for k, v in headers if k == b"content-length"), None)
        if length is None or not length.isdigit() or int(length) > self.limits.max_discard_bytes:
            return None  # chunked or large: the ordinary path reads or refuses it
        if ex.at_limit():  # the common refusal: one dict lookup once built
            seconds = ex.refuse()
            key = (ex, seconds, ex.standing.limit)
            refusal = self._full_answers.get(key)
            if refusal is None:
                if len(self._full_answers) >= FULL_ANSWERS_KEPT:
                    self._full_answers.clear()
                refusal = self._early_refusal(ex.overloaded(seconds))
                self._full_answers[key] = refusal
            self._count_early_refusal(name)
            return refusal
        try:
            hdrs = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers}
            return self.plane.admit(name, version, hdrs)
        except Overloaded as exc:
            self._count_early_refusal(name)
            return self._early_refusal(exc)
        except OipError:
            return None  # answered by the ordinary path, which meets the same error

    def _early_refusal(self, exc: Overloaded) -> EarlyRefusal:
        hdrs = {"content-type": "application/json"} | error_headers(exc)
        body = error_body(exc.message)
        raw = [(k.encode(), v.encode()) for k, v in hdrs.items()]
        raw.append((b"content-length", str(len(body)).encode()))
        return EarlyRefusal(raw_response(429, raw, body), self._penalty_s(exc))

    def _penalty_s(self, exc: Overloaded) -> float:
        """How long what a refused connection sends next is held: until its Retry-After."""
        return min(whole_seconds(exc.retry_after_s), self.limits.overload_penalty_s)

    def _count_early_refusal(self, name: str) -> None:
        label = self.plane.metrics.label(name)
        self.plane.metrics.count_refusal(label)
        self._log_refusal(label)

    def _log_refusal(self, label: str) -> None:
        """429s are summed into one log line per ``REFUSAL_LOG_S``: an overload must not turn
        into a flood of log writes (each a system call on the event loop) on top of itself."""
        self._refused[label] = self._refused.get(label, 0) + 1
        if self._refused_timer is None:
            loop = asyncio.get_running_loop()
            self._refused_timer = loop.call_later(REFUSAL_LOG_S, self._flush_refusals)

    def _flush_refusals(self) -> None:
        self._refused_timer = None
        self.plane.metrics.record_refusals()
        fields = {"status": 429, "refused": dict(self._refused), "seconds": REFUSAL_LOG_S}
        log.info("overloaded", extra={"fields": fields})
        self._refused.clear()

    def _log_infer(self, name: str, version: str | None, status: int, elapsed: float) -> None:
        log.info(
            "infer",
            extra={
                "fields": {
                    "model": self.plane.metrics.label(name),
                    "version": version,
                    "status": status,
                    "latency_ms": round(elapsed * 1e3, 3),
                }
            },
        )


def _headers(scope: dict) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


class CoalescingTransport:
    """A transport whose writes within one turn of the event loop leave as one ``send``:
    uvicorn writes a response's head and body separately, and on loopback each send costs the
    TCP work of both ends. Writes over ``FLUSH_BYTES`` go out at once (no large copies)."""

    FLUSH_BYTES = 64 * 1024

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._t, self._loop = transport, loop
        self._buf: list[bytes] = []
        self._size = 0
        self._scheduled = False

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._buf.append(data)
        self._size += len(data)
        if self._size >= self.FLUSH_BYTES:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def write_now(self, data: bytes) -> None:
        """Out at once, after anything already waiting (a whole response in one piece)."""
        if self._buf:
            self._buf.append(data)
            self.flush()
        elif not self._t.is_closing():
            self._t.write(data)

    def flush(self) -> None:
        self._scheduled = False
        if not self._buf:
            return
        data = self._buf[0] if len(self._buf) == 1 else b"".join(self._buf)
        self._buf, self._size = [], 0
        if not self._t.is_closing():
            self._t.write(data)

    def close(self) -> None:
        self.flush()
        self._t.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._t, name)


@dataclass(frozen=True)
class EarlyRefusal:
    """A 429 decided from a request's headers, answered by the protocol itself."""

    response: bytes  # the whole HTTP response
    penalty_s: float  # what this connection sends within it is read once it has passed


EarlyAdmitter = Callable[[bytes, bytes, Any], Admission | EarlyRefusal | None]


def raw_response(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    """A whole HTTP/1.1 response as bytes, for answers given outside an ASGI cycle."""
    head = [STATUS_LINE[status]] + [k + b": " + v + b"\r\n" for k, v in headers]
    return b"".join(head) + b"\r\n" + body


def guarded_protocol(limits: Limits, admit: EarlyAdmitter | None = None) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol (llhttp, in C) plus a header timeout and size bound, a
    connection cap, JSON error bodies and, given ``admit``, admission decided from the headers
    as they are parsed: a 429 without an ASGI cycle, or a place handed to the app in the scope."""

    class GuardedProtocol(HttpToolsProtocol):
        # One timer per connection for idle keep-alive and slow headers, moved by setting
        # ``_deadline`` (a request's cost: an attribute, not a timer scheduled and cancelled).
        _header_timer: asyncio.TimerHandle | None = None
        _deadline = 0.0  # loop time; 0: none (a request is being served)
        _since = 0.0  # when the connection opened or last finished a request
        _penalty_until = 0.0  # loop time; 0: no penalty
        _held: bytearray  # bytes received during a penalty, processed when it ends (per connection)
        _in_head = False  # a request's line and headers have begun and are not complete
        _head_bytes = 0  # their size so far
        _discarding = False  # refused from its headers: this request's body is dropped
        _refused_cap = False  # refused at connect (the connection cap): nothing else is set up

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            if len(self.connections) >= limits.max_connections:
                # Refused before any per-connection set-up: under a connection storm this is
                # most of what the server does, so it costs one write and one close.
                self._refused_cap = True
                self.transport = transport
                body = error_body(
                    f"{limits.max_connections} connections are open (max_connections); retry later"
                )
                transport.write(raw_response(429, _error_headers(body, b"1"), body))
                transport.close()
                return
            super().connection_made(transport)
            self._held = bytearray()
            self.transport = CoalescingTransport(transport, self.loop)  # type: ignore[assignment]
            self._arm_header_timer(limits.header_timeout_s)

        def _arm_header_timer(self, idle_s: float | None = None) -> None:
            """Idle for ``idle_s`` (keep-alive by default), then closed; once a request begins,
            its headers are due ``header_timeout_s`` after the same moment."""
            self._since = self.loop.time()
            self._deadline = self._since + (limits.keep_alive_s if idle_s is None else idle_s)
            timer = self._header_timer
            if timer is not None and timer.when() > self._deadline:  # due sooner than it fires
                timer.cancel()
                timer = None
            if timer is None:
                self._header_timer = self.loop.call_at(self._deadline, self._header_timeout)

        def _cancel_header_timer(self) -> None:
            self._deadline = 0.0  # the timer, when it fires, finds nothing due

        def on_response_complete(self) -> None:
            # uvicorn's, less its keep-alive timer (scheduled and cancelled per request): ours
            # covers idle connections.
            self.server_state.total_requests += 1
            if self.transport.is_closing():
                return
            self.flow.resume_reading()
            if self.pipeline:
                cycle, app = self.pipeline.pop()
                self._start_asgi_task(cycle, app)

        def data_received(self, data: bytes) -> None:
            if self._refused_cap:
                return
            if self._held or (self._penalty_until and self.loop.time() < self._penalty_until):
                # A client that got 429 and did not wait: hold what it sent, unparsed, until its
                # penalty ends (and, once holding, everything after it, in order); meanwhile it
                # costs a read per segment. The socket is read up to HELD_BYTES, so a client that
                # gives up and closes is seen to go at once: its held request is dropped, not
                # served to nobody when the penalty ends.
                if not self._held:
                    self._cancel_header_timer()
                    self.loop.call_at(self._penalty_until, self._end_penalty)
                self._held += data
                if len(self._held) > HELD_BYTES:
                    self.flow.pause_reading()
                return
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                pass  # the request before it is answered as plain HTTP; then the connection closes
            except httptools.HttpParserError:  # malformed, or stopped by a callback (answered)
                self.send_400_response("")

        # -- parser callbacks ------------------------------------------------------------
        def on_message_begin(self) -> None:
            self._in_head, self._head_bytes = True, 0
            if self._deadline:
                self._deadline = self._since + limits.header_timeout_s
            # uvicorn's, less the ASGI scope: built once the request is not refused early.
            self.url, self.expect_100_continue, self.headers = b"", False, []

        def _begin_scope(self) -> None:
            url, headers, expect = self.url, self.headers, self.expect_100_continue
            HttpToolsProtocol.on_message_begin(self)
            self.url, self.headers, self.expect_100_continue = url, headers, expect
            self.scope["headers"] = headers

        def _head_too_large(self) -> None:
            self._send_error(
                431,
                f"request line and headers exceed {limits.max_header_bytes} bytes "
                "(max_header_bytes)",
            )
            raise _Stopped

        def on_url(self, url: bytes) -> None:
            self._head_bytes += len(url)
            if self._head_bytes > limits.max_header_bytes:
                self._head_too_large()
            self.url += url

        def on_header(self, name: bytes, value: bytes) -> None:
            # uvicorn's, with the size bound: called per header, so in one frame, not two.
            self._head_bytes += len(name) + len(value) + 4
            if self._head_bytes > limits.max_header_bytes:
                self._head_too_large()
            name = name.lower()
            if name == b"expect" and value.lower() == b"100-continue":
                self.expect_100_continue = True
            self.headers.append((name, value))

        def on_headers_complete(self) -> None:
            self._in_head = False
            parser = self.parser
            if parser.should_upgrade() and any(
                k == b"transfer-encoding" or (k == b"content-length" and v.strip() != b"0")
                for k, v in self.headers
            ):  # llhttp hands what follows such headers to the new protocol, not to the body
                self._send_error(
                    400,
                    "a request with a body cannot ask for 'Connection: Upgrade' (this server "
                    "speaks HTTP/1.1 only); send it without that header",
                )
                raise _Stopped
            out = None
            if (
                admit is not None
                and (self.cycle is None or self.cycle.response_complete)
                and not self.pipeline  # so the task for a place taken here starts at once
                and parser.get_http_version() == "1.1"
                and parser.should_keep_alive()  # one asking to close goes the ordinary way
                and not self.expect_100_continue
                and not parser.should_upgrade()
            ):
                out = admit(parser.get_method(), self.url, self.headers)
                if isinstance(out, EarlyRefusal):  # the header timer runs on for its body
                    return self._refused_early(out)
            self._begin_scope()
            if out is not None:
                self.scope[ADMISSION_KEY] = out  # type: ignore[literal-required]
            self._cancel_header_timer()  # a request is being served: the body has its own
            super().on_headers_complete()
            cycle = self.cycle
            if parser.should_upgrade():  # not served: answered as plain HTTP, then closed
                cycle.keep_alive = False
            scope: dict[str, Any] = self.scope  # type: ignore[assignment]
            cycle.on_response = lambda: self._response_done(scope)

        def on_body(self, body: bytes) -> None:
            if not self._discarding:
                super().on_body(body)

        def on_message_complete(self) -> None:
            if self._discarding:
                self._discarding = False
                self._arm_header_timer(self._idle_s())
                return
            self.scope[RECEIVED_KEY] = time.monotonic()  # type: ignore[literal-required]
            super().on_message_complete()

        # -- answers ---------------------------------------------------------------------
        def _refused_early(self, refusal: EarlyRefusal) -> None:
            self.transport.write_now(refusal.response)  # type: ignore[attr-defined]
            self.server_state.total_requests += 1
            self._discarding = True  # until its body has gone by (bounded by the admitter)
            self._penalty_until = self.loop.time() + refusal.penalty_s

        def _response_done(self, scope: dict[str, Any]) -> None:
            # The whole response is written: out now, not on the loop's next turn (under load a
            # turn is milliseconds, and every answer would wait one).
            self.transport.flush()  # type: ignore[attr-defined]
            # After a 429, what the client sends within the penalty is held until it ends (a
            # client honouring Retry-After never meets it: no work for the server either way).
            penalty = scope.pop(PENALTY_KEY, None)
            self._penalty_until = self.loop.time() + penalty if penalty else 0.0
            self.on_response_complete()
            if not self.transport.is_closing() and not self.pipeline:
                self._arm_header_timer(self._idle_s())

        def _idle_s(self) -> float:
            """Idle time allowed from now: keep-alive, after the Retry-After of a 429 (a client
            told to come back in 5 s must not find its connection closed at 5 s)."""
            return limits.keep_alive_s + max(0.0, self._penalty_until - self.loop.time())

        def _end_penalty(self) -> None:
            self._penalty_until = 0.0
            held, self._held = bytes(self._held), bytearray()
            if self.transport.is_closing():
                return
            self.flow.resume_reading()
            self._arm_header_timer()
            if held:
                self.data_received(held)

        def connection_lost(self, exc: Exception | None) -> None:
            self._deadline, self._held = 0.0, bytearray()
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
            super().connection_lost(exc)

        def _header_timeout(self) -> None:
            self._header_timer = None
            if not self._deadline or self.transport.is_closing():
                return
            if self.loop.time() < self._deadline:  # moved since it was scheduled
                self._header_timer = self.loop.call_at(self._deadline, self._header_timeout)
                return
            self._deadline = 0.0
            if self._discarding:
                self.transport.close()  # refused early; the rest of its body did not come
                return
            if self.cycle is not None and not self.cycle.response_complete:
                return  # being served: the body has its own deadline
            if not self._in_head:
                self.transport.close()  # idle: nothing to answer
                return
            self._send_error(
                408,
                f"request headers did not arrive within {limits.header_timeout_s:g} s "
                "(header_timeout_s)",
            )

        def send_400_response(self, msg: str) -> None:
            if self.transport.is_closing():
                return  # already answered by the callback that stopped the parser
            self._send_error(400, "invalid HTTP request: malformed request line or headers")

        def _send_error(self, status: int, message: str) -> None:
            body = error_body(message)
            self.transport.write(raw_response(status, _error_headers(body), body))
            self.transport.close()

    return GuardedProtocol


class _Stopped(Exception):
    """Raised in a parser callback that has answered and closed the connection: stops parsing."""


def _error_headers(body: bytes, retry_after: bytes | None = None) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    return headers + ([(b"retry-after", retry_after)] if retry_after else [])


class GreedyAcceptor:
    """Accepts every connection waiting in a listening socket's queue when it is readable.

    libuv, under uvloop, accepts one connection per turn of the event loop (since libuv 1.45,
    its pull request 3696): fine when turns are short, but under overload a turn runs thousands
    of callbacks, and a storm of new connections waits in the kernel's queue for seconds while
    their clients, already connected as far as TCP is concerned, count their requests as slow.
    Measured at 5 120 clients against a queue of 512: up to 2 279 connections queued, first
    requests answered 1-6.8 s after they were sent. This watches a duplicate of the listening
    socket's descriptor and accepts up to ``BURST`` at a time, as asyncio's own loop does; libuv
    still takes one per turn from the same queue."""

    BURST = 512

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        listening: Any,
        protocol_factory: Callable[[], asyncio.Protocol],
        ssl: Any,
    ) -> None:
        self.loop, self.factory, self.ssl = loop, protocol_factory, ssl
        self.accepted = 0  # connections this acceptor took (libuv takes the others)
        self._connecting: set[asyncio.Task] = set()  # TLS handshakes under way
        self.sock = socket.socket(fileno=os.dup(listening.fileno()))
        self.sock.setblocking(False)
        self.loop.add_reader(self.sock.fileno(), self._accept)

    def _accept(self) -> None:
        for _ in range(self.BURST):
            try:
                conn, _addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:  # out of descriptors or memory: let the queue wait a while
                log.warning("accept failed", extra={"fields": {"error": str(exc)}})
                self.loop.remove_reader(self.sock.fileno())
                self.loop.call_later(ACCEPT_RETRY_S, self._resume)
                return
            self.accepted += 1
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = self.loop.create_task(self._connect(conn))
            self._connecting.add(task)  # the loop keeps only a weak reference to a task
            task.add_done_callback(self._connecting.discard)

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await self.loop.connect_accepted_socket(self.factory, conn, ssl=self.ssl)
        except Exception:  # a TLS handshake that failed, a client already gone
            conn.close()

    def _resume(self) -> None:
        if self.sock.fileno() != -1:
            self.loop.add_reader(self.sock.fileno(), self._accept)

    def close(self) -> None:
        if self.sock.fileno() != -1:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()


ACCEPT_RETRY_S = 1.0  # after accept() fails for want of descriptors (asyncio waits the same)


class Server(uvicorn.Server):
    """uvicorn, with the data plane told to drain before connections are waited on, and every
    queued connection accepted at once under uvloop (:class:`GreedyAcceptor`)."""

    def __init__(self, config: uvicorn.Config, plane: DataPlane, drain_timeout_s: float) -> None:
        super().__init__(config)
        self.plane, self.drain_timeout_s = plane, drain_timeout_s
        self.acceptors: list[GreedyAcceptor] = []

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        loop = asyncio.get_running_loop()
        if self.should_exit or not type(loop).__module__.startswith("uvloop"):
            return  # asyncio's own loop accepts up to its backlog per turn

        def factory() -> asyncio.Protocol:  # what uvicorn's startup gives create_server
            return self.config.http_protocol_class(  # type: ignore[call-arg]
                config=self.config, server_state=self.server_state, app_state=self.lifespan.state
            )

        for server in self.servers:
            for listening in server.sockets or ():
                self.acceptors.append(GreedyAcceptor(loop, listening, factory, self.config.ssl))

    async def shutdown(self, sockets: Any = None) -> None:
        for acceptor in self.acceptors:
            acceptor.close()
        self.plane.begin_drain(self.drain_timeout_s)
        await super().shutdown(sockets)
