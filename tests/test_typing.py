"""The public API as a type checker sees it: a user-style script passes ``mypy --strict`` and
pyright clean, and the mistakes in ``typing/user_bad.py`` (a misspelt attribute of a Book and of
an event, a misspelt event kind, an attribute the narrowed event lacks) are each caught, on
exactly the lines marked "expect-error" there, by both checkers. ``pyright --verifytypes``
finds the package, as imported here (the checkout's ``src/`` or the installed one), 100 % type
complete and every public function and class documented."""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import parsec_fast

HERE = Path(__file__).parent / "typing"
GOOD = HERE / "user_good.py"
BAD = HERE / "user_bad.py"

pytestmark = pytest.mark.timeout(300)


def _expected_lines() -> set[int]:
    return {i for i, line in enumerate(BAD.read_text().splitlines(), 1) if "# expect-error" in line}


def _mypy(path: Path) -> tuple[int, set[int], str]:
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                           "--hide-error-context", "--no-error-summary", str(path)],
                          capture_output=True, text=True, cwd=HERE)
    lines = {int(m.group(1)) for m in re.finditer(rf"{re.escape(path.name)}:(\d+): error",
                                                   proc.stdout)}
    return proc.returncode, lines, proc.stdout + proc.stderr


def _pyright(path: Path) -> tuple[set[int], str]:
    proc = subprocess.run([sys.executable, "-m", "pyright", "--outputjson",
                           "--pythonpath", sys.executable, str(path)],
                          capture_output=True, text=True, cwd=HERE)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"pyright did not run: {proc.stdout[-2000:]} {proc.stderr[-2000:]}")
    errors = [d for d in report["generalDiagnostics"] if d["severity"] == "error"]
    return {d["range"]["start"]["line"] + 1 for d in errors}, proc.stdout


def test_user_script_passes_mypy_strict() -> None:
    code, lines, out = _mypy(GOOD)
    assert code == 0 and not lines, out


def test_mypy_catches_each_mistake() -> None:
    _, lines, out = _mypy(BAD)
    assert lines == _expected_lines(), out


def test_user_script_passes_pyright() -> None:
    lines, out = _pyright(GOOD)
    assert not lines, out


def test_pyright_catches_each_mistake() -> None:
    lines, out = _pyright(BAD)
    assert lines == _expected_lines(), out


def _verifytypes(bin_dir: Path) -> dict[str, Any]:
    # pyright resolves parsec_fast with an interpreter's search paths, and must use this one's
    # (the editable install's src/ in the checkout, site-packages in the installed run). With
    # --verifytypes it ignores --pythonpath (pyright 1.1.414) and runs "python3" (else
    # "python") from PATH, which in CI is not the venv under test: put this interpreter first.
    for name in ("python3", "python"):
        wrapper = bin_dir / name
        wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
        wrapper.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run([sys.executable, "-m", "pyright", "--verifytypes", "parsec_fast",
                           "--ignoreexternal", "--outputjson", "--pythonpath", sys.executable],
                          capture_output=True, text=True, cwd=HERE, env=env)
    try:
        report: dict[str, Any] = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"pyright did not run: {proc.stdout[-2000:]} {proc.stderr[-2000:]}")
    if "typeCompleteness" not in report:
        pytest.fail(f"pyright --verifytypes gave no report: {proc.stdout[-4000:]}")
    return report


def test_public_api_is_typed_and_documented(tmp_path: Path) -> None:
    report = _verifytypes(tmp_path)
    completeness = report["typeCompleteness"]
    checked = Path(completeness["packageRootDirectory"]).resolve()
    assert checked == Path(parsec_fast.__file__).resolve().parent, \
        f"pyright checked {checked}, not the parsec_fast imported here ({parsec_fast.__file__})"
    symbols = completeness["symbols"]
    untyped = [f"{s['name']}: {'; '.join(d['message'] for d in s['diagnostics'])}"
               for s in symbols if not s["isTypeKnown"] or s["isTypeAmbiguous"]]
    assert completeness["completenessScore"] == 1.0, "\n".join(untyped)
    undocumented = [d["message"] for s in symbols for d in s["diagnostics"]
                    if "No docstring" in d["message"]]
    assert not undocumented, "\n".join(undocumented)
    assert completeness["missingFunctionDocStringCount"] == 0
    assert completeness["missingClassDocStringCount"] == 0
    # a stub default written as "..." hides the real default from users
    assert completeness["missingDefaultParamCount"] == 0, "\n".join(
        d["message"] for s in symbols for d in s["diagnostics"] if "default" in d["message"])
