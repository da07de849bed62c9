"""What a ``LevelList``'s storage holds: a level in the official SDK's type, or the placeholder
of a level not read yet.

``parsec_fast.compat`` hands SDK users an ``OrderbookSnapshot`` per book frame whose ``bids`` /
``asks`` are ``List[StreamingOrderbookLevel]``: ``LevelList`` objects (``parsec_fast._levellist``)
that build a level object only when its index is read. Each slot of a list's own storage holds
the level once built, else the placeholder of its index; this module has both kinds of object:

* ``StreamingOrderbookLevel``: the SDK's level dataclass as a compiled type: same field names
  and order, constructor, repr, ``==`` (same class and equal fields), unhashable, mutable,
  fields holding whatever they are given (the engine gives floats); ``dataclasses.fields`` /
  ``asdict`` / ``astuple`` / ``replace`` work on it. Its fields are member descriptors
  (``install_members``, also used by ``parsec_fast._orderbook``'s payload), so a handler
  reading ``level.size`` costs what it costs on a dataclass; they cannot be deleted.
  Levels and payloads can be weakly referenced, and reference cycles through them (a level
  holding its own payload) are collected, as with the SDK's dataclasses.
* ``UnreadLevel``: the placeholder of a level nobody read. C code that reads a list's storage
  directly, bypassing its methods, meets it, and every use of it raises ``UnreadLevelError``
  (a ``TypeError`` naming the fix; serialisers report "Type is not JSON serializable:
  parsec_fast._levels.UnreadLevel (... serialise list(levels) or asdict(payload) ...)").
  The placeholders come from a table (one object per index, never freed), and a list's
  storage array from spares kept by size (``new_storage``: a list of ``n`` levels takes an
  array of ``n`` placeholders, already counted; ``keep_storage``, at its deallocation, puts
  back the placeholders of the slots read, checks the rest with one ``memcmp``, and keeps the
  array for the next list of that size). No ``malloc``, fill or free per list once warm.

``LevelList`` and ``BookCopy`` are defined in ``parsec_fast._levellist``, which builds on this
module; they can still be imported from here.
"""
cimport cython
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport Py_EQ, Py_NE, PyObject, PyObject_RichCompareBool, PyTypeObject
from cpython.ref cimport Py_INCREF
from libc.string cimport memcpy

from parsec_fast._book cimport key_price

import copy as _copy_module
import dataclasses

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


# -- placeholders ---------------------------------------------------------------------------------

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

    cdef str _what(self):
        return (f"level {self.index} of a parsec_fast LevelList (book.bids / book.asks of an "
                f"orderbook payload) was never built, and code that reads a list's storage "
                f"directly, bypassing its methods (orjson, msgspec, list's own methods called "
                f"unbound, C code using PyList_GET_ITEM), got its placeholder")

    cdef fail(self, str use):
        raise UnreadLevelError(f"{use}: {self._what()}; {_HOW}")

    def __getattr__(self, name):
        self.fail(f"attribute {name!r}")

    def __setattr__(self, name, value):
        self.fail(f"setting attribute {name!r}")

    def __delattr__(self, name):
        self.fail(f"deleting attribute {name!r}")

    def __repr__(self):
        self.fail("repr()")

    def __str__(self):
        self.fail("str()")

    def __format__(self, spec):
        self.fail("format()")

    def __bool__(self):
        self.fail("bool()")

    def __hash__(self):
        self.fail("hash()")

    def __richcmp__(self, other, int op):
        self.fail("comparison")

    def __len__(self):
        self.fail("len()")

    def __iter__(self):
        self.fail("iteration")

    def __getitem__(self, key):
        self.fail("indexing")

    def __contains__(self, item):
        self.fail("'in'")

    def __int__(self):
        self.fail("int()")

    def __float__(self):
        self.fail("float()")

    def __index__(self):
        self.fail("index()")

    def __call__(self, *args, **kwargs):
        self.fail("call")

    def __array__(self, *args, **kwargs):
        self.fail("numpy array conversion")

    def __reduce__(self):
        self.fail("pickling")

    def __reduce_ex__(self, protocol):
        self.fail("pickling")

    def __copy__(self):
        self.fail("copy")

    def __deepcopy__(self, memo):
        self.fail("copy")


# Serialisers name an unsupported object by its type's C name (orjson: "Type is not JSON
# serializable: <tp_name>", msgspec likewise, json by the part after the last dot): this one
# says what to do. No dot after the module's, so __name__ / __module__ stay readable.
(<PyTypeObject*>UnreadLevel).tp_name = (
    b"parsec_fast._levels.UnreadLevel (a LevelList level never built: serialise "
    b"list(levels) or asdict(payload), not the LevelList)")

# The table of placeholders (placeholders.tokens, in _levels.pxd): tokens[i] is the one of index i.

cdef int _grow_tokens(Py_ssize_t need) except -1:
    cdef Py_ssize_t cap = max(2 * placeholders.n_tokens, 128)
    cdef PyObject** grown
    cdef UnreadLevel token
    while cap < need:
        cap *= 2
    grown = <PyObject**>PyMem_Realloc(placeholders.tokens, <size_t>cap * sizeof(PyObject*))
    if grown == NULL:
        raise MemoryError()
    placeholders.tokens = grown
    while placeholders.n_tokens < cap:
        token = UnreadLevel.__new__(UnreadLevel)
        token.index = placeholders.n_tokens
        Py_INCREF(token)
        placeholders.tokens[placeholders.n_tokens] = <PyObject*>token
        placeholders.n_tokens += 1
    return 0


_grow_tokens(128)


# -- storage arrays of placeholders ---------------------------------------------------------------

# Spare storage arrays, by size (placeholders.spare, in _levels.pxd with new_storage and
# keep_storage, which parsec_fast._levellist inlines): each holds the placeholders of its indexes
# (with their references), ready for the next LevelList of that size. An event's lists are
# usually dropped right after its handlers ran, and the next event's have the same sizes, so a
# list costs no malloc, fill or free, and its deallocation only puts back the placeholders of
# the slots read.

cdef PyObject** fresh_storage(Py_ssize_t n) except NULL:
    """A new array of the placeholders of indexes 0..n-1, a reference to each owned by the
    caller (new_storage, when no spare array of that size is left)."""
    cdef PyObject** items
    cdef Py_ssize_t i
    if n > placeholders.n_tokens:
        _grow_tokens(n)
    items = <PyObject**>PyMem_Malloc(<size_t>n * sizeof(PyObject*))
    if items == NULL:
        raise MemoryError()
    memcpy(items, placeholders.tokens, <size_t>n * sizeof(PyObject*))
    for i in range(n):
        c_incref(items[i])
    return items


cdef void free_storage(PyObject** items, Py_ssize_t n) noexcept:
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
        while placeholders.n_spare[n] > 0:
            placeholders.n_spare[n] -= 1
            items = placeholders.spare[n][placeholders.n_spare[n]]
            free_storage(items, n)


# -- moved to parsec_fast._levellist ---------------------------------------------------------------

# parsec_fast._levellist cimports this module, so importing it here, while this module is
# initialised, would be circular: these names are looked up on first use instead (PEP 562).
_MOVED = ("LevelList", "BookCopy")


def __getattr__(name):
    if name in _MOVED:
        from parsec_fast import _levellist
        return getattr(_levellist, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_MOVED))
