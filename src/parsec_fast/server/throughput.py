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

from dataclasses import dataclass, field

__all__ = ["ws_text_frame", "ChunkBuilder", "BlastResult"]


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
