"""Intermediate values in templates are limited, not only the final output (issue 12).

Each payload below builds millions of characters (or a huge list or number) on the way to a
short output, which the sandbox let through before: each must now fail with the limit error.
"""

from __future__ import annotations

import pytest

from dripcare.content.rendering import RenderError
from tests.test_rendering import one_template, render_plain

BIG = "{% set a = 'x' * 900000 %}"
GROWING_PAYLOADS = [
    pytest.param(BIG + "{{ (a ~ a ~ a)|length }}", id="tilde"),
    pytest.param(BIG + "{% set b = a ~ a %}{{ b|length }}", id="tilde-set"),
    pytest.param(BIG + "{{ (a + a + a)|length }}", id="plus"),
    pytest.param(BIG + "{{ ('%s%s%s' % (a, a, a))|length }}", id="percent-tuple"),
    pytest.param(BIG + "{{ ('%(v)s%(v)s%(v)s' % {'v': a})|length }}", id="percent-mapping"),
    pytest.param("{{ lipsum(1000, false, 999, 1000)|length }}", id="lipsum"),
    pytest.param(BIG + "{{ ([a] * 3)|length }}", id="list-times"),
    pytest.param("{{ ([1] * 900000 + [1] * 900000)|length }}", id="list-plus"),
    pytest.param("{{ (range(100000)|list * 5)|length }}", id="range-list-times"),
    pytest.param("{{ ('x'|center(900000) ~ 'x'|center(900000))|length }}", id="center"),
    pytest.param("{{ ('a\\n' * 10000)|indent(999)|length }}", id="indent"),
    pytest.param("{{ ('a ' * 100000)|wordwrap(1, wrapstring='x' * 100)|length }}", id="wordwrap"),
    pytest.param("{{ ('ab' * 400000)|join('xx')|length }}", id="join-string"),
    pytest.param("{{ (range(90000)|join('x' * 100))|length }}", id="join-range"),
    pytest.param(BIG + "{{ ('%s%s%s'|format(a, a, a))|length }}", id="format-filter"),
    pytest.param(BIG + "{{ (a|replace('x', 'yy'))|length }}", id="replace-filter"),
    pytest.param(BIG + "{{ a|truncate(900000, end=a)|length }}", id="truncate-end"),
    pytest.param("{{ 'x'.ljust(900000) ~ 'x'.rjust(900000) }}", id="ljust-rjust"),
    pytest.param("{{ ('1'.zfill(900000) + '1'.zfill(900000))|length }}", id="zfill"),
    pytest.param("{{ ('\\t' * 100000).expandtabs(1000)|length }}", id="expandtabs"),
    pytest.param(BIG + "{{ a.replace('x', 'yy')|length }}", id="replace-method"),
    pytest.param(BIG + "{{ '{0}{0}{0}'.format(a)|length }}", id="format-method"),
    pytest.param("{{ ('a' * 100000).translate({97: 'b' * 100})|length }}", id="translate"),
    pytest.param("{{ ((10 ** 60) ** 60) ** 60 > 0 }}", id="power"),
    pytest.param(
        "{% set n = 10 ** 60 %}{% set n = n * n %}{% set n = n * n %}{% set n = n * n %}"
        "{% set n = n * n %}{% set n = n * n %}{% set n = n * n %}{{ n > 0 }}",
        id="int-squaring",
    ),
    pytest.param(
        "{% for i in range(100) %}{{ 'x' * 900000 }}{% endfor %}",
        id="loop-output",
    ),
]


@pytest.mark.parametrize("payload", GROWING_PAYLOADS)
def test_a_value_growing_past_the_limit_is_refused(payload: str) -> None:
    with pytest.raises(RenderError) as info:
        render_plain(one_template(payload))
    message = str(info.value)
    assert "'t.mjml'" in message
    assert "LimitExceeded" in message
    assert "1000000 characters" in message or "lipsum" in message


ORDINARY_VALUES = {  # what each renders to, in the text part (white space folded)
    "{{ patient.first_name ~ ' ' ~ patient.last_name }}": "Alex Sample",
    "{{ 'Dear %s,' % patient.first_name }}": "Dear Alex,",
    "{{ ('-' * 20) + '|' }}": "--------------------|",
    "{{ lipsum(2, false, 5, 10)|length > 0 }}": "True",
    "{{ [1, 2] + [3] }}": "[1, 2, 3]",
    "{{ (2 ** 64) // 3 }}": str(2**64 // 3),
    "{{ 'a\\tb'.expandtabs(4) }}": "a b",
    "{{ '{0} {0}'.format('hi') }}": "hi hi",
    "{{ 'line\\nline'|indent(2) }}": "line line",
    "{{ 'a b c'|wordwrap(2) }}": "a b c",
    "{{ range(5)|join('-') }}": "0-1-2-3-4",
}


@pytest.mark.parametrize("payload", list(ORDINARY_VALUES))
def test_ordinary_values_still_render(payload: str) -> None:
    rendered = render_plain(one_template(payload))
    assert rendered.text.strip() == ORDINARY_VALUES[payload]


def test_the_limit_error_says_what_to_change() -> None:
    with pytest.raises(RenderError) as info:
        render_plain(one_template(BIG + "{{ a ~ a }}"))
    assert "the ~ operator would build a value over 1000000 characters" in str(info.value)
    assert "use smaller values" in str(info.value)
    assert info.value.line == 1
