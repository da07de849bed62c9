"""The client's counters, as one immutable snapshot (``client.metrics``)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._histogram import LatencyHistogram

__all__ = ["ClientMetrics", "percentile_us", "histogram_us"]


def percentile_us(sorted_ns: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (nearest rank) of ascending nanosecond samples, in µs (None if none)."""
    if not sorted_ns:
        return None
    index = min(len(sorted_ns) - 1, max(0, int(-(-q * len(sorted_ns) // 1)) - 1))
    return sorted_ns[index] / 1000.0


def histogram_us(hist: LatencyHistogram | None) -> tuple[int, list[float | None]]:
    """``(count, [p50, p90, p99, p99.9, max])`` of a nanosecond histogram, in µs."""
    if hist is None or hist.count == 0:
        return 0, [None] * 5
    values = hist.percentiles((0.5, 0.9, 0.99, 0.999, 1.0))
    return hist.count, [None if v is None else v / 1000.0 for v in values]


@dataclass(frozen=True, slots=True)
class ClientMetrics:
    """Counters since the client was created (a snapshot; ``client.metrics`` makes a new one).

    Latencies are in µs, measured inside the process from the moment a frame's bytes were read
    (the start of its read batch: ``BookUpdated.read_ns``), over the client's whole life, every
    connection, in fixed-memory HDR-style histograms (:class:`~parsec_fast._histogram.
    LatencyHistogram`: a percentile is within 0.8 % of a recorded value); ``None`` before any.
    They leave out the time before the read (the kernel, the wake-up): ``bench/bench_latency.py``
    measures from the server's send.
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
    #: Read-to-apply: from the read to the end of the frame's apply (so it includes waiting
    #: behind earlier frames of the batch), sampled every ``latency_sample_every`` frames;
    #: ``latency_samples`` is the number of samples (every connection, the whole run).
    latency_samples: int
    latency_p50_us: float | None
    latency_p90_us: float | None
    latency_p99_us: float | None
    latency_p999_us: float | None
    latency_max_us: float | None
    #: Read-to-callback: from the read to the moment the batch's ``book_updated`` event for a
    #: book is dispatched (callbacks run then; an ``events()`` iterator gets it at its next
    #: step), one sample per event while anyone listens to ``book_updated``.
    callback_latency_samples: int
    callback_latency_p50_us: float | None
    callback_latency_p90_us: float | None
    callback_latency_p99_us: float | None
    callback_latency_p999_us: float | None
    callback_latency_max_us: float | None

    @classmethod
    def collect(cls, feed_stats: Mapping[str, int], sent: Mapping[Any, int],
                apply_latency: LatencyHistogram | None, *, coalesced_resyncs: int,
                rate_limited: int, limit_reached: int, connects: int, oversized_messages: int,
                callback_errors: int, events_dropped: int,
                callback_latency: LatencyHistogram | None = None) -> ClientMetrics:
        """Assemble a snapshot from the feed handler's stats, the control messages sent by
        kind, the latency histograms (ns) and the other pieces' counters."""
        s = feed_stats
        n_apply, (a50, a90, a99, a999, amax) = histogram_us(apply_latency)
        n_cb, (c50, c90, c99, c999, cmax) = histogram_us(callback_latency)
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
            latency_samples=n_apply, latency_p50_us=a50, latency_p90_us=a90,
            latency_p99_us=a99, latency_p999_us=a999, latency_max_us=amax,
            callback_latency_samples=n_cb, callback_latency_p50_us=c50,
            callback_latency_p90_us=c90, callback_latency_p99_us=c99,
            callback_latency_p999_us=c999, callback_latency_max_us=cmax)
