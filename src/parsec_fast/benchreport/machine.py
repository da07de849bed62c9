"""The machine a benchmark ran on: CPU, cores, Python, package versions, commit, load."""
from __future__ import annotations

import os
import platform
import subprocess
import time
from importlib import metadata
from typing import Any

__all__ = ["PACKAGES", "machine"]

PACKAGES = ("parsec_fast", "picows", "orjson", "uvloop", "Cython", "numpy", "parsec-api",
            "websockets", "order-book", "sortedcontainers", "msgspec", "rich", "matplotlib")


def machine() -> dict[str, Any]:
    """CPU model, cores, Python, package versions, commit, time and load."""
    cpu = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10,
                                cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        load = []
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "implementation": platform.python_implementation(), "platform": platform.platform(),
            "packages": versions, "commit": commit, "loadavg_at_start": load,
            "time": time.strftime("%Y-%m-%d %H:%M:%S %z")}
