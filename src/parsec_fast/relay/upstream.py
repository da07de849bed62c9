"""The relay's upstream session: the Parsec WebSocket :class:`~parsec_fast.client.session.Session`
with the relay's compiled tap (:class:`~parsec_fast._relayscan.RelayTap`) installed first, so
every frame is queued on its book's outgoing batch just before the relay's feed handler applies
it. A recording tap the upstream client installs (``record_path``) is chained after it instead
of replacing it."""
from __future__ import annotations

from .._feed import FeedHandler
from ..client.config import ClientConfig
from ..client.session import FrameTap, Session, SessionHandlers

__all__ = ["RelaySession"]


class RelaySession(Session):
    """The WebSocket session with the relay's tap first; a recording tap (``record_path``)
    is chained after it instead of replacing it."""

    def __init__(self, url: str, auth_frame: bytes, config: ClientConfig, feed: FeedHandler,
                 handlers: SessionHandlers, relay_tap: FrameTap) -> None:
        super().__init__(url, auth_frame, config, feed, handlers, tap=relay_tap)
        self._relay_tap = relay_tap

    def set_tap(self, tap: FrameTap | None) -> None:
        """Like ``Session.set_tap`` (from the next connection on), but the relay's tap always
        sees each message first: ``tap`` is chained after it (with None, only the relay's tap
        remains)."""
        relay_tap = self._relay_tap
        if tap is None:
            super().set_tap(relay_tap)
            return

        def both(payload: bytes, mono_ns: int, last: bool) -> None:
            relay_tap(payload, mono_ns, last)
            tap(payload, mono_ns, last)
        super().set_tap(both)
