"""The core's Cython API as a user gets it: a user's ``.pyx`` that cimports ``Book``, the feed
handler and the shared-memory header compiles against the package as installed and runs.

The user module is written into a temporary directory, cythonized and compiled there by a
setuptools build in a subprocess (``include_dirs=[parsec_fast.get_include()]``, as the README
says), imported, and called on a ``Book`` and a ``FeedHandler`` built from Python: it reads the
books' C-level fields, calls their ``cdef`` methods (``Book.raw_apply_delta``,
``FeedHandler.feed_ptr``) and ``_shm_c.h``'s layout version, which must be the compiled
module's.

Installed (a wheel, or pip from the sdist; ``.ci/run``'s second run) the ``.pxd`` files and the
header are in the package directory and Cython finds them on ``sys.path``, as it would for a user;
in a source checkout (editable install) they stay in ``src/_core/parsec_fast/``, which
``get_include()`` returns, and its parent goes on Cython's include path.

Skipped only without Cython>=3.0.10 (in the ``test`` extra) or a C compiler. About 3 s.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType

import pytest

import parsec_fast
import parsec_fast._shm
from parsec_fast import Book, FeedHandler
from parsec_fast.rules import DeltaResult

PACKAGE = Path(parsec_fast.__file__).resolve().parent
API = Path(parsec_fast.get_include()).resolve()
INSTALLED = API == PACKAGE
#: What the user module below needs: the .pxd files it cimports (directly or through them) and
#: the header _shm.pxd declares its C from.
NEEDED = ("_book.pxd", "_feed.pxd", "_scan.pxd", "_shm.pxd", "_shm_c.h")

USER_PYX = '''\
# cython: language_level=3
from libc.stdint cimport int64_t
from parsec_fast._book cimport (Book, Level, RawChange, SIDE_ASK, SIDE_BID, key_price,
                                side_view)
from parsec_fast._feed cimport FeedHandler, Subscription
from parsec_fast._shm cimport PFSHM_VERSION, pfshm_copy


def best_bid(Book book):
    cdef Py_ssize_t n
    cdef const Level* levels = side_view(book, SIDE_BID, &n)
    return (key_price(levels[0].key), levels[0].size) if n else None


def take_ask(Book book, int64_t seq, double price, double size):
    cdef RawChange change
    change.side = SIDE_ASK
    change.price = price
    change.size = size
    return book.raw_apply_delta(seq, &change, 1)


def counters(Book book):
    return book.n_snapshots, book.n_applied, book.n_duplicates, book._seq


def feed(FeedHandler handler, bytes frame, int64_t now, Subscription sub):
    handler.feed_ptr(frame, len(frame), frame, now)
    return sub.book.n_applied, sub.book._seq


def shm_layout():
    return PFSHM_VERSION, sizeof(pfshm_copy)
'''

BUILD_PY = '''\
import parsec_fast
from Cython.Build import cythonize
from setuptools import Extension, setup

extension = Extension("user_strategy", ["user_strategy.pyx"],
                      include_dirs=[parsec_fast.get_include()])
setup(name="user_strategy", script_args=["build_ext", "--inplace"],
      ext_modules=cythonize([extension], include_path={include_path!r}, quiet=True))
'''


def _skip_without_toolchain() -> None:
    try:
        cython = version("Cython")
    except PackageNotFoundError:
        pytest.skip("Cython is not installed (it is in the test extra: pip install '.[test]')")
    if tuple(int(p) for p in cython.split(".")[:3] if p.isdigit()) < (3, 0, 10):
        pytest.skip(f"Cython {cython} here; the core's .pxd files need Cython>=3.0.10")
    # The compiler setuptools runs: $CC, else the one Python was built with.
    compiler = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")[0]
    if shutil.which(compiler) is None:
        pytest.skip(f"no C compiler ({compiler!r}) to build a Cython extension with")


@pytest.fixture(scope="module")
def user_module(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    _skip_without_toolchain()
    missing = [name for name in NEEDED if not (API / name).is_file()]
    assert not missing, f"parsec_fast.get_include() = {API} lacks {missing}"
    tmp = tmp_path_factory.mktemp("cimport_api")
    (tmp / "user_strategy.pyx").write_text(USER_PYX)
    # Installed, Cython finds parsec_fast/*.pxd on sys.path, as it does for any user; in the
    # checkout they are in src/_core/parsec_fast/, whose parent Cython must be told about.
    include_path = [] if INSTALLED else [str(API.parent)]
    (tmp / "build_user.py").write_text(BUILD_PY.format(include_path=include_path))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PARSEC_FAST_")}
    proc = subprocess.run([sys.executable, "build_user.py"], cwd=tmp, env=environ,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (built,) = tmp.glob("user_strategy*.so")
    spec = importlib.util.spec_from_file_location("user_strategy", built)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_get_include_names_the_api() -> None:
    for name in NEEDED:
        assert (API / name).is_file(), name
    if os.environ.get("PARSEC_FAST_EXPECT_INSTALLED", "") not in ("", "0"):
        # The installed package carries its own API (tests/conftest.py checked where it is).
        assert INSTALLED, f"get_include() is {API}, not the installed package {PACKAGE}"
    if INSTALLED:
        # Each .pxd describes a compiled module installed beside it.
        for pxd in PACKAGE.glob("*.pxd"):
            assert list(PACKAGE.glob(f"{pxd.stem}.*.so")), f"{pxd.name} without its module"


def test_a_user_module_reads_and_applies_to_a_book(user_module: ModuleType) -> None:
    book = Book("polymarket:572473", "Yes")
    assert user_module.best_bid(book) is None
    book.apply_snapshot([[0.65, 100.0], [0.64, 50.0]], [[0.66, 80.0], [0.67, 10.0]], 10)
    assert user_module.best_bid(book) == (0.65, 100.0) == book.best_bid
    assert user_module.counters(book) == (1, 0, 0, 10)
    # A cdef method, no Python call: the book the Python API sees has the change.
    assert user_module.take_ask(book, 11, 0.66, 0.0) == DeltaResult.APPLIED
    assert book.best_ask == (0.67, 10.0) and book.seq == 11
    assert user_module.take_ask(book, 11, 0.67, 0.0) == DeltaResult.DUPLICATE
    assert book.best_ask == (0.67, 10.0)
    assert user_module.counters(book) == (1, 1, 1, 11)
    assert book.stats["applied"] == 1 and book.stats["duplicates"] == 1


def test_a_user_module_feeds_frames_to_the_handler(user_module: ModuleType) -> None:
    handler = FeedHandler()
    sub = handler.add("polymarket:572473", "Yes")
    common = {"parsec_id": "polymarket:572473", "outcome": "Yes"}
    snapshot = {"type": "orderbook", **common, "bids": [[0.5, 10.0]], "asks": [[0.6, 5.0]],
                "server_seq": 1}
    delta = {"type": "orderbook_delta", **common, "server_seq": 2,
             "changes": [{"side": "bid", "price": 0.55, "size": 3.0}]}
    assert user_module.feed(handler, json.dumps(snapshot).encode(), 1, sub) == (0, 1)
    assert user_module.feed(handler, json.dumps(delta).encode(), 2, sub) == (1, 2)
    assert sub.book.best_bid == (0.55, 3.0)
    assert handler.stats["native_frames"] == 2 and handler.stats["deltas_applied"] == 1


def test_a_user_module_sees_the_shared_memory_layout(user_module: ModuleType) -> None:
    # From _shm_c.h, found through get_include(): the layout the compiled module writes.
    layout_version, copy_size = user_module.shm_layout()
    assert layout_version == parsec_fast._shm.LAYOUT_VERSION
    assert copy_size > 0 and copy_size % 64 == 0
