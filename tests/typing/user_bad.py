"""Mistakes a type checker must catch, one on each line marked as expected to fail."""
from __future__ import annotations

from parsec_fast import Client, Trade


async def main(client: Client) -> None:
    book = client.book("kalshi:KXBTC")
    print(book.best_bidd)  # expect-error: misspelt attribute of Book

    def on_trade(ev: Trade) -> None:
        print(ev.parsec_idd)  # expect-error: misspelt attribute of an event

    client.on("trade", on_trade)
    client.on("book_updatd", on_trade)  # expect-error: misspelt event kind
    async for event in client.events():
        if event.kind == "trade":
            print(event.seq)  # expect-error: a Trade has no seq
