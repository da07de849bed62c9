"""Seeded, realistic order-book delta streams for the book and parse benchmarks.

One stream is one market's book: an initial snapshot of ``depth`` levels per side on a 0.001 tick
grid (prices in (0, 1), uncrossed), followed by ``n_deltas`` deltas with contiguous ``server_seq``.
The shape follows what prediction-market books do:

* each delta carries 1–3 changes (about 60 % one change, 25 % two, 15 % three);
* about 90 % of changes resize an existing level, chosen near the top of its side (the index is
  geometric, so the best level takes about half of them and the top 3 nearly 90 %);
* about 5 % remove a level and about 5 % add a new one (in the spread, in a hole near the top, or
  below the last level). The level count is kept within ±10 % of ``depth``, so the book does not drift;
* sizes are mostly round numbers (two decimals), but 5 % have 17 significant digits, as real feeds do,
  so that parse benchmarks see them too.

Everything derives from ``random.Random(seed)``, so the same arguments always give the same stream.
``changes`` are lists of dicts exactly as ``orjson.loads`` would decode them from a PROTOCOL.md
``orderbook_delta`` frame (``price``/``size`` floats, ``side`` "bid"/"ask"); ``stream_frames`` gives the
same stream as encoded frame bytes.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["BookStream", "make_stream", "stream_frames", "Change", "Delta", "Level"]

TICK = 0.001
#: Ticks per unit price: prices are ``tick_index / GRID``, the exact double for a 0.001 grid.
GRID = 1000

Level = list  # [price, size], as orjson decodes a snapshot level
Change = dict  # {"side": "bid"|"ask", "price": float, "size": float}
Delta = tuple  # (changes: list[Change], seq: int)


@dataclass
class BookStream:
    """A snapshot plus the deltas that follow it, and what a correct book holds at the end."""

    depth: int
    seed: int
    snapshot_seq: int
    bids: list[list[float]]  # descending, [price, size]
    asks: list[list[float]]  # ascending
    deltas: list[tuple[list[dict[str, Any]], int]]
    #: The book after every delta, best first, as (price, size) tuples: for correctness checks.
    final_bids: list[tuple[float, float]] = field(default_factory=list)
    final_asks: list[tuple[float, float]] = field(default_factory=list)
    #: Counts of change kinds, so the report can show that the mix is what the docstring claims.
    stats: dict[str, float] = field(default_factory=dict)


def _size(rng: random.Random) -> float:
    """A level size: mostly a round amount, sometimes a full-precision float."""
    if rng.random() < 0.05:
        return rng.uniform(1.0, 5000.0)  # 17 significant digits once serialised
    return round(rng.lognormvariate(5.5, 1.2), 2) or 1.0


def _top_index(rng: random.Random, n: int, p: float = 0.5) -> int:
    """Geometric index into a side of ``n`` levels: the best level is the most likely."""
    i = 0
    while rng.random() > p and i < n - 1:
        i += 1
    return i


def make_stream(
    depth: int = 50,
    n_deltas: int = 10_000,
    seed: int = 1,
    *,
    changes_weights: tuple[float, float, float] = (0.60, 0.25, 0.15),
    p_remove: float = 0.05,
    p_new: float = 0.05,
    snapshot_seq: int = 1000,
) -> BookStream:
    """Generate a deterministic stream for a book of ``depth`` levels per side.

    ``changes_weights`` are the weights of deltas with 1, 2, 3 changes (``(1, 0, 0)`` gives a
    single-change stream). ``p_remove``/``p_new`` are per-change probabilities; the rest resize.
    """
    if depth < 2:
        raise ValueError("depth must be >= 2")
    rng = random.Random(seed)
    lo_count = max(2, depth - max(1, depth // 10))
    hi_count = depth + max(1, depth // 10)

    # The true book, as tick index -> size. Bids sit below the mid and asks above it, spaced 1–2
    # ticks apart, so that there are holes where new levels can appear inside the book.
    mid = rng.randint(250 + 2 * depth, 750 - 2 * depth) if depth <= 100 else GRID // 2
    bids: dict[int, float] = {}
    asks: dict[int, float] = {}
    t = mid - 1
    for _ in range(depth):
        bids[t] = _size(rng)
        t -= rng.choice((1, 1, 2))
    t = mid + 1
    for _ in range(depth):
        asks[t] = _size(rng)
        t += rng.choice((1, 1, 2))
    if min(bids) <= 0 or max(asks) >= GRID:
        raise ValueError(f"depth {depth} does not fit the (0, 1) grid")

    snap_bids = [[k / GRID, bids[k]] for k in sorted(bids, reverse=True)]
    snap_asks = [[k / GRID, asks[k]] for k in sorted(asks)]

    counts = {"changes": 0, "resize": 0, "resize_top": 0, "remove": 0, "new": 0}
    deltas: list[tuple[list[dict[str, Any]], int]] = []
    # Sorted tick lists per side (best first), kept in step with the dicts: the generator's own cost
    # is irrelevant, but it must stay simple enough to be obviously right.
    bid_ticks = sorted(bids, reverse=True)
    ask_ticks = sorted(asks)

    for d in range(n_deltas):
        n_changes = rng.choices((1, 2, 3), weights=changes_weights)[0]
        changes: list[dict[str, Any]] = []
        touched: set[tuple[str, int]] = set()
        for _ in range(n_changes):
            is_bid = rng.random() < 0.5
            side = "bid" if is_bid else "ask"
            book, ticks = (bids, bid_ticks) if is_bid else (asks, ask_ticks)
            other_best = ask_ticks[0] if is_bid else bid_ticks[0]
            r = rng.random()
            kind = "resize"
            if r < p_remove:
                kind = "remove"
            elif r < p_remove + p_new:
                kind = "new"
            # Keep the level count within bounds, so that depth stays what the caller asked for.
            if kind == "remove" and len(ticks) <= lo_count:
                kind = "new"
            elif kind == "new" and len(ticks) >= hi_count:
                kind = "remove"

            if kind == "resize":
                i = _top_index(rng, len(ticks))
                tick = ticks[i]
                if (side, tick) in touched:
                    continue
                size = _size(rng)
                book[tick] = size
                counts["resize_top"] += i == 0
            elif kind == "remove":
                i = _top_index(rng, len(ticks), p=0.3)
                tick = ticks[i]
                if (side, tick) in touched:
                    continue
                del book[tick]
                ticks.pop(i)
                size = 0.0
            else:
                tick = None
                for _attempt in range(6):  # a candidate can be taken or cross: try a few
                    tick = _new_tick(rng, ticks, is_bid, other_best)
                    if tick is not None:
                        break
                if tick is None or (side, tick) in touched:
                    continue
                size = _size(rng)
                book[tick] = size
                ticks.append(tick)
                ticks.sort(reverse=is_bid)
            touched.add((side, tick))
            counts[kind] += 1
            counts["changes"] += 1
            changes.append({"side": side, "price": tick / GRID, "size": size})
        if not changes:  # every pick collided: resize the best bid, so no delta is empty
            size = _size(rng)
            bids[bid_ticks[0]] = size
            counts["resize"] += 1
            counts["resize_top"] += 1
            counts["changes"] += 1
            changes.append({"side": "bid", "price": bid_ticks[0] / GRID, "size": size})
        deltas.append((changes, snapshot_seq + 1 + d))

    n = max(1, counts["changes"])
    stats = {
        "deltas": n_deltas,
        "changes_per_delta": counts["changes"] / max(1, n_deltas),
        "resize_share": counts["resize"] / n,
        "resize_of_best_level_share": counts["resize_top"] / n,
        "remove_share": counts["remove"] / n,
        "new_level_share": counts["new"] / n,
        "final_bid_levels": len(bids),
        "final_ask_levels": len(asks),
    }
    return BookStream(
        depth=depth,
        seed=seed,
        snapshot_seq=snapshot_seq,
        bids=snap_bids,
        asks=snap_asks,
        deltas=deltas,
        final_bids=[(k / GRID, bids[k]) for k in bid_ticks],
        final_asks=[(k / GRID, asks[k]) for k in ask_ticks],
        stats=stats,
    )


def _new_tick(rng: random.Random, ticks: list[int], is_bid: bool, other_best: int) -> int | None:
    """A free tick for a new level on one side, never crossing or locking the other side."""
    best = ticks[0]
    where = rng.random()
    if where < 0.3:  # improve the best price, inside the spread
        cand = best + 1 if is_bid else best - 1
    elif where < 0.8:  # fill a hole near the top
        lim = min(len(ticks) - 1, 10)
        i = rng.randint(0, lim)
        cand = ticks[i] - 1 if is_bid else ticks[i] + 1
    else:  # extend the book beyond its last level
        cand = ticks[-1] - 1 if is_bid else ticks[-1] + 1
    if cand <= 0 or cand >= GRID:
        return None
    if (is_bid and cand >= other_best) or (not is_bid and cand <= other_best):
        return None
    if cand in ticks:
        return None
    return cand


def stream_frames(
    stream: BookStream,
    parsec_id: str = "polymarket:572473",
    outcome: str = "Yes",
) -> tuple[bytes, list[bytes]]:
    """Encode a stream as PROTOCOL.md frames: the ``orderbook`` snapshot and one ``orderbook_delta``
    per delta, with ``orjson.dumps``. Timestamps derive from the seq, so the bytes are deterministic."""
    exchange, _, market_id = parsec_id.partition(":")
    base_ts = 1_708_123_456_000
    common = {
        "parsec_id": parsec_id,
        "exchange": exchange,
        "outcome": outcome,
        "token_id": "50310842821",
        "market_id": market_id,
    }
    snap = {
        "type": "orderbook",
        **common,
        "tick_size": TICK,
        "min_order_size": 1.0,
        "kind": "snapshot",
        "title": "Will ETH reach $5000?",
        "bids": stream.bids,
        "asks": stream.asks,
        "book_state": "fresh",
        "server_seq": stream.snapshot_seq,
        "feed_state": "healthy",
        "stale_after_ms": 5000,
        "exchange_ts_ms": base_ts,
        "ingest_ts_ms": base_ts + 50,
    }
    frames = []
    for changes, seq in stream.deltas:
        ts = base_ts + 100 * (seq - stream.snapshot_seq)
        frames.append(
            orjson.dumps(
                {
                    "type": "orderbook_delta",
                    **common,
                    "changes": changes,
                    "server_seq": seq,
                    "feed_state": "healthy",
                    "book_state": "fresh",
                    "stale_after_ms": 5000,
                    "exchange_ts_ms": ts,
                    "ingest_ts_ms": ts + 5,
                }
            )
        )
    return orjson.dumps(snap), frames


if __name__ == "__main__":  # a quick look at a stream's mix and one frame
    s = make_stream(50, 5000, seed=1)
    print(orjson.dumps(s.stats, option=orjson.OPT_INDENT_2).decode())
    snap, frames = stream_frames(s)
    print(len(snap), "B snapshot;", frames[0].decode())
