"""Every third-party package the code imports is declared in pyproject.toml.

A package that only arrives as a dependency of a dependency may vanish with that dependency's
next release, and a wheel installed in a clean environment would then fail at import time.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

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


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {
        _canonical(re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0])
        for spec in project["dependencies"]
    }


def test_every_imported_distribution_is_a_declared_dependency() -> None:
    providers = packages_distributions()
    declared = _declared()
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
