"""Turn a campaign step and a recipient into subject, HTML and plain text.

Templates are untrusted (admins edit them): Jinja runs sandboxed with StrictUndefined and
autoescape, then the MJML output is compiled by MRML (mjml-python). The plain-text part is
derived from the HTML, so it always says what the HTML says. `render_cache` makes this cheap
per message.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import html2text
import mjml
from jinja2 import DictLoader, StrictUndefined, TemplateError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_OUTPUT_CHARS = 1_000_000


class RenderError(Exception):
    """A template could not be rendered; the message names the template and the problem."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    preheader: str
    html: str
    text: str


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, plus limits on the operators that can build huge values in one step.

    Jinja's sandbox blocks unsafe attributes but not `'x' * 10**9`; the output-size check
    after rendering would come too late to save the worker's memory.
    """

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if sized and len(seq) * max(times, 0) > MAX_OUTPUT_CHARS:
                    raise SecurityError("a repeated string or list would be too large")
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise SecurityError("exponents above 64 are not allowed in templates")
        return super().call_binop(context, operator, left, right)


@dataclass(frozen=True)
class TemplateSet:
    """A campaign's template sources at one version, with the environments that render them."""

    key: str
    html_env: BoundedSandbox
    text_env: BoundedSandbox

    @classmethod
    def from_sources(cls, sources: Mapping[str, str]) -> TemplateSet:
        digest = hashlib.sha256(json.dumps(sorted(sources.items())).encode()).hexdigest()
        loader = DictLoader(dict(sources))
        html_env = BoundedSandbox(loader=loader, autoescape=True, undefined=StrictUndefined)
        text_env = BoundedSandbox(autoescape=False, undefined=StrictUndefined)
        return cls(digest, html_env, text_env)


def _text_converter() -> html2text.HTML2Text:
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_tables = True
    converter.ignore_images = True
    converter.ignore_emphasis = True
    converter.protect_links = True
    return converter


# MRML's hidden preheader block; hidden text is not part of the readable message.
_HIDDEN_PREVIEW = re.compile(r'<div style="display:none;[^"]*">.*?</div>', re.DOTALL)


def html_to_text(html: str) -> str:
    """Readable plain text of the visible HTML, blank lines collapsed."""
    text = _text_converter().handle(_HIDDEN_PREVIEW.sub("", html, count=1)).strip()
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
    except Exception as exc:  # a template's own runtime error: 1/0, huge range, bad format
        raise RenderError(f"template {template!r}: {type(exc).__name__}: {exc}") from exc
    if len(source) > MAX_OUTPUT_CHARS:
        raise RenderError(f"template {template!r} produced more than {MAX_OUTPUT_CHARS} characters")
    try:
        html = mjml.mjml2html(source)
    except ValueError as exc:
        raise RenderError(f"template {template!r}: invalid MJML: {exc}") from exc
    return Rendered(subject_out, preheader_out, html, html_to_text(html))


def _describe(exc: TemplateError) -> str:
    line = getattr(exc, "lineno", None)
    where = f" (line {line})" if line else ""
    return f"{type(exc).__name__}{where}: {exc.message or exc}"


def _one_line(value: str) -> str:
    """Subjects and preheaders are single lines; a newline there could forge a header."""
    return " ".join(value.split())
