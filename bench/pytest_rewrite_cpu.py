"""CPU of a pytest run and of its assert rewriting, per package (issue 15, the quick loop).

Usage: `DRIPCARE_TEST_FAST=1 .venv/bin/python bench/pytest_rewrite_cpu.py --collect-only -q
-m "not (slow or browser or postgres or redis or workers)"`: the arguments go to pytest.
CPU seconds, not wall time: on a shared machine they move far less with the load.
"""

from __future__ import annotations

import collections
import os
import sys
import time
from pathlib import Path
from typing import Any

import _pytest.assertion.rewrite as rewrite
import pytest

_original = rewrite._rewrite_test
spent: collections.Counter[str] = collections.Counter()


def _timed(fn: Path, config: Any) -> Any:
    start = time.process_time()
    try:
        return _original(fn, config)
    finally:
        spent[str(fn)] += time.process_time() - start


def _package(path: str) -> str:
    """The site-packages top level, or the checkout's directory (tests, src)."""
    if "site-packages/" in path:
        return path.split("site-packages/")[1].split("/")[0]
    return Path(path).relative_to(Path.cwd()).parts[0] if path.startswith(os.getcwd()) else path


def main() -> None:
    rewrite._rewrite_test = _timed
    start = time.process_time()
    pytest.main(sys.argv[1:])
    total = time.process_time() - start
    by_package: collections.Counter[str] = collections.Counter()
    for path, seconds in spent.items():
        by_package[_package(path)] += seconds
    print(f"cpus {os.cpu_count()} load {os.getloadavg()[0]:.1f}")
    rewriting = sum(spent.values())
    print(f"pytest CPU {total:.1f} s, rewriting {rewriting:.1f} s in {len(spent)} modules")
    for name, seconds in by_package.most_common(10):
        print(f"{seconds:7.2f} {name}")


if __name__ == "__main__":
    main()
