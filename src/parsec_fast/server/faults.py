"""Scriptable fault injection for the local server.

Tests call methods of :class:`Faults` (``srv.faults``) directly; the CLI passes a list of spec
strings parsed by :func:`parse_fault_spec`:

- ``"NAME[:ARG][/TARGET]@SECONDS"`` runs fault NAME once, SECONDS after the server started;
- ``"random@SECONDS"`` runs a random non-fatal fault about every SECONDS (seeded, exponential gaps).

NAME is one of ``gap``, ``dup``, ``reorder`` (TARGET: parsec_id, default any market),
``resync_required``, ``needs_refresh`` (TARGET: parsec_id, default a random subscribed market),
``stall`` (ARG: seconds, default 2 × stale_after; TARGET: parsec_id or random),
``degraded``, ``disconnected``, ``healthy`` (TARGET: exchange, default every exchange),
``close`` (abrupt close of every connection), ``refuse`` (ARG: seconds, default 2).
"""
from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Faults", "FaultSpec", "FaultTarget", "parse_fault_spec", "FAULT_NAMES", "FrameFault"]

FAULT_NAMES = ("gap", "dup", "reorder", "resync_required", "needs_refresh", "stall", "degraded",
               "disconnected", "healthy", "close", "refuse")
#: Faults the random mode draws from: they disturb books but never end the session.
_RANDOM_FAULTS = ("gap", "dup", "reorder", "resync_required", "needs_refresh", "stall", "degraded")

FrameFault = str  # "drop" | "duplicate" | "reorder"


class FaultTarget(Protocol):
    """What :class:`Faults` acts on (the server's
    :class:`~parsec_fast.server.fault_target.ServerFaultTarget`)."""

    @property
    def stale_after_s(self) -> float:
        """The server's ``stale_after_ms`` in seconds (a stall lasts twice that by default)."""
        ...

    def resync_required(self, parsec_id: str | None, outcome: str | None) -> int:
        """Send ``resync_required`` to the subscriptions matching ``parsec_id`` / ``outcome``
        (None matches any) and withhold their deltas until the client resyncs; returns how
        many were hit."""
        ...

    def needs_refresh(self, parsec_id: str | None, outcome: str | None) -> int:
        """Announce ``book_state: "needs_refresh"`` to the matching subscriptions (None
        matches any) and withhold their deltas until the client resyncs; returns how many
        were hit."""
        ...

    def stall(self, parsec_id: str, seconds: float) -> None:
        """Freeze the market ``parsec_id`` for ``seconds`` (ValueError for an unknown one)."""
        ...

    def set_feed_state(self, exchange: str | None, state: str) -> None:
        """Set the venue link of ``exchange`` (every exchange when None) to ``state``,
        announced in-band on its subscribed books."""
        ...

    def exchange_unavailable(self, exchange: str, unavailable: bool) -> None:
        """Make new subscriptions to ``exchange`` fail with error 2003 (``unavailable``), or
        work again."""
        ...

    def close_all(self) -> int:
        """Abort every connection (no close frame); returns how many were open."""
        ...

    def refuse(self, seconds: float) -> None:
        """Stop accepting connections for ``seconds`` (open ones stay)."""
        ...

    def random_subscribed_market(self, rng: random.Random) -> str | None:
        """A parsec_id with at least one subscriber, drawn with ``rng``; None when nothing is
        subscribed."""
        ...


@dataclass(frozen=True)
class FaultSpec:
    """One parsed fault spec: run ``name`` at ``at`` seconds (or every ~``at`` s when random)."""

    name: str
    at: float
    arg: str | None = None
    target: str | None = None

    @property
    def is_random(self) -> bool:
        """True for the periodic random mode."""
        return self.name == "random"


def parse_fault_spec(spec: str) -> FaultSpec:
    """Parse ``"NAME[:ARG][/TARGET]@SECONDS"`` or ``"random@SECONDS"``; raise ``ValueError``."""
    head, sep, when = spec.rpartition("@")
    if not sep or not head:
        raise ValueError(f"fault spec {spec!r}: expected NAME[:ARG][/TARGET]@SECONDS")
    try:
        at = float(when)
    except ValueError:
        raise ValueError(f"fault spec {spec!r}: {when!r} is not a number of seconds") from None
    if at < 0 or at != at:
        raise ValueError(f"fault spec {spec!r}: seconds must be >= 0")
    head, _, target = head.partition("/")
    name, _, arg = head.partition(":")
    if name == "random":
        if at <= 0:
            raise ValueError(f"fault spec {spec!r}: random needs a period > 0")
        return FaultSpec("random", at)
    if name not in FAULT_NAMES:
        raise ValueError(f"fault spec {spec!r}: unknown fault {name!r} (one of {', '.join(FAULT_NAMES)})")
    if arg and name in ("stall", "refuse"):
        try:
            float(arg)
        except ValueError:
            raise ValueError(f"fault spec {spec!r}: {arg!r} is not a number of seconds") from None
    return FaultSpec(name, at, arg or None, target or None)


class Faults:
    """Fault injection switchboard of one server (``srv.faults``).

    Frame faults (:meth:`drop_next_delta`, :meth:`duplicate_next`, :meth:`reorder_next`) are queued
    and hit the next matching ``orderbook_delta`` on any connection; the others act at once.
    """

    def __init__(self, target: FaultTarget, seed: int = 0) -> None:
        self._target = target
        self._frame_faults: list[tuple[FrameFault, str | None]] = []
        self._rng = random.Random(f"faults-{seed}")
        #: Faults that fired, in order, for tests and the demo: (name, detail).
        self.log: list[tuple[str, str]] = []

    # -- frame faults ---------------------------------------------------------------------
    def drop_next_delta(self, parsec_id: str | None = None) -> None:
        """Drop the next delta (of ``parsec_id``, or of any market): its ``server_seq`` is used but
        the frame is never sent, so the client sees a gap."""
        self._frame_faults.append(("drop", parsec_id))

    def duplicate_next(self, parsec_id: str | None = None) -> None:
        """Send the next delta twice, with the same ``server_seq``."""
        self._frame_faults.append(("duplicate", parsec_id))

    def reorder_next(self, parsec_id: str | None = None) -> None:
        """Hold the next delta back and send it right after the following one of the same
        subscription."""
        self._frame_faults.append(("reorder", parsec_id))

    @property
    def pending(self) -> bool:
        """True while a frame fault waits for its delta."""
        return bool(self._frame_faults)

    def take_frame_fault(self, parsec_id: str) -> FrameFault | None:
        """Consume and return the first queued frame fault matching ``parsec_id`` (server use)."""
        for i, (kind, pid) in enumerate(self._frame_faults):
            if pid is None or pid == parsec_id:
                del self._frame_faults[i]
                self.log.append((kind, parsec_id))
                return kind
        return None

    # -- immediate faults -------------------------------------------------------------------
    def send_resync_required(self, parsec_id: str | None = None, outcome: str | None = None) -> int:
        """Send ``resync_required`` to every subscription of ``parsec_id`` (all markets when
        ``None``; every outcome when ``outcome`` is ``None``) and stop its deltas until the client
        sends ``resync``. Returns the number of subscriptions hit."""
        self.log.append(("resync_required", f"{parsec_id}/{outcome}"))
        return self._target.resync_required(parsec_id, outcome)

    def mark_needs_refresh(self, parsec_id: str | None = None, outcome: str | None = None) -> int:
        """Announce ``book_state: "needs_refresh"`` (a delta with no changes) to the subscriptions
        of ``parsec_id`` and stop their deltas until the client resyncs. Returns subscriptions hit."""
        self.log.append(("needs_refresh", f"{parsec_id}/{outcome}"))
        return self._target.needs_refresh(parsec_id, outcome)

    def stall(self, parsec_id: str, seconds: float) -> None:
        """Freeze a market for ``seconds``: no updates, so its subscriptions turn ``stale`` after
        ``stale_after_ms`` (announced in-band) and ``fresh`` again with the next update."""
        self.log.append(("stall", f"{parsec_id}/{seconds}"))
        self._target.stall(parsec_id, seconds)

    def set_feed_state(self, state: str, exchange: str | None = None) -> None:
        """Set the venue link of ``exchange`` (all when ``None``) to ``healthy``, ``degraded`` or
        ``disconnected`` (no updates while disconnected), announced in-band on every book."""
        if state not in ("healthy", "degraded", "disconnected"):
            raise ValueError(f"feed state {state!r}")
        self.log.append((state, str(exchange)))
        self._target.set_feed_state(exchange, state)

    def feed_degraded(self, exchange: str | None = None) -> None:
        """Shorthand for ``set_feed_state("degraded", exchange)``."""
        self.set_feed_state("degraded", exchange)

    def feed_disconnected(self, exchange: str | None = None) -> None:
        """Shorthand for ``set_feed_state("disconnected", exchange)``."""
        self.set_feed_state("disconnected", exchange)

    def feed_healthy(self, exchange: str | None = None) -> None:
        """Shorthand for ``set_feed_state("healthy", exchange)``."""
        self.set_feed_state("healthy", exchange)

    def exchange_unavailable(self, exchange: str, unavailable: bool = True) -> None:
        """Make new subscriptions to ``exchange`` fail with error 2003 (or work again)."""
        self.log.append(("exchange_unavailable", f"{exchange}/{unavailable}"))
        self._target.exchange_unavailable(exchange, unavailable)

    def close_all_abruptly(self) -> int:
        """Abort every connection (no close frame). Returns how many were open."""
        self.log.append(("close", ""))
        return self._target.close_all()

    def refuse_connections(self, seconds: float) -> None:
        """Stop listening for ``seconds`` (new connections are refused at TCP level; open ones
        stay), then listen again on the same port. The port is closed when this returns."""
        self.log.append(("refuse", str(seconds)))
        self._target.refuse(seconds)

    # -- scripted -------------------------------------------------------------------------------
    def run_spec(self, spec: FaultSpec) -> None:
        """Execute one parsed spec now (a random spec draws one fault)."""
        name, arg, target = spec.name, spec.arg, spec.target
        if spec.is_random:
            name, arg, target = self._rng.choice(_RANDOM_FAULTS), None, None
        if name == "gap":
            self.drop_next_delta(target)
        elif name == "dup":
            self.duplicate_next(target)
        elif name == "reorder":
            self.reorder_next(target)
        elif name in ("resync_required", "needs_refresh", "stall"):
            pid = target or self._target.random_subscribed_market(self._rng)
            if pid is None:
                return
            if name == "resync_required":
                self.send_resync_required(pid)
            elif name == "needs_refresh":
                self.mark_needs_refresh(pid)
            else:
                self.stall(pid, float(arg) if arg else 2 * self._target.stale_after_s)
        elif name in ("degraded", "disconnected", "healthy"):
            self.set_feed_state(name, target)
            if spec.is_random:  # a random venue outage heals by itself
                asyncio.get_running_loop().call_later(2.0, self.set_feed_state, "healthy", None)
        elif name == "close":
            self.close_all_abruptly()
        elif name == "refuse":
            self.refuse_connections(float(arg) if arg else 2.0)

    async def run_script(self, specs: list[FaultSpec]) -> None:
        """Run timed specs at their offsets (from now) and random specs periodically, forever
        when a random spec is present; meant to run as a server task."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks = []
        for spec in specs:
            if spec.is_random:
                tasks.append(asyncio.ensure_future(self._random_loop(spec)))
        for spec in sorted((s for s in specs if not s.is_random), key=lambda s: s.at):
            delay = start + spec.at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.run_spec(spec)
        if tasks:
            await asyncio.gather(*tasks)

    async def _random_loop(self, spec: FaultSpec) -> None:
        while True:
            await asyncio.sleep(self._rng.expovariate(1.0 / spec.at))
            self.run_spec(spec)
