"""Every third-party package the code imports is declared in pyproject.toml, and locked.

A package that only arrives as a dependency of a dependency may vanish with that dependency's
next release, and a wheel installed in a clean environment would then fail at import time.
A declared package missing from the lock files would be missing from every install.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The package's code and the migrations it ships (src/dripcare/shipped/migrations links here).
SOURCES = [ROOT / "src" / "dripcare", ROOT / "alembic"]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_top_level_modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for source in SOURCES:
        for path in source.rglob("*.py"):
            if "shipped" in path.relative_to(source).parts:
                continue  # links back to alembic/ and templates/, scanned as themselves
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.partition(".")[0], path)
    return found


def _project() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _names(specs: list[str]) -> set[str]:
    return {_canonical(re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0]) for spec in specs}


def _locked(lock: str) -> set[str]:
    text = (ROOT / lock).read_text(encoding="utf-8")
    return {_canonical(name) for name in re.findall(r"^([A-Za-z0-9][\w.-]*)==", text, re.M)}


def test_every_imported_distribution_is_a_declared_dependency() -> None:
    providers = packages_distributions()
    declared = _names(_project()["dependencies"])
    undeclared = []
    for module, path in sorted(_imported_top_level_modules().items()):
        if module in sys.stdlib_module_names or module == "dripcare":
            continue
        distributions = {_canonical(d) for d in providers.get(module, [])}
        if not distributions & declared:
            where = path.relative_to(ROOT)
            undeclared.append(
                f"{module} (from {sorted(distributions) or 'nothing installed'}, in {where})"
            )
    assert not undeclared, "imported but not in [project].dependencies: " + ", ".join(undeclared)


@pytest.mark.parametrize(
    ("lock", "extras"),
    [
        ("requirements.lock", []),
        ("requirements-flower.lock", ["flower"]),
        ("requirements-dev.lock", ["dev", "flower"]),
    ],
)
def test_the_lock_files_pin_every_declared_dependency(lock: str, extras: list[str]) -> None:
    """A dependency added to pyproject.toml without `make lock` would be missing from installs."""
    project = _project()
    wanted = _names(project["dependencies"])
    for extra in extras:
        wanted |= _names(project["optional-dependencies"][extra])
    missing = wanted - _locked(lock)
    assert not missing, f"{lock} lacks {sorted(missing)}: run `make lock` and commit the locks"
