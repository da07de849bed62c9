"""The compat layer's ``orderbook`` event, compiled: payload, book metadata and the emitter.

``OrderbookEmitter.on_book_frame`` is installed as the feed handler's per-frame hook
(``Client.set_frame_hook``). For an applied delta it builds the payload and drives the
``orderbook`` handlers without leaving C except for the handlers themselves: one copy of the
book's levels (``parsec_fast._levellist.BookCopy``, a memcpy per side), one ``OrderbookSnapshot``
whose ``bids``/``asks`` become lazy ``LevelList`` objects on first read, one call per handler.
A coroutine handler is driven with ``PyIter_Send`` (no StopIteration is raised when it
finishes); one that really suspends is handed to ``spawn_suspended`` to continue as a task.
Snapshots and frames the engine did not apply (``needs_refresh``) go to ``on_frame`` (Python;
they are rare), which calls :meth:`OrderbookEmitter.publish`.
"""
cimport cython
from cpython.dict cimport PyDict_GetItem
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.object cimport PyObject
from cpython.ref cimport Py_XDECREF
from libc.stdint cimport INT64_MIN, int64_t

from parsec_fast._book cimport SIDE_ASK, SIDE_BID, Book, key_price
from parsec_fast._feed cimport FrameState, Subscription
from parsec_fast._levellist cimport BookCopy, LevelList, copy_book, side_list
from parsec_fast._levels cimport install_members

import copy as _copy_module
import dataclasses
from typing import List, Optional

cdef extern from "Python.h":
    bint PyCoro_CheckExact(object o)
    int PyIter_Send(object iterator, object arg, PyObject** presult) except -1
    enum:
        PYGEN_RETURN
        PYGEN_NEXT

__all__ = ["OrderbookSnapshot", "BookMeta", "OrderbookEmitter"]

cdef str _DELTA = "delta"


@dataclasses.dataclass
class _SnapshotFields:
    # Only the source of OrderbookSnapshot's dataclass metadata: the SDK's field names, order
    # and annotations (strings, as the SDK module postpones its annotations).
    parsec_id: str
    outcome: str
    exchange: str
    token_id: str
    market_id: str
    title: Optional[str]
    bids: List[StreamingOrderbookLevel]
    asks: List[StreamingOrderbookLevel]
    mid_price: float
    spread: float
    tick_size: Optional[float]
    kind: str
    server_seq: int
    feed_state: str
    book_state: str
    stale_after_ms: int
    exchange_ts_ms: Optional[int]
    ingest_ts_ms: Optional[int]


cdef tuple _FIELD_NAMES = tuple(f.name for f in dataclasses.fields(_SnapshotFields))


# Fields an emitted payload builds on first read (bits of OrderbookSnapshot._lazy): the level
# lists, and the ints, which only some handlers read (an int object each is ~15 % of an event).
cdef enum:
    LAZY_BIDS = 1
    LAZY_ASKS = 2
    LAZY_SEQ = 4
    LAZY_STALE = 8
    LAZY_EXCHANGE_TS = 16
    LAZY_INGEST_TS = 32
    LAZY_ALL = 63


cdef inline object ts_object(int64_t value):
    return None if value == INT64_MIN else value


@cython.freelist(16)
cdef class OrderbookSnapshot:
    """Payload of the ``"orderbook"`` event, for snapshots and deltas (``kind``): the SDK's
    dataclass of the same name (same fields, order, constructor, repr, ``==``), compiled.

    ``bids``/``asks`` of an emitted payload are the book's levels as of that frame (copied when
    the event was emitted; later frames never change them), as ``LevelList`` objects built on
    first read: a ``list`` subclass whose level objects are built only for the indexes read (see
    ``parsec_fast._levellist``). A payload built with the constructor holds exactly what it was
    given. No ``__dict__``: attributes other than the 18 fields cannot be added, and fields
    cannot be deleted.
    """

    cdef object parsec_id
    cdef object outcome
    cdef object exchange
    cdef object token_id
    cdef object market_id
    cdef object title
    cdef object mid_price
    cdef object spread
    cdef object tick_size
    cdef object kind
    cdef object feed_state
    cdef object book_state
    # The lazy fields: the object once built or assigned, else built from the C values.
    cdef object _bids
    cdef object _asks
    cdef object _server_seq
    cdef object _stale_after_ms
    cdef object _exchange_ts_ms
    cdef object _ingest_ts_ms
    cdef int _lazy
    cdef BookCopy _copy
    cdef int64_t _seq
    cdef int64_t _stale
    cdef int64_t _exchange_ts
    cdef int64_t _ingest_ts
    cdef object __weakref__  # as a dataclass instance, it can be weakly referenced

    __dataclass_fields__ = _SnapshotFields.__dataclass_fields__
    __dataclass_params__ = _SnapshotFields.__dataclass_params__
    __match_args__ = _FIELD_NAMES
    __annotations__ = dict(_SnapshotFields.__annotations__)

    def __init__(self, parsec_id, outcome, exchange, token_id, market_id, title, bids, asks,
                 mid_price, spread, tick_size, kind, server_seq, feed_state, book_state,
                 stale_after_ms, exchange_ts_ms, ingest_ts_ms):
        self.parsec_id = parsec_id
        self.outcome = outcome
        self.exchange = exchange
        self.token_id = token_id
        self.market_id = market_id
        self.title = title
        self._bids = bids
        self._asks = asks
        self.mid_price = mid_price
        self.spread = spread
        self.tick_size = tick_size
        self.kind = kind
        self._server_seq = server_seq
        self.feed_state = feed_state
        self.book_state = book_state
        self._stale_after_ms = stale_after_ms
        self._exchange_ts_ms = exchange_ts_ms
        self._ingest_ts_ms = ingest_ts_ms
        self._lazy = 0
        self._copy = None

    def __delattr__(self, name):
        if name in _FIELD_NAMES:
            raise AttributeError(f"cannot delete field {name!r} of {type(self).__name__}")
        object.__delattr__(self, name)

    @property
    def bids(self):
        if self._lazy & LAZY_BIDS:
            self._bids = side_list(self._copy, SIDE_BID)
            self._lazy &= ~LAZY_BIDS
        return self._bids

    @bids.setter
    def bids(self, value):
        self._bids = value
        self._lazy &= ~LAZY_BIDS

    @property
    def asks(self):
        if self._lazy & LAZY_ASKS:
            self._asks = side_list(self._copy, SIDE_ASK)
            self._lazy &= ~LAZY_ASKS
        return self._asks

    @asks.setter
    def asks(self, value):
        self._asks = value
        self._lazy &= ~LAZY_ASKS

    @property
    def server_seq(self):
        if self._lazy & LAZY_SEQ:
            self._server_seq = self._seq
            self._lazy &= ~LAZY_SEQ
        return self._server_seq

    @server_seq.setter
    def server_seq(self, value):
        self._server_seq = value
        self._lazy &= ~LAZY_SEQ

    @property
    def stale_after_ms(self):
        if self._lazy & LAZY_STALE:
            self._stale_after_ms = self._stale
            self._lazy &= ~LAZY_STALE
        return self._stale_after_ms

    @stale_after_ms.setter
    def stale_after_ms(self, value):
        self._stale_after_ms = value
        self._lazy &= ~LAZY_STALE

    @property
    def exchange_ts_ms(self):
        if self._lazy & LAZY_EXCHANGE_TS:
            self._exchange_ts_ms = ts_object(self._exchange_ts)
            self._lazy &= ~LAZY_EXCHANGE_TS
        return self._exchange_ts_ms

    @exchange_ts_ms.setter
    def exchange_ts_ms(self, value):
        self._exchange_ts_ms = value
        self._lazy &= ~LAZY_EXCHANGE_TS

    @property
    def ingest_ts_ms(self):
        if self._lazy & LAZY_INGEST_TS:
            self._ingest_ts_ms = ts_object(self._ingest_ts)
            self._lazy &= ~LAZY_INGEST_TS
        return self._ingest_ts_ms

    @ingest_ts_ms.setter
    def ingest_ts_ms(self, value):
        self._ingest_ts_ms = value
        self._lazy &= ~LAZY_INGEST_TS

    cdef tuple _values(self):
        return (self.parsec_id, self.outcome, self.exchange, self.token_id, self.market_id,
                self.title, self.bids, self.asks, self.mid_price, self.spread, self.tick_size,
                self.kind, self.server_seq, self.feed_state, self.book_state,
                self.stale_after_ms, self.exchange_ts_ms, self.ingest_ts_ms)

    def __richcmp__(self, other, int op):
        # A dataclass's __eq__: same class, then the fields as a tuple; no ordering.
        if op != 2 and op != 3:
            return NotImplemented
        if type(other) is not type(self):
            return NotImplemented
        eq = self._values() == (<OrderbookSnapshot>other)._values()
        return eq if op == 2 else not eq

    def __repr__(self):
        values = self._values()
        inner = ", ".join([f"{name}={value!r}" for name, value in zip(_FIELD_NAMES, values)])
        return f"{type(self).__qualname__}({inner})"

    def __reduce__(self):
        # Lazy sides are stored as the plain lists of their levels.
        values = list(self._values())
        for i in (6, 7):
            if type(values[i]) is LevelList:
                values[i] = list(values[i])
        return type(self), tuple(values)

    def __copy__(self):
        # The same field objects (as copy.copy of a dataclass), both sides included.
        return type(self)(*self._values())

    def __deepcopy__(self, memo):
        return type(self)(*[_copy_module.deepcopy(v, memo) for v in self._values()])


# The plain fields as member descriptors (see parsec_fast._levels.install_members): a handler's
# book.mid_price is a slot read.
cdef OrderbookSnapshot _p = OrderbookSnapshot.__new__(OrderbookSnapshot)
_PLAIN_FIELDS = ("parsec_id", "outcome", "exchange", "token_id", "market_id", "title",
                 "mid_price", "spread", "tick_size", "kind", "feed_state", "book_state")
_sentinels = tuple(object() for _ in _PLAIN_FIELDS)
(_p.parsec_id, _p.outcome, _p.exchange, _p.token_id, _p.market_id, _p.title, _p.mid_price,
 _p.spread, _p.tick_size, _p.kind, _p.feed_state, _p.book_state) = _sentinels
install_members(OrderbookSnapshot, _p, tuple(zip(_PLAIN_FIELDS, _sentinels)))
_p = None
del _sentinels


cdef OrderbookSnapshot new_payload(BookMeta meta, str kind, Book book):
    """A payload with ``book``'s levels now, mid/spread and the metadata; the caller sets the
    per-frame fields."""
    cdef BookCopy levels = copy_book(book)
    cdef OrderbookSnapshot p = OrderbookSnapshot.__new__(OrderbookSnapshot)
    # The SDK's arithmetic: both sides -> mid and abs spread; one side -> its best, 0.0.
    cdef double bid = key_price(levels.levels[0].key) if levels.n_bids else 0.0
    cdef double ask = key_price(levels.levels[levels.n_bids].key) if levels.n_asks else 0.0
    p.parsec_id = meta.parsec_id
    p.outcome = meta.outcome
    p.exchange = meta.exchange
    p.token_id = meta.token_id
    p.market_id = meta.market_id
    p.title = meta.title
    p._copy = levels
    p._lazy = LAZY_BIDS | LAZY_ASKS
    if bid > 0.0 and ask > 0.0:
        p.mid_price = (bid + ask) / 2.0
        p.spread = abs(ask - bid)
    else:
        p.mid_price = bid if bid > 0.0 else ask
        p.spread = 0.0
    p.tick_size = meta.tick_size
    p.kind = kind
    return p


@cython.final
cdef class BookMeta:
    """A book's snapshot fields the engine does not keep (the SDK's stored book metadata)."""

    cdef readonly object parsec_id
    cdef readonly object outcome
    cdef readonly object exchange
    cdef readonly object token_id
    cdef readonly object market_id
    cdef readonly object title
    cdef readonly object tick_size

    def __init__(self, parsec_id, outcome, exchange, token_id, market_id, title, tick_size):
        self.parsec_id = parsec_id
        self.outcome = outcome
        self.exchange = exchange
        self.token_id = token_id
        self.market_id = market_id
        self.title = title
        self.tick_size = tick_size

    @staticmethod
    def of_frame(dict frame not None):
        """From a snapshot frame, with the SDK's defaults for absent fields."""
        g = frame.get
        return BookMeta(g("parsec_id", ""), g("outcome", ""), g("exchange", ""),
                        g("token_id", ""), g("market_id", ""), g("title"), g("tick_size"))

    def __repr__(self):
        return f"BookMeta({self.parsec_id!r}, {self.outcome!r})"


@cython.final
cdef class OrderbookEmitter:
    """Builds ``orderbook`` payloads and calls the handlers (see the module docstring).

    ``handlers`` is the live list of ``orderbook`` handlers (the caller adds and removes them);
    ``on_frame(sub, frame)`` gets the frames that are not applied deltas;
    ``spawn_suspended(coro, yielded)`` continues a coroutine handler that suspended;
    ``spawn_awaitable(obj)`` handles any other non-None result; ``on_error(event)`` is called
    inside ``except`` when a handler raised (``event`` "orderbook") or a frame could not be
    handled (``event`` None). Nothing here raises into the feed handler but BaseException.
    """

    cdef list _handlers
    cdef dict _metas                 # Subscription -> BookMeta
    cdef object _on_frame
    cdef object _spawn_suspended
    cdef object _spawn_awaitable
    cdef object _on_error

    def __init__(self, list handlers not None, on_frame, spawn_suspended, spawn_awaitable,
                 on_error):
        self._handlers = handlers
        self._metas = {}
        self._on_frame = on_frame
        self._spawn_suspended = spawn_suspended
        self._spawn_awaitable = spawn_awaitable
        self._on_error = on_error

    # -- book metadata ---------------------------------------------------------------------------
    def set_meta(self, Subscription sub not None, BookMeta meta not None):
        """Deltas of ``sub`` are published with ``meta`` from now on."""
        self._metas[sub] = meta

    def meta(self, Subscription sub not None):
        """The metadata of ``sub``'s book, or None before its first snapshot."""
        return self._metas.get(sub)

    def forget(self, Subscription sub not None):
        """No more delta events for ``sub`` (until set_meta again)."""
        self._metas.pop(sub, None)

    def clear(self):
        """Forget every subscription's metadata (no delta events until set_meta again)."""
        self._metas.clear()

    # -- the frame hook --------------------------------------------------------------------------
    def on_book_frame(self, sub, frame):
        """The feed handler's per-frame hook: ``frame`` is None for an applied delta."""
        cdef PyObject* meta
        cdef Subscription s
        cdef OrderbookSnapshot p
        cdef FrameState st
        try:
            if frame is not None:
                self._on_frame(sub, frame)
                return
            if PyList_GET_SIZE(self._handlers) == 0:
                return
            meta = PyDict_GetItem(self._metas, sub)
            if meta == NULL:
                return
            s = <Subscription>sub  # a key of _metas: set_meta took a Subscription
            s.frame_state(&st)
            p = new_payload(<BookMeta>meta, _DELTA, s.book)
            p.feed_state = <object>st.feed_state
            p.book_state = <object>st.book_state
            p._seq = st.server_seq
            p._stale = st.stale_after_ms if st.stale_after_ms >= 0 else 0  # the SDK's default
            p._exchange_ts = st.exchange_ts_ms
            p._ingest_ts = st.ingest_ts_ms
            p._lazy = LAZY_ALL
            self._deliver(p)
        except Exception:
            self._on_error(None)

    def publish(self, BookMeta meta not None, str kind not None, Book book not None, server_seq,
                feed_state, book_state, stale_after_ms, exchange_ts_ms, ingest_ts_ms):
        """Emit one ``orderbook`` event with ``book``'s levels now and these fields."""
        cdef OrderbookSnapshot p
        if PyList_GET_SIZE(self._handlers) == 0:
            return
        p = new_payload(meta, kind, book)
        p._server_seq = server_seq
        p.feed_state = feed_state
        p.book_state = book_state
        p._stale_after_ms = stale_after_ms
        p._exchange_ts_ms = exchange_ts_ms
        p._ingest_ts_ms = ingest_ts_ms
        self._deliver(p)

    cdef int _deliver(self, OrderbookSnapshot p) except -1:
        cdef list handlers = self._handlers
        cdef Py_ssize_t n = PyList_GET_SIZE(handlers)
        if n == 1:
            self._call(<object>PyList_GET_ITEM(handlers, 0), p)
        elif n > 1:
            for fn in tuple(handlers):  # a handler may call off()
                self._call(fn, p)
        return 0

    cdef int _call(self, object fn, OrderbookSnapshot payload) except -1:
        cdef PyObject* sent = NULL
        cdef int status
        try:
            result = fn(payload)
            if result is None:
                return 0
            if PyCoro_CheckExact(result):
                status = PyIter_Send(result, None, &sent)
                if status == PYGEN_RETURN:
                    Py_XDECREF(sent)
                    return 0
                yielded = <object>sent
                Py_XDECREF(sent)
                self._spawn_suspended(result, yielded)
            else:
                self._spawn_awaitable(result)
        except Exception:
            self._on_error("orderbook")
        return 0
