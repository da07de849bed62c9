"""Type stub of the shared-memory books' shared vocabulary (src/_core/parsec_fast/_shm.pyx).

One publisher process writes every book of a FeedHandler into ``/dev/shm/NAME`` (per-book
seqlock, generations, a hash directory, a futex change counter, a heartbeat); any number of
reader processes map it read-only. This module has the errors and the layout version both sides
share; the publisher is ``parsec_fast._shm_writer``'s, the reader side
``parsec_fast._shm_reader``'s (both also importable from here). ``parsec_fast.shared`` is the
public front.
"""
from typing import Final

from ._shm_reader import SharedBook as SharedBook
from ._shm_reader import SharedRegion as SharedRegion
from ._shm_writer import Publisher as Publisher
from .errors import ParsecError

__all__ = ["Publisher", "SharedRegion", "SharedBook", "SharedMemoryError", "LayoutMismatchError",
           "BookGoneError", "BookBusyError", "PublisherGoneError", "LAYOUT_VERSION", "SHM_DIR",
           "region_owner"]

#: The region layout version this build writes and reads.
LAYOUT_VERSION: Final[int]
#: Where regions live (``/dev/shm/``).
SHM_DIR: Final[str]

class SharedMemoryError(ParsecError):
    """Base of the shared-memory books' errors."""

class LayoutMismatchError(SharedMemoryError):
    """Not a region this parsec_fast can read (another layout version or sizes): says what."""

class BookGoneError(SharedMemoryError, LookupError):
    """The book was removed from the region (its slot may hold another book now)."""

class BookBusyError(SharedMemoryError):
    """The publisher stayed inside the slot for the whole bounded retry."""

class PublisherGoneError(SharedMemoryError):
    """The publisher closed, died, or stopped beating within the bound."""

def region_owner(path: str) -> str | None:
    """None when the region at ``path`` may be replaced (no file, or its owner is gone: closed,
    pid gone, heartbeat older than its bound), else why not ("held by a live publisher ...", or
    "not ..." for a file that is not a region of this layout version)."""
