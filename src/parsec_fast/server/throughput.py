"""Pre-framed, chunked writing for throughput benchmarks.

Calling ``WSTransport.send()`` once per frame costs one syscall and wake-up per frame (~175 k
frames/s on the project machine, see PERF-NOTES), which would make a benchmark measure the server.
Server-to-client WebSocket frames are unmasked, so a text frame is just a 2-10 byte header and
the payload: :func:`ws_text_frame` builds it, frames are packed into chunks of hundreds of KiB, and
each chunk goes out in one ``underlying_transport.write()`` (picows exposes the asyncio transport
publicly as ``WSTransport.underlying_transport``; both paths append to the same transport, so
frames stay in order with those picows sends). Writers wait on the transport's flow control.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .registry import Registry
from .simulator import BookChange, Simulator
from .status import MarketStatus
from .stream import LiveStream

__all__ = ["ws_text_frame", "ChunkBuilder", "BlastResult", "Blaster"]


def ws_text_frame(payload: bytes) -> bytes:
    """A complete, unmasked, final WebSocket text frame carrying ``payload`` (server side)."""
    n = len(payload)
    if n < 126:
        header = bytes((0x81, n))
    elif n < 1 << 16:
        header = b"\x81\x7e" + n.to_bytes(2, "big")
    else:
        header = b"\x81\x7f" + n.to_bytes(8, "big")
    return header + payload


@dataclass
class ChunkBuilder:
    """Packs encoded frames into chunks of at least ``chunk_size`` bytes, ending on frame
    boundaries; keeps the payloads of each chunk so a recorder can log them when written."""

    chunk_size: int
    chunks: list[bytes] = field(default_factory=list)
    payloads: list[list[bytes]] = field(default_factory=list)
    frames: int = 0
    nbytes: int = 0
    _buf: bytearray = field(default_factory=bytearray)
    _cur: list[bytes] = field(default_factory=list)

    def add(self, payload: bytes) -> None:
        """Append one frame."""
        self._buf += ws_text_frame(payload)
        self._cur.append(payload)
        self.frames += 1
        if len(self._buf) >= self.chunk_size:
            self._cut()

    def _cut(self) -> None:
        self.nbytes += len(self._buf)
        self.chunks.append(bytes(self._buf))
        self.payloads.append(self._cur)
        self._buf = bytearray()
        self._cur = []

    def finish(self) -> None:
        """Flush the last partial chunk."""
        if self._buf:
            self._cut()


@dataclass(frozen=True)
class BlastResult:
    """Outcome of :meth:`LocalServer.blast`."""

    #: Delta frames written, over all connections.
    frames: int
    #: Bytes written (WebSocket framing included).
    nbytes: int
    #: Seconds spent generating and encoding the stream (before the first write).
    generate_s: float
    #: Seconds spent writing, flow control included (not the client's receive time).
    write_s: float
    #: Connections written to.
    connections: int


class Blaster:
    """:meth:`LocalServer.blast <parsec_fast.server.app.LocalServer.blast>`: pre-generates a delta
    stream over the subscribed books and writes it in chunks, honouring flow control."""

    def __init__(self, simulator: Simulator, registry: Registry[Any], status: MarketStatus,
                 stream: LiveStream) -> None:
        self.simulator = simulator
        self.registry = registry
        self.status = status
        self.stream = stream

    async def blast(self, n_deltas: int, parsec_ids: Iterable[str] | None = None, *,
                    chunk_size: int = 256 * 1024) -> BlastResult:
        """See :meth:`LocalServer.blast`."""
        wanted = None if parsec_ids is None else set(parsec_ids)
        keys = [k for k in self.registry.subscribed_keys() if wanted is None or k[0] in wanted]
        if not keys:
            raise RuntimeError("blast: no subscribed book matches")
        loop = asyncio.get_running_loop()
        self.stream.blasting += 1
        try:
            t0 = time.perf_counter()
            builders: dict[Any, ChunkBuilder] = {}
            ts_ms = int(time.time() * 1000)
            produced = 0
            while produced < n_deltas:
                events = self.simulator.step(keys)
                if not events:
                    break  # every blasted market is paused
                for event in events:
                    if not isinstance(event, BookChange):
                        continue
                    key = (event.parsec_id, event.outcome)
                    self.status.updated(key, loop.time())
                    for conn in self.registry.subscribers(key):
                        sub = conn.subs[key]
                        changes = event.windows.get(sub.depth)
                        if not changes or sub.awaiting_resync:
                            continue
                        builder = builders.get(conn)
                        if builder is None:
                            builder = builders[conn] = ChunkBuilder(chunk_size)
                        builder.add(conn.delta_payload(sub, changes, "fresh", ts_ms))
                        produced += 1
            for builder in builders.values():
                builder.finish()
            t1 = time.perf_counter()
            await asyncio.gather(*(self._write_chunks(c, b) for c, b in builders.items()))
            t2 = time.perf_counter()
        finally:
            self.stream.blasting -= 1
        return BlastResult(sum(b.frames for b in builders.values()),
                           sum(b.nbytes for b in builders.values()), t1 - t0, t2 - t1, len(builders))

    @staticmethod
    async def _write_chunks(conn: Any, builder: ChunkBuilder) -> None:
        conn.blasting = True
        try:
            for chunk, payloads in zip(builder.chunks, builder.payloads):
                await conn.writable.wait()
                if not conn.write_chunk(chunk, payloads):
                    return
        finally:
            conn.blasting = False
