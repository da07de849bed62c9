"""Build the Cython core (src/_core/parsec_fast/*.pyx) into compiled modules of parsec_fast.

The metadata lives in pyproject.toml; this file only declares the compiled modules.

* The core modules are listed explicitly (``CORE_MODULES``): a missing ``.pyx`` is an error
  (``MissingCoreSourceError``), never a wheel that installs and then fails to import.
* Cython runs when the extensions are built (``build_ext``), not when this file is read, so
  ``sdist`` and the metadata hooks need no Cython and never write generated ``.c`` files.
  Cython is a build requirement (pyproject.toml); the ``.c`` files are not shipped.
* Release builds carry no debug info: ``-g0`` comes after Python's sysconfig CFLAGS, which
  have ``-g`` (wheel 1.84 MB -> 0.43 MB). The symbol table is kept (not stripped with ``-s``,
  which would save only another 23 KB): ``bench/callgrind_*.py``, perf and gdb backtraces need
  it to name the Cython functions.

Environment:

* ``PARSEC_FAST_ONLY=_book,_feed`` builds a subset (faster iteration on one module).
* ``PARSEC_FAST_DEBUG=1`` builds with bounds/wraparound checks, line tracing and ``-O0 -g3``,
  e.g. for coverage or gdb (README, "Development").
* ``PARSEC_FAST_SANITIZE=address`` adds ``-fsanitize=address`` (and ``-g``).

The core's Cython API (``CIMPORT_API``: its ``.pxd`` files and the C header they include) is
installed in the package too, so that users' Cython code can ``from parsec_fast._book cimport
Book``: ``build_py`` copies it from src/_core/parsec_fast/ into the built package.
"""
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext as _build_ext
from setuptools.command.build_py import build_py as _build_py

DEBUG = os.environ.get("PARSEC_FAST_DEBUG", "") not in ("", "0")
SANITIZE = os.environ.get("PARSEC_FAST_SANITIZE", "")  # e.g. "address"

# src/_core/ is the Cython source root and mirrors the package namespace, so that
# src/_core/parsec_fast/_book.pyx builds parsec_fast._book and other modules can
# `from parsec_fast._book cimport Book` (Cython finds .pxd files by qualified name).
# Nothing is installed as a top-level module.
CORE_DIR = "src/_core"
PKG_DIR = f"{CORE_DIR}/parsec_fast"

#: The compiled modules the package imports (parsec_fast._book, ...). Adding, renaming or
#: removing a core module means changing this list: tests/test_packaging.py checks that it
#: matches the .pyx files in src/_core/parsec_fast/.
CORE_MODULES = ("_book", "_feed", "_histogram", "_levellist", "_levels", "_listener", "_natsfeed",
                "_orderbook", "_relayscan", "_scan", "_shm", "_shm_reader", "_shm_writer")

#: The C-level API installed in the package beside the compiled modules, for users' Cython code
#: (README, "Development"): every .pxd of src/_core/parsec_fast/ and the C headers they
#: `cdef extern from` (_shm.pxd: _shm_c.h; parsec_fast.get_include() is their directory).
#: tests/test_packaging.py checks that it matches the .pxd files and their headers.
CIMPORT_API = ("_book.pxd", "_feed.pxd", "_histogram.pxd", "_levellist.pxd", "_levels.pxd",
               "_scan.pxd", "_shm.pxd", "_shm_c.h", "_shm_reader.pxd", "_shm_writer.pxd")

CYTHON_REQUIREMENT = "Cython>=3.0.10"  # keep in step with [build-system] in pyproject.toml


class MissingCoreSourceError(FileNotFoundError):
    """A Cython source of a core module is not where setup.py expects it."""


def core_sources(modules=CORE_MODULES, root="."):
    """``{module: path of its .pyx}`` for ``modules``, relative to ``root`` (the project).

    Raises MissingCoreSourceError naming the first missing file and what to do about it.
    """
    sources = {}
    for name in modules:
        path = f"{PKG_DIR}/{name}.pyx"
        if not os.path.isfile(os.path.join(root, path)):
            raise MissingCoreSourceError(
                f"parsec_fast: the Cython source {path} of the core module parsec_fast.{name} "
                f"is missing (looked in {os.path.abspath(root)}). The compiled core is built "
                f"from the .pyx files; the generated .c files are not used. Build from a "
                f"complete git checkout or from the parsec_fast sdist (which ships every .pyx, "
                f".pxd and .h). If parsec_fast.{name} was renamed or removed on purpose, "
                f"update CORE_MODULES in setup.py.")
        sources[name] = path
    return sources


def selected_modules(only=None):
    """The core modules to build: all, or the subset named by ``PARSEC_FAST_ONLY``."""
    if only is None:
        only = os.environ.get("PARSEC_FAST_ONLY", "")
    wanted = [m.strip() for m in only.split(",") if m.strip()]
    if not wanted:
        return list(CORE_MODULES)
    unknown = [m for m in wanted if m not in CORE_MODULES]
    if unknown:
        raise ValueError(f"PARSEC_FAST_ONLY names unknown core module(s) {', '.join(unknown)}; "
                         f"the core modules are {', '.join(CORE_MODULES)}")
    return [m for m in CORE_MODULES if m in wanted]


def unlisted_sources(root="."):
    """.pyx files in src/_core/parsec_fast/ that CORE_MODULES does not name (not built)."""
    directory = os.path.join(root, PKG_DIR)
    if not os.path.isdir(directory):
        return []
    return sorted(f"{PKG_DIR}/{name}" for name in os.listdir(directory)
                  if name.endswith(".pyx") and name[:-4] not in CORE_MODULES)


directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
    "linetrace": DEBUG,
    "profile": False,
}

# setuptools puts these after sysconfig's CFLAGS ("... -g -fwrapv -O3 ..."), so they win:
# -g0 drops the debug info that -g would put in release builds.
extra_compile_args = ["-O0", "-g3"] if DEBUG else ["-O3", "-g0"]
extra_link_args = []
define_macros = [("CYTHON_TRACE_NOGIL", "1")] if DEBUG else []
if SANITIZE:
    extra_compile_args += [f"-fsanitize={SANITIZE}", "-fno-omit-frame-pointer", "-g"]
    extra_link_args += [f"-fsanitize={SANITIZE}"]


class build_ext(_build_ext):
    """Cythonize the core just before compiling it (so Cython is needed only to build)."""

    def run(self):
        try:
            from Cython.Build import cythonize
        except ImportError:
            raise RuntimeError(
                f"parsec_fast: {CYTHON_REQUIREMENT} is needed to compile the core. "
                f"`python -m pip install .` (or `-e .`) installs it in an isolated build "
                f"environment; before `python setup.py build_ext --inplace` run "
                f"`python -m pip install \"{CYTHON_REQUIREMENT}\"`.") from None
        generated = cythonize(
            self.extensions,
            compiler_directives=directives,
            include_path=[CORE_DIR],
            force=DEBUG or bool(self.force),
            quiet=True,
        )
        # Keep setuptools' Extension objects (finalize_options annotated them); take the .c.
        by_name = {ext.name: ext for ext in generated}
        for ext in self.extensions:
            ext.sources = list(by_name[ext.name].sources)
        super().run()


class build_py(_build_py):
    """Also copy CIMPORT_API from src/_core/parsec_fast/ into the built package (the wheel).

    Not in an editable install, which builds no package: parsec_fast.get_include() then names
    src/_core/parsec_fast/ itself.
    """

    def run(self):
        super().run()
        if self.editable_mode:
            return
        target = os.path.join(self.build_lib, "parsec_fast")
        self.mkpath(target)
        for name in CIMPORT_API:
            self.copy_file(os.path.join(PKG_DIR, name), os.path.join(target, name))

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if not self.editable_mode:
            outputs += [os.path.join(self.build_lib, "parsec_fast", name) for name in CIMPORT_API]
        return outputs


for _path in unlisted_sources():
    print(f"parsec_fast: warning: {_path} is not in CORE_MODULES (setup.py) and is not built",
          file=sys.stderr)

extensions = [
    Extension(
        f"parsec_fast.{name}",
        [path],
        include_dirs=[PKG_DIR],
        extra_compile_args=extra_compile_args,
        extra_link_args=extra_link_args,
        define_macros=define_macros,
    )
    for name, path in core_sources(selected_modules()).items()
]

setup(ext_modules=extensions, cmdclass={"build_ext": build_ext, "build_py": build_py})
