"""The import graph keeps the architecture: the send path needs nothing of the campaign editor,
and domain modules know nothing of Celery, HTTP or the command line.

Read from the source with `ast` (lazy imports inside functions count too), so a new module is
checked without being listed. The listed modules are imported, not named in strings, so they
follow a move into a sub-package.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import dripcare
from dripcare.content import (
    campaign_editing,
    campaign_versions,
    compiled_campaigns,
    isolation,
    render_cache,
    renderer_child,
    rendering,
    safety,
    sandbox,
    template_checks,
)
from dripcare.outbox import dispatch, suppression
from dripcare.sending import (
    clinic_transports,
    composing,
    delivery,
    dkim_keys,
    quoted_printable,
    send_journal,
    transports,
    verp,
)

SRC = Path(dripcare.__file__).resolve().parent.parent

SEND_PATH = [
    module.__name__
    for module in (
        delivery,
        dispatch,
        composing,
        quoted_printable,
        transports,
        clinic_transports,
        dkim_keys,
        send_journal,
        suppression,
        verp,
        rendering,
        render_cache,
        sandbox,
        isolation,
        renderer_child,
        compiled_campaigns,
    )
]
EDITOR = {
    module.__name__ for module in (campaign_versions, campaign_editing, template_checks, safety)
}
EDGE = re.compile(
    r"dripcare\.(cli(_\w+)?|tasks|celery_app|beat|health|devserver|web|webhooks)(\.|$)"
)
FRAMEWORKS = {"celery", "kombu", "fastapi", "starlette", "click"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in (SRC / "dripcare").rglob("*.py")}
    return {
        name: {
            dep for dep in _imports(path, name) if dep in paths or dep.split(".")[0] != "dripcare"
        }
        for name, path in paths.items()
    }


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for dep in graph.get(todo.pop(), set()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_the_send_path_does_not_import_the_campaign_editor() -> None:
    graph = _graph()
    assert set(SEND_PATH) <= graph.keys(), set(SEND_PATH) - graph.keys()
    reached = {module: sorted(_reachable(graph, module) & EDITOR) for module in SEND_PATH}
    assert {module: found for module, found in reached.items() if found} == {}


def test_domain_modules_import_neither_the_edges_nor_their_frameworks() -> None:
    graph = _graph()
    wrong = {
        (module, dep)
        for module, deps in graph.items()
        if not EDGE.match(module)
        for dep in deps
        if EDGE.match(dep) or dep.split(".")[0] in FRAMEWORKS
    }
    assert wrong == set()


def test_the_check_sees_a_module_that_imports_the_editor() -> None:
    graph = {
        "dripcare.sending.delivery": {"dripcare.content.previews"},
        "dripcare.content.previews": set(EDITOR),
    }
    assert _reachable(graph, "dripcare.sending.delivery") >= EDITOR
