"""Turn a campaign step and a recipient into subject, HTML and plain text.

Templates are untrusted (admins edit them): Jinja runs sandboxed with StrictUndefined and
autoescape, then the MJML output is compiled by MRML (mjml-python). The plain-text part is
derived from the HTML, so it always says what the HTML says.

Per-recipient values are few (names, the treatment date, links), while compiling MJML and
converting HTML to text cost milliseconds. So each (template version, clinic, step) is rendered
once with placeholder tokens, checked to depend on those values only by substitution, and then
each message is a handful of string replacements. A template that inspects a per-recipient value
(a filter, a length test) fails that check and is rendered in full for every message instead.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import html2text
import mjml
from jinja2 import DictLoader, StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import escape

MAX_OUTPUT_CHARS = 1_000_000

# The per-recipient values, as dotted paths into the context.
DYNAMIC_FIELDS = (
    "patient.first_name",
    "patient.last_name",
    "treatment.date",
    "links.unsubscribe",
    "links.preferences",
    "links.checkin_ok",
    "links.checkin_worried",
)


class RenderError(Exception):
    """A template could not be rendered; the message names the template and the problem."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    preheader: str
    html: str
    text: str


@dataclass(frozen=True)
class TemplateSet:
    """A campaign's template sources at one version, with the environments that render them."""

    key: str
    html_env: ImmutableSandboxedEnvironment
    text_env: ImmutableSandboxedEnvironment

    @classmethod
    def from_sources(cls, sources: Mapping[str, str]) -> TemplateSet:
        digest = hashlib.sha256(json.dumps(sorted(sources.items())).encode()).hexdigest()
        loader = DictLoader(dict(sources))
        html_env = ImmutableSandboxedEnvironment(
            loader=loader, autoescape=True, undefined=StrictUndefined
        )
        text_env = ImmutableSandboxedEnvironment(autoescape=False, undefined=StrictUndefined)
        return cls(digest, html_env, text_env)


def _text_converter() -> html2text.HTML2Text:
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_tables = True
    converter.ignore_images = True
    converter.ignore_emphasis = True
    converter.protect_links = True
    return converter


def html_to_text(html: str, preheader: str = "") -> str:
    """Readable plain text; the hidden preheader is dropped, it is not part of the message."""
    text = _text_converter().handle(html).strip()
    if preheader and text.startswith(preheader):
        text = text[len(preheader) :].lstrip()
    lines = [line.rstrip() for line in text.splitlines()]
    collapsed: list[str] = []
    for line in lines:
        if line or (collapsed and collapsed[-1]):
            collapsed.append(line)
    return "\n".join(collapsed) + "\n"


def render_full(
    templates: TemplateSet, template: str, subject: str, preheader: str, context: Mapping[str, Any]
) -> Rendered:
    """Render one message from scratch: Jinja (sandboxed), then MJML, then text."""
    try:
        subject_out = _one_line(templates.text_env.from_string(subject).render(context))
        preheader_out = _one_line(templates.text_env.from_string(preheader).render(context))
        ctx = {
            **context,
            "step": {**context["step"], "subject": subject_out, "preheader": preheader_out},
        }
        source = templates.html_env.get_template(template).render(ctx)
    except TemplateError as exc:
        raise RenderError(f"template {template!r}: {_describe(exc)}") from exc
    if len(source) > MAX_OUTPUT_CHARS:
        raise RenderError(f"template {template!r} produced more than {MAX_OUTPUT_CHARS} characters")
    try:
        html = mjml.mjml2html(source)
    except ValueError as exc:
        raise RenderError(f"template {template!r}: invalid MJML: {exc}") from exc
    return Rendered(subject_out, preheader_out, html, html_to_text(html, preheader_out))


def _describe(exc: TemplateError) -> str:
    line = getattr(exc, "lineno", None)
    where = f" (line {line})" if line else ""
    return f"{type(exc).__name__}{where}: {exc.message or exc}"


def _one_line(value: str) -> str:
    """Subjects and preheaders are single lines; a newline there could forge a header."""
    return " ".join(value.split())


# ---- prepared renders -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Prepared:
    """A render with markers where the per-recipient values go; None parts mean 'not cacheable'."""

    parts: Rendered | None


def _get(context: Mapping[str, Any], path: str) -> Any:
    head, tail = path.split(".")
    return context[head][tail]


def _with(context: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    out = {
        key: (dict(value) if isinstance(value, Mapping) else value)
        for key, value in context.items()
    }
    for path, value in values.items():
        head, tail = path.split(".")
        out[head][tail] = value
    return out


def _marker(index: int) -> str:
    return f"\x00{index}\x00"


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
    ) -> Rendered:
        values = {path: str(_get(context, path)).replace("\x00", "") for path in DYNAMIC_FIELDS}
        # Empty values can change a template's branches, so they are part of the key.
        empties = frozenset(path for path, value in values.items() if not value)
        key = (templates.key, template, subject, preheader, empties, _static_fingerprint(context))
        prepared = self._lookup(key)
        if prepared is None:
            prepared = self._prepare(templates, template, subject, preheader, context, empties)
            self._store(key, prepared)
        if prepared.parts is None:
            return render_full(templates, template, subject, preheader, context)
        return _fill(prepared.parts, [values[path] for path in DYNAMIC_FIELDS])

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

    def _prepare(
        self,
        templates: TemplateSet,
        template: str,
        subject: str,
        preheader: str,
        context: Mapping[str, Any],
        empties: frozenset[str],
    ) -> _Prepared:
        """Render with two sets of distinct tokens; identical after normalising means safe."""
        token_sets = [
            {p: "" if p in empties else f"dcT{i}q" for i, p in enumerate(DYNAMIC_FIELDS)},
            {p: "" if p in empties else f"dcVV{i}zz" for i, p in enumerate(DYNAMIC_FIELDS)},
        ]
        normalised = []
        for tokens in token_sets:
            rendered = render_full(templates, template, subject, preheader, _with(context, tokens))
            normalised.append(_normalise(rendered, tokens))
        if normalised[0] != normalised[1]:
            return _Prepared(None)
        return _Prepared(normalised[0])


def _normalise(rendered: Rendered, tokens: Mapping[str, str]) -> Rendered:
    def swap(text: str) -> str:
        for index, path in enumerate(DYNAMIC_FIELDS):
            if tokens[path]:
                text = text.replace(tokens[path], _marker(index))
        return text

    return Rendered(
        swap(rendered.subject), swap(rendered.preheader), swap(rendered.html), swap(rendered.text)
    )


def _fill(parts: Rendered, values: list[str]) -> Rendered:
    def put(text: str, html: bool) -> str:
        for index, value in enumerate(values):
            marker = _marker(index)
            if marker in text:
                text = text.replace(marker, str(escape(value)) if html else value)
        return text

    return Rendered(
        put(parts.subject, False),
        put(parts.preheader, False),
        put(parts.html, True),
        put(parts.text, False),
    )


def _static_fingerprint(context: Mapping[str, Any]) -> str:
    """Everything in the context that is not per-recipient (clinic, care values, step)."""
    static = _with(context, dict.fromkeys(DYNAMIC_FIELDS, ""))
    return hashlib.blake2b(
        json.dumps(static, sort_keys=True, default=str).encode(), digest_size=16
    ).hexdigest()
