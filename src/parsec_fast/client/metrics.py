"""The client's counters, as one immutable snapshot (``client.metrics``)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ClientMetrics", "percentile_us"]


def percentile_us(sorted_ns: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (nearest rank) of ascending nanosecond samples, in µs (None if none)."""
    if not sorted_ns:
        return None
    index = min(len(sorted_ns) - 1, max(0, int(-(-q * len(sorted_ns) // 1)) - 1))
    return sorted_ns[index] / 1000.0


@dataclass(frozen=True, slots=True)
class ClientMetrics:
    """Counters since the client was created (a snapshot; ``client.metrics`` makes a new one).

    Latencies are frame-to-apply times in µs, sampled every ``latency_sample_every`` frames:
    from the start of the read batch the frame arrived in to the end of its apply (so they
    include waiting behind earlier frames of the batch); ``None`` before any sample.
    """

    #: Text frames and their bytes.
    frames: int
    bytes: int
    #: Frames the native scanner applied / frames that went through orjson.
    native_frames: int
    orjson_frames: int
    #: Book counters over every book (see ``parsec_fast.rules.STAT_NAMES``).
    snapshots: int
    deltas_applied: int
    duplicates: int
    gaps: int
    dropped: int
    rejected: int
    #: Book frames for a book the client does not hold.
    unrouted: int
    protocol_errors: int
    activity: int
    slow_reader: int
    #: Control messages sent (all / by kind), resync batches coalesced, 3001s and 3002s received.
    control_sent: int
    subscribes_sent: int
    unsubscribes_sent: int
    resyncs_sent: int
    coalesced_resyncs: int
    rate_limited: int
    limit_reached: int
    #: Authenticated connections, and how many of them were re-connections.
    connects: int
    reconnects: int
    #: Connections dropped because the server sent a message over ``max_message_size``.
    oversized_messages: int
    callback_errors: int
    events_dropped: int
    latency_samples: int
    latency_p50_us: float | None
    latency_p90_us: float | None
    latency_p99_us: float | None

    @classmethod
    def collect(cls, feed_stats: Mapping[str, int], sent: Mapping[Any, int],
                latency_ns: Iterable[int], *, coalesced_resyncs: int, rate_limited: int,
                limit_reached: int, connects: int, oversized_messages: int, callback_errors: int,
                events_dropped: int) -> ClientMetrics:
        """Assemble a snapshot from the feed handler's stats, the control messages sent by
        kind, the latency samples and the other pieces' counters."""
        s = feed_stats
        samples = sorted(latency_ns)
        return cls(
            frames=s["frames"], bytes=s["bytes"], native_frames=s["native_frames"],
            orjson_frames=s["orjson_frames"], snapshots=s["snapshots"],
            deltas_applied=s["deltas_applied"], duplicates=s["duplicates"], gaps=s["gaps"],
            dropped=s["dropped"], rejected=s["rejected"], unrouted=s["unrouted"],
            protocol_errors=s["protocol_errors"], activity=s["activity"],
            slow_reader=s["slow_reader"], control_sent=sum(sent.values()),
            subscribes_sent=sent["subscribe"], unsubscribes_sent=sent["unsubscribe"],
            resyncs_sent=sent["resync"], coalesced_resyncs=coalesced_resyncs,
            rate_limited=rate_limited, limit_reached=limit_reached, connects=connects,
            reconnects=max(0, connects - 1), oversized_messages=oversized_messages,
            callback_errors=callback_errors, events_dropped=events_dropped,
            latency_samples=len(samples), latency_p50_us=percentile_us(samples, 0.5),
            latency_p90_us=percentile_us(samples, 0.9), latency_p99_us=percentile_us(samples, 0.99))
