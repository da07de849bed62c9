"""Configuration of the local server."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..codes import AUTH_TIMEOUT_S, CONTROL_MESSAGES_PER_SECOND, TIER_LIMITS
from .simulator import MarketSpec

__all__ = ["ServerConfig", "OVER_CAP_POLICIES"]

OVER_CAP_POLICIES = ("truncate", "truncate-error-first", "refuse")


@dataclass
class ServerConfig:
    """Everything the local server lets you choose.

    Credentials: with ``accepted_keys`` / ``accepted_tokens`` left ``None``, any non-empty key or
    token is accepted except those starting with one of ``reject_prefixes`` (``"bad"`` by default),
    so ``"demo"`` works out of the box and ``"bad-key"`` exercises ``auth_error``. Given a set,
    only its members are accepted. The account of a connection (for the subscription cap) is its
    key or token.

    Limits on what one peer can make the server hold (a hostile or broken client must not be
    able to grow the server's memory or hold the event loop):

    ==========================  =================================================================
    send buffer                 every frame (errors, snapshots, wallet, heartbeats, market data,
                                pongs, blast chunks) counts against ``disconnect_buffer_limit``;
                                past it the connection is aborted (no close handshake: a reader
                                that does not read would never take the close frame)
    market data                 ``slow_reader`` past ``soft_buffer_limit``; past
                                ``hard_buffer_limit`` deltas are withheld and ``resync_required``
                                sent (PROTOCOL.md §3)
    incoming message            ``max_message_size`` bytes per WebSocket frame; a bigger frame is
                                refused by picows before its payload is read (close 1009)
    refused messages            ``invalid_burst`` messages refused as a whole (bad JSON, unknown
                                type, auth required, rate limited, ...) plus ``invalid_rate`` per
                                second; past it the connection is aborted (pings: the same, from
                                their own bucket)
    queued messages             ``max_pending_messages`` messages waiting behind a long control
                                message (reading is paused meanwhile); past it: aborted
    names per message           more distinct markets + addresses than the tier's cap:
                                ``over_cap_policy``: the message refused with one 3002
                                (``refuse``), or the first ``cap`` served and one 3002 for the
                                excess after them (``truncate``) or before them
                                (``truncate-error-first``); which one Parsec does is
                                undocumented, and the client survives all three
    auth window                 ``auth_timeout``: closed with 1008, aborted at once when the close
                                frame cannot be flushed (the peer is not reading)
    closing                     a close frame not flushed within ``close_timeout``: aborted
    ==========================  =================================================================
    """

    host: str = "127.0.0.1"
    #: 0 picks a free port.
    port: int = 0
    path: str = "/ws"
    #: Number of generated markets, or an explicit list.
    markets: int | list[MarketSpec] = 20
    seed: int = 0
    #: Simulator events per second over all markets; ``None`` or 0 = as fast as possible.
    rate: float | None = 200.0
    #: False: no live stream (only snapshots, faults and :meth:`LocalServer.blast`).
    live: bool = True
    heartbeat_interval: float = 5.0
    #: Seconds a connection may stay unauthenticated (PROTOCOL.md §1: 15 s).
    auth_timeout: float = AUTH_TIMEOUT_S
    accepted_keys: frozenset[str] | None = None
    accepted_tokens: frozenset[str] | None = None
    reject_prefixes: tuple[str, ...] = ("bad",)
    #: Account tier: one of ``codes.TIER_LIMITS`` (subscription cap, depth clamp).
    tier: str = "pro"
    #: Control messages (subscribe/unsubscribe/resync) allowed per ``control_window`` seconds.
    control_rate: int = CONTROL_MESSAGES_PER_SECOND
    control_window: float = 1.0
    stale_after_ms: int = 5000
    #: True: activity frames get their own counter (they never touch book seqs).
    separate_activity_seq: bool = False
    #: First ``server_seq`` of every subscription (counters never reset afterwards).
    initial_seq: int = 1000
    #: Send buffer (transport write buffer) sizes for market data: ``slow_reader`` past the soft
    #: limit; past the hard limit deltas stop and ``resync_required`` is sent (the client
    #: recovers with a resync once it has read the backlog).
    soft_buffer_limit: int = 256 * 1024
    hard_buffer_limit: int = 4 * 1024 * 1024
    #: The connection's send budget: checked after every frame of any kind; past it the
    #: connection is aborted (reason ``send_buffer``), since a peer that lets 32 MB pile up is
    #: not reading and would not read a close frame either. None = unbounded (tests only).
    disconnect_buffer_limit: int | None = 32 * 1024 * 1024
    #: Largest incoming WebSocket frame (picows ``max_frame_size``; checked on the frame header,
    #: so a bigger payload is never buffered): the peer gets close 1009. Control messages are
    #: small: 2,000 selectors (the scale tier's cap) fit in ~200 KB.
    max_message_size: int = 1024 * 1024
    #: Refused-message allowance (a token bucket): ``invalid_burst`` messages refused as a whole,
    #: refilled at ``invalid_rate`` per second; once empty the connection is aborted (reason
    #: ``invalid_messages``). Per-market errors inside an accepted subscribe do not count.
    #: Pings and unsolicited pongs spend a bucket of the same size (reason ``ping_flood``).
    #: None = never abort (tests; then only the send budget stops a flood of garbage).
    invalid_burst: int | None = 100
    invalid_rate: float = 10.0
    #: Messages that may wait while a long control message is served in slices (reading from
    #: the socket is paused then, so only frames already read can queue); past it: aborted
    #: (reason ``backlog``).
    max_pending_messages: int = 64
    #: A subscribe / unsubscribe naming more distinct markets + addresses than the tier's cap:
    #: ``"refuse"`` (default) refuses the whole message with one 3002; ``"truncate"`` serves the
    #: first ``cap`` names as usual and refuses the rest with ONE 3002 after their snapshots;
    #: ``"truncate-error-first"`` the same with the 3002 first. Either way at most ``cap`` names
    #: are looked at and answered. The real service's choice (and order) is undocumented
    #: (PROTOCOL.md §5): the client is tested against all three (it settles a 3002 one control
    #: period after it, so snapshots that follow the refusal still count).
    over_cap_policy: str = "refuse"
    #: Seconds a close frame (auth failure, client close, picows protocol error) may take to
    #: flush before the socket is aborted (reason ``close_timeout``).
    close_timeout: float = 1.0
    #: SO_SNDBUF of accepted sockets (None = OS default); small values make back-pressure quick.
    so_sndbuf: int | None = None
    #: Key whose connections receive ``fill`` activity; ``"*"`` = every account, None = nobody.
    fill_account: str | None = "*"
    #: Seconds between repeated ``wallet_activity`` snapshots of watched addresses (0 = only once).
    wallet_interval: float = 10.0
    #: Keep a per-connection record of every frame sent (tests; memory grows with traffic).
    record: bool = False
    #: Fault specs run from server start (see :mod:`parsec_fast.server.faults`).
    faults: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.tier not in TIER_LIMITS:
            raise ValueError(f"tier {self.tier!r}: expected one of {', '.join(TIER_LIMITS)}")
        if self.rate is not None and self.rate < 0:
            raise ValueError(f"rate {self.rate!r} must be >= 0 (0 or None = as fast as possible)")
        if self.soft_buffer_limit <= 0 or self.hard_buffer_limit <= self.soft_buffer_limit:
            raise ValueError("need 0 < soft_buffer_limit < hard_buffer_limit")
        if self.disconnect_buffer_limit is not None and \
                self.disconnect_buffer_limit <= self.hard_buffer_limit:
            raise ValueError("need hard_buffer_limit < disconnect_buffer_limit (or None)")
        if self.heartbeat_interval <= 0 or self.auth_timeout <= 0 or self.stale_after_ms <= 0:
            raise ValueError("heartbeat_interval, auth_timeout and stale_after_ms must be > 0")
        if self.max_message_size <= 0 or self.max_pending_messages < 0 or self.close_timeout <= 0:
            raise ValueError("need max_message_size > 0, max_pending_messages >= 0, "
                             "close_timeout > 0")
        if (self.invalid_burst is not None and self.invalid_burst < 1) or self.invalid_rate < 0:
            raise ValueError("need invalid_burst >= 1 (or None) and invalid_rate >= 0")
        if self.over_cap_policy not in OVER_CAP_POLICIES:
            raise ValueError(f"over_cap_policy {self.over_cap_policy!r}: expected one of "
                             f"{', '.join(OVER_CAP_POLICIES)}")

    @property
    def max_subscriptions(self) -> int:
        """Subscription cap of the tier (markets + addresses, per account)."""
        return TIER_LIMITS[self.tier][0]

    @property
    def max_depth(self) -> int:
        """Depth clamp of the tier."""
        return TIER_LIMITS[self.tier][1]

    def accepts(self, kind: str, credential: object) -> bool:
        """Whether an ``auth`` key / ``auth_terminal`` token is accepted (read at call time, so
        changing ``reject_prefixes`` on a running server takes effect for the next auth)."""
        if not isinstance(credential, str) or not credential:
            return False
        accepted = self.accepted_keys if kind == "auth" else self.accepted_tokens
        if accepted is not None:
            return credential in accepted
        return not credential.startswith(tuple(self.reject_prefixes))
