"""Shared-memory books: one engine process publishes, any number of processes on the host read.

The publisher (:class:`~parsec_fast._shm_writer.Publisher`) is a ``BookSink`` of a
:class:`~parsec_fast._feed.FeedHandler`: the handler calls it in C for every book it changed, once
per book per read batch (at ``flush()``), and for state changes (validity, book/feed state, local
staleness), with no Python object per update. Readers (:class:`~parsec_fast._shm_reader.SharedRegion`,
:class:`~parsec_fast._shm_reader.SharedBook`) map the same file and read books with the ``Book``
read API and the ``Subscription`` trust signals. ``parsec_fast.shared`` is the public front
(``publish`` / ``attach``).

Three modules: this one holds what both sides share (the errors, the layout version, where
regions live and what may name one, the header check, whether a name's owner is live; at C level
``_shm.pxd`` and ``_shm_c.h``: the layout, the seqlock, the wake), ``_shm_writer`` the publisher,
``_shm_reader`` the reader side. This docstring is the design of all three.

Region (``/dev/shm/NAME``, fixed size, layout version 2, every offset in ``_shm_c.h``):

* a header page (written by the publisher only): magic, version, every layout size (checked on
  attach, a clear error on any difference), writer pid and pid namespace, the advertised
  heartbeat bound; the directory's seqlock; one cache line with the change counter (the futex
  word), the state (live / closed) and the heartbeat;
* a reader page: the only memory readers write (the "a reader sleeps" flag), mapped writable by
  readers, while everything else is mapped read-only, so a reader cannot corrupt a book;
* a directory: an open-addressing hash index ``(parsec_id, folded outcome) -> slot``, rebuilt under
  its own seqlock when a book comes or goes (control messages are limited to 3/s: rare);
* ``max_books`` slots: a lock line and **two copies** of the book, each ``832 + 32 * max_levels``
  bytes (rounded to 64): a 13-line header (line 0: generation, flags, states, level counts, seq
  and the top of both sides, so a top-of-book read touches the lock line and one more; line 1:
  timestamps, the book's real level counts; identity; texts) and the best ``max_levels`` levels
  of each side as ``_book.pxd`` ``Level``s. 1024 books x 100 levels: 7.5 MB, touched only as
  books are placed.

Levels past a slot's depth are not published: a reader gets the top ``max_levels`` per side and
says so (``SharedBook.truncated``, ``book_level_count``). Books that do not fit (``max_books``
reached, an identity longer than 128 / 64 UTF-8 bytes) are counted (``n_unpublished``) and a
reader's lookup error names that count; a freed slot goes to the first waiting book.

Consistency (the full argument is in ``_shm_c.h``): a seqlock over the slot's two copies, C11
orderings through GCC ``__atomic`` builtins. Write k goes to copy k & 1 between lock = 2k + 1
and lock = 2k + 2 (release stores, a release fence after the first); a reader loads the lock
(acquire), copies from the copy of the last complete write, issues an acquire fence and re-reads
the lock, retrying only if the writer has begun rewriting that very copy. On x86-64 the fences
cost nothing (TSO); on aarch64 they are ``dmb`` barriers and ``stlr``/``ldar``, so the same source
is correct on both wheels. Why two copies: with one, a reader must wait while the writer is
inside the slot, and on a loaded host the writer is regularly preempted there for whole
scheduler slices (measured: readers gave up with "busy" every few seconds at 20 k deltas/s; a
SIGSTOPped publisher left its slot unreadable); with two, a reader always has a complete copy
(one version old while a write is in progress) and never waits for the writer. The writer never
waits for readers. Only a writer that laps a reader (two writes during one read) makes it
retry: at most 512 times with a pause, then 64 times with ``sched_yield``, then
``BookBusyError`` rather than spinning forever. Slots carry a generation, bumped whenever the
slot changes owner: a :class:`SharedBook` whose book was removed (and whose slot may hold
another book by now) raises ``BookGoneError`` on a data read and reports not trustworthy.

Liveness: the heartbeat is the newest frame-read time of each publishing flush (the listener
already read the clock: no extra clock read on the apply path) and the maintenance tick's time
(``FeedHandler.check_stale``, every ``stale_check_interval`` = 0.25 s in a ``Client``). A reader
treats the publisher as gone, and every book as not trustworthy with the reason, when the
region is closed, when the heartbeat is older than the bound (default: what the publisher
advertises, 1 s), or when the writer pid no longer exists (checked at most every 20 ms, and only
when reader and writer share a pid namespace). So a killed publisher is noticed within ~20 ms, a
stopped or hung one within the bound.

Waiting without spinning a core (:meth:`SharedRegion.wait`): FUTEX_WAIT on the shared change
counter (no FUTEX_PRIVATE_FLAG: it crosses processes). A FUTEX_WAKE costs the waker about 8 µs on
this VM (13 µs with 8 sleepers; the bench's ``wake`` segment: ~11 µs per delta) against ~0.6 µs
to apply and publish a delta, so the writer must not wake readers at 20 k deltas/s. Hence two
sleeps: while changes keep coming (one seen within ``linger``, default 10 ms) a reader sleeps
``poll`` (100 µs, plus the kernel's 50 µs timer slack) at a time and announces nothing, so the
writer never calls the kernel; after ``linger`` without a change it sets the waiter flag and
sleeps until woken (the writer wakes it at the next change: one syscall per quiet-to-busy turn,
not per update) or 100 ms pass (it re-checks liveness). ``spin`` spins first, for a reader that
owns a core. The writer's side of that handshake needs no fence per flush: readers entering the
long sleep issue ``membarrier(2)`` instead (``_shm_c.h``; a locked instruction per flush was
measured to cost the writer 50-350 ns per delta once readers share the counter's cache line).
The writer also stores only the level groups that changed, so the lines readers cache stay
valid. Measured figures are in ``bench/RESULTS.md`` (``bench/bench_shm.py``).

Limits: Linux (``/dev/shm``, futex, ``CLOCK_MONOTONIC`` shared by the host's processes); one
publisher per region; the owner unlinks the file at close, readers never do (a kill -9'd owner
leaves it: the next publisher of that name replaces a dead owner's region, or
``parsec_fast.shared.unlink``).
"""
from cpython.bytes cimport PyBytes_AS_STRING
from libc.errno cimport errno, ESRCH
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcmp
from posix.signal cimport kill

import importlib
import os

from parsec_fast.errors import ParsecError

__all__ = ["Publisher", "SharedRegion", "SharedBook", "SharedMemoryError", "LayoutMismatchError",
           "BookGoneError", "BookBusyError", "PublisherGoneError", "LAYOUT_VERSION", "SHM_DIR",
           "region_owner"]

#: The region layout this build writes and reads.
LAYOUT_VERSION = PFSHM_VERSION
#: Where regions live (what ``shm_open`` uses on Linux; opened directly, so no librt).
SHM_DIR = "/dev/shm/"

cdef bytes _MAGIC = PFSHM_MAGIC[:8]   # "PFBOOKS" and its NUL


class SharedMemoryError(ParsecError):
    """Base of the shared-memory books' errors."""


class LayoutMismatchError(SharedMemoryError):
    """The region at that name is not a parsec_fast book region this version can read (another
    layout version, other sizes, or not ours at all): the message names what differs."""


class BookGoneError(SharedMemoryError, LookupError):
    """The shared book was removed (unsubscribed) and its slot may hold another book now: look
    it up again with ``SharedRegion.book``."""


class BookBusyError(SharedMemoryError):
    """The publisher stayed inside the book's slot for the whole bounded retry (it may have been
    stopped mid-write): nothing consistent could be read; try again."""


class PublisherGoneError(SharedMemoryError):
    """The publisher closed the region, died, or stopped beating within the bound: every book
    is not trustworthy; ``attach`` again to follow a new publisher."""


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------

cdef uint64_t pidns_inode():
    """The inode of this process's pid namespace (0 when it cannot be read)."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


cdef str check_name(object name):
    """``name`` if it can name a region file in SHM_DIR, else ValueError."""
    if not isinstance(name, str) or not name or len(name) > 200 or "/" in name or "\0" in name \
            or name.startswith("."):
        raise ValueError(f"name: expected a non-empty string of at most 200 characters without "
                         f"'/' or a leading '.', got {name!r}")
    return name


cdef str header_problem(const pfshm_header* h, size_t file_size):
    """Why a mapped header is not one this build reads (None when it is)."""
    cdef uint64_t end
    if file_size < HEADER_SIZE:
        return f"the file has {file_size} bytes, less than a region header ({HEADER_SIZE})"
    if memcmp(h.magic, PFSHM_MAGIC, 8) != 0:
        return f"bad magic {bytes(h.magic[:8])!r} (expected {bytes(PFSHM_MAGIC[:8])!r}): not a parsec_fast book region"
    if h.version != PFSHM_VERSION:
        return (f"layout version {h.version}, this parsec_fast reads version {PFSHM_VERSION}: "
                f"run the same parsec_fast version in the publisher and its readers")
    cdef list checks = [
        ["byte_order", int(h.byte_order), int(PFSHM_BYTE_ORDER)],
        ["header_size", int(h.header_size), int(HEADER_SIZE)],
        ["slot_header_size", int(h.slot_header_size), int(SLOT_HEADER_SIZE)],
        ["level_size", int(h.level_size), int(sizeof(pfshm_level))],
        ["text_sizes", int(h.text_sizes), int(PFSHM_TEXT_SIZES)]]
    for field, found, expected in checks:
        if found != expected:
            return f"{field} is {found:#x}, this build expects {expected:#x} (another layout)"
    if h.wake_protocol not in (PFSHM_WAKE_FENCED, PFSHM_WAKE_MEMBARRIER):
        return f"unknown wake protocol {h.wake_protocol}"
    if h.max_books < 1 or h.max_levels < 1 or h.max_levels > 65535:
        return f"max_books={h.max_books}, max_levels={h.max_levels} out of range"
    if h.copy_size < SLOT_HEADER_SIZE + 2 * sizeof(pfshm_level) * h.max_levels:
        return f"copy_size {h.copy_size} too small for max_levels={h.max_levels}"
    if h.slot_size != SLOT_LOCK_SIZE + 2 * h.copy_size:
        return f"slot_size {h.slot_size} is not a lock line and two copies of {h.copy_size}"
    if h.dir_entries < h.max_books or (h.dir_entries & (h.dir_entries - 1)) != 0:
        return f"dir_entries {h.dir_entries} is not a power of two >= max_books"
    end = h.slots_offset + <uint64_t>h.max_books * h.slot_size
    if (h.reader_offset < HEADER_SIZE or h.dir_offset < h.reader_offset + READER_PAGE_SIZE
            or h.slots_offset < h.dir_offset + 4 * <uint64_t>h.dir_entries or end > h.region_size):
        return "inconsistent offsets"
    if h.region_size > file_size:
        return f"the header says {h.region_size} bytes but the file has {file_size}"
    return None


def region_owner(str path):
    """None when the region at ``path`` may be replaced (no file there, or its owner is gone:
    closed, pid gone, heartbeat older than its own bound), else why not: "held by a live
    publisher (...)", or "not ..." for a file that is not a region of this layout version.
    ``Publisher`` asks before taking a name, ``parsec_fast.shared.unlink`` before removing one."""
    cdef const pfshm_header* h
    cdef int64_t age
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    try:
        data = os.pread(fd, HEADER_SIZE, 0)
    finally:
        os.close(fd)
    if len(data) < HEADER_SIZE or data[:8] != _MAGIC:
        return "not a parsec_fast book region (pass replace=True to overwrite it)"
    h = <const pfshm_header*>PyBytes_AS_STRING(data)
    if h.version != PFSHM_VERSION:
        return (f"not layout version {PFSHM_VERSION} but {h.version} (another parsec_fast "
                f"version; pass replace=True once its publisher is stopped)")
    if h.state == PFSHM_CLOSED:
        return None
    if h.writer_pidns != 0 and h.writer_pidns == pidns_inode() and kill(<int>h.writer_pid, 0) == -1 \
            and errno == ESRCH:
        return None
    age = pfshm_now_ns() - h.heartbeat_ns
    if age > h.heartbeat_timeout_ns:
        return None
    return f"held by a live publisher (pid {h.writer_pid}, heartbeat {age / 1e6:.0f} ms ago)"


# Moved to their own modules; still importable from here (``from parsec_fast._shm import
# Publisher``), imported on first use: _shm_writer and _shm_reader import this module.
cdef dict _MOVED = {"Publisher": "parsec_fast._shm_writer",
                    "SharedRegion": "parsec_fast._shm_reader",
                    "SharedBook": "parsec_fast._shm_reader"}


def __getattr__(str name):
    """``Publisher`` (now in ``parsec_fast._shm_writer``), ``SharedRegion`` and ``SharedBook``
    (``parsec_fast._shm_reader``), for code that imports them from here."""
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module 'parsec_fast._shm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    """The module's names, the moved ones included."""
    return sorted(set(globals()) | set(_MOVED))
