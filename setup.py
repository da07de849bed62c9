"""Build the Cython core (src/_core/*.pyx) into modules inside the parsec_fast package.

Set PARSEC_FAST_DEBUG=1 to build with bounds/wraparound checks, line tracing and -O0 -g,
e.g. for coverage, gdb or an AddressSanitizer run (see README, "Debug builds").
"""
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("PARSEC_FAST_DEBUG", "") not in ("", "0")
SANITIZE = os.environ.get("PARSEC_FAST_SANITIZE", "")  # e.g. "address"

# src/_core/ is the Cython source root and mirrors the package namespace, so that
# src/_core/parsec_fast/_book.pyx builds parsec_fast._book and other modules can
# `from parsec_fast._book cimport Book` (Cython finds .pxd files by qualified name).
# Nothing is installed as a top-level module.
CORE_DIR = "src/_core"
CORE_MODULES = sorted(
    os.path.splitext(name)[0]
    for name in os.listdir(os.path.join(CORE_DIR, "parsec_fast"))
    if name.endswith(".pyx")
)

# PARSEC_FAST_ONLY=_book,_feed builds a subset (faster iteration on one module).
_only = [m for m in os.environ.get("PARSEC_FAST_ONLY", "").split(",") if m]
if _only:
    CORE_MODULES = [m for m in CORE_MODULES if m in _only]

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

extra_compile_args = ["-O0", "-g3"] if DEBUG else ["-O3"]
extra_link_args = []
define_macros = [("CYTHON_TRACE_NOGIL", "1")] if DEBUG else []
if SANITIZE:
    extra_compile_args += [f"-fsanitize={SANITIZE}", "-fno-omit-frame-pointer", "-g"]
    extra_link_args += [f"-fsanitize={SANITIZE}"]

extensions = [
    Extension(
        f"parsec_fast.{name}",
        [f"{CORE_DIR}/parsec_fast/{name}.pyx"],
        include_dirs=[f"{CORE_DIR}/parsec_fast"],
        extra_compile_args=extra_compile_args,
        extra_link_args=extra_link_args,
        define_macros=define_macros,
    )
    for name in CORE_MODULES
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        include_path=[CORE_DIR],
        force=DEBUG,
        quiet=True,
    ),
)
