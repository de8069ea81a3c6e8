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
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import mjml
from inscriptis import get_text
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.html_properties import Display
from inscriptis.model.config import ParserConfig
from inscriptis.model.html_document_state import HtmlDocumentState
from inscriptis.model.html_element import HtmlElement
from inscriptis.model.tag import CustomHtmlTagHandlerMapping
from jinja2 import BaseLoader, DictLoader, Environment, StrictUndefined, TemplateError

from dripcare.content.phone_links import tel_links
from dripcare.content.sandbox import MAX_OUTPUT_CHARS, BoundedSandbox, RenderTimeout, deadline

__all__ = ["MAX_OUTPUT_CHARS", "RenderError", "RenderTimeout", "Rendered", "TemplateSet"]

SUBJECT, PREHEADER = "subject", "preheader"  # where a problem is, when not in a template file


class RenderError(Exception):
    """A template could not be rendered; the message names the template and the problem.

    `where` is the template file (or "subject"/"preheader") and `line` the line in it, when
    known, so an editor can point at the spot.
    """

    def __init__(self, message: str, where: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.where, self.line = where, line

    def __reduce__(self) -> tuple[Any, ...]:
        """Sent back from a renderer process (`isolation`) with its place and details."""
        return _rebuilt, (type(self), str(self), dict(self.__dict__))


def _rebuilt(cls: type[RenderError], message: str, attributes: dict[str, Any]) -> RenderError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(attributes)
    return error


class InvalidMjml(RenderError):
    """MRML refused the MJML that Jinja produced; `detail` is MRML's own words."""

    def __init__(self, template: str, detail: str) -> None:
        super().__init__(f"template {template!r}: invalid MJML: {detail}", template)
        self.detail = detail


@dataclass(frozen=True)
class Rendered:
    subject: str
    preheader: str
    html: str
    text: str


class _NamedLoader(DictLoader):
    """A DictLoader that names each template as its file, so tracebacks carry the name."""

    def get_source(  # type: ignore[override]
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        source, _, uptodate = super().get_source(environment, template)
        return source, template, uptodate


@dataclass(frozen=True)
class TemplateSet:
    """A campaign's template sources at one version, with the environments that render them."""

    key: str
    html_env: BoundedSandbox
    text_env: BoundedSandbox
    sources: Mapping[str, str]

    @classmethod
    def from_sources(cls, sources: Mapping[str, str]) -> TemplateSet:
        digest = hashlib.sha256(json.dumps(sorted(sources.items())).encode()).hexdigest()
        loader: BaseLoader = _NamedLoader(dict(sources))
        html_env = BoundedSandbox(loader=loader, autoescape=True, undefined=StrictUndefined)
        html_env.filters["tel_links"] = tel_links
        text_env = BoundedSandbox(autoescape=False, undefined=StrictUndefined)
        return cls(digest, html_env, text_env, dict(sources))


def _no_table_layout(*_: object) -> None:
    """Email layout tables are columns for the eye, not data: their cells read as blocks."""


def _link_end(state: HtmlDocumentState) -> None:
    """`[text](<url>)`: the brackets keep a long URL whole when a mail client wraps lines."""
    if state.link_target:
        state.tags[-1].write(f"](<{state.link_target}>)")


# Firefox's defaults (inscriptis' "strict" profile); layout table cells are plain blocks.
_TEXT_CSS = {
    **CSS_PROFILES["strict"],
    **{tag: HtmlElement(display=Display.block) for tag in ("table", "tr", "td", "th")},
    **{tag: HtmlElement(display=Display.block, padding_inline=2) for tag in ("ul", "ol")},
}
_TEXT_CONFIG = ParserConfig(
    css=_TEXT_CSS,
    display_links=True,
    custom_html_tag_handler_mapping=CustomHtmlTagHandlerMapping(
        start_tag_mapping=dict.fromkeys(("table", "tr", "td", "th"), _no_table_layout),
        end_tag_mapping={**dict.fromkeys(("table", "td", "th"), _no_table_layout), "a": _link_end},
    ),
)


# MRML's hidden preheader block; hidden text is not part of the readable message.
_HIDDEN_PREVIEW = re.compile(r'<div style="display:none;[^"]*">.*?</div>', re.DOTALL)
_PREVIEW_STYLE = re.compile(r'<div style="display:none;[^"]*">')
# MRML hides the preheader with white 1px text, which spam filters read as text hidden by
# colour (SpamAssassin's HTML_FONT_LOW_CONTRAST). This hides it with no colour at all;
# mso-hide:all is for Outlook, which ignores display:none.
_PREVIEW_HIDDEN = '<div style="display:none;max-height:0;overflow:hidden;mso-hide:all;">'


def hide_preview(html: str) -> str:
    """The preheader hidden by layout only, never by text coloured like its background."""
    return _PREVIEW_STYLE.sub(_PREVIEW_HIDDEN, html, count=1)


def html_to_text(html: str) -> str:
    """Readable plain text of the visible HTML, blank lines collapsed."""
    text = get_text(_HIDDEN_PREVIEW.sub("", html, count=1), _TEXT_CONFIG)
    lines = [line.strip() for line in text.splitlines()]
    collapsed: list[str] = []
    for line in lines:
        if line or (collapsed and collapsed[-1]):
            collapsed.append(line)
    return "\n".join(collapsed) + "\n"


def render_full(
    templates: TemplateSet, template: str, subject: str, preheader: str, context: Mapping[str, Any]
) -> Rendered:
    """Render one message from scratch: Jinja (sandboxed, time-limited), then MJML, then text."""
    with deadline():
        subject_out = _one_line(_render_text(templates, SUBJECT, subject, template, context))
        preheader_out = _one_line(_render_text(templates, PREHEADER, preheader, template, context))
        ctx = {
            **context,
            "step": {**context["step"], "subject": subject_out, "preheader": preheader_out},
        }
        source = _guarded(
            template, template, lambda: templates.html_env.get_template(template).render(ctx)
        )
    if len(source) > MAX_OUTPUT_CHARS:
        raise RenderError(
            f"template {template!r} produced more than {MAX_OUTPUT_CHARS} characters", template
        )
    try:
        html = hide_preview(mjml.mjml2html(source))
    except ValueError as exc:
        raise InvalidMjml(template, str(exc)) from exc
    return Rendered(subject_out, preheader_out, html, html_to_text(html))


def _render_text(
    templates: TemplateSet, where: str, text: str, template: str, context: Mapping[str, Any]
) -> str:
    return _guarded(template, where, lambda: templates.text_env.from_string(text).render(context))


def _guarded(template: str, where: str, render: Callable[[], str]) -> str:
    """Run one render; any failure becomes a RenderError saying where it happened."""
    try:
        return render()
    except Exception as exc:  # also a template's own runtime error: 1/0, huge range, bad format
        found, line = _locate(exc, where)
        at = f"{found} line {line}" if found != template else f"line {line}"
        place = f" ({at})" if line else ""
        detail = (exc.message if isinstance(exc, TemplateError) else None) or exc
        message = f"template {template!r}: {type(exc).__name__}{place}: {detail}"
        raise RenderError(message, found, line) from exc


def _locate(exc: BaseException, where: str) -> tuple[str, int | None]:
    """The template file and line an error came from: Jinja names its frames after them."""
    name, line = getattr(exc, "name", None), getattr(exc, "lineno", None)
    if isinstance(name, str) and line:
        return name, line
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == "<template>":  # a subject or preheader, rendered from a string
            return where, frame.lineno
        if not frame.filename.endswith(".py") and not frame.filename.startswith("<"):
            return frame.filename, frame.lineno
    return where, line


def _one_line(value: str) -> str:
    """Subjects and preheaders are single lines; a newline there could forge a header."""
    return " ".join(value.split())
