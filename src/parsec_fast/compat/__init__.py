"""Drop-in replacement for the official SDK's streaming client (``parsec_api.streaming``).

Switch by changing one import::

    # from parsec_api.streaming import ParsecWebSocket, MarketSubscription
    from parsec_fast.compat import ParsecWebSocket, MarketSubscription

    async with ParsecWebSocket(api_key, "wss://api.parsecapi.com/ws") as ws:
        @ws.on("orderbook")
        async def on_book(book):          # OrderbookSnapshot, kind "snapshot" or "delta"
            print(book.parsec_id, book.mid_price, book.bids[:1])

        ws.subscribe(parsec_id="polymarket:572473")
        await ws.run_forever()

The same public names, signatures, event names and arguments, payload types (same fields in
the same order, constructors, ``repr``, ``==``; ``dataclasses`` functions work on them),
``get_book`` dict shape and ``customer_id`` as ``parsec-api`` 0.17.0 (our study of it:
``docs/sdk-compat-notes.md``), backed by :class:`parsec_fast.client.Client`: native parsing,
compiled books, PROTOCOL.md §6 recovery, a 3/s control-message limiter. ``ws.client`` is the
engine client of the current connection (e.g. ``ws.client.subscription(pid).trustworthy``).

Cost. An applied delta becomes an ``orderbook`` payload in compiled code
(:mod:`parsec_fast._orderbook`): one ``memcpy`` of each side of the book, no level object.
``bids`` / ``asks`` are :class:`~parsec_fast._levellist.LevelList` objects, a ``list`` subclass
that builds a level object only for the index or slice a handler reads; keeping the payload
costs nothing more. With no ``orderbook`` handler no payload is built at all.

Deliberate differences from ``parsec_api.streaming`` 0.17.0, each with its reason:

1. ``connect()`` can be retried after it failed (the SDK stayed "connecting" and every later
   ``connect()`` silently did nothing). A failed TCP/WS connect raises ``ConnectionError`` (an
   ``OSError``) carrying the transport error's text, not the transport library's own
   exception (the transport is not ``websockets``).
2. Handlers may be plain functions or coroutine functions (the SDK logged an error after every
   call of a plain one). They run inline on the receive path in registration order; an
   ``async`` handler that really suspends (awaits I/O) continues as a task and does not hold
   back the next handler or later frames (the SDK blocked its receive loop instead, until the
   server sent ``slow_reader``).
3. Recovery as PROTOCOL.md §6, not the SDK's resync storm: a duplicate delta is dropped (the
   SDK resynced); a gap invalidates the book and sends ONE rate-limited ``resync``, and its
   deltas are dropped until the snapshot (no ``orderbook`` event for them, as in the SDK);
   ``resync_required`` does the same. Activity frames sharing the book's counter (PROTOCOL.md
   default) are not gaps (the SDK resynced after every trade then).
4. ``book_state == "needs_refresh"`` (snapshot or delta): an ``orderbook`` event is emitted
   with the frame's own ``server_seq``, ``book_state``, ``feed_state``, ``stale_after_ms`` and
   timestamps, and the levels the SDK would show (the snapshot's, or the last book with the
   delta's changes), so user code sees the state as with the SDK. But the engine treats the
   book as needing a resync (§6) rather than applying the frame: ``get_book`` keeps the last
   applied book, one ``resync`` is sent, and the deltas that follow are dropped until the new
   snapshot, with no events (the SDK kept applying and reporting them, on a book its server
   had declared unusable). Such a frame is reported whatever its ``server_seq``.
5. A malformed frame is dropped and counted in the engine's metrics; it never ends the receive
   loop or leaks the socket (the SDK's loop died on it and opened a second connection). Book
   data that breaks the book rules (``parsec_fast.rules``: an unsorted or duplicate-price
   snapshot side, a non-positive or non-finite price, a negative size, a change that is not
   ``{"side", "price", "size"}``) is rejected and resynced, not stored: no event for it (the
   SDK stored anything, and skipped changes it could not read).
6. Payloads are snapshots: ``bids``/``asks`` of an event hold the book as of that frame even
   when kept, copied or read later (the SDK handed out its live lists, which later deltas
   changed, and which a handler could corrupt). Each payload has its own level objects (the
   SDK shared unchanged ones between successive payloads), so changing one never shows in
   another event. Their types differ from the SDK's in ways plain Python code does not see:

   * ``bids``/``asks`` are ``LevelList``, a ``list`` subclass (``isinstance(x, list)`` is
     true, ``type(x) is list`` is not) built on read. Indexing, slicing, ``len``, iteration,
     ``in``, ``==``, ``reversed``, ``+``, ``*``, ``copy()``, ``sorted``, ``index``,
     ``count``, ``repr``, copy/deepcopy/pickle (as a plain list) and every mutation behave as
     a list's. C code that reads a list's storage directly, bypassing its methods, finds
     the right number of slots, each the level if something read it already, else a
     placeholder (``parsec_fast._levels.UnreadLevel``) whose every use raises
     ``UnreadLevelError``, a ``TypeError`` naming the fix: never an empty or short list.
     So ``orjson.dumps`` / ``msgspec`` of a payload or of ``bids`` raise ``TypeError``
     ("Type is not JSON serializable: parsec_fast._levels.UnreadLevel (a LevelList level
     never built: serialise list(levels) or asdict(payload), ...)") until every level was
     read, and then give the SDK's bytes; ``list.__add__(plain, bids)``, ``list.copy(bids)``
     and Cython code typed ``list`` get placeholders that raise when used. Serialise
     ``dataclasses.asdict(book)`` or ``list(book.bids)``: exactly the SDK's output. (Building
     every level object per delta, so that such code needs nothing, is exactly the per-level
     cost this design avoids; the placeholders cost ~150 instructions a side read.)
   * ``OrderbookSnapshot`` and ``StreamingOrderbookLevel`` are compiled types
     (``dataclasses.fields``/``asdict``/``astuple``/``replace``/``is_dataclass`` work; an
     ``OrderbookSnapshot`` only equals another one, as between dataclasses). Neither has a
     ``__dict__`` (``vars(x)`` raises, no extra attributes). A level's fields hold what they
     are given, as the SDK's; the engine's levels are floats (the SDK kept a delta's JSON int
     as an int). Error messages name them
     ``parsec_fast._levels.StreamingOrderbookLevel`` and so on.
7. The reconnect path has an auth timeout too; missing heartbeats are detected (dead
   connection, then reconnect). A failed reconnect attempt is reported as
   ``error(WsError("Reconnect attempt failed"))`` (the SDK reported the transport's message).
8. ``orderbook`` events and ``get_book`` cover subscribed markets only, from their first
   applied snapshot (the SDK stored a book for any snapshot it received). ``get_book`` levels
   are the engine's (prices on a 1e-9 grid, sizes as floats, no size-0 levels) and
   ``last_seq`` is the book's seq, which under the shared counter also counts activity frames.
9. A delta's ``feed_state`` / ``book_state`` / ``stale_after_ms`` are the last values the
   server announced for that book (the SDK took the frame's own field and, when a frame left
   one out, reported ``"healthy"`` / ``"fresh"`` / ``0``, announcing a recovery that did not
   happen); its ``exchange_ts_ms`` / ``ingest_ts_ms`` are the frame's when they are integers,
   else None. Reading them per frame as Python objects would cost the native path its speed.
   Snapshots and ``needs_refresh`` frames report the frame's own fields, as the SDK does.
10. ``subscribe`` validates locally: a malformed ``parsec_id`` is reported at once as
    ``error(WsError(code=2001, ...))`` and not registered; ``depth`` is clamped to 1..100. A
    market the server refuses (e.g. 2002) is reported through ``error`` and not re-sent on
    reconnect (the SDK re-sent it on every reconnect).
"""
from __future__ import annotations

from .handlers import EVENTS
from .payloads import (Activity, LevelList, MarketSubscription, OrderbookSnapshot,
                       StreamingOrderbookLevel, WsError)
from .websocket import ParsecWebSocket, ws, ws_url

__all__ = ["ParsecWebSocket", "OrderbookSnapshot", "StreamingOrderbookLevel", "Activity",
           "WsError", "MarketSubscription", "LevelList", "ws_url", "ws", "EVENTS"]
