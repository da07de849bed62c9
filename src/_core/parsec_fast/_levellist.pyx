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
  holds ``len(x)`` items, the level once built, else the placeholder of its index
  (``parsec_fast._levels.UnreadLevel``, whose every use raises ``UnreadLevelError``, a
  ``TypeError`` naming the fix). So C code that reads the storage directly, bypassing the list's
  methods (``orjson``, ``msgspec``, ``list.__add__(plain, x)``, ``list.copy(x)``,
  ``PyList_GET_ITEM``, Cython code typed ``list``), sees the right length and raises on a level
  nobody read; ``list(x)``, ``dataclasses.asdict(payload)``, every Python-level read and the
  standard library and NumPy (their shortcut through the storage is for an exact ``list``
  only) give the levels (``docs/sdk-compat-notes.md`` §10.2 lists the readers). A placeholder
  stands for "level *i* of the list holding it", so list's own methods called unbound on an
  unread list (``list.reverse(x)``, ``list.insert(x, 0, v)``) keep every level where a list
  would; one they copy into another ``LevelList`` stands for that list's level *i* (or raises
  if it has none). The storage array comes from ``parsec_fast._levels``'s spares: no
  ``malloc``, fill or free per list once warm, ~150 instructions a side read.
"""
cimport cython
from cpython.long cimport PyLong_CheckExact
from cpython.object cimport Py_EQ, PyObject, PyObject_RichCompareBool, PyTypeObject, richcmpfunc
from cpython.ref cimport Py_INCREF
from cpython.list cimport PyList_GET_SIZE, PyList_New, PyList_SET_ITEM
from cpython.slice cimport PySlice_Check
from libc.stdlib cimport free, malloc

from parsec_fast._book cimport SIDE_ASK, SIDE_BID
from parsec_fast._levels cimport (StreamingOrderbookLevel, UnreadLevel, keep_storage, make_level,
                                  new_storage)

import copy as _copy_module

cdef extern from "Python.h":
    ctypedef struct PyListObject:
        PyObject** ob_item
        Py_ssize_t allocated
    void Py_SET_SIZE(object o, Py_ssize_t size)
    void c_incref "Py_INCREF"(PyObject* o)
    void c_decref "Py_DECREF"(PyObject* o)
    PyObject* PyList_GetSlice(object o, Py_ssize_t low, Py_ssize_t high) except NULL
    bint PyIndex_Check(object o)
    Py_ssize_t PyNumber_AsSsize_t(object o, object exc) except? -1
    int PySlice_Unpack(object s, Py_ssize_t* start, Py_ssize_t* stop, Py_ssize_t* step) except -1
    Py_ssize_t PySlice_AdjustIndices(Py_ssize_t length, Py_ssize_t* start, Py_ssize_t* stop,
                                     Py_ssize_t step)
    enum:
        PY_SSIZE_T_MAX

__all__ = ["LevelList", "BookCopy"]


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
    """Both sides of a ``Book`` at one moment (see the module docstring); immutable."""

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


# -- the lazy list --------------------------------------------------------------------------------

cdef inline PyObject** list_items(object o) noexcept:
    return (<PyListObject*><PyObject*>o).ob_item

cdef PyTypeObject* _unread_type = <PyTypeObject*>UnreadLevel

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
    (<PyListObject*><PyObject*>out).ob_item = new_storage(n)
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
                keep_storage(lst.ob_item, n, self._built, self._n_built):
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
            (<UnreadLevel>token).fail(f"reading item {i} of a LevelList holding another "
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
