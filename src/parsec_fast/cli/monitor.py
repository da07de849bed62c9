"""What the live view and the end summary know about a running client: rates, recoveries and
an event log, gathered from the client's state events (never from ``book_updated``: the view
reads the books directly)."""
from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, TypedDict

from ..events import (BookInvalid, BookRecovered, Connected, Disconnected, ProtocolErrorEvent,
                      Reconnecting, SlowReader, SubscriptionFailed)

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["SessionMonitor", "SessionSummary", "BookKey", "format_us"]

#: (parsec_id, outcome)
BookKey = tuple[str, str]


class SessionSummary(TypedDict):
    """The end-of-session figures (``--json-summary`` writes them)."""

    seconds: float
    frames: int
    bytes: int
    snapshots: int
    deltas_applied: int
    gaps: int
    duplicates: int
    resyncs_sent: int
    coalesced_resyncs: int
    reconnects: int
    invalidations: int
    recoveries: int
    faults_injected: list[str]
    protocol_errors: int
    books: int
    books_valid: int
    books_trustworthy: int
    latency_p50_us: float | None
    latency_p90_us: float | None
    latency_p99_us: float | None
    parser: str


def format_us(x: float | None) -> str:
    """A latency in µs, or ``-``."""
    return "-" if x is None else f"{x:,.0f} µs"


class SessionMonitor:
    """Counters, rates and an event log of one client session.

    A *recovery* is a book that became valid again after having been valid and then invalid.
    """

    def __init__(self, client: Client, title: str, *, log_lines: int = 8) -> None:
        #: The client watched.
        self.client: Client = client
        #: The view's title.
        self.title: str = title
        #: ``time.monotonic()`` at the start.
        self.started: float = time.monotonic()
        #: The last ``log_lines`` events, each with its time since the start.
        self.log: deque[str] = deque(maxlen=log_lines)
        #: Books that became valid again after being invalidated.
        self.recoveries: int = 0
        #: Books invalidated (gap, resync_required, disconnect, ...).
        self.invalidations: int = 0
        #: Names of the faults injected (the demo).
        self.faults: list[str] = []
        #: Frames and applied deltas per second over the last sample.
        self.frames_per_s: float = 0.0
        self.deltas_per_s: float = 0.0
        #: Smoothed applied deltas per second per book (the view ranks by it).
        self.busy: dict[BookKey, float] = {}
        # Books valid before the monitor started listening (first snapshots came already).
        self._was_valid: set[BookKey] = {(s.parsec_id, s.outcome)
                                         for s in client.subscriptions() if s.book.is_valid}
        self._broken: set[BookKey] = set()
        self._last_frames = 0
        self._last_deltas = 0
        self._last_t = self.started
        self._last_applied: dict[BookKey, int] = {}
        client.on("book_invalid", self._on_invalid)
        client.on("book_recovered", self._on_recovered)
        client.on("connected", self._on_connected)
        client.on("disconnected", self._on_disconnected)
        client.on("reconnecting", self._on_reconnecting)
        client.on("subscription_failed", self._on_refused)
        client.on("protocol_error", self._on_protocol_error)
        client.on("slow_reader", self._on_slow_reader)

    def note(self, text: str) -> None:
        """Add a line to the event log."""
        self.log.append(f"{time.monotonic() - self.started:6.1f}s  {text}")

    # -- events -----------------------------------------------------------------------------------
    def _on_invalid(self, ev: BookInvalid) -> None:
        key = (ev.parsec_id, ev.outcome)
        if key in self._was_valid:
            self._broken.add(key)
        self.invalidations += 1
        if ev.reason != "disconnected":
            self.note(f"[invalid] {ev.parsec_id}/{ev.outcome}: {ev.reason} -> resync")

    def _on_recovered(self, ev: BookRecovered) -> None:
        key = (ev.parsec_id, ev.outcome)
        if key in self._broken:
            self._broken.discard(key)
            self.recoveries += 1
            self.note(f"[recovered] {ev.parsec_id}/{ev.outcome} at seq {ev.seq}")
        self._was_valid.add(key)

    def _on_connected(self, ev: Connected) -> None:
        self.note(f"[connected] {ev.url}" + (f" (attempt {ev.attempt})" if ev.attempt else ""))

    def _on_disconnected(self, ev: Disconnected) -> None:
        self.note(f"[disconnected] {ev.reason}")

    def _on_reconnecting(self, ev: Reconnecting) -> None:
        self.note(f"[reconnecting] in {ev.delay:.2f} s")

    def _on_refused(self, ev: SubscriptionFailed) -> None:
        self.note(f"[refused] {ev.parsec_id}/{ev.outcome}: {ev.code} {ev.message}")

    def _on_protocol_error(self, ev: ProtocolErrorEvent) -> None:
        self.note(f"[protocol error] {ev.error}")

    def _on_slow_reader(self, ev: SlowReader) -> None:
        self.note("[slow_reader] the server says we read too slowly")

    # -- figures ----------------------------------------------------------------------------------
    def sample(self) -> None:
        """Update the rates (call about once per refresh)."""
        now = time.monotonic()
        dt = now - self._last_t
        if dt < 0.2:
            return
        m = self.client.metrics
        self.frames_per_s = (m.frames - self._last_frames) / dt
        self.deltas_per_s = (m.deltas_applied - self._last_deltas) / dt
        self._last_frames, self._last_deltas, self._last_t = m.frames, m.deltas_applied, now
        for sub in self.client.subscriptions():
            key = (sub.parsec_id, sub.outcome)
            applied = sub.stats["applied"]
            rate = (applied - self._last_applied.get(key, applied)) / dt
            self.busy[key] = 0.7 * self.busy.get(key, rate) + 0.3 * rate
            self._last_applied[key] = applied

    @property
    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.monotonic() - self.started

    def summary(self) -> SessionSummary:
        """End-of-session figures."""
        m = self.client.metrics
        subs = self.client.subscriptions()
        return {
            "seconds": round(self.elapsed, 3), "frames": m.frames,
            "bytes": m.bytes, "snapshots": m.snapshots, "deltas_applied": m.deltas_applied,
            "gaps": m.gaps, "duplicates": m.duplicates, "resyncs_sent": m.resyncs_sent,
            "coalesced_resyncs": m.coalesced_resyncs, "reconnects": m.reconnects,
            "invalidations": self.invalidations, "recoveries": self.recoveries,
            "faults_injected": list(self.faults), "protocol_errors": m.protocol_errors,
            "books": len(subs), "books_valid": sum(1 for s in subs if s.book.is_valid),
            "books_trustworthy": sum(1 for s in subs if s.trustworthy),
            "latency_p50_us": m.latency_p50_us, "latency_p90_us": m.latency_p90_us,
            "latency_p99_us": m.latency_p99_us, "parser": self.client.feed_handler.parser,
        }

    def status_line(self) -> str:
        """One plain line (for output that is not a terminal)."""
        m = self.client.metrics
        subs = self.client.subscriptions()
        valid = sum(1 for s in subs if s.book.is_valid)
        return (f"t={self.elapsed:6.1f}s frames={m.frames} "
                f"msg/s={self.frames_per_s:,.0f} deltas={m.deltas_applied} gaps={m.gaps} "
                f"resyncs={m.resyncs_sent + m.coalesced_resyncs} reconnects={m.reconnects} "
                f"valid={valid}/{len(subs)} p50={format_us(m.latency_p50_us)} "
                f"p99={format_us(m.latency_p99_us)}")
