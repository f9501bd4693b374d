"""A user-space link emulator: a TCP proxy on loopback that behaves like a BLE/Wi-Fi/4G/5G link.

The kernel's netem needs root and is not everywhere, so the demo puts this proxy between the
device and the cloud. It applies the *same* link model as the simulator (``device/link.py``, also
read by ``sim/model.py``), per direction:

- FIFO serialisation at the link rate (bytes * 8 / rate), shared by every connection (one radio);
- one-way delay plus jitter, exponential with the profile's p90 (one draw per burst: chunks that
  queue behind a chunk still in flight ride with it, as the simulator's one draw per transfer);
- loss: each MTU-sized packet is lost with the loss rate and costs one retransmission timeout
  (a stall: TCP delivers in order, so later bytes wait too);
- radio promotion: a transfer that finds the radio idle (no traffic for the profile's tail)
  waits the promotion delay first (one radio for both directions);
- outages: while the link is cut nothing is delivered and connections that tried are dropped
  when it comes back; clients see timeouts, as with a radio that lost its network.

The profile can be changed while it runs (e.g. Wi-Fi -> LTE) and the link cut on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from dataclasses import dataclass, field

import numpy as np
from edgesplit.device.link import LinkProfile, RadioState, jitter_mean_s, packets

__all__ = ["ConnDraws", "LinkEmulator", "LinkProfile", "LinkStats"]


@dataclass
class LinkStats:
    connections: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    lost_packets: int = 0
    blackholed_bytes: int = 0  # arrived during an outage: never delivered
    outages: int = 0


@dataclass
class ConnDraws:
    """The random draws one connection met, per direction (for a paired replay in the simulator:
    ``sim validate`` gives the simulator the same jitter and losses the real request paid)."""

    up_jitter_s: float | None = None  # the first burst's jitter draw
    up_lost: int = 0  # packets lost, every burst
    down_jitter_s: float | None = None
    down_lost: int = 0
    bursts: int = 0  # jitter draws in both directions (2 when each direction is one burst)
    promoted: bool = False  # some transfer of it paid the radio promotion


@dataclass
class _Direction:
    """One direction of the radio: a FIFO serialiser shared by all connections."""

    up: bool
    free_at: float = 0.0


@dataclass
class _Flow:
    """One connection, one direction: deliveries in order."""

    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    last_delivery: float = 0.0
    jitter_s: float = 0.0


class LinkEmulator:
    def __init__(
        self,
        target: tuple[str, int],
        profile: LinkProfile,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.target, self.profile = target, profile
        self.rng = np.random.default_rng(seed)
        self.host, self.port = host, port
        self.stats = LinkStats()
        self._cut = False
        self._dirs = {True: _Direction(True), False: _Direction(False)}
        self._radio = RadioState(profile.promotion_ms, profile.tail_ms)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._victims: list[asyncio.StreamWriter] = []
        self._live: set[asyncio.Task] = set()
        # Set to a list to record each connection's draws, in accept order (off by default: a
        # long-running device would keep one entry per call).
        self.draw_log: list[ConnDraws] | None = None

    # -- control (any thread) -------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def set_profile(self, profile: LinkProfile) -> None:
        self.profile = profile
        self._radio = RadioState(profile.promotion_ms, profile.tail_ms)  # a new network

    def cut(self, on: bool = True) -> None:
        """Start (True) or end (False) an outage."""
        if on and not self._cut:
            self.stats.outages += 1
        self._cut = on
        if not on and self._loop is not None:
            self._loop.call_soon_threadsafe(self._drop_victims)

    @property
    def is_cut(self) -> bool:
        return self._cut

    def start(self) -> LinkEmulator:
        self._thread = threading.Thread(target=self._run, name="link-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("link emulator did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> LinkEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the proxy (emulator thread) ------------------------------------------------------------
    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()

    def _drop_victims(self) -> None:
        for w in self._victims:
            w.close()
        self._victims.clear()

    async def _accept(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        me = asyncio.current_task()
        if me is not None:  # the stream protocol drops its reference when the client hangs up:
            self._live.add(me)  # keep one, or a slow connection is collected while pending
            me.add_done_callback(self._live.discard)
        try:
            s_reader, s_writer = await asyncio.open_connection(*self.target)
        except OSError:
            c_writer.close()
            return
        for w in (c_writer, s_writer):  # a proxy must not add Nagle delays of its own
            sock = w.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        up, down = _Flow(), _Flow()
        draws = ConnDraws()
        if self.draw_log is not None:
            self.draw_log.append(draws)
        tasks = [
            asyncio.create_task(self._pump(c_reader, up, True, [c_writer, s_writer], draws)),
            asyncio.create_task(self._deliver(up, s_writer)),
            asyncio.create_task(self._pump(s_reader, down, False, [c_writer, s_writer], draws)),
            asyncio.create_task(self._deliver(down, c_writer)),
        ]
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        except asyncio.CancelledError:  # the emulator is stopping
            for t in tasks:
                t.cancel()
        finally:
            for w in (c_writer, s_writer):
                w.close()

    def _losses(self, nbytes: int, loss: float) -> int:
        if loss <= 0:
            return 0
        return int(self.rng.binomial(packets(nbytes), loss))

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        flow: _Flow,
        up: bool,
        writers: list[asyncio.StreamWriter],
        draws: ConnDraws,
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            while data := await reader.read(65536):
                if self._cut:  # blackhole; the connection dies when the link comes back
                    self.stats.blackholed_bytes += len(data)
                    self._victims.extend(w for w in writers if w not in self._victims)
                    continue
                p = self.profile
                now = loop.time()
                rate = (p.up_mbps if up else p.down_mbps) * 1e6
                d = self._dirs[up]
                start = max(now, d.free_at)
                promotion_s = self._radio.promotion(start)
                start += promotion_s
                d.free_at = start + len(data) * 8 / rate
                self._radio.busy_until(d.free_at)
                if flow.last_delivery <= now:  # a new burst: a new jitter draw
                    flow.jitter_s = float(self.rng.exponential(jitter_mean_s(p.jitter_p90_ms)))
                    draws.bursts += 1
                    if up and draws.up_jitter_s is None:
                        draws.up_jitter_s = flow.jitter_s
                    elif not up and draws.down_jitter_s is None:
                        draws.down_jitter_s = flow.jitter_s
                lost = self._losses(len(data), p.loss_rate)
                if up:
                    draws.up_lost += lost
                else:
                    draws.down_lost += lost
                draws.promoted |= promotion_s > 0
                self.stats.lost_packets += lost
                at = d.free_at + p.one_way_delay_ms / 1e3 + flow.jitter_s
                at += lost * p.retransmit_timeout_ms / 1e3
                flow.last_delivery = max(at, flow.last_delivery)
                if up:
                    self.stats.bytes_up += len(data)
                else:
                    self.stats.bytes_down += len(data)
                flow.queue.put_nowait((flow.last_delivery, data))
        except (ConnectionError, OSError):
            pass
        while self._cut:  # a FIN is a packet too: it crosses when the link is back, not before
            await asyncio.sleep(0.005)
        flow.queue.put_nowait((None, b""))

    async def _deliver(self, flow: _Flow, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                at, data = await flow.queue.get()
                if at is None:
                    with contextlib.suppress(OSError):
                        if writer.can_write_eof():
                            writer.write_eof()
                    return
                delay = at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            return
