"""Order-book levels in the official SDK's shape, read lazily from a copy of a compiled book.

``parsec_fast.compat`` hands SDK users an ``OrderbookSnapshot`` per book frame whose ``bids`` /
``asks`` are ``List[StreamingOrderbookLevel]``. Building every level object of both sides per
delta is the SDK's own cost, so instead:

* ``BookCopy``: both sides of a ``Book`` at one moment, copied with one ``memcpy`` per side into
  a pooled C buffer (16 bytes a level). Taken when the event is emitted, so a payload kept for
  later still shows the book as of its own frame.
* ``LevelList``: a ``list`` subclass over one side of a ``BookCopy``. A level object is built
  only when its index is read (and then cached, so ``x[0] is x[0]`` as in a list, and a change
  a caller makes to that level object stays visible). Reading methods (index, slices, ``len``,
  iteration, ``in``, ``==``, ``reversed``, ``+``, ``*``, ``copy``, ``index``, ``count``,
  ``repr``, copy/deepcopy/pickle) work on the copy; the first mutation (``append``,
  ``x[i] = v``, ``sort``, ``+=``, ...) builds every level into the list's own storage and from
  then on it is an ordinary list. Slices, ``copy()``, ``copy.copy``, ``copy.deepcopy``,
  ``+`` and ``*`` return plain lists, and pickling stores a plain list, as for a list.

  The one thing that differs from a ``list`` holding the same levels: C code that reads a list's
  internal array directly, bypassing the sequence protocol, sees an unmaterialized
  ``LevelList`` as empty. ``orjson`` and ``msgspec`` serializing it (or a payload holding one)
  do that, as does Cython code typed ``list``. Hand them ``list(x)`` or
  ``dataclasses.asdict(payload)`` (plain lists) instead. Python code, the standard library
  (``json``, ``copy``, ``pickle``, ``dataclasses``, ``sorted``, ...) and NumPy go through the
  protocol and see every level.
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
from cpython.mem cimport PyMem_Calloc, PyMem_Free, PyMem_Malloc
from cpython.object cimport (Py_EQ, Py_NE, PyObject, PyObject_RichCompare, PyObject_RichCompareBool,
                             PyTypeObject, visitproc)
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE, PyList_New, PyList_SET_ITEM
from cpython.slice cimport PySlice_Check
from libc.stdlib cimport free, malloc

from parsec_fast._book cimport SIDE_ASK, SIDE_BID, key_price

import copy as _copy_module
import dataclasses

cdef extern from "Python.h":
    bint PyIndex_Check(object o)
    Py_ssize_t PyNumber_AsSsize_t(object o, object exc) except? -1
    int PySlice_Unpack(object s, Py_ssize_t* start, Py_ssize_t* stop, Py_ssize_t* step) except -1
    Py_ssize_t PySlice_AdjustIndices(Py_ssize_t length, Py_ssize_t* start, Py_ssize_t* stop,
                                     Py_ssize_t step)

__all__ = ["StreamingOrderbookLevel", "LevelList", "BookCopy"]


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


# list's own methods, called unbound on a LevelList in list mode. (Cython's shortcuts for
# list.pop(self) etc. may call the method by name on a subclass: here, ours again.)
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
cdef object _list_getitem = list.__getitem__
cdef object _list_iter = list.__iter__
cdef object _list_reversed = list.__reversed__
cdef object _list_contains = list.__contains__
cdef object _list_repr = list.__repr__
cdef object _list_imul = list.__imul__
cdef object _list_setitem = list.__setitem__
cdef object _list_delitem = list.__delitem__
cdef object _list_init = list.__init__
cdef object _list_sizeof = list.__sizeof__


# -- the lazy list --------------------------------------------------------------------------------

cdef LevelList side_list(BookCopy copy, int side):
    cdef LevelList out = LevelList.__new__(LevelList)
    out._copy = copy
    if side == SIDE_BID:
        out._levels = copy.levels
        out._n = copy.n_bids
    else:
        out._levels = copy.levels + copy.n_bids
        out._n = copy.n_asks
    return out


cdef inline object _plain_of(object value):
    """``value``, or a plain list of it when it is an unmaterialized LevelList (before handing
    it to list's C code, which reads the internal array)."""
    if type(value) is LevelList and (<LevelList>value)._copy is not None:
        return (<LevelList>value)._plain()
    return value


@cython.final
cdef class LevelList(list):
    """``List[StreamingOrderbookLevel]`` over one side of a ``BookCopy``, built on read (see
    the module docstring). ``LevelList(iterable)`` is an ordinary list of those items."""

    def __init__(self, iterable=()):
        if self._copy is not None:
            self._materialize()
        _list_init(self, iterable)

    cdef void _drop_cache(self) noexcept:
        cdef Py_ssize_t i
        cdef PyObject* p
        for i in range(HEAD):
            p = self._head[i]
            self._head[i] = NULL
            Py_XDECREF(p)
        if self._cache != NULL:
            for i in range(self._n - HEAD):
                p = self._cache[i]
                self._cache[i] = NULL
                Py_XDECREF(p)
            PyMem_Free(self._cache)
            self._cache = NULL

    def __dealloc__(self):
        self._drop_cache()

    @staticmethod
    def of_book(Book book not None, str side not None):
        """A copy of one side (``"bid"`` or ``"ask"``) of ``book`` now, best first."""
        if side not in ("bid", "ask"):
            raise ValueError(f"side must be 'bid' or 'ask', not {side!r}")
        return side_list(copy_book(book), SIDE_BID if side == "bid" else SIDE_ASK)

    @property
    def materialized(self):
        """True once every level is in the list's own storage (after a mutation)."""
        return self._copy is None

    # -- element access ----------------------------------------------------------------------
    cdef object _get(self, Py_ssize_t i):
        """Item ``i`` (0 <= i < len) in either mode."""
        cdef PyObject** slot
        cdef object level
        if self._copy is None:
            return <object>PyList_GET_ITEM(self, i)
        if i < HEAD:
            slot = &self._head[i]
        else:
            if self._cache == NULL:
                self._cache = <PyObject**>PyMem_Calloc(<size_t>(self._n - HEAD), sizeof(PyObject*))
                if self._cache == NULL:
                    raise MemoryError()
            slot = &self._cache[i - HEAD]
        if slot[0] != NULL:
            return <object>slot[0]
        level = make_level(&self._levels[i])
        Py_INCREF(level)
        slot[0] = <PyObject*>level
        return level

    cdef PyObject* _cached(self, Py_ssize_t i) noexcept:
        if i < HEAD:
            return self._head[i]
        return self._cache[i - HEAD] if self._cache != NULL else NULL

    cdef int _visit_cache(self, visitproc visit, void* arg) noexcept:
        """The garbage collector's view of the built levels (see _traverse)."""
        cdef Py_ssize_t i
        cdef int r
        for i in range(HEAD):
            if self._head[i] != NULL:
                r = visit(self._head[i], arg)
                if r:
                    return r
        if self._cache != NULL:
            for i in range(self._n - HEAD):
                if self._cache[i] != NULL:
                    r = visit(self._cache[i], arg)
                    if r:
                        return r
        return 0

    cdef list _plain(self):
        """A new plain list of every item."""
        cdef Py_ssize_t i, n = self._n if self._copy is not None else PyList_GET_SIZE(self)
        cdef list out = PyList_New(n)
        cdef object item
        for i in range(n):
            item = self._get(i)
            Py_INCREF(item)
            PyList_SET_ITEM(out, i, item)
        return out

    cdef int _materialize(self) except -1:
        """Move every level into the list's own storage: from now on an ordinary list."""
        cdef list items
        if self._copy is None:
            return 0
        items = self._plain()
        self._drop_cache()
        self._copy = None
        self._levels = NULL
        self._n = 0
        _list_extend(self, items)
        return 0

    def __len__(self):
        return self._n if self._copy is not None else PyList_GET_SIZE(self)

    def __getitem__(self, key):
        cdef Py_ssize_t i, n, start, stop, step, count, k
        cdef list out
        cdef object item
        if self._copy is None:
            return _list_getitem(self, key)
        n = self._n
        if PyLong_CheckExact(key) or (PyIndex_Check(key) and not PySlice_Check(key)):
            i = PyNumber_AsSsize_t(key, IndexError)
            if i < 0:
                i += n
            if i < 0 or i >= n:
                raise IndexError("list index out of range")
            return self._get(i)
        if PySlice_Check(key):
            PySlice_Unpack(key, &start, &stop, &step)
            count = PySlice_AdjustIndices(n, &start, &stop, step)
            out = PyList_New(count)
            i = start
            for k in range(count):
                item = self._get(i)
                Py_INCREF(item)
                PyList_SET_ITEM(out, k, item)
                i += step
            return out
        raise TypeError(f"list indices must be integers or slices, not {type(key).__name__}")

    def __iter__(self):
        if self._copy is None:
            return _list_iter(self)
        return _LevelIter.__new__(_LevelIter, self, False)

    def __reversed__(self):
        if self._copy is None:
            return _list_reversed(self)
        return _LevelIter.__new__(_LevelIter, self, True)

    def __contains__(self, value):
        cdef Py_ssize_t i
        if self._copy is None:
            return _list_contains(self, value)
        for i in range(self._n):
            if PyObject_RichCompareBool(self._get(i), value, Py_EQ):
                return True
        return False

    def index(self, value, start=0, stop=None):
        """First index of ``value`` (as ``list.index``)."""
        if stop is None:
            return _list_index(self._plain() if self._copy is not None else self, value, start)
        return _list_index(self._plain() if self._copy is not None else self, value, start, stop)

    def count(self, value):
        """Number of items equal to ``value``."""
        return _list_count(self._plain() if self._copy is not None else self, value)

    def copy(self):
        """A shallow copy as a plain list (as ``list.copy``)."""
        return self._plain()

    def __copy__(self):
        return self._plain()

    def __deepcopy__(self, memo):
        cdef Py_ssize_t i, n
        cdef list out
        if self._copy is None:
            return [_copy_module.deepcopy(item, memo) for item in _list_iter(self)]
        n = self._n
        out = PyList_New(n)
        for i in range(n):
            if self._cached(i) != NULL:
                item = _copy_module.deepcopy(<object>self._cached(i), memo)
            else:
                item = make_level(&self._levels[i])  # not shared with anything: already new
            Py_INCREF(item)
            PyList_SET_ITEM(out, i, item)
        return out

    def __reduce__(self):
        # Pickled as the plain list of its items (a list subclass would need this module).
        return list, (self._plain(),)

    def __repr__(self):
        return repr(self._plain()) if self._copy is not None else _list_repr(self)

    def __richcmp__(self, other, int op):
        return PyObject_RichCompare(self._plain(), _plain_of(other), op)

    def __add__(self, other):
        if not isinstance(other, list):
            return NotImplemented
        return self._plain() + _plain_of(other)

    def __radd__(self, other):
        if not isinstance(other, list):
            return NotImplemented
        return list(other) + self._plain()

    def __mul__(self, n):
        return self._plain() * n

    def __rmul__(self, n):
        return self._plain() * n

    def __sizeof__(self):
        return _list_sizeof(self) + self._n * (sizeof(Level) + sizeof(PyObject*))

    # -- mutation: materialize, then behave as a list ------------------------------------------
    def __iadd__(self, other):
        self._materialize()
        _list_extend(self, _plain_of(other) if other is not self else self._plain())
        return self

    def __imul__(self, n):
        self._materialize()
        return _list_imul(self, n)

    def __setitem__(self, key, value):
        self._materialize()
        _list_setitem(self, key, _plain_of(value))

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
        _list_extend(self, _plain_of(iterable) if iterable is not self else self._plain())

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


# The levels a LevelList built are held in C arrays (no allocation for the top of a side), which
# Cython's generated tp_traverse / tp_clear do not know about. These wrap them, so a reference
# cycle through a level object (a level holding its own payload) is found and collected like
# any other.
cdef extern from "Python.h":
    ctypedef int (*c_visitproc "visitproc")(PyObject*, void*) noexcept
    ctypedef int (*c_traverseproc "traverseproc")(PyObject*, c_visitproc, void*) noexcept
    ctypedef int (*c_inquiry "inquiry")(PyObject*) noexcept

cdef extern from *:
    """
    #define PF_TYPE_SLOTS(t) ((PyTypeObject*)(t))
    """
    ctypedef struct SlotView "PyTypeObject":
        c_traverseproc tp_traverse
        c_inquiry tp_clear
    SlotView* PF_TYPE_SLOTS(object t)

cdef c_traverseproc _base_traverse = NULL
cdef c_inquiry _base_clear = NULL


cdef int _traverse(PyObject* o, c_visitproc visit, void* arg) noexcept:
    cdef int r = _base_traverse(o, visit, arg)
    if r:
        return r
    return (<LevelList>o)._visit_cache(<visitproc>visit, arg)


cdef int _clear(PyObject* o) noexcept:
    (<LevelList>o)._drop_cache()
    return _base_clear(o)


_base_traverse = PF_TYPE_SLOTS(LevelList).tp_traverse
_base_clear = PF_TYPE_SLOTS(LevelList).tp_clear
PF_TYPE_SLOTS(LevelList).tp_traverse = _traverse
PF_TYPE_SLOTS(LevelList).tp_clear = _clear


@cython.final
@cython.freelist(8)
cdef class _LevelIter:
    """Iterator of a LevelList (forward or reversed); follows the list if it is materialized
    (mutated) meanwhile, as a list iterator follows its list."""

    cdef LevelList _seq
    cdef Py_ssize_t _i
    cdef bint _reversed

    def __cinit__(self, LevelList seq, bint reversed_):
        self._seq = seq
        self._reversed = reversed_
        self._i = len(seq) - 1 if reversed_ else 0

    def __iter__(self):
        return self

    def __next__(self):
        cdef LevelList seq = self._seq
        cdef Py_ssize_t n, i = self._i
        if seq is not None:
            n = seq._n if seq._copy is not None else PyList_GET_SIZE(seq)
            if self._reversed:
                if 0 <= i < n:
                    self._i = i - 1
                    return seq._get(i)
            elif i < n:
                self._i = i + 1
                return seq._get(i)
            self._seq = None
        raise StopIteration

    def __length_hint__(self):
        cdef LevelList seq = self._seq
        if seq is None:
            return 0
        n = seq._n if seq._copy is not None else PyList_GET_SIZE(seq)
        return max(0, self._i + 1) if self._reversed else max(0, n - self._i)
