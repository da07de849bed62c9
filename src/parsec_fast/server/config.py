"""Configuration of the local server."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..codes import AUTH_TIMEOUT_S, CONTROL_MESSAGES_PER_SECOND, TIER_LIMITS
from .simulator import MarketSpec

__all__ = ["ServerConfig"]


@dataclass
class ServerConfig:
    """Everything the local server lets you choose.

    Credentials: with ``accepted_keys`` / ``accepted_tokens`` left ``None``, any non-empty key or
    token is accepted except those starting with one of ``reject_prefixes`` (``"bad"`` by default),
    so ``"demo"`` works out of the box and ``"bad-key"`` exercises ``auth_error``. Given a set,
    only its members are accepted. The account of a connection (for the subscription cap) is its
    key or token.
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
    #: Send buffer (transport write buffer) sizes: ``slow_reader`` past the soft limit;
    #: past the hard limit deltas stop and ``resync_required`` is sent.
    soft_buffer_limit: int = 256 * 1024
    hard_buffer_limit: int = 4 * 1024 * 1024
    #: Past this the connection is closed with code 4000 (a reader that never drains; None = never).
    disconnect_buffer_limit: int | None = 32 * 1024 * 1024
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
