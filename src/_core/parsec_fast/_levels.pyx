"""Order-book levels in the official SDK's shape, read lazily from a copy of a compiled book.

``parsec_fast.compat`` hands SDK users an ``OrderbookSnapshot`` per book frame whose ``bids`` /
``asks`` are ``List[StreamingOrderbookLevel]``. Building every level object of both sides per
delta is the SDK's own cost, so instead:

* ``BookCopy``: both sides of a ``Book`` at one moment, copied with one ``memcpy`` per side into
  a pooled C buffer (16 bytes a level). Taken when the event is emitted, so a payload kept for
  later still shows the book as of its own frame.
* ``LevelList``: a ``list`` subclass over one side of a ``BookCopy``. A level object is built
  only when its index is read and then kept in the list's own storage (``x[0] is x[0]`` as in
  a list, and a change a caller makes to that level object stays visible). Reading methods
  (index, slices, ``len``, iteration, ``in``, ``==``, ``reversed``, ``+``, ``*``, ``copy``,
  ``index``, ``count``, ``repr``, copy/deepcopy/pickle) build what they read; the first
  mutation (``append``, ``x[i] = v``, ``sort``, ``+=``, ...) builds every level and from then
  on it is an ordinary list. Slices, ``copy()``, ``copy.copy``, ``copy.deepcopy``, ``+`` and
  ``*`` return plain lists, and pickling stores a plain list, as for a list.

  The list's storage (``PyListObject.ob_item``) is never empty or short: from its creation it
  holds ``len(x)`` items, the level once built, else the ``UnreadLevel`` placeholder of its
  index. So C code that reads a list's storage directly, bypassing its methods, sees the right
  length and, for each slot, either the level or a placeholder whose every use raises
  ``UnreadLevelError`` (a ``TypeError`` naming the fix): ``orjson`` and ``msgspec`` serialising
  a ``LevelList`` or a payload holding one raise ("Type is not JSON serializable:
  parsec_fast._levels.UnreadLevel (... serialise list(levels) or asdict(payload) ...)") until
  every level was read, and then serialise it exactly; ``list.__add__(plain, x)``,
  ``list.copy(x)``, ``PyList_GET_ITEM`` and Cython code typed ``list`` get placeholders that
  raise when used. ``list(x)``, ``dataclasses.asdict(payload)`` and every Python-level read
  give the levels. The standard library (``json``, ``copy``, ``pickle``, ``tuple``,
  ``sorted``, ...) and NumPy take their shortcut through the storage for an exact ``list``
  only (``PySequence_Fast`` & co.) and iterate a ``LevelList``: they see every level.
  A placeholder stands for "level *i* of the list holding it", so list's own methods called
  unbound on an unread list (``list.reverse(x)``, ``list.insert(x, 0, v)``) keep every level
  where a list would; one they copy into another ``LevelList`` stands for that list's level
  *i* (or raises if it has none).

  Cost: the placeholders come from a table (one object per index, never freed), and a list's
  storage array from spares kept by size (a list of ``n`` levels takes an array of ``n``
  placeholders, already counted; its deallocation puts back the placeholders of the slots
  read, checks the rest with one ``memcmp``, and keeps the array for the next list of that
  size). No ``malloc``, fill or free per list once warm: ~150 instructions a side read.
* ``StreamingOrderbookLevel``: the SDK's level dataclass as a compiled type: same field names
  and order, constructor, repr, ``==`` (same class and equal fields), unhashable, mutable,
  fields holding whatever they are given (the engine gives floats); ``dataclasses.fields`` /
  ``asdict`` / ``astuple`` / ``replace`` work on it. Its fields are member descriptors, so a
  handler reading ``level.size`` costs what it costs on a dataclass; they cannot be deleted.
  Levels and payloads can be weakly referenced, and reference cycles through them (a level
  holding its own payload) are collected, as with the SDK's dataclasses.
"""
cimport cython
from cpython.long cimport PyLong_CheckExact
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport (Py_EQ, Py_NE, PyObject, PyObject_RichCompareBool, PyTypeObject,
                             richcmpfunc)
from cpython.ref cimport Py_INCREF
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE, PyList_New, PyList_SET_ITEM
from cpython.slice cimport PySlice_Check
from libc.stdlib cimport free, malloc
from libc.string cimport memcmp, memcpy

from parsec_fast._book cimport SIDE_ASK, SIDE_BID, key_price

import copy as _copy_module
import dataclasses

cdef extern from "Python.h":
    bint PyIndex_Check(object o)
    Py_ssize_t PyNumber_AsSsize_t(object o, object exc) except? -1
    int PySlice_Unpack(object s, Py_ssize_t* start, Py_ssize_t* stop, Py_ssize_t* step) except -1
    Py_ssize_t PySlice_AdjustIndices(Py_ssize_t length, Py_ssize_t* start, Py_ssize_t* stop,
                                     Py_ssize_t step)

__all__ = ["StreamingOrderbookLevel", "LevelList", "BookCopy", "UnreadLevel", "UnreadLevelError"]


# -- fast attribute reads ------------------------------------------------------------------------

cdef extern from "structmember.h":
    ctypedef struct PyMemberDef:
        const char* name
        int type
        Py_ssize_t offset
        int flags
        const char* doc
    enum:
        T_OBJECT_EX

cdef extern from "Python.h":
    object PyDescr_NewMember(PyTypeObject* cls, PyMemberDef* member)
    void PyType_Modified(PyTypeObject* cls)

cdef list _member_names = []  # keeps the member names' bytes alive (PyMemberDef points at them)


cdef int install_members(type cls, object probe, tuple fields) except -1:
    """Expose object fields of a cdef class as member descriptors instead of Cython's getset
    properties. CPython 3.11 specializes attribute reads of member descriptors (LOAD_ATTR_SLOT:
    a load at a fixed offset) but not of properties, so a handler's ``level.price`` costs a
    third as much. ``probe`` is an instance whose fields hold the distinct sentinel objects of
    ``fields`` (``((name, sentinel), ...)``); each field's offset is found by looking for its
    sentinel in the instance, so no offset is assumed. The class must refuse deleting these
    fields (``__delattr__``): Cython's code expects them never to be NULL."""
    cdef char* base = <char*><void*>probe
    cdef Py_ssize_t size = (<PyObject*>probe).ob_type.tp_basicsize, off, found
    cdef PyMemberDef* defs = <PyMemberDef*>PyMem_Malloc(len(fields) * sizeof(PyMemberDef))
    cdef dict type_dict = <dict>(<PyTypeObject*>cls).tp_dict
    cdef int i
    if defs == NULL:
        raise MemoryError()
    for i, (name, sentinel) in enumerate(fields):
        found = -1
        for off in range(sizeof(PyObject), size, sizeof(PyObject*)):
            if (<PyObject**>(base + off))[0] == <PyObject*>sentinel:
                found = off
                break
        if found < 0:
            raise RuntimeError(f"{cls.__name__}.{name}: field not found")
        encoded = name.encode()
        _member_names.append(encoded)
        defs[i].name = encoded
        defs[i].type = T_OBJECT_EX
        defs[i].offset = found
        defs[i].flags = 0
        defs[i].doc = NULL
        type_dict[name] = PyDescr_NewMember(<PyTypeObject*>cls, &defs[i])
    PyType_Modified(<PyTypeObject*>cls)
    return 0


# -- the level type -------------------------------------------------------------------------------

@dataclasses.dataclass
class _LevelFields:
    # Only the source of StreamingOrderbookLevel's dataclass metadata (field names, order, types).
    price: float
    size: float


@cython.freelist(256)
cdef class StreamingOrderbookLevel:
    """One book level: ``price`` and ``size`` (the SDK's dataclass of the same name)."""

    __dataclass_fields__ = _LevelFields.__dataclass_fields__
    __dataclass_params__ = _LevelFields.__dataclass_params__
    __match_args__ = ("price", "size")
    __annotations__ = dict(_LevelFields.__annotations__)

    def __init__(self, price, size):
        self.price = price
        self.size = size

    def __delattr__(self, name):
        if name in ("price", "size"):
            raise AttributeError(f"cannot delete field {name!r} of {type(self).__name__}")
        object.__delattr__(self, name)

    def __repr__(self):
        return f"{type(self).__qualname__}(price={self.price!r}, size={self.size!r})"

    def __richcmp__(self, other, int op):
        # A dataclass's __eq__: same class, then the fields compared as a tuple; no ordering.
        if op != Py_EQ and op != Py_NE:
            return NotImplemented
        if type(other) is not type(self):
            return NotImplemented
        eq = (PyObject_RichCompareBool(self.price, (<StreamingOrderbookLevel>other).price, Py_EQ)
              and PyObject_RichCompareBool(self.size, (<StreamingOrderbookLevel>other).size, Py_EQ))
        return eq if op == Py_EQ else not eq

    def __reduce__(self):
        return type(self), (self.price, self.size)

    def __copy__(self):
        return type(self)(self.price, self.size)

    def __deepcopy__(self, memo):
        return type(self)(_copy_module.deepcopy(self.price, memo),
                          _copy_module.deepcopy(self.size, memo))


cdef StreamingOrderbookLevel make_level(const Level* level):
    cdef StreamingOrderbookLevel out = StreamingOrderbookLevel.__new__(StreamingOrderbookLevel)
    out.price = key_price(level.key)
    out.size = level.size
    return out


_probe = StreamingOrderbookLevel.__new__(StreamingOrderbookLevel)
_sentinels = (object(), object())
(<StreamingOrderbookLevel>_probe).price, (<StreamingOrderbookLevel>_probe).size = _sentinels
install_members(StreamingOrderbookLevel, _probe, tuple(zip(("price", "size"), _sentinels)))
del _probe, _sentinels


# -- the copy of a book ---------------------------------------------------------------------------

# Spare level buffers: a payload per delta would otherwise malloc and free ~1.6 KB (depth 50)
# every time, past glibc's small-chunk caches.
cdef enum:
    POOL_SIZE = 64
    MIN_CAP = 32

cdef Level* _pool[POOL_SIZE]
cdef Py_ssize_t _pool_cap[POOL_SIZE]
cdef int _pool_n = 0


@cython.final
@cython.freelist(64)
cdef class BookCopy:
    """Both sides of a ``Book`` at one moment (see ``parsec_fast._levels``); immutable."""

    def __dealloc__(self):
        global _pool_n
        if self.levels == NULL:
            return
        if _pool_n < POOL_SIZE:
            _pool[_pool_n] = self.levels
            _pool_cap[_pool_n] = self.cap
            _pool_n += 1
        else:
            free(self.levels)
        self.levels = NULL

    @staticmethod
    def of(Book book not None):
        """A copy of ``book``'s levels now."""
        return copy_book(book)

    @property
    def n_bids(self):
        return self.n_bids

    @property
    def n_asks(self):
        return self.n_asks

    def bids(self):
        """The bid side as a LevelList (best first)."""
        return side_list(self, SIDE_BID)

    def asks(self):
        """The ask side as a LevelList (best first)."""
        return side_list(self, SIDE_ASK)


cdef BookCopy copy_book(Book book):
    global _pool_n
    cdef BookCopy out = BookCopy.__new__(BookCopy)
    cdef Py_ssize_t n_bids = book.side_count(SIDE_BID), n_asks = book.side_count(SIDE_ASK)
    cdef Py_ssize_t need = n_bids + n_asks, cap = 0
    cdef Level* buf = NULL
    if _pool_n > 0:
        _pool_n -= 1
        buf = _pool[_pool_n]
        cap = _pool_cap[_pool_n]
        if cap < need:
            free(buf)
            buf = NULL
    if buf == NULL:
        cap = MIN_CAP
        while cap < need:
            cap *= 2
        buf = <Level*>malloc(<size_t>cap * sizeof(Level))
        if buf == NULL:
            raise MemoryError()
    out.levels = buf
    out.cap = cap
    out.n_bids = book.copy_side(SIDE_BID, buf, n_bids)
    out.n_asks = book.copy_side(SIDE_ASK, buf + out.n_bids, n_asks)
    return out


# -- placeholders ---------------------------------------------------------------------------------

cdef extern from "Python.h":
    ctypedef struct PyListObject:
        PyObject** ob_item
        Py_ssize_t allocated
    void Py_SET_SIZE(object o, Py_ssize_t size)
    void c_incref "Py_INCREF"(PyObject* o)
    void c_decref "Py_DECREF"(PyObject* o)
    PyObject* PyList_GetSlice(object o, Py_ssize_t low, Py_ssize_t high) except NULL
    enum:
        PY_SSIZE_T_MAX

cdef inline PyObject** list_items(object o) noexcept:
    return (<PyListObject*><PyObject*>o).ob_item


class UnreadLevelError(TypeError):
    """A placeholder of a ``LevelList`` level that was not built was used (see ``UnreadLevel``)."""


cdef str _HOW = ("read the levels through the list (indexing, iteration, list(levels)), or "
                 "serialise dataclasses.asdict(payload) / list(payload.bids) instead of the "
                 "payload or the LevelList itself")


@cython.final
cdef class UnreadLevel:
    """The placeholder in a ``LevelList``'s own storage for a level not built yet.

    A ``LevelList`` keeps one of these in its list storage (``PyListObject.ob_item``) for each
    level nobody has read; reading the level through the list (index, slice, iteration, any
    method) builds the ``StreamingOrderbookLevel`` and puts it in that slot. So C code that
    reads the storage directly, bypassing the list's methods (``orjson``, ``msgspec``,
    ``list.__add__(plain, levels)``, Cython code typed ``list``), meets these instead of a
    silently empty list, and every use of one raises ``UnreadLevelError`` (a ``TypeError``)
    naming the fix. A placeholder is ``index``-th of a shared table (one per index, held for
    good), so list operations that move slots keep each one's level."""

    cdef Py_ssize_t index

    cdef str _what(self):
        return (f"level {self.index} of a parsec_fast LevelList (book.bids / book.asks of an "
                f"orderbook payload) was never built, and code that reads a list's storage "
                f"directly, bypassing its methods (orjson, msgspec, list's own methods called "
                f"unbound, C code using PyList_GET_ITEM), got its placeholder")

    cdef _fail(self, str use):
        raise UnreadLevelError(f"{use}: {self._what()}; {_HOW}")

    def __getattr__(self, name):
        self._fail(f"attribute {name!r}")

    def __setattr__(self, name, value):
        self._fail(f"setting attribute {name!r}")

    def __delattr__(self, name):
        self._fail(f"deleting attribute {name!r}")

    def __repr__(self):
        self._fail("repr()")

    def __str__(self):
        self._fail("str()")

    def __format__(self, spec):
        self._fail("format()")

    def __bool__(self):
        self._fail("bool()")

    def __hash__(self):
        self._fail("hash()")

    def __richcmp__(self, other, int op):
        self._fail("comparison")

    def __len__(self):
        self._fail("len()")

    def __iter__(self):
        self._fail("iteration")

    def __getitem__(self, key):
        self._fail("indexing")

    def __contains__(self, item):
        self._fail("'in'")

    def __int__(self):
        self._fail("int()")

    def __float__(self):
        self._fail("float()")

    def __index__(self):
        self._fail("index()")

    def __call__(self, *args, **kwargs):
        self._fail("call")

    def __array__(self, *args, **kwargs):
        self._fail("numpy array conversion")

    def __reduce__(self):
        self._fail("pickling")

    def __reduce_ex__(self, protocol):
        self._fail("pickling")

    def __copy__(self):
        self._fail("copy")

    def __deepcopy__(self, memo):
        self._fail("copy")


# Serialisers name an unsupported object by its type's C name (orjson: "Type is not JSON
# serializable: <tp_name>", msgspec likewise, json by the part after the last dot): this one
# says what to do. No dot after the module's, so __name__ / __module__ stay readable.
(<PyTypeObject*>UnreadLevel).tp_name = (
    b"parsec_fast._levels.UnreadLevel (a LevelList level never built: serialise "
    b"list(levels) or asdict(payload), not the LevelList)")

cdef PyTypeObject* _unread_type = <PyTypeObject*>UnreadLevel
cdef PyObject** _tokens = NULL      # _tokens[i]: the placeholder of index i (one reference held)
cdef Py_ssize_t _n_tokens = 0


cdef int _grow_tokens(Py_ssize_t need) except -1:
    global _tokens, _n_tokens
    cdef Py_ssize_t cap = max(2 * _n_tokens, 128)
    cdef PyObject** grown
    cdef UnreadLevel token
    while cap < need:
        cap *= 2
    grown = <PyObject**>PyMem_Realloc(_tokens, <size_t>cap * sizeof(PyObject*))
    if grown == NULL:
        raise MemoryError()
    _tokens = grown
    while _n_tokens < cap:
        token = UnreadLevel.__new__(UnreadLevel)
        token.index = _n_tokens
        Py_INCREF(token)
        _tokens[_n_tokens] = <PyObject*>token
        _n_tokens += 1
    return 0


_grow_tokens(128)


# list's own methods, called unbound on a LevelList. (Cython's shortcuts for list.pop(self)
# etc. may call the method by name on a subclass: here, ours again.)
cdef object _list_append = list.append
cdef object _list_extend = list.extend
cdef object _list_insert = list.insert
cdef object _list_pop = list.pop
cdef object _list_remove = list.remove
cdef object _list_clear = list.clear
cdef object _list_reverse = list.reverse
cdef object _list_sort = list.sort
cdef object _list_index = list.index
cdef object _list_count = list.count
cdef object _list_repr = list.__repr__
cdef object _list_add = list.__add__
cdef object _list_mul = list.__mul__
cdef object _list_imul = list.__imul__
cdef object _list_setitem = list.__setitem__
cdef object _list_delitem = list.__delitem__
cdef object _list_init = list.__init__
cdef object _list_sizeof = list.__sizeof__
cdef richcmpfunc _list_richcompare = (<PyTypeObject*>list).tp_richcompare


# -- the lazy list --------------------------------------------------------------------------------

# Spare storage arrays, by size: each holds the placeholders of its indexes (with their
# references), ready for the next LevelList of that size. An event's lists are usually dropped
# right after its handlers ran, and the next event's have the same sizes, so a list costs no
# malloc, fill or free, and its deallocation only puts back the placeholders of the slots read.
cdef enum:
    SPARE_MAX_N = 256     # longer sides get a fresh array each time
    SPARE_PER_N = 4

cdef PyObject** _spare[SPARE_MAX_N + 1][SPARE_PER_N]
cdef int _n_spare[SPARE_MAX_N + 1]


cdef PyObject** _new_storage(Py_ssize_t n) except NULL:
    """An array of the placeholders of indexes 0..n-1, a reference to each owned by the caller."""
    cdef PyObject** items
    cdef Py_ssize_t i
    if n <= SPARE_MAX_N and _n_spare[n] > 0:
        _n_spare[n] -= 1
        return _spare[n][_n_spare[n]]
    if n > _n_tokens:
        _grow_tokens(n)
    items = <PyObject**>PyMem_Malloc(<size_t>n * sizeof(PyObject*))
    if items == NULL:
        raise MemoryError()
    memcpy(items, _tokens, <size_t>n * sizeof(PyObject*))
    for i in range(n):
        c_incref(items[i])
    return items


cdef bint _keep_storage(PyObject** items, Py_ssize_t n, const unsigned short* built,
                        Py_ssize_t n_built) noexcept:
    """Take back a list's storage of exactly ``n`` slots (``allocated == size == n``) as a spare.
    Every slot that is not its index's placeholder (a level built, anything the list was given)
    is released and the placeholder put back: first the ``n_built`` slots listed in ``built``
    (the levels read), then, if the array still differs from the placeholders' (more slots read
    than listed, or list's own methods called unbound), every slot. False (nothing done) when
    there is no room."""
    cdef Py_ssize_t i, k
    cdef PyObject* p
    if n <= 0 or n > SPARE_MAX_N or _n_spare[n] >= SPARE_PER_N or n > _n_tokens:
        return False
    if n_built <= BUILT_MAX:
        for k in range(n_built):
            i = built[k]
            if i < n and items[i] != _tokens[i]:
                p = items[i]
                items[i] = _tokens[i]
                c_incref(_tokens[i])
                c_decref(p)  # may run any code: _tokens is read again after it
    # The check that nothing else changed (list's own methods called unbound can): one memcmp.
    if n_built > BUILT_MAX or memcmp(items, _tokens, <size_t>n * sizeof(PyObject*)) != 0:
        for i in range(n):
            if items[i] != _tokens[i]:
                p = items[i]
                items[i] = _tokens[i]
                c_incref(_tokens[i])
                c_decref(p)
    if _n_spare[n] >= SPARE_PER_N:  # a destructor above filled it
        _free_storage(items, n)
        return True
    _spare[n][_n_spare[n]] = items
    _n_spare[n] += 1
    return True


cdef void _free_storage(PyObject** items, Py_ssize_t n) noexcept:
    cdef Py_ssize_t i
    for i in range(n):
        c_decref(items[i])
    PyMem_Free(items)


def _release_spares():
    """Free the spare storage arrays (tests: placeholders' reference counts back to one plus
    the live lists' slots)."""
    cdef Py_ssize_t n
    cdef PyObject** items
    for n in range(SPARE_MAX_N + 1):
        while _n_spare[n] > 0:
            _n_spare[n] -= 1
            items = _spare[n][_n_spare[n]]
            _free_storage(items, n)


cdef LevelList side_list(BookCopy copy, int side):
    cdef LevelList out = LevelList.__new__(LevelList)
    cdef Py_ssize_t n
    out._copy = copy
    if side == SIDE_BID:
        out._levels = copy.levels
        n = copy.n_bids
    else:
        out._levels = copy.levels + copy.n_bids
        n = copy.n_asks
    out._n = n
    if n == 0:
        return out
    (<PyListObject*><PyObject*>out).ob_item = _new_storage(n)
    (<PyListObject*><PyObject*>out).allocated = n
    Py_SET_SIZE(out, n)
    return out


cdef inline object _filled(object value):
    """``value``, every level built when it is a LevelList (before handing it to list's C code,
    which reads the storage directly)."""
    if type(value) is LevelList:
        (<LevelList>value)._fill()
    return value


@cython.final
cdef class LevelList(list):
    """``List[StreamingOrderbookLevel]`` over one side of a ``BookCopy``, built on read (see
    the module docstring). ``LevelList(iterable)`` is an ordinary list of those items."""

    def __dealloc__(self):
        cdef PyListObject* lst = <PyListObject*><PyObject*>self
        cdef Py_ssize_t n = PyList_GET_SIZE(self)
        if lst.ob_item != NULL and lst.allocated == n and \
                _keep_storage(lst.ob_item, n, self._built, self._n_built):
            lst.ob_item = NULL  # kept as a spare: list's deallocation has nothing left to free
            lst.allocated = 0
            Py_SET_SIZE(self, 0)

    def __init__(self, iterable=()):
        self._materialize()
        _list_init(self, iterable)

    @staticmethod
    def of_book(Book book not None, str side not None):
        """A copy of one side (``"bid"`` or ``"ask"``) of ``book`` now, best first."""
        if side not in ("bid", "ask"):
            raise ValueError(f"side must be 'bid' or 'ask', not {side!r}")
        return side_list(copy_book(book), SIDE_BID if side == "bid" else SIDE_ASK)

    @property
    def materialized(self):
        """True once the list is an ordinary list (after a mutation): every level built, the
        book copy let go."""
        return self._copy is None

    # -- element access ----------------------------------------------------------------------
    cdef object _get(self, Py_ssize_t i):
        """Item ``i``: the level, built now if its slot holds a placeholder. The caller checked
        0 <= i < len(self) with no Python code run since."""
        cdef PyObject* p = list_items(self)[i]
        if (<PyObject*>p).ob_type != _unread_type:
            return <object>p
        return self._build(i, p)

    cdef object _build(self, Py_ssize_t i, PyObject* token):
        cdef Py_ssize_t j = (<UnreadLevel>token).index, k
        cdef StreamingOrderbookLevel level
        if self._copy is None or j >= self._n:
            # Only list's own methods called unbound (or the C API) put it there.
            (<UnreadLevel>token)._fail(f"reading item {i} of a LevelList holding another "
                                       f"list's placeholder")
        level = make_level(&self._levels[j])
        # make_level may run the garbage collector (and whatever it runs): the slot is checked
        # again before it is replaced.
        if i < PyList_GET_SIZE(self) and list_items(self)[i] == token:
            c_incref(<PyObject*>level)
            list_items(self)[i] = <PyObject*>level
            c_decref(token)
            k = self._n_built
            if k < BUILT_MAX:
                self._built[k] = <unsigned short>i
            if k <= BUILT_MAX:
                self._n_built = k + 1
        return level

    cdef int _fill(self) except -1:
        """Build every level still unread, in place (the storage is then a plain list's)."""
        cdef Py_ssize_t i = 0
        cdef PyObject* p
        if self._copy is None:
            return 0
        while i < PyList_GET_SIZE(self):
            p = list_items(self)[i]
            if p.ob_type == _unread_type:
                self._build(i, p)
            i += 1
        return 0

    cdef list _plain(self):
        """A new plain list of every item."""
        self._fill()
        return <list>PyList_GetSlice(self, 0, PY_SSIZE_T_MAX)

    cdef int _materialize(self) except -1:
        """Every level built in the list's own storage, the copy let go: from now on an
        ordinary list."""
        if self._copy is None:
            return 0
        self._fill()
        self._copy = None
        self._levels = NULL
        self._n = 0
        return 0

    def __getitem__(self, key):
        cdef Py_ssize_t i, n, start, stop, step, count, k
        cdef list out
        cdef object item
        if PyLong_CheckExact(key) or (PyIndex_Check(key) and not PySlice_Check(key)):
            i = PyNumber_AsSsize_t(key, IndexError)  # may run __index__: the size after it
            n = PyList_GET_SIZE(self)
            if i < 0:
                i += n
            if i < 0 or i >= n:
                raise IndexError("list index out of range")
            return self._get(i)
        if PySlice_Check(key):
            PySlice_Unpack(key, &start, &stop, &step)
            count = PySlice_AdjustIndices(PyList_GET_SIZE(self), &start, &stop, step)
            out = PyList_New(count)
            i = start
            for k in range(count):
                if not 0 <= i < PyList_GET_SIZE(self):  # code run by building a level shrank it
                    raise RuntimeError("LevelList changed size during a slice")
                item = self._get(i)
                Py_INCREF(item)
                PyList_SET_ITEM(out, k, item)
                i += step
            return out
        raise TypeError(f"list indices must be integers or slices, not {type(key).__name__}")

    def __iter__(self):
        return _LevelIter.__new__(_LevelIter, self, False)

    def __reversed__(self):
        return _LevelIter.__new__(_LevelIter, self, True)

    def __contains__(self, value):
        cdef Py_ssize_t i = 0
        while i < PyList_GET_SIZE(self):
            if PyObject_RichCompareBool(self._get(i), value, Py_EQ):
                return True
            i += 1
        return False

    def index(self, value, start=0, stop=None):
        """First index of ``value`` (as ``list.index``)."""
        self._fill()
        if stop is None:
            return _list_index(self, value, start)
        return _list_index(self, value, start, stop)

    def count(self, value):
        """Number of items equal to ``value``."""
        self._fill()
        return _list_count(self, value)

    def copy(self):
        """A shallow copy as a plain list (as ``list.copy``)."""
        return self._plain()

    def __copy__(self):
        return self._plain()

    def __deepcopy__(self, memo):
        cdef Py_ssize_t i = 0, j
        cdef list out = []
        cdef PyObject* p
        while i < PyList_GET_SIZE(self):
            p = list_items(self)[i]
            if p.ob_type == _unread_type and self._copy is not None \
                    and (<UnreadLevel>p).index < self._n:
                # not shared with anything: already new
                item = make_level(&self._levels[(<UnreadLevel>p).index])
            else:
                item = _copy_module.deepcopy(<object>p, memo)
            out.append(item)
            i += 1
        return out

    def __reduce__(self):
        # Pickled as the plain list of its items (a list subclass would need this module).
        return list, (self._plain(),)

    def __repr__(self):
        self._fill()
        return _list_repr(self)

    def __richcmp__(self, other, int op):
        self._fill()
        return _list_richcompare(self, _filled(other), op)

    def __add__(self, other):
        if not isinstance(other, list):
            return NotImplemented
        self._fill()
        return _list_add(self, _filled(other))

    def __radd__(self, other):
        if not isinstance(other, list):
            return NotImplemented
        self._fill()
        return _list_add(_filled(other), self)

    def __mul__(self, n):
        self._fill()
        return _list_mul(self, n)

    def __rmul__(self, n):
        self._fill()
        return _list_mul(self, n)

    def __sizeof__(self):
        return _list_sizeof(self) + (self._n * sizeof(Level) if self._copy is not None else 0)

    # -- mutation: materialize, then behave as a list ------------------------------------------
    def __iadd__(self, other):
        self._materialize()
        _list_extend(self, _filled(other))
        return self

    def __imul__(self, n):
        self._materialize()
        return _list_imul(self, n)

    def __setitem__(self, key, value):
        self._materialize()
        _list_setitem(self, key, _filled(value))

    def __delitem__(self, key):
        self._materialize()
        _list_delitem(self, key)

    def append(self, item):
        """As ``list.append`` (materializes the list first)."""
        self._materialize()
        _list_append(self, item)

    def extend(self, iterable):
        """As ``list.extend``."""
        self._materialize()
        _list_extend(self, _filled(iterable))

    def insert(self, index, item):
        """As ``list.insert``."""
        self._materialize()
        _list_insert(self, index, item)

    def pop(self, index=-1):
        """As ``list.pop``."""
        self._materialize()
        return _list_pop(self, index)

    def remove(self, value):
        """As ``list.remove``."""
        self._materialize()
        _list_remove(self, value)

    def clear(self):
        """As ``list.clear``."""
        self._materialize()
        _list_clear(self)

    def reverse(self):
        """As ``list.reverse``."""
        self._materialize()
        _list_reverse(self)

    def sort(self, *, key=None, reverse=False):
        """As ``list.sort``."""
        self._materialize()
        _list_sort(self, key=key, reverse=reverse)


@cython.final
@cython.freelist(8)
cdef class _LevelIter:
    """Iterator of a LevelList (forward or reversed); follows the list if it changes meanwhile,
    as a list iterator follows its list."""

    cdef LevelList _seq
    cdef Py_ssize_t _i
    cdef bint _reversed

    def __cinit__(self, LevelList seq, bint reversed_):
        self._seq = seq
        self._reversed = reversed_
        self._i = PyList_GET_SIZE(seq) - 1 if reversed_ else 0

    def __iter__(self):
        return self

    def __next__(self):
        cdef LevelList seq = self._seq
        cdef Py_ssize_t i = self._i
        if seq is not None:
            if self._reversed:
                if 0 <= i < PyList_GET_SIZE(seq):
                    self._i = i - 1
                    return seq._get(i)
            elif i < PyList_GET_SIZE(seq):
                self._i = i + 1
                return seq._get(i)
            self._seq = None
        raise StopIteration

    def __length_hint__(self):
        cdef LevelList seq = self._seq
        if seq is None:
            return 0
        n = PyList_GET_SIZE(seq)
        return max(0, min(self._i + 1, n)) if self._reversed else max(0, n - self._i)
