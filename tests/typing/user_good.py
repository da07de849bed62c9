"""A user's script, as a type checker sees it: must pass ``mypy --strict`` and pyright clean."""
from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from parsec_fast import (Book, BookUpdated, Client, ClientConfig, DeltaResult, Event, Subscription,
                         Trade)
from parsec_fast.reference import Book as ReferenceBook


def on_trade(trade: Trade) -> None:
    print(trade.parsec_id, trade.price, trade.size, trade.aggressor_side)


def describe(event: Event) -> str:
    if event.kind == "book_updated":
        return f"{event.parsec_id} seq {event.seq + 1}"
    if event.kind == "trade":
        return f"trade {event.price * event.size:.2f}"
    if event.kind == "disconnected":
        return f"{event.reason} (reconnect: {event.will_reconnect}, cause: {event.error})"
    return event.kind


def book_into(out: NDArray[np.float64]) -> int:
    return Book("kalshi:KXBTC", "Yes").asks_into(out)


async def main() -> None:
    config = ClientConfig(heartbeat_interval=1.0, max_message_size=1 << 20)
    async with Client("ws://127.0.0.1:8765/ws", api_key="demo", config=config) as client:
        subs: list[Subscription] = await client.subscribe(["kalshi:KXBTC"], depth=10)
        book: Book = client.book("kalshi:KXBTC")
        best: tuple[float, float] | None = book.best_bid
        price: float = book.best_bid_price
        levels: NDArray[np.float64] = book.bids_array(5)
        print(subs[0].trustworthy, subs[0].why_not(), best, price, levels.shape)
        client.on("trade", on_trade)

        @client.on("book_updated")
        def on_update(ev: BookUpdated) -> None:
            print(ev.parsec_id, ev.seq)

        async for event in client.events():
            print(describe(event))
        async for trade in client.events(kinds=["trade"]):
            if trade.kind == "trade":
                on_trade(trade)
    ref = ReferenceBook("kalshi:KXBTC", "Yes")
    ref.apply_snapshot([[0.4, 1.0]], [[0.6, 2.0]], seq=1)
    assert ref.apply_delta([{"side": "bid", "price": 0.41, "size": 1.0}], 2) is DeltaResult.APPLIED
    out = np.zeros((10, 2))  # the zero-copy reads take a NumPy array (Python 3.11 included)
    written: int = ref.bids_into(out) + book_into(out)
