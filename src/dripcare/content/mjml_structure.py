"""The first structural mistake in an MJML template, with its line and column.

MRML says only "unexpected end of stream" or "unable to parse next template" when the markup
is broken, and quietly drops an unknown element or a mismatched closing tag. This reads the
template file an admin edits (Jinja blanked out, lines kept) and names the tag at fault:
an `<mj-…>` tag never closed or closed out of order, an element MJML does not have, or an
attribute without a quoted value. Only `mj-*` tags are followed; the HTML inside `mj-text`
and the other content elements is skipped.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

# The MJML 4 elements MRML renders.
ELEMENTS = frozenset(
    {
        "mjml",
        "mj-head",
        "mj-body",
        "mj-attributes",
        "mj-all",
        "mj-class",
        "mj-breakpoint",
        "mj-font",
        "mj-html-attributes",
        "mj-selector",
        "mj-html-attribute",
        "mj-include",
        "mj-preview",
        "mj-style",
        "mj-title",
        "mj-raw",
        "mj-accordion",
        "mj-accordion-element",
        "mj-accordion-title",
        "mj-accordion-text",
        "mj-button",
        "mj-carousel",
        "mj-carousel-image",
        "mj-column",
        "mj-divider",
        "mj-group",
        "mj-hero",
        "mj-image",
        "mj-navbar",
        "mj-navbar-link",
        "mj-section",
        "mj-social",
        "mj-social-element",
        "mj-spacer",
        "mj-table",
        "mj-text",
        "mj-wrapper",
    }
)
# Elements whose content is HTML, CSS or text rather than MJML: read up to their closing tag.
CONTENT_ELEMENTS = frozenset(
    {
        "mj-accordion-text",
        "mj-accordion-title",
        "mj-button",
        "mj-navbar-link",
        "mj-preview",
        "mj-raw",
        "mj-social-element",
        "mj-style",
        "mj-table",
        "mj-text",
        "mj-title",
    }
)

_JINJA = re.compile(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", re.DOTALL)
_TAG = re.compile(r"<!--|<(/?)(mjml|mj-[A-Za-z0-9-]*)(?=[\s/>]|$)")
_ATTRIBUTE = re.compile(r"""([^\s=/>"']+)(\s*=\s*)?""")
_QUOTED = re.compile(r""""[^"]*"|'[^']*'""")


@dataclass(frozen=True)
class MarkupProblem:
    """What is wrong and where, counted from 1."""

    message: str
    line: int
    column: int


@dataclass(frozen=True)
class _Open:
    name: str
    at: int


def find_problem(source: str) -> MarkupProblem | None:
    """The first structural problem in this MJML template (Jinja allowed), or None."""
    return _Reader(blank_jinja(source)).first_problem()


def blank_jinja(source: str) -> str:
    """The source with Jinja tags replaced, keeping every character's line and column.

    An expression becomes `x`s (it prints a value, which may sit in an attribute); a
    statement or comment becomes spaces.
    """

    def blank(match: re.Match[str]) -> str:
        fill = "x" if match.group().startswith("{{") else " "
        return re.sub(r"[^\n]", fill, match.group())

    return _JINJA.sub(blank, source)


class _Problem(Exception):
    def __init__(self, message: str, at: int) -> None:
        super().__init__(message)
        self.message, self.at = message, at


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.open: list[_Open] = []

    def first_problem(self) -> MarkupProblem | None:
        try:
            self._read()
        except _Problem as exc:
            return self._problem(exc.message, exc.at)
        return None

    def _problem(self, message: str, at: int) -> MarkupProblem:
        column = at - self.text.rfind("\n", 0, at)
        return MarkupProblem(message, self._line(at), column)

    def _line(self, at: int) -> int:
        return self.text.count("\n", 0, at) + 1

    def _read(self) -> None:
        pos = 0
        while match := _TAG.search(self.text, pos):
            if match.group() == "<!--":
                end = self.text.find("-->", match.end())
                if end < 0:
                    raise _Problem("this comment <!-- is never closed with -->", match.start())
                pos = end + 3
            elif match.group(1):
                pos = self._close(match.group(2), match.start(), match.end())
            else:
                pos = self._start(match.group(2), match.start(), match.end())
        if self.open:
            last = self.open[-1]
            raise _Problem(f"<{last.name}> is never closed; add </{last.name}>", last.at)

    def _start(self, name: str, at: int, pos: int) -> int:
        if name.lower() not in ELEMENTS:
            raise _Problem(_unknown(name), at)
        pos, closed = self._attributes(name, pos)
        if closed:
            return pos
        if name.lower() in CONTENT_ELEMENTS:
            end = re.compile(rf"</{re.escape(name)}\s*>", re.IGNORECASE).search(self.text, pos)
            if end is None:
                raise _Problem(f"<{name}> is never closed; add </{name}>", at)
            return end.end()
        self.open.append(_Open(name, at))
        return pos

    def _attributes(self, name: str, pos: int) -> tuple[int, bool]:
        """Read to the end of an opening tag; (where it ends, whether it closed itself)."""
        text = self.text
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if text.startswith("/>", pos):
                return pos + 2, True
            if text.startswith(">", pos):
                return pos + 1, False
            attribute = _ATTRIBUTE.match(text, pos)
            if pos >= len(text) or attribute is None:
                raise _Problem(f"the <{name}> tag is not finished; end it with > or />", pos)
            pos = attribute.end()
            if attribute.group(2) is None:
                continue
            value = _QUOTED.match(text, pos)
            if value is None:
                raise _Problem(_bad_value(attribute.group(1), text, pos), attribute.start())
            pos = value.end()

    def _close(self, name: str, at: int, pos: int) -> int:
        end = re.compile(r"\s*>").match(self.text, pos)
        if end is None:
            raise _Problem(f"</{name} is not finished; end it with >", at)
        if not self.open:
            raise _Problem(f"</{name}> closes nothing: no <{name}> is open here", at)
        last = self.open.pop()
        if last.name.lower() == name.lower():
            return end.end()
        if any(o.name.lower() == name.lower() for o in self.open):  # `last` was left open
            raise _Problem(
                f"<{last.name}> is never closed; add </{last.name}> before the </{name}> "
                f"on line {self._line(at)}",
                last.at,
            )
        raise _Problem(
            f"</{name}> does not match <{last.name}> opened on line {self._line(last.at)}; "
            f"close <{last.name}> first",
            at,
        )


def _unknown(name: str) -> str:
    close = difflib.get_close_matches(name.lower(), sorted(ELEMENTS), n=1)
    hint = f"; did you mean <{close[0]}>?" if close else "; see https://documentation.mjml.io"
    return f"<{name}> is not an MJML element{hint}"


def _bad_value(attribute: str, text: str, pos: int) -> str:
    if text[pos : pos + 1] in ('"', "'"):
        return f"the value of {attribute} has no closing quote"
    if pos >= len(text) or text[pos] in "/><":
        return f'{attribute}= has no value; write {attribute}="…" or remove it'
    return f'the value of {attribute} must be in quotes: {attribute}="…"'
