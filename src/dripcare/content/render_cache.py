"""Per-message rendering in microseconds instead of milliseconds.

Compiling MJML and converting HTML to text cost milliseconds per message, yet only a few
values differ between the recipients of one step (names, the treatment date, links). So each
(template version, step, clinic settings) is rendered once with placeholder tokens and each
message is then a handful of string replacements, escaped as Jinja would have.

That is only exact when a template prints those values as they are, or tests them for being
empty (emptiness is part of the cache key). Any other use, such as `|upper`, a comparison or
a loop, is found by reading the template's syntax tree (with its layout and partials), and such
a template is rendered in full for every message.

The preparation (or, for a template rendered in full, its first render) runs in a renderer
process under CPU and memory limits (`isolation`): a version that would exhaust a worker fails
its message there, once, with a clear error. Later renders stay in this process, bounded by the
sandbox, so a message costs no round trip.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import TemplateError
from markupsafe import escape

from dripcare.content.isolation import render_limited
from dripcare.content.rendering import Rendered, RenderError, TemplateSet, render_full

# The per-recipient values, as (namespace, attribute) in the template context.
DYNAMIC_FIELDS = (
    ("patient", "first_name"),
    ("patient", "last_name"),
    ("treatment", "date"),
    ("links", "unsubscribe"),
    ("links", "preferences"),
    ("links", "checkin_ok"),
    ("links", "checkin_worried"),
)
_NAMESPACES = {namespace for namespace, _ in DYNAMIC_FIELDS}


# A prepared text: a str.format template, "{i}" where per-recipient value i goes and the
# literal text's braces doubled. Filling is then one call in C per text, not a Python loop.
_Pieces = str


@dataclass(frozen=True)
class _Prepared:
    parts: tuple[_Pieces, _Pieces, _Pieces, _Pieces] | None  # None: render in full each time


class Renderer:
    """Renders messages, reusing one prepared render per template version, step and clinic."""

    def __init__(self, max_entries: int = 512) -> None:
        self._cache: OrderedDict[tuple[Any, ...], _Prepared] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def render(
        self,
        templates: TemplateSet,
        template: str,
        subject: str,
        preheader: str,
        context: Mapping[str, Any],
        static_fingerprint: str | None = None,
    ) -> Rendered:
        """`static_fingerprint`: `fingerprint(context)`, when the caller has it already (the
        send path computes it once per step and clinic, not per email)."""
        static_fingerprint = static_fingerprint or fingerprint(context)
        context = _tidy(context)
        values = [context[ns][attr] for ns, attr in DYNAMIC_FIELDS]
        empties = frozenset(i for i, value in enumerate(values) if not value)
        key = (templates.key, template, subject, preheader, empties, static_fingerprint)
        prepared = self._lookup(key)
        if prepared is None:
            prepared = _prepare(templates, template, subject, preheader, context, empties)
            self._store(key, prepared)
        if prepared.parts is None:
            return render_full(templates, template, subject, preheader, context)
        return _fill(prepared.parts, values)

    def _lookup(self, key: tuple[Any, ...]) -> _Prepared | None:
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
            return found

    def _store(self, key: tuple[Any, ...], prepared: _Prepared) -> None:
        with self._lock:
            self._cache[key] = prepared
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)


def _tidy(context: Mapping[str, Any]) -> dict[str, Any]:
    """Per-recipient values as one line of text: a name never brings a newline or a NUL."""
    tidy = {**context, **{namespace: dict(context[namespace]) for namespace in _NAMESPACES}}
    for namespace, attr in DYNAMIC_FIELDS:
        tidy[namespace][attr] = " ".join(str(tidy[namespace][attr]).replace("\x00", "").split())
    return tidy


_TOKEN_MARK = "dctoken"


def _token(index: int) -> str:
    """Link stand-ins look like URLs, so the text part treats them as it treats the real links."""
    namespace, _ = DYNAMIC_FIELDS[index]
    if namespace == "links":
        return f"https://{_TOKEN_MARK}{index}x.invalid/t"
    return f"{_TOKEN_MARK}{index}x"


def _prepare(
    templates: TemplateSet,
    template: str,
    subject: str,
    preheader: str,
    context: dict[str, Any],
    empties: frozenset[int],
) -> _Prepared:
    if not _prints_values_only(templates, template, (subject, preheader)):
        render_limited(templates, template, subject, preheader, context)  # a first, limited try
        return _Prepared(None)
    tokens = {i: "" if i in empties else _token(i) for i in range(len(DYNAMIC_FIELDS))}
    stand_in = {
        key: dict(value) if isinstance(value, dict) else value for key, value in context.items()
    }
    for index, (namespace, attr) in enumerate(DYNAMIC_FIELDS):
        stand_in[namespace][attr] = tokens[index]
    rendered = render_limited(templates, template, subject, preheader, stand_in)
    split = re.compile("|".join(re.escape(t) for t in tokens.values() if t) or "(?!)")
    index_of = {token: index for index, token in tokens.items() if token}

    def pieces(text: str) -> _Pieces:
        out: list[str] = []
        start = 0
        for match in split.finditer(text):
            out += [_literal(text[start : match.start()]), f"{{{index_of[match.group()]}}}"]
            start = match.end()
        return "".join([*out, _literal(text[start:])])

    return _Prepared(
        (
            pieces(rendered.subject),
            pieces(rendered.preheader),
            pieces(rendered.html),
            pieces(rendered.text),
        )
    )


def _literal(text: str) -> str:
    """Text that str.format gives back unchanged."""
    return text.replace("{", "{{").replace("}", "}}")


def _fill(parts: tuple[_Pieces, _Pieces, _Pieces, _Pieces], values: list[str]) -> Rendered:
    escaped = [str(escape(value)) for value in values]
    subject, preheader, html, text = parts
    return Rendered(
        subject.format(*values),
        preheader.format(*values),
        html.format(*escaped),
        text.format(*values),
    )


def fingerprint(context: Mapping[str, Any]) -> str:
    """Everything that is the same for all recipients: clinic, care values, step."""
    static = {key: value for key, value in context.items() if key not in _NAMESPACES}
    static |= {
        ns: {k: v for k, v in context[ns].items() if (ns, k) not in DYNAMIC_FIELDS}
        for ns in _NAMESPACES
    }
    encoded = json.dumps(static, sort_keys=True, default=str).encode()
    return hashlib.blake2b(encoded, digest_size=16).hexdigest()


# ---- reading the templates --------------------------------------------------------------------


def _prints_values_only(templates: TemplateSet, template: str, texts: tuple[str, ...]) -> bool:
    """True when every per-recipient value is only printed, or tested for emptiness."""
    try:
        trees = [templates.text_env.parse(text) for text in texts]
        trees.extend(_template_trees(templates, template))
    except (TemplateError, LookupError) as exc:
        raise RenderError(f"template {template!r}: {exc}") from exc
    return all(_tree_prints_values_only(tree) for tree in trees)


def _template_trees(templates: TemplateSet, name: str) -> Iterator[nodes.Template]:
    """The template and every layout and partial it pulls in; a computed name is refused."""
    env, seen, queue = templates.html_env, set(), [name]
    while queue:
        current = queue.pop()
        if current in seen:
            continue
        seen.add(current)
        assert env.loader is not None
        source, _, _ = env.loader.get_source(env, current)
        tree = env.parse(source)
        yield tree
        for node in tree.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
            target = getattr(node, "template", None)
            if not isinstance(target, nodes.Const):
                raise LookupError("a template name computed at run time cannot be checked")
            queue.append(target.value)


# Constructs whose output can be transformed after a value was printed into it.
_OPAQUE = (nodes.FilterBlock, nodes.AssignBlock, nodes.Macro, nodes.CallBlock, nodes.Call)


def _tree_prints_values_only(tree: nodes.Template) -> bool:
    if tree.find(_OPAQUE) is not None:  # type: ignore[arg-type]
        return False
    parents = {
        id(child): node for node in tree.find_all(nodes.Node) for child in node.iter_child_nodes()
    }
    printed = {id(child) for output in tree.find_all(nodes.Output) for child in output.nodes}
    tests = (getattr(node, "test", None) for node in tree.find_all((nodes.If, nodes.CondExpr)))
    tested = {id(_unwrap_not(test)) for test in tests if test is not None}
    for name in tree.find_all(nodes.Name):
        if name.name not in _NAMESPACES:
            continue
        parent = parents.get(id(name))
        if not isinstance(parent, nodes.Getattr) or parent.node is not name:
            return False  # the namespace itself is used (looped over, assigned, passed on)
        if (name.name, parent.attr) in DYNAMIC_FIELDS and id(parent) not in printed | tested:
            return False
    return True


def _unwrap_not(node: nodes.Node) -> nodes.Node:
    return node.node if isinstance(node, nodes.Not) else node
