"""Packaging: what a PyPI user gets from the sdist and the wheel, and setup.py's refusal to build
without a core source.

* The sdist (``python -m build --sdist --no-isolation``, from a copy of this checkout) carries
  every ``.pyx``, ``.pxd`` and ``.h`` of ``src/_core/parsec_fast/``, every ``.pyi``,
  ``py.typed``, LICENSE, README and the tests, and no generated ``.c`` / ``.html`` / ``.so``
  nor a hidden file (a test run's caches).
* The wheel built from that sdist (as pip builds it; only ``_book`` compiled, to be quick)
  carries the core's Cython API in the package, ``CIMPORT_API`` of setup.py (every ``.pxd`` and
  the header they include; tests/test_cimport_api.py compiles against it), the stubs and
  ``py.typed``, and no generated ``.c``. ``CIMPORT_API`` names exactly those files.
* ``CORE_MODULES`` in setup.py names exactly the ``.pyx`` files there (a module left out would
  silently not be built).
* setup.py raises ``MissingCoreSourceError`` naming the file when a listed ``.pyx`` is missing,
  and rejects an unknown ``PARSEC_FAST_ONLY`` name.

All of it needs the source checkout and is skipped without one (the run against an installed
package from outside the tree, ``.ci/run``'s second run and cibuildwheel's). The sdist check
also needs ``build`` and ``setuptools>=77``, the wheel check Cython too (all in the ``test``
extra). About 15 s.
"""
from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import subprocess
import sys
import re
import tarfile
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "src" / "_core" / "parsec_fast"
PKG = REPO / "src" / "parsec_fast"

pytestmark = pytest.mark.skipif(
    not ((REPO / "setup.py").is_file() and CORE.is_dir() and PKG.is_dir()),
    reason="needs the source checkout (setup.py, src/_core/); not there when testing an "
           "installed package")

# Never copied into the build tree: VCS data, caches, earlier build output.
_IGNORE = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__",
                                 ".hypothesis", ".pytest_cache", ".benchmarks", "out")


def _setup_constant(name: str) -> tuple[str, ...]:
    """A tuple constant as written in setup.py (read, not executed: running setup.py builds)."""
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise AssertionError(f"setup.py has no {name} = (...) assignment")


def _core_modules() -> tuple[str, ...]:
    return _setup_constant("CORE_MODULES")


def _cimport_api() -> tuple[str, ...]:
    return _setup_constant("CIMPORT_API")


def _major(dist: str) -> int:
    return int(version(dist).split(".")[0])


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly built sdist."""
    if importlib.util.find_spec("build") is None:
        pytest.skip("the 'build' package is not installed (pip install -e '.[test]')")
    if _major("setuptools") < 77:
        pytest.skip(f"setuptools {version('setuptools')} here; the sdist is built without "
                    f"isolation and needs setuptools>=77 (pip install -e '.[test]')")
    tmp = tmp_path_factory.mktemp("sdist")
    tree = tmp / "tree"
    shutil.copytree(REPO, tree, ignore=_IGNORE)
    # Generated files in the tree, as a developer's checkout has them after a build: the sdist
    # must leave them out.
    for planted in ("src/_core/parsec_fast/_book.c", "src/_core/parsec_fast/_book.html",
                    "src/parsec_fast/_book.cpython-311-x86_64-linux-gnu.so",
                    "tests/.mypy_cache/3.11/cache.db", "tests/__pycache__/conftest.pyc",
                    "tests/.coverage"):
        (tree / planted).parent.mkdir(parents=True, exist_ok=True)
        (tree / planted).touch()
    out = tmp / "dist"
    # --skip-dependency-check: an sdist needs only setuptools (setup.py imports Cython when it
    # compiles, not before), so Cython and picows need not be installed for this test.
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--no-isolation", "--skip-dependency-check",
         "--outdir", str(out), str(tree)],
        cwd=tree, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (built,) = out.glob("parsec_fast-*.tar.gz")
    return built


@pytest.fixture(scope="module")
def sdist_names(sdist: Path) -> set[str]:
    """Member names of the sdist, relative to its top directory."""
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    top = names[0].split("/")[0]
    assert all(n == top or n.startswith(top + "/") for n in names), names
    return {n[len(top) + 1:] for n in names if n != top}


@pytest.fixture(scope="module")
def wheel_names(sdist: Path, tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Member names of a wheel built from the unpacked sdist, as pip builds one from it."""
    if importlib.util.find_spec("Cython") is None:
        pytest.skip("Cython is not installed (pip install -e '.[test]'); the wheel is built "
                    "without isolation")
    tmp = tmp_path_factory.mktemp("wheel")
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp / "unpacked", filter="data")
    (tree,) = (tmp / "unpacked").iterdir()
    out = tmp / "dist"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PARSEC_FAST_")}
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--skip-dependency-check",
         "--outdir", str(out), str(tree)],
        cwd=tree, env={**environ, "PARSEC_FAST_ONLY": "_book"}, capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (wheel,) = out.glob("parsec_fast-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def test_sdist_carries_every_core_source(sdist_names: set[str]) -> None:
    expected = {f"src/_core/parsec_fast/{p.name}" for p in CORE.iterdir()
                if p.suffix in (".pyx", ".pxd", ".h")}
    assert {f"src/_core/parsec_fast/{m}.pyx" for m in _core_modules()} <= expected
    assert expected - sdist_names == set()


def test_sdist_carries_stubs_license_readme_and_tests(sdist_names: set[str]) -> None:
    expected = {f"src/parsec_fast/{p.relative_to(PKG)}" for p in PKG.rglob("*.pyi")}
    assert expected, "no .pyi stubs found in src/parsec_fast"
    expected |= {"src/parsec_fast/py.typed", "LICENSE", "README.md", "pyproject.toml",
                 "setup.py", "tests/conftest.py", "tests/test_packaging.py"}
    assert expected - sdist_names == set()


def test_sdist_has_no_generated_files(sdist_names: set[str]) -> None:
    generated = sorted(n for n in sdist_names
                       if n.endswith((".c", ".html", ".so", ".pyc")) or "__pycache__" in n)
    assert generated == []
    hidden = sorted(n for n in sdist_names if any(p.startswith(".") for p in n.split("/")))
    assert hidden == []  # caches (.mypy_cache, .pytest_cache, .hypothesis), .coverage, ...
    assert not any(n.startswith("bench/") for n in sdist_names)


def test_wheel_carries_the_cimport_api(wheel_names: set[str]) -> None:
    expected = {f"parsec_fast/{name}" for name in _cimport_api()}
    assert expected - wheel_names == set()
    assert {n for n in wheel_names if n.endswith((".pxd", ".h"))} == expected
    assert any(n.startswith("parsec_fast/_book.") and n.endswith(".so") for n in wheel_names)


def test_wheel_carries_stubs_and_no_generated_sources(wheel_names: set[str]) -> None:
    expected = {f"parsec_fast/{p.relative_to(PKG)}" for p in PKG.rglob("*.pyi")}
    assert (expected | {"parsec_fast/py.typed"}) - wheel_names == set()
    assert sorted(n for n in wheel_names if n.endswith((".c", ".pyx", ".html"))) == []
    assert not any(n.startswith(("_core/", "src/", "tests/")) for n in wheel_names)


def test_cimport_api_is_every_pxd_and_the_headers_they_include() -> None:
    pxds = sorted(p.name for p in CORE.glob("*.pxd"))
    headers = sorted({header for pxd in pxds
                      for header in re.findall(r'^cdef extern from "([^"]+)"',
                                               (CORE / pxd).read_text(), re.M)
                      if (CORE / header).is_file()})  # not the system's (<Python.h>, ...)
    assert pxds and headers
    assert sorted(_cimport_api()) == sorted(pxds + headers), (
        "CIMPORT_API in setup.py must list every src/_core/parsec_fast/*.pxd and the headers of "
        "that directory they `cdef extern from` (and only those)")


def test_core_modules_match_the_pyx_files() -> None:
    on_disk = sorted(p.stem for p in CORE.glob("*.pyx"))
    assert sorted(_core_modules()) == on_disk, (
        "CORE_MODULES in setup.py must list every src/_core/parsec_fast/*.pyx (and only those)")


def test_every_core_module_has_a_type_stub() -> None:
    # A compiled module without a .pyi is Any to a type checker and has no docs in an editor.
    missing = [name for name in _core_modules() if not (PKG / f"{name}.pyi").is_file()]
    assert not missing, f"compiled modules without a .pyi stub in src/parsec_fast/: {missing}"


def _setup_tree(tmp_path: Path, missing: str | None = None) -> Path:
    """setup.py and the core's .pyx files (empty: nothing is compiled) in a fresh directory."""
    shutil.copy(REPO / "setup.py", tmp_path / "setup.py")
    core = tmp_path / "src" / "_core" / "parsec_fast"
    core.mkdir(parents=True)
    for name in _core_modules():
        if name != missing:
            (core / f"{name}.pyx").touch()
    return tmp_path


def _run_setup(tree: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # --version only reads the configuration; setup.py checks its sources before that.
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PARSEC_FAST_")}
    return subprocess.run([sys.executable, "setup.py", "--version"], cwd=tree,
                          env={**environ, **env}, capture_output=True, text=True, timeout=60)


def test_setup_reads_a_complete_tree(tmp_path: Path) -> None:
    proc = _run_setup(_setup_tree(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize("missing", ["_feed", "_listener"])
def test_setup_refuses_a_missing_core_source(tmp_path: Path, missing: str) -> None:
    proc = _run_setup(_setup_tree(tmp_path, missing=missing))
    assert proc.returncode != 0
    assert "MissingCoreSourceError" in proc.stderr
    assert f"src/_core/parsec_fast/{missing}.pyx" in proc.stderr
    assert f"parsec_fast.{missing}" in proc.stderr and "CORE_MODULES" in proc.stderr


def test_parsec_fast_only_builds_a_subset_and_rejects_unknown_names(tmp_path: Path) -> None:
    tree = _setup_tree(tmp_path, missing="_feed")
    # A subset build needs only its own sources...
    assert _run_setup(tree, PARSEC_FAST_ONLY="_book,_scan").returncode == 0
    # ...and still checks them.
    proc = _run_setup(tree, PARSEC_FAST_ONLY="_book,_feed")
    assert proc.returncode != 0 and "src/_core/parsec_fast/_feed.pyx" in proc.stderr
    proc = _run_setup(tree, PARSEC_FAST_ONLY="_bok")
    assert proc.returncode != 0 and "PARSEC_FAST_ONLY names unknown core module(s) _bok" in (
        proc.stderr)
