"""Turn a campaign step and a recipient into subject, HTML and plain text.

Templates are untrusted (admins edit them): Jinja runs sandboxed with StrictUndefined and
autoescape, then the MJML output is compiled by MRML (mjml-python). The plain-text part is
derived from the HTML, so it always says what the HTML says. `render_cache` makes this cheap
per message.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
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
from jinja2 import BaseLoader, DictLoader, Environment, StrictUndefined, TemplateError, nodes
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_OUTPUT_CHARS = 1_000_000
MAX_RENDER_SECONDS = 2.0
SUBJECT, PREHEADER = "subject", "preheader"  # where a problem is, when not in a template file


class RenderError(Exception):
    """A template could not be rendered; the message names the template and the problem.

    `where` is the template file (or "subject"/"preheader") and `line` the line in it, when
    known, so an editor can point at the spot.
    """

    def __init__(self, message: str, where: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.where, self.line = where, line


class InvalidMjml(RenderError):
    """MRML refused the MJML that Jinja produced; `detail` is MRML's own words."""

    def __init__(self, template: str, detail: str) -> None:
        super().__init__(f"template {template!r}: invalid MJML: {detail}", template)
        self.detail = detail


class RenderTimeout(SecurityError):
    """A template ran past MAX_RENDER_SECONDS (a loop over a huge range, say).

    The seconds are the rendering thread's CPU time, not the wall clock: a runaway template
    burns CPU, while a busy machine only stretches the wall clock of an innocent one.
    """


_deadline: ContextVar[float] = ContextVar("render_deadline", default=float("inf"))


def _check_deadline() -> None:
    if time.thread_time() > _deadline.get():
        raise RenderTimeout(f"rendering took longer than {MAX_RENDER_SECONDS:g} seconds")


def _timed(iterable: Iterable[Any]) -> Iterator[Any]:
    """Every `{% for %}` loop iterates through this, so no loop outlives the deadline."""
    for item in iterable:
        _check_deadline()
        yield item


_TIMED_FILTER = "dripcare_timed_loop"


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

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "%" and isinstance(left, str):
            _check_format(left, right if isinstance(right, tuple) else (right,))
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if sized and len(seq) * max(times, 0) > MAX_OUTPUT_CHARS:
                    raise SecurityError("a repeated string or list would be too large")
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise SecurityError("exponents above 64 are not allowed in templates")
        return super().call_binop(context, operator, left, right)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters[_TIMED_FILTER] = _timed
        for name in _SIZED_FILTERS:
            self.filters[name] = _bounded(self.filters[name], name)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Wrap every loop's iterable so that the render deadline is checked on each pass."""
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, _TIMED_FILTER, [], [], None, None)
            loop.iter.set_lineno(loop.lineno)
        return tree

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_deadline()
        method = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        _check_size(
            getattr(method, "__name__", ""), getattr(method, "__self__", None), args, kwargs
        )
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        _check_deadline()
        return super().getattr(obj, attribute)


# Filters and str methods that can build a value far larger than their input in one C call,
# which no deadline can interrupt: their arguments are checked before they run.
_SIZED_FILTERS = ("center", "indent", "join", "format", "replace", "wordwrap", "truncate")
_NUMBER = re.compile(r"\d+")


def _too_large(what: str) -> SecurityError:
    return SecurityError(f"{what} would build a value over {MAX_OUTPUT_CHARS} characters")


def _check_size(name: str, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse widths and counts beyond the output limit, and joins or replacements whose
    result would exceed it."""
    values = [*args, *kwargs.values()]
    if any(isinstance(v, int) and abs(v) > MAX_OUTPUT_CHARS for v in values):
        raise _too_large(name.removeprefix("safe_") or "a call")
    if name in ("join", "replace", "format", "format_map") and isinstance(target, str):
        if name == "join" and values:
            _check_join(target, values[0])
        elif name == "replace" and len(values) >= 2:
            _check_replace(target, values[0], values[1])
        else:
            _check_format(target, tuple(values))


def _check_join(separator: str, items: Any) -> None:
    if isinstance(items, list | tuple):
        size = sum(len(i) if isinstance(i, str) else 8 for i in items)
        if size + len(separator) * len(items) > MAX_OUTPUT_CHARS:
            raise _too_large("join")


def _check_replace(text: Any, old: Any, new: Any) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        grows = text.count(old) * max(len(new) - len(old), 0) if old else len(text) * len(new)
        if len(text) + grows > MAX_OUTPUT_CHARS:
            raise _too_large("replace")


def _check_format(text: str, args: tuple[Any, ...]) -> None:
    """A width or precision in a format string, or an argument, beyond the output limit."""
    if any(int(n) > MAX_OUTPUT_CHARS for n in _NUMBER.findall(text)):
        raise _too_large("a format width")
    if any(isinstance(a, int) and abs(a) > MAX_OUTPUT_CHARS for a in args):
        raise _too_large("a format argument")


def _bounded(original: Callable[..., Any], name: str) -> Callable[..., Any]:
    """The filter, after the same checks as a call of the str method it stands for."""

    @functools.wraps(original)  # keeps Jinja's pass_eval_context marker
    def checked(*args: Any, **kwargs: Any) -> Any:
        passed = (Environment, EvalContext, Context)
        values = [a for a in args if not isinstance(a, passed)] + list(kwargs.values())
        if any(isinstance(v, int) and abs(v) > MAX_OUTPUT_CHARS for v in values):
            raise _too_large(name)
        subject = values[0] if values else None
        if name == "join":
            _check_join(str(values[1]) if len(values) > 1 else "", subject)
        elif name == "replace" and len(values) >= 3:
            _check_replace(subject, values[1], values[2])
        elif name == "format" and isinstance(subject, str):
            _check_format(subject, tuple(values[1:]))
        return original(*args, **kwargs)

    return checked


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

    @classmethod
    def from_sources(cls, sources: Mapping[str, str]) -> TemplateSet:
        digest = hashlib.sha256(json.dumps(sorted(sources.items())).encode()).hexdigest()
        loader: BaseLoader = _NamedLoader(dict(sources))
        html_env = BoundedSandbox(loader=loader, autoescape=True, undefined=StrictUndefined)
        text_env = BoundedSandbox(autoescape=False, undefined=StrictUndefined)
        return cls(digest, html_env, text_env)


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
    token = _deadline.set(time.thread_time() + MAX_RENDER_SECONDS)
    try:
        subject_out = _one_line(_render_text(templates, SUBJECT, subject, template, context))
        preheader_out = _one_line(_render_text(templates, PREHEADER, preheader, template, context))
        ctx = {
            **context,
            "step": {**context["step"], "subject": subject_out, "preheader": preheader_out},
        }
        source = _guarded(
            template, template, lambda: templates.html_env.get_template(template).render(ctx)
        )
    finally:
        _deadline.reset(token)
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
